import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { apiRequest, BASE, call, fetchWithBindings } from "../support/client";
import { expectMessage, logsOf } from "../support/expect";
import { findPlacement } from "../../src/db/applications";
import { createApp, enrol, MANAGEMENT, mintToken } from "../support/fixtures";

const ONE_MIB = 1024 * 1024;
/** A bookmark as the service returns it: the database it belongs to, then D1's own (hex fields). */
const BOOKMARK = /^(DB|SHARD_[A-Z0-9_]+):[0-9a-f]+(-[0-9a-f]+)*$/i;

/** Calls the Worker with the tight limiter (3 requests / 60 s) in place of the real one. */
async function callRateLimited(path: string, auth: string): Promise<Response> {
	const ctx = createExecutionContext();
	const request = new Request(`${BASE}${path}`, { headers: { Authorization: auth } });
	const response = await worker.fetch(request, { ...env, RATE_LIMITER: env.TIGHT_RATE_LIMITER }, ctx);
	await waitOnExecutionContext(ctx);
	return response;
}

/** A request to the Worker as a client sends it, for what the call() helper cannot express. */
const rawFetch = (url: string, init?: RequestInit) => exports.default.fetch(new Request(url, init));

/** A JSON body for POST /appManagement/applications that is exactly `bytes` long. */
const applicationBodyOfSize = (bytes: number) => {
	const envelope = JSON.stringify({ name: "" });
	return JSON.stringify({ name: "n".repeat(bytes - envelope.length) });
};

afterEach(() => {
	vi.restoreAllMocks();
});

describe("unknown routes", () => {
	it("answer 404 MessageSchema under the base path", async () => {
		const response = await call("GET", "/no-such-route");
		expect(response.status).toBe(404);
		expect(await response.json()).toEqual({ message: "No route matches GET at this path" });
	});

	it("answer 404 MessageSchema outside the base path, naming the base path", async () => {
		const response = await rawFetch("http://learner.test/elsewhere");
		expect(response.status).toBe(404);
		expect(await response.json()).toEqual({ message: "No route matches this path; the API is served under /api/v2" });
	});

	it("do not echo the path, which may hold a learner id", async () => {
		const response = await call("GET", "/learner-secret-name/no-such-route");
		expect(await expectMessage(response, 404)).not.toContain("learner-secret-name");
	});
});

describe("repeated slashes", () => {
	// Rustici's generated clients default to a host ending in "/" and paths starting with one: "/api/v2//ping".
	it("answer as one slash: the route, not 404, for every method", async () => {
		const app = await createApp();
		const ping = await rawFetch("http://learner.test/api/v2//ping", { headers: { Authorization: app.auth } });
		expect(ping.status).toBe(200);
		expect(await ping.json()).toMatchObject({ apiMessage: "pong" });
		const learnerId = "slashes-learner";
		// A POST with its body: no redirect, which a client would not follow with the body.
		const created = await rawFetch("http://learner.test/api/v2//registrations", {
			method: "POST",
			headers: { Authorization: app.auth, "Content-Type": "application/json" },
			body: JSON.stringify({ courseId: "c", registrationId: "slashes-reg", learner: { id: learnerId } }),
		});
		expect(created.status).toBe(204);
		const put = await rawFetch(`http://learner.test//api//v2///learner/${learnerId}/tags`, {
			method: "PUT",
			headers: { Authorization: app.auth, "Content-Type": "application/json" },
			body: JSON.stringify({ tags: ["x"] }),
		});
		expect(put.status).toBe(204);
		const tags = await call("GET", `/learner/${learnerId}/tags`, { auth: app.auth });
		expect(await tags.json()).toEqual({ tags: ["x"] });
	});

	it("keep an encoded slash inside an id as part of the id", async () => {
		const app = await createApp();
		const learnerId = "a/b";
		await enrol(app, learnerId);
		const response = await rawFetch(`http://learner.test/api/v2//learner/${encodeURIComponent(learnerId)}/tags`, {
			headers: { Authorization: app.auth },
		});
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ tags: [] });
		// Not the learner "a" with a "b" after it.
		const split = await rawFetch("http://learner.test/api/v2//learner/a//b/tags", { headers: { Authorization: app.auth } });
		expect(split.status).toBe(404);
	});

	it("do not merge an empty id into another route's path", async () => {
		const app = await createApp();
		// "/learner//tags" is the tags of the learner "" (no such route: 404), not PUT /learner/tags's path (405).
		const empty = await rawFetch("http://learner.test/api/v2//learner//tags", { method: "DELETE", headers: { Authorization: app.auth } });
		expect(empty.status).toBe(404);
		const registration = await rawFetch("http://learner.test/api/v2/registrations//tags", { headers: { Authorization: app.auth } });
		expect(registration.status).toBe(404);
	});

	it("choose the route group of the collapsed path", async () => {
		const { groupOf } = await import("../../src/app");
		expect([groupOf("/api/v2//ping"), groupOf("/api/v2//learner/x/tags"), groupOf("//api//v2//appManagement//applications"), groupOf("/api/v2//appManagement/token")]).toEqual([
			"meta",
			"learnerTags",
			"management",
			"oauth",
		]);
	});
});

describe("wrong method on a known path", () => {
	it("answers 405 with an Allow header listing the path's methods", async () => {
		const response = await call("DELETE", "/ping");
		expect(response.status).toBe(405);
		expect(response.headers.get("Allow")).toBe("GET, HEAD");
		expect(await response.json()).toEqual({ message: "Method DELETE is not allowed here; use GET, HEAD" });
	});

	it("answers 405 on a path with parameters", async () => {
		const response = await call("PATCH", "/appManagement/ANYAPP0000/credentials/any-credential", { auth: MANAGEMENT });
		expect(response.status).toBe(405);
		expect(response.headers.get("Allow")).toBe("PUT, DELETE");
		expect(await response.json()).toEqual({ message: "Method PATCH is not allowed here; use PUT, DELETE" });
	});
});

describe("request bodies", () => {
	it("answer 400 to malformed JSON", async () => {
		const response = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: '{"name": ' });
		expect(response.status).toBe(400);
		expect(await response.json()).toEqual({ message: "Malformed JSON in request body" });
	});

	it("answer 400 to a JSON body that is not valid UTF-8, and store nothing of it", async () => {
		const app = await createApp();
		const registration = { courseId: "c", registrationId: "utf8-check", learner: { id: "utf8-learner" } };
		expect((await call("POST", "/registrations", { auth: app.auth, body: registration })).status).toBe(204);
		// {"tags":["<FF FE>"]}: two bytes no UTF-8 text contains.
		const body = new Uint8Array([...new TextEncoder().encode('{"tags":["'), 0xff, 0xfe, ...new TextEncoder().encode('"]}')]);
		const response = await rawFetch(`${BASE}/learner/utf8-learner/tags`, {
			method: "PUT",
			headers: { Authorization: app.auth, "Content-Type": "application/json" },
			body,
		});
		expect(await expectMessage(response, 400)).toBe("The request body is not valid UTF-8");
		const tags = await call("GET", "/learner/utf8-learner/tags", { auth: app.auth });
		expect(await tags.json()).toEqual({ tags: [] });
	});

	it("answer 400 naming the field when a required field is missing", async () => {
		const response = await call("PUT", "/appManagement/users/someone%40example.com", { auth: MANAGEMENT, body: {} });
		expect(response.status).toBe(400);
		expect(await response.json()).toEqual({ message: 'Invalid request: role must be one of "owner", "admin", "member"' });
	});

	it("answer 400 naming the field when it has the wrong type", async () => {
		const response = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name: ["x"] } });
		expect(response.status).toBe(400);
		expect(await response.json()).toEqual({ message: "Invalid request: name must be a string" });
	});

	it("answer 400 when the body is JSON but not an object", async () => {
		const response = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: ["Academy"] });
		expect(await expectMessage(response, 400)).toBe("Invalid request: the body must be a JSON object");
	});

	it("answer 413 naming the limit when over 1 MiB", async () => {
		const response = await call("POST", "/appManagement/applications", {
			auth: MANAGEMENT,
			body: applicationBodyOfSize(ONE_MIB + 1),
		});
		expect(response.status).toBe(413);
		expect(await response.json()).toEqual({ message: "Request body exceeds the limit of 1048576 bytes (1 MiB)" });
	});

	it("accept exactly 1 MiB, up to validation", async () => {
		const response = await call("POST", "/appManagement/applications", {
			auth: MANAGEMENT,
			body: applicationBodyOfSize(ONE_MIB),
		});
		expect(response.status).toBe(400);
		expect(await response.json()).toEqual({ message: "Invalid request: name must be at most 255 characters" });
	});

	it("answer 413 to a streamed body over 1 MiB that declares no length", async () => {
		const chunk = new TextEncoder().encode("n".repeat(64 * 1024));
		let sent = 0;
		const body = new ReadableStream<Uint8Array>({
			pull(controller) {
				if (sent > ONE_MIB) return controller.close();
				sent += chunk.length;
				controller.enqueue(chunk);
			},
		});
		const response = await rawFetch(`${BASE}/appManagement/applications`, {
			method: "POST",
			headers: { Authorization: MANAGEMENT, "Content-Type": "application/json" },
			body,
		});
		expect(response.status).toBe(413);
		expect(await response.json()).toEqual({ message: "Request body exceeds the limit of 1048576 bytes (1 MiB)" });
	});

	it("answer 415 to a body that is not JSON", async () => {
		const response = await call("POST", "/appManagement/applications", {
			auth: MANAGEMENT,
			body: "name=Academy",
			headers: { "Content-Type": "text/plain" },
		});
		expect(response.status).toBe(415);
		expect(await response.json()).toEqual({ message: 'Request bodies must be application/json (got "text/plain")' });
	});

	it("answer 415 to a body without a content type", async () => {
		const response = await rawFetch(`${BASE}/appManagement/applications`, {
			method: "POST",
			headers: { Authorization: MANAGEMENT },
			body: new TextEncoder().encode(JSON.stringify({ name: "Academy" })),
		});
		expect(response.status).toBe(415);
		expect(await response.json()).toEqual({ message: 'Request bodies must be application/json (got "none")' });
	});

	it("accept JSON with a charset parameter", async () => {
		const response = await call("POST", "/appManagement/applications", {
			auth: MANAGEMENT,
			body: { name: "Academy" },
			headers: { "Content-Type": "application/json; charset=utf-8" },
		});
		expect(response.status).toBe(200);
	});
});

describe("X-Request-Id", () => {
	it("is on every response, success or failure, and differs between requests", async () => {
		const app = await createApp();
		const responses = await Promise.all([
			call("GET", "/ping", { auth: app.auth }),
			call("GET", "/ping"),
			call("GET", "/ping", { auth: await mintToken(app, "read:about") }),
			call("GET", "/no-such-route"),
			call("DELETE", "/ping"),
			call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: "{" }),
			call("POST", "/appManagement/applications", {
				auth: MANAGEMENT,
				body: "x",
				headers: { "Content-Type": "text/plain" },
			}),
			call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: applicationBodyOfSize(ONE_MIB + 1) }),
			call("GET", "/ping", { auth: app.auth, headers: { "X-D1-Bookmark": "not a bookmark" } }),
		]);
		expect(responses.map((response) => response.status)).toEqual([200, 401, 403, 404, 405, 400, 415, 413, 400]);
		const ids = responses.map((response) => response.headers.get("X-Request-Id"));
		for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
		expect(new Set(ids).size).toBe(ids.length);
	});

	it("is on a 429", async () => {
		const app = await createApp();
		for (let i = 0; i < 3; i++) await callRateLimited("/ping", app.auth);
		const response = await callRateLimited("/ping", app.auth);
		expect(response.status).toBe(429);
		expect(response.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
	});
});

describe("rate limiting", () => {
	it("answers 429 with Retry-After once an application spends its budget", async () => {
		const app = await createApp();
		for (let i = 0; i < 3; i++) expect((await callRateLimited("/ping", app.auth)).status).toBe(200);
		const response = await callRateLimited("/ping", app.auth);
		expect(response.status).toBe(429);
		expect(response.headers.get("Retry-After")).toBe("60");
		expect(await response.json()).toEqual({
			message: `Rate limit exceeded for application ${app.appId}; retry after 60 seconds`,
		});
	});

	it("shares one budget between an application's Basic credentials and its tokens", async () => {
		const app = await createApp();
		const token = await mintToken(app, "read:ping");
		for (let i = 0; i < 3; i++) expect((await callRateLimited("/ping", app.auth)).status).toBe(200);
		expect((await callRateLimited("/ping", token)).status).toBe(429);
	});

	it("limits each application separately", async () => {
		const limited = await createApp();
		const other = await createApp();
		for (let i = 0; i < 4; i++) await callRateLimited("/ping", limited.auth);
		expect((await callRateLimited("/ping", limited.auth)).status).toBe(429);
		const response = await callRateLimited("/ping", other.auth);
		expect(response.status).toBe(200);
		expect(response.headers.get("Retry-After")).toBeNull();
	});

	it("does not spend budget on requests that fail authentication", async () => {
		const app = await createApp();
		for (let i = 0; i < 5; i++) await callRateLimited("/ping", `Basic ${btoa(`${app.appId}:wrong-secret`)}`);
		expect((await callRateLimited("/ping", app.auth)).status).toBe(200);
	});
});

describe("X-D1-Bookmark", () => {
	it("is returned after a write and after a read", async () => {
		const created = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name: "Bookmarked" } });
		expect(created.status).toBe(200);
		expect(created.headers.get("X-D1-Bookmark")).toMatch(BOOKMARK);
		const listed = await call("GET", "/appManagement/applications", { auth: MANAGEMENT });
		expect(listed.status).toBe(200);
		expect(listed.headers.get("X-D1-Bookmark")).toMatch(BOOKMARK);
	});

	it("lets a client that sends it back read its own writes", async () => {
		const created = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name: "Read back" } });
		const { id } = (await created.json()) as { id: string };
		const bookmark = created.headers.get("X-D1-Bookmark") ?? "";
		const listed = await call("GET", "/appManagement/applications", {
			auth: MANAGEMENT,
			headers: { "X-D1-Bookmark": bookmark },
		});
		expect(listed.status).toBe(200);
		const { applications } = (await listed.json()) as { applications: { id: string; name: string }[] };
		expect(applications.filter((app) => app.id === id).map(({ name }) => name)).toEqual(["Read back"]);
		expect(listed.headers.get("X-D1-Bookmark")).toMatch(BOOKMARK);
	});

	it("advances with each write", async () => {
		const first = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name: "one" } });
		const second = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name: "two" } });
		const before = first.headers.get("X-D1-Bookmark") ?? "";
		const after = second.headers.get("X-D1-Bookmark") ?? "";
		expect(before).toMatch(BOOKMARK);
		// D1 bookmarks are fixed-width hex fields, so later ones sort after earlier ones.
		expect(after > before).toBe(true);
	});

	it("names the database it belongs to: the control database for the management API, the application's shard for its data", async () => {
		const created = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name: "Tagged" } });
		expect(created.headers.get("X-D1-Bookmark")).toMatch(/^DB:/);
		const app = await createApp();
		const shard = (await findPlacement(env.DB, app.appId))?.shard ?? "";
		const tagged = await call("PUT", "/learner/tagged-learner/tags", { auth: app.auth, body: { tags: ["a"] } });
		expect(tagged.headers.get("X-D1-Bookmark") ?? "").toMatch(new RegExp(`^${shard}:`));
	});

	it("is ignored by a request served by another database, and a bare one (from before the shards) is accepted", async () => {
		const app = await createApp();
		await enrol(app, "bookmarked-learner");
		const fromManagement = (await call("GET", "/appManagement/applications", { auth: MANAGEMENT })).headers.get("X-D1-Bookmark") ?? "";
		const bare = fromManagement.slice(fromManagement.indexOf(":") + 1);
		for (const bookmark of [fromManagement, bare, `SHARD_NOWHERE:${bare}`]) {
			const response = await call("GET", "/learner/bookmarked-learner/tags", { auth: app.auth, headers: { "X-D1-Bookmark": bookmark } });
			expect(response.status).toBe(200);
			expect(response.headers.get("X-D1-Bookmark")).toMatch(BOOKMARK);
		}
	});

	it("answers 400 when malformed, before authentication", async () => {
		const response = await call("GET", "/ping", { headers: { "X-D1-Bookmark": "'; DROP TABLE applications; --" } });
		expect(response.status).toBe(400);
		expect(await response.json()).toEqual({
			message: "X-D1-Bookmark is not a D1 bookmark; send back the value a previous response carried",
		});
	});
});

describe("request log lines", () => {
	it("name the route pattern and the request id, never the learner id in the path", async () => {
		const app = await createApp();
		const learnerId = "learner-named-in-the-path-only";
		const registration = { courseId: "c", registrationId: `${learnerId}-r`, learner: { id: learnerId } };
		expect((await call("POST", "/registrations", { auth: app.auth, body: registration })).status).toBe(204);
		let response: Response | undefined;
		const lines = await logsOf(async () => {
			// LOG_LEVEL info: a line for every request, as in production.
			response = await fetchWithBindings(apiRequest("GET", `/learner/${learnerId}/tags`, { auth: app.auth }), {
				LOG_LEVEL: "info",
			});
		});
		expect(response?.status).toBe(200);
		expect(lines.filter((line) => line.msg === "request")).toEqual([
			expect.objectContaining({
				level: "info",
				requestId: response?.headers.get("X-Request-Id"),
				method: "GET",
				route: "/api/v2/learner/:learnerId/tags",
				status: 200,
			}),
		]);
		expect(JSON.stringify(lines)).not.toContain(learnerId);
	});
});

describe("internal faults", () => {
	it("answer 500 quoting the request id, never the database's error text", async () => {
		const app = await createApp();
		const fault = "D1_ERROR: no such column: learner_email: SELECT learner_email FROM registrations WHERE learner_id = 'ada'";
		const failing = () => {
			throw new Error(fault);
		};
		const brokenDb = {
			withSession: () => ({ prepare: failing, batch: failing, getBookmark: () => null }),
		} as unknown as D1Database;
		let response: Response | undefined;
		const lines = await logsOf(async () => {
			response = await fetchWithBindings(apiRequest("GET", "/learner/ada/tags", { auth: app.auth }), { DB: brokenDb });
		});
		const requestId = response?.headers.get("X-Request-Id") ?? "";
		expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
		const message = await expectMessage(response as Response, 500);
		expect(message).toContain(requestId);
		for (const leaked of ["D1_ERROR", "SELECT", "learner_email", "learner_id ="]) expect(message).not.toContain(leaked);
		// Logged with the request id, and only the error's first line: bound values never reach the log.
		expect(lines.filter((line) => line.level === "error" && line.requestId === requestId)).not.toEqual([]);
	});
});
