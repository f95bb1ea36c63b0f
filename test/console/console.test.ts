import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { sweep } from "../../src/jobs/sweeper";
import { actingAsApplication } from "../../src/auth/middleware";
import { CONSOLE_CSP } from "../../src/console/routes";
import { SESSION_SECONDS, issueSession } from "../../src/console/session";
import { BASE, call } from "../support/client";
import { ORIGIN, csrfOf, fetchConsole, fieldErrors, follow, freshAddress, get, post, signIn } from "../support/console";
import { expectMessage } from "../support/expect";
import { createApp, enrol, MANAGEMENT, mintToken, uniqueValue } from "../support/fixtures";

// The operator console (SPEC §10): its session, its CSRF defences, its headers, and the in-process channel it
// acts as an application through, which nothing outside the Worker can open.

async function applicationNames(): Promise<string[]> {
	const response = await call("GET", "/appManagement/applications", { auth: MANAGEMENT });
	const { applications } = (await response.json()) as { applications: { name: string }[] };
	return applications.map((app) => app.name);
}

describe("GET /console", () => {
	it("sends a request without a session to the sign-in page, under the console's policy", async () => {
		for (const path of ["", "/applications", "/users", "/erasures", "/jobs"]) {
			const response = await fetchConsole(get(path));
			expect(response.status, path).toBe(303);
			expect(response.headers.get("Location"), path).toBe("/console/sign-in");
			expect(response.headers.get("Content-Security-Policy"), path).toBe(CONSOLE_CSP);
		}
	});

	it("serves the sign-in page with a strict Content-Security-Policy and no caching", async () => {
		const response = await fetchConsole(get("/sign-in"));
		expect(response.status).toBe(200);
		expect(response.headers.get("Content-Security-Policy")).toBe(
			"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'",
		);
		expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff");
		expect(response.headers.get("Referrer-Policy")).toBe("no-referrer");
		expect(response.headers.get("Cache-Control")).toBe("no-store");
		const html = await response.text();
		expect(html).toMatch(/^<!doctype html>/);
		expect(html).toContain("<h1>Sign in to the console</h1>");
		expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/);
		expect(html).not.toContain("style=");
	});

	it("serves its script and stylesheet under the same policy", async () => {
		for (const [file, type] of [
			["console.js", "text/javascript"],
			["console.css", "text/css"],
		]) {
			const response = await fetchConsole(get(`/assets/${file}`));
			expect(response.status).toBe(200);
			expect(response.headers.get("Content-Type")).toContain(type);
			expect(response.headers.get("Content-Security-Policy")).toBe(CONSOLE_CSP);
			expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff");
		}
	});

	it("opens the overview for a signed-in operator, and answers the job poll 401 JSON without a session", async () => {
		const root = await fetchConsole(get("", await signIn()));
		expect(root.status).toBe(303);
		expect(root.headers.get("Location")).toBe("/console/overview");
		const poll = await fetchConsole(get("/jobs/some-job/status"));
		expect(poll.status).toBe(401);
		expect(await poll.json()).toEqual({ message: "Your console session has ended or was never started: sign in again" });
	});

	it("is not part of the API's document", async () => {
		const document = (await (await call("GET", "/openapi.json")).json()) as { paths: Record<string, unknown> };
		expect(Object.keys(document.paths).filter((path) => path.includes("console"))).toEqual([]);
	});
});

describe("POST /console/sign-in", () => {
	it("gives a signed, HttpOnly, Secure, SameSite=Strict cookie for the console's path that opens the pages", async () => {
		const response = await fetchConsole(post("/sign-in", { appId: env.MANAGEMENT_APP_ID, secretKey: env.MANAGEMENT_SECRET_KEY }));
		expect(response.status).toBe(303);
		expect(response.headers.get("Location")).toBe("/console/overview");
		const setCookie = response.headers.get("Set-Cookie") ?? "";
		expect(setCookie).toMatch(/^console_session=[\w-]+\.[0-9a-f]{64}; /);
		expect(setCookie).toContain(`Max-Age=${SESSION_SECONDS}`);
		expect(setCookie).toContain("Path=/console");
		expect(setCookie).toContain("HttpOnly");
		expect(setCookie).toContain("Secure");
		expect(setCookie).toContain("SameSite=Strict");
		const page = await fetchConsole(get("/applications", setCookie.split(";")[0]));
		expect(page.status).toBe(200);
		expect(await page.text()).toContain("<h1>Applications</h1>");
	});

	it("answers a wrong id and a wrong secret with the same message, back on the sign-in page with the id typed", async () => {
		const wrongId = await fetchConsole(post("/sign-in", { appId: "someone", secretKey: env.MANAGEMENT_SECRET_KEY }));
		const wrongSecret = await fetchConsole(post("/sign-in", { appId: "someone", secretKey: "wrong" }));
		for (const response of [wrongId, wrongSecret]) {
			expect(response.status).toBe(303);
			expect(response.headers.get("Set-Cookie")).toBeNull();
			expect(response.headers.get("Location")).toBe("/console/sign-in?refused=credentials&appId=someone");
		}
		const page = await (await fetchConsole(get("/sign-in?refused=credentials&appId=someone"))).text();
		expect(page).toContain("That management id and secret key do not match: check both and try again.");
		expect(page).toContain('value="someone"');
		expect(page).not.toContain(env.MANAGEMENT_SECRET_KEY);
	});

	it("throttles failed sign-ins per address as the API throttles failed authentication", async () => {
		const address = freshAddress();
		const attempt = (secretKey: string) =>
			fetchConsole(post("/sign-in", { appId: env.MANAGEMENT_APP_ID, secretKey }, { headers: { "CF-Connecting-IP": address } }), {
				AUTH_FAILURES_BY_CLIENT: env.TIGHT_AUTH_FAILURES,
			});
		const refusal = async (secretKey: string) => new URL((await attempt(secretKey)).headers.get("Location") ?? "", ORIGIN).searchParams.get("refused");
		for (let failure = 1; failure <= 3; failure++) expect(await refusal(`wrong-${failure}`)).toBe("credentials");
		const fourth = await attempt("wrong-4");
		expect(fourth.headers.get("Location")).toMatch(/^\/console\/sign-in\?refused=throttled&appId=[^&]+&retry=60$/);
		expect(await (await fetchConsole(get((fourth.headers.get("Location") ?? "").slice("/console".length)))).text()).toContain(
			"Too many failed sign-ins from here: try again in 60 seconds.",
		);
		// Throttled: even the right secret is refused from that address for the rest of the window.
		const right = await attempt(env.MANAGEMENT_SECRET_KEY);
		expect(right.headers.get("Set-Cookie")).toBeNull();
		expect(new URL(right.headers.get("Location") ?? "", ORIGIN).searchParams.get("refused")).toBe("throttled");
	});

	it("refuses a sign-in posted from another origin", async () => {
		const response = await fetchConsole(
			post("/sign-in", { appId: env.MANAGEMENT_APP_ID, secretKey: env.MANAGEMENT_SECRET_KEY }, { headers: { Origin: "https://evil.example", "Sec-Fetch-Site": "cross-site" } }),
		);
		expect(response.status).toBe(403);
		expect(response.headers.get("Set-Cookie")).toBeNull();
	});
});

describe("the console's session cookie", () => {
	it("is refused when forged, altered, expired or signed with another key", async () => {
		const nowSeconds = Math.floor(Date.now() / 1000);
		const good = (await issueSession(env.TOKEN_SIGNING_SECRET, nowSeconds)).value;
		const [payload, signature] = good.split(".");
		const expired = (await issueSession(env.TOKEN_SIGNING_SECRET, nowSeconds - SESSION_SECONDS - 1)).value;
		const otherKey = (await issueSession("another-secret-of-at-least-32-characters!!", nowSeconds)).value;
		const longer = btoa(JSON.stringify({ sid: "x", iat: nowSeconds, exp: nowSeconds + 10 * SESSION_SECONDS }))
			.replace(/=+$/, "")
			.replace(/\+/g, "-")
			.replace(/\//g, "_");
		const token = await mintToken(await createApp(), "admin");
		const forged = [
			"",
			"garbage",
			`${payload}.${"0".repeat(64)}`,
			`${longer}.${signature}`,
			`${payload}.${signature}.extra`,
			expired,
			otherKey,
			token,
		];
		expect((await fetchConsole(get("/applications", `console_session=${good}`))).status).toBe(200);
		for (const value of forged) {
			const response = await fetchConsole(get("/applications", `console_session=${value}`));
			expect(response.status, value).toBe(303);
			expect(response.headers.get("Location")).toBe("/console/sign-in");
			const write = await fetchConsole(post("/applications", { name: "forged", csrf: "0" }, { cookie: `console_session=${value}` }));
			expect(write.status, value).toBe(401);
		}
	});

	it("no longer opens a page once its session signed out", async () => {
		const cookie = await signIn();
		const csrf = await csrfOf(cookie);
		const out = await fetchConsole(post("/sign-out", { csrf }, { cookie }));
		expect(out.status).toBe(303);
		expect(out.headers.get("Location")).toBe("/console/sign-in?signed-out");
		expect(await (await fetchConsole(get("/sign-in?signed-out"))).text()).toContain("You are signed out.");
		expect(out.headers.get("Set-Cookie")).toMatch(/^console_session=; Max-Age=0; Path=\/console; HttpOnly; Secure; SameSite=Strict/);
		const again = await fetchConsole(get("/applications", cookie));
		expect(again.status).toBe(303);
		expect(again.headers.get("Location")).toBe("/console/sign-in");
	});
});

describe("signing out", () => {
	/** The session id a cookie ("console_session=<payload>.<signature>") carries. */
	const sessionIdOf = (cookie: string) =>
		(JSON.parse(atob((cookie.split("=")[1] ?? "").split(".")[0]?.replace(/-/g, "+").replace(/_/g, "/") ?? "")) as { sid: string }).sid;

	it("ends the session for every isolate: a session recorded as signed out is refused, whoever served the sign-out", async () => {
		const cookie = await signIn();
		expect((await fetchConsole(get("/applications", cookie))).status).toBe(200);
		// As another isolate's sign-out leaves it: recorded in the control database, unknown to this isolate.
		await env.DB.prepare("INSERT INTO console_sign_outs (session_id, expires_at) VALUES (?1, ?2)")
			.bind(sessionIdOf(cookie), new Date(Date.now() + 30 * 60_000).toISOString())
			.run();
		const after = await fetchConsole(get("/applications", cookie));
		expect(after.status).toBe(303);
		expect(after.headers.get("Location")).toBe("/console/sign-in");
	});

	it("is recorded until the session would have expired, and the sweeper then forgets it", async () => {
		const cookie = await signIn();
		const csrf = await csrfOf(cookie);
		expect((await fetchConsole(post("/sign-out", { csrf }, { cookie }))).status).toBe(303);
		const row = await env.DB.prepare("SELECT expires_at FROM console_sign_outs WHERE session_id = ?1").bind(sessionIdOf(cookie)).first<{ expires_at: string }>();
		const expiresIn = Date.parse(row?.expires_at ?? "") - Date.now();
		expect(expiresIn).toBeGreaterThan(29 * 60_000);
		expect(expiresIn).toBeLessThanOrEqual(30 * 60_000);
		await sweep(env, Date.now() + 31 * 60_000);
		expect(await env.DB.prepare("SELECT 1 FROM console_sign_outs WHERE session_id = ?1").bind(sessionIdOf(cookie)).first()).toBeNull();
	});
});

describe("the console's forms (CSRF)", () => {
	it("refuse a POST from another origin, even with the session's cookie and token, and change nothing", async () => {
		const cookie = await signIn();
		const csrf = await csrfOf(cookie);
		const name = uniqueValue("cross-origin");
		for (const headers of [
			{ Origin: "https://evil.example", "Sec-Fetch-Site": "cross-site" },
			{ Origin: "https://evil.example", "Sec-Fetch-Site": "same-origin" },
			{ Origin: ORIGIN, "Sec-Fetch-Site": "same-site" },
			{ Origin: "null", "Sec-Fetch-Site": "" },
		]) {
			const response = await fetchConsole(post("/applications", { name, csrf }, { cookie, headers }));
			expect(response.status, JSON.stringify(headers)).toBe(403);
			expect(await response.text()).toContain("This form was not sent from a page of this console; nothing was changed");
		}
		expect(await applicationNames()).not.toContain(name);
	});

	it("refuse a POST without the session's token, or with another session's", async () => {
		const cookie = await signIn();
		const otherToken = await csrfOf(await signIn());
		const name = uniqueValue("no-token");
		for (const fields of [{ name }, { name, csrf: "" }, { name, csrf: otherToken }] as Record<string, string>[]) {
			const response = await fetchConsole(post("/applications", fields, { cookie }));
			expect(response.status).toBe(403);
			expect(await response.text()).toContain("security token is missing or belongs to another session");
		}
		expect(await applicationNames()).not.toContain(name);
	});

	it("refuse a POST without a session", async () => {
		const name = uniqueValue("no-session");
		const response = await fetchConsole(post("/applications", { name, csrf: "0".repeat(64) }));
		expect(response.status).toBe(401);
		expect(await applicationNames()).not.toContain(name);
	});

	it("act through the API when the origin, cookie and token are right", async () => {
		const cookie = await signIn();
		const csrf = await csrfOf(cookie);
		const name = uniqueValue("console-made");
		const response = await fetchConsole(post("/applications", { name, csrf, dataRegion: "eu" }, { cookie }));
		expect(response.status).toBe(303);
		expect(await (await follow({ cookie, csrf }, response)).text()).toContain(`Application ${name} created`);
		expect(await applicationNames()).toContain(name);
	});

	it("show the API's refusal beside the field, in the console's words, keeping what was typed", async () => {
		const cookie = await signIn();
		const csrf = await csrfOf(cookie, "/users");
		const response = await fetchConsole(post("/users", { email: "not-an-email", role: "admin", csrf }, { cookie }));
		expect(response.status).toBe(303);
		// The API refuses the email (400); the console says so beside the field.
		expect((await call("PUT", "/appManagement/users/not-an-email", { auth: MANAGEMENT, body: { role: "admin" } })).status).toBe(400);
		const page = await (await follow({ cookie, csrf }, response)).text();
		expect(fieldErrors(page)).toEqual({ email: "Enter a valid email address." });
		expect(page).toContain('id="user-email" name="email" type="email" value="not-an-email"');
	});
});

describe("the console's channel into the application API", () => {
	it("acts as the application for an in-process request made with actingAsApplication", async () => {
		const app = await createApp();
		const learner = uniqueValue("learner");
		await enrol(app, learner);
		const ctx = createExecutionContext();
		const response = await worker.fetch(new Request(`${BASE}/learners`), actingAsApplication(env, app.appId), ctx);
		await waitOnExecutionContext(ctx);
		expect(response.status).toBe(200);
		const { learners } = (await response.json()) as { learners: { id: string }[] };
		expect(learners.map((found) => found.id)).toEqual([learner]);
	});

	it("cannot be opened by a request: no header, query or binding acts as an application", async () => {
		const app = await createApp();
		await enrol(app, uniqueValue("learner"));
		const attempts: [Request, Partial<Env>][] = [
			[new Request(`${BASE}/learners`, { headers: { "X-Console-Acting-As": app.appId, "Console-Acting-As": app.appId } }), {}],
			[new Request(`${BASE}/learners?CONSOLE_ACTING_AS=${app.appId}&actingAs=${app.appId}`), {}],
			[new Request(`${BASE}/learners`), { CONSOLE_ACTING_AS: app.appId, "console acting as application": app.appId } as Partial<Env>],
			[new Request(`${BASE}/learners`, { headers: { Cookie: "console_session=x", Authorization: "Console " + app.appId } }), {}],
		];
		for (const [request, bindings] of attempts) {
			const response = await fetchConsole(request, bindings);
			expect(response.status).toBe(401);
		}
	});

	it("is refused once the application's deletion was requested", async () => {
		const app = await createApp();
		expect((await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT })).status).toBe(204);
		const ctx = createExecutionContext();
		const response = await worker.fetch(new Request(`${BASE}/learners`), actingAsApplication(env, app.appId), ctx);
		await waitOnExecutionContext(ctx);
		expect(await expectMessage(response, 404)).toBe(`Application [${app.appId}] was not found`);
	});
});
