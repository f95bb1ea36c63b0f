/// <reference lib="dom" />
// The operator console (SPEC §10) as an operator uses it: Debian's headless Chromium, driven by puppeteer-core,
// clicks through the pages the wrangler dev server (global-setup.ts) serves at /console, under their real
// Content-Security-Policy and cookies. Each main view must render its heading with no console error, page error
// or policy violation, and is saved as a screenshot (SCREENSHOTS, git-ignored) for a person to look at.
import { type JsonWebKey, createPublicKey, verify } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { basePath, basicAuthorization, canonical, unique } from "./helpers";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SCREENSHOTS = path.resolve(import.meta.dirname, "../../.wrangler/console-screenshots");

const origin = () => new URL(basePath()).origin;
const management = () => basicAuthorization(inject("managementAppId"), inject("managementSecretKey"));

/** Calls the API from Node, as an integration would. */
async function api(method: string, route: string, auth: string, body?: unknown): Promise<Response> {
	return fetch(`${basePath()}${route}`, {
		method,
		headers: { Authorization: auth, ...(body !== undefined && { "Content-Type": "application/json" }) },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
}

/** What went wrong on a page: console errors and warnings, uncaught errors, and Content-Security-Policy violations. */
function watch(page: Page): string[] {
	const problems: string[] = [];
	page.on("console", (message) => {
		if (message.type() === "error" || message.type() === "warn") problems.push(`console.${message.type()}: ${message.text()}`);
	});
	page.on("pageerror", (error) => problems.push(`pageerror: ${error instanceof Error ? error.message : String(error)}`));
	return problems;
}

let browser: Browser;
let page: Page;
let problems: string[];

/** Asserts the page shows `heading` as its <h1> with nothing gone wrong, and saves a screenshot named `name`. */
async function check(name: string, heading: string): Promise<void> {
	expect(await page.$eval("h1", (h1) => h1.textContent?.trim())).toBe(heading);
	// The script polls and the browser reports violations asynchronously: give them a moment to show.
	await new Promise((resolve) => setTimeout(resolve, 300));
	const violations = await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations);
	expect(violations).toEqual([]);
	expect(problems.splice(0)).toEqual([]);
	await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Submits the form whose action is `action` (clicking its submit button) and waits for the next page. */
async function submit(action: string, index = 0): Promise<void> {
	const buttons = await page.$$(`form[action="${action}"] button[type="submit"]`);
	const button = buttons[index];
	if (!button) throw new Error(`no form posts to ${action}`);
	await Promise.all([page.waitForNavigation(), button.click()]);
}

async function sessionCookie(): Promise<string> {
	const cookies = await page.browserContext().cookies();
	const cookie = cookies.find((candidate) => candidate.name === "console_session");
	return cookie ? `${cookie.name}=${cookie.value}` : "";
}

beforeAll(async () => {
	expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`).toBe(true);
	mkdirSync(SCREENSHOTS, { recursive: true });
	browser = await puppeteer.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
	});
	page = await browser.newPage();
	await page.setViewport({ width: 1200, height: 900 });
	// Counted in the page itself: every violation of the page's policy fires this event.
	await page.evaluateOnNewDocument(() => {
		const violations: string[] = [];
		(window as unknown as { cspViolations: string[] }).cspViolations = violations;
		document.addEventListener("securitypolicyviolation", (event) => violations.push(`${event.violatedDirective} ${event.blockedURI}`));
	});
	problems = watch(page);
	console.info(`console screenshots: ${SCREENSHOTS}`);
});

afterAll(async () => {
	await browser?.close();
});

describe("the console in headless Chromium", () => {
	const appName = unique("console-app");
	const learnerId = unique("console-learner");
	const tag = unique("cohort");
	const adminEmail = `${unique("dpo")}@example.com`;
	let appId = "";
	let secret = "";
	let jobId = "";
	let signedOutCookie = "";

	it("sends a visitor without a session to the sign-in page", async () => {
		await page.goto(`${origin()}/console/applications`);
		expect(new URL(page.url()).pathname).toBe("/console/sign-in");
		await check("sign-in", "Sign in to the console");
	});

	it("signs in with the management credentials, into a Secure, HttpOnly, SameSite=Strict session", async () => {
		await page.type("#appId", inject("managementAppId"));
		await page.type("#secretKey", inject("managementSecretKey"));
		await submit("/console/sign-in");
		expect(new URL(page.url()).pathname).toBe("/console/overview");
		const cookie = (await page.browserContext().cookies()).find((candidate) => candidate.name === "console_session");
		expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: "Strict", path: "/console" });
		await check("overview-empty", "Overview");
	});

	it("creates an application", async () => {
		await page.goto(`${origin()}/console/applications`);
		await page.type("#new-app-name", appName);
		await page.select("#new-app-region", "default");
		await submit("/console/applications");
		const notice = await page.$eval("[role=status]", (element) => element.textContent ?? "");
		const created = new RegExp(`Application ${appName} created: id (\\w+), shard (\\w+)`).exec(notice);
		expect(created, notice).not.toBeNull();
		appId = created?.[1] ?? "";
		expect(await page.$eval("table", (table) => table.textContent)).toContain(appId);
		await check("applications", "Applications");
	});

	it("creates a credential whose secret is shown once, with a copy button", async () => {
		await Promise.all([page.waitForNavigation(), page.click(`a[href="/console/applications/${appId}"]`)]);
		await check("application-before-credential", `Application ${appName}`);
		await page.type("#new-credential-name", "integration");
		await submit(`/console/applications/${appId}/credentials`);
		secret = await page.$eval("#new-secret", (output) => output.textContent?.trim() ?? "");
		expect(secret).toMatch(/^[\w-]{43}$/);
		expect(await page.$eval('button[data-copy="new-secret"]', (button) => (button as HTMLButtonElement).hidden)).toBe(false);
		await check("application-credential-created", `Application ${appName}`);
		// The API takes it: the secret works.
		expect((await api("GET", "/ping", basicAuthorization(appId, secret))).status).toBe(200);
		// Shown once: the page opened again does not show it.
		await page.goto(`${origin()}/console/applications/${appId}`);
		expect(await page.$("#new-secret")).toBeNull();
		expect(await page.content()).not.toContain(secret);
	});

	it("finds a learner tagged through the API by its tag, and shows its tags and registrations", async () => {
		const auth = basicAuthorization(appId, secret);
		const registrationId = unique("registration");
		const registered = await api("POST", "/registrations", auth, { courseId: "course-1", registrationId, learner: { id: learnerId, firstName: "Ada" } });
		expect(registered.status).toBe(204);
		expect((await api("PUT", `/learner/${encodeURIComponent(learnerId)}/tags`, auth, { tags: [tag] })).status).toBe(204);

		await page.goto(`${origin()}/console/applications/${appId}/learners`);
		await page.type("#find-tags", tag);
		await Promise.all([page.waitForNavigation(), page.click(`form[action="/console/applications/${appId}/learners"] button`)]);
		const rows = await page.$$eval("tbody tr", (trs) => trs.map((tr) => tr.textContent ?? ""));
		expect(rows).toHaveLength(1);
		expect(rows[0]).toContain(learnerId);
		expect(rows[0]).toContain(tag);
		await check("learners-by-tag", `Learners of ${appName}`);

		await Promise.all([page.waitForNavigation(), page.click("tbody tr a")]);
		expect(await page.$$eval(".tags li code", (codes) => codes.map((code) => code.textContent))).toEqual([tag]);
		expect(await page.$eval("tbody", (tbody) => tbody.textContent)).toContain(registrationId);
		await check("learner", `Learner ${learnerId}`);
	});

	it("lists a realm admin created through the API", async () => {
		expect((await api("PUT", `/appManagement/users/${encodeURIComponent(adminEmail)}`, management(), { role: "admin" })).status).toBe(204);
		await page.goto(`${origin()}/console/users`);
		expect(await page.$eval("tbody", (tbody) => tbody.textContent)).toContain(adminEmail);
		await check("users", "Realm users and roles");
	});

	it("shows a learner id's trailing space, and erases that learner from its page, not the learner without it", async () => {
		const auth = basicAuthorization(appId, secret);
		const padded = `${learnerId} `;
		const registered = await api("POST", "/registrations", auth, { courseId: "course-1", registrationId: unique("registration"), learner: { id: padded } });
		expect(registered.status).toBe(204);
		await page.goto(`${origin()}/console/applications/${appId}/learners`);
		await Promise.all([page.waitForNavigation(), page.click(`a[href$="/learners/${encodeURIComponent(padded)}"]`)]);
		// The space takes room and is shaded, and the note says it in words.
		const blank = await page.$eval("h1 code .blank", (span) => ({
			text: span.textContent,
			width: span.getBoundingClientRect().width,
			background: getComputedStyle(span).backgroundColor,
		}));
		expect(blank.text).toBe(" ");
		expect(blank.width).toBeGreaterThan(4);
		expect(blank.background).not.toBe("rgba(0, 0, 0, 0)");
		await check("learner-padded", `Learner ${padded} (ends with 1 space)`);

		await page.type("#erase-email", adminEmail);
		await submit("/console/erasures/learner");
		// The confirmation page names the learner verbatim, trailing space marked, and the registration it erases.
		expect(await page.$eval("h1", (h1) => h1.textContent)).toBe(`Erase learner ${padded} (ends with 1 space)?`);
		expect(await page.$eval("dl.confirm-facts", (dl) => dl.textContent ?? "")).toContain("1 will be erased");
		await submit("/console/confirm");
		await page.waitForFunction(() => (document.querySelector("[data-field=status]") as HTMLElement).textContent === "completed", { timeout: 45_000 });
		expect((await api("GET", `/learner/${encodeURIComponent(padded)}/tags`, auth)).status).toBe(404);
		expect((await api("GET", `/learner/${encodeURIComponent(learnerId)}/tags`, auth)).status).toBe(200);
	});

	it("erases the learner, following the job's progress bar to 100 %", async () => {
		await page.goto(`${origin()}/console/erasures`);
		await check("erasures", "Erasures");
		await page.select("#single-app", appId);
		await page.type("#single-learner", learnerId);
		await page.type("#single-email", adminEmail);
		await submit("/console/erasures/learner");
		await check("erasure-confirm", `Erase learner ${learnerId}?`);
		await submit("/console/confirm");
		jobId = decodeURIComponent(new URL(page.url()).pathname.split("/").pop() ?? "");
		expect(jobId).toMatch(new RegExp(`^${appId}\\.`));
		expect(await page.$eval("h1", (h1) => h1.textContent)).toBe("Erasure of one learner");
		// The script polls the job: the bar reaches 100 % and the receipt link appears, without a reload.
		await page.waitForFunction(
			() => (document.querySelector("progress") as HTMLProgressElement).value === 100 && !(document.querySelector("[data-receipt]") as HTMLElement).hidden,
			{ timeout: 45_000 },
		);
		expect(await page.$eval("[data-field=status]", (element) => element.textContent)).toBe("completed");
		await check("erasure-job", "Erasure of one learner");
	});

	it("downloads the erasure's receipt, whose Ed25519 signature the published key verifies", async () => {
		const href = await page.$eval("[data-receipt] a", (link) => (link as HTMLAnchorElement).href);
		const download = await page.evaluate(async (url) => {
			const response = await fetch(url);
			return { status: response.status, disposition: response.headers.get("Content-Disposition"), text: await response.text() };
		}, href);
		expect(download.status).toBe(200);
		expect(download.disposition).toMatch(/^attachment; filename="erasure-receipt-/);
		const { receipt, signature, keyId } = JSON.parse(download.text) as { receipt: Record<string, unknown>; signature: string; keyId: string };
		expect(receipt).toMatchObject({ kind: "erasure-receipt", jobId, applicationId: appId, requestedBy: adminEmail, registrationsDeleted: 1 });
		const jwk = (await (await fetch(`${basePath()}/.well-known/erasure-receipt-key`)).json()) as JsonWebKey & { kid: string };
		const key = createPublicKey({ key: jwk, format: "jwk" });
		expect(keyId).toBe(jwk.kid);
		expect(verify(null, Buffer.from(canonical(receipt)), key, Buffer.from(signature, "base64url"))).toBe(true);
		const altered = { ...receipt, registrationsDeleted: 2 };
		expect(verify(null, Buffer.from(canonical(altered)), key, Buffer.from(signature, "base64url"))).toBe(false);
	});

	it("lists the job among the application's jobs, from the API's job list", async () => {
		await page.goto(`${origin()}/console/jobs?appId=${appId}`);
		const rows = await page.$$eval("tbody tr", (trs) => trs.map((tr) => tr.textContent ?? ""));
		expect(rows[0]).toContain(jobId);
		expect(rows[0]).toContain("completed");
		expect(rows[0]).toContain("Erasure of one learner");
		await check("jobs", "Jobs");
	});

	it("shows the audit trail with its signed head, and an application's retention policy", async () => {
		await page.goto(`${origin()}/console/audit`);
		const actions = await page.$$eval("tbody tr td:nth-child(4)", (cells) => cells.map((cell) => cell.textContent ?? ""));
		expect(actions).toContain("console.signIn");
		expect(actions).toContain("application.create");
		expect(await page.$eval("section[aria-label='Signed head']", (section) => section.textContent ?? "")).toMatch(/Entry \d+, hash [0-9a-f]{64}/);
		await check("audit", "Audit trail");
		await page.goto(`${origin()}/console/applications/${appId}/retention`);
		await check("retention", `Retention policy of ${appId}`);
	});

	it("fits a 375 px wide screen without scrolling sideways", async () => {
		await page.setViewport({ width: 375, height: 800 });
		for (const [route, name, heading] of [
			["/console/applications", "applications-375", "Applications"],
			["/console/erasures", "erasures-375", "Erasures"],
			[`/console/applications/${appId}`, "application-375", `Application ${appName}`],
		]) {
			await page.goto(`${origin()}${route}`);
			expect(await page.evaluate(() => document.documentElement.scrollWidth), route).toBeLessThanOrEqual(375);
			await check(name ?? "", heading ?? "");
		}
		await page.setViewport({ width: 1200, height: 900 });
	});

	it("refuses a cross-origin POST or one without the token, even with the session's cookie, and changes nothing", async () => {
		const cookie = await sessionCookie();
		const html = await (await fetch(`${origin()}/console/applications`, { headers: { Cookie: cookie } })).text();
		const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(html)?.[1] ?? "";
		expect(csrf).not.toBe("");
		const name = unique("csrf-attempt");
		const attempts: [Record<string, string>, Record<string, string>][] = [
			[{ Origin: "http://evil.example", "Sec-Fetch-Site": "cross-site" }, { name, csrf }],
			[{ Origin: origin(), "Sec-Fetch-Site": "same-origin" }, { name }],
			[{ Origin: origin(), "Sec-Fetch-Site": "same-origin" }, { name, csrf: "f".repeat(64) }],
		];
		for (const [headers, fields] of attempts) {
			const response = await fetch(`${origin()}/console/applications`, {
				method: "POST",
				headers: { ...headers, Cookie: cookie, "Content-Type": "application/x-www-form-urlencoded" },
				body: new URLSearchParams(fields),
				redirect: "manual",
			});
			expect(response.status, JSON.stringify(headers)).toBe(403);
		}
		const listed = (await (await api("GET", "/appManagement/applications", management())).json()) as { applications: { name: string }[] };
		expect(listed.applications.map((app) => app.name)).not.toContain(name);
	});

	it("refuses a request without the cookie: pages go to sign-in, forms answer 401", async () => {
		const pageResponse = await fetch(`${origin()}/console/jobs`, { redirect: "manual" });
		expect(pageResponse.status).toBe(303);
		expect(pageResponse.headers.get("Location")).toBe("/console/sign-in");
		const formResponse = await fetch(`${origin()}/console/users`, {
			method: "POST",
			headers: { Origin: origin(), "Content-Type": "application/x-www-form-urlencoded" },
			body: new URLSearchParams({ email: "x@example.com", role: "admin", csrf: "0" }),
			redirect: "manual",
		});
		expect(formResponse.status).toBe(401);
	});

	it("signs out: the old cookie no longer opens a page", async () => {
		signedOutCookie = await sessionCookie();
		await submit("/console/sign-out");
		expect(new URL(page.url()).pathname).toBe("/console/sign-in");
		expect(await page.$eval("[role=status]", (element) => element.textContent ?? "")).toContain("You are signed out.");
		await check("signed-out", "Sign in to the console");
		expect(await sessionCookie()).toBe("");
		const replayed = await fetch(`${origin()}/console/applications`, { headers: { Cookie: signedOutCookie }, redirect: "manual" });
		expect(replayed.status).toBe(303);
		expect(replayed.headers.get("Location")).toBe("/console/sign-in");
		// And in the browser, with the old cookie put back.
		const [name, value] = signedOutCookie.split("=");
		await page.browserContext().setCookie({ name: name ?? "", value: value ?? "", domain: new URL(origin()).hostname, path: "/console", secure: true, httpOnly: true, sameSite: "Strict" });
		await page.goto(`${origin()}/console/applications`);
		expect(new URL(page.url()).pathname).toBe("/console/sign-in");
	});
});
