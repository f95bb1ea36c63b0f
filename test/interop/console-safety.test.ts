/// <reference lib="dom" />
// The console's safety (SPEC §10, "Safe by construction") as an operator meets it in Debian's headless Chromium,
// against the wrangler dev server (global-setup.ts): confirmation pages, reloads that repeat nothing, refused forms
// that keep their input, the jobs view's filters and paging, the overview's charts; and every view at 1280 and
// 375 px wide, saved as screenshots (SCREENSHOTS, git-ignored) and checked for sideways scrolling.
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { basePath, basicAuthorization, unique } from "./helpers";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SCREENSHOTS = path.resolve(import.meta.dirname, "../../.wrangler/console-screenshots");
const WIDTHS = [1280, 375] as const;

const origin = () => new URL(basePath()).origin;
const management = () => basicAuthorization(inject("managementAppId"), inject("managementSecretKey"));

async function api(method: string, route: string, auth: string, body?: unknown): Promise<Response> {
	return fetch(`${basePath()}${route}`, {
		method,
		headers: { Authorization: auth, ...(body !== undefined && { "Content-Type": "application/json" }) },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
}

let browser: Browser;
let page: Page;
const problems: string[] = [];

/** Submits the form posting to `action` (its first submit button) and waits for the page it leads to. */
async function submit(action: string): Promise<void> {
	const button = await page.$(`form[action="${action}"] button[type="submit"]`);
	if (!button) throw new Error(`no form posts to ${action}`);
	await Promise.all([page.waitForNavigation(), button.click()]);
}

const heading = () => page.$eval("h1", (h1) => h1.textContent?.trim() ?? "");

/**
 * The page as it stands at each width: no horizontal scrolling, no console error, no policy violation; a screenshot
 * named `<name>-<width>.png`. Leaves the viewport at 1280.
 */
async function shoot(name: string): Promise<void> {
	for (const width of WIDTHS) {
		await page.setViewport({ width, height: 900 });
		await new Promise((resolve) => setTimeout(resolve, 150));
		const { scrollWidth, innerWidth } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
		expect(scrollWidth, `${name} at ${width} px scrolls sideways`).toBeLessThanOrEqual(innerWidth);
		await page.screenshot({ path: path.join(SCREENSHOTS, `${name}-${width}.png`), fullPage: true });
		// A long page's first screen too, where a person looks first.
		if ((await page.evaluate(() => document.documentElement.scrollHeight)) > 2400) {
			await page.screenshot({ path: path.join(SCREENSHOTS, `${name}-${width}-top.png`) });
		}
	}
	await page.setViewport({ width: 1280, height: 900 });
	const violations = await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations);
	expect(violations).toEqual([]);
	expect(problems.splice(0)).toEqual([]);
}

beforeAll(async () => {
	expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (npm test's pretest does when it can)`).toBe(true);
	mkdirSync(SCREENSHOTS, { recursive: true });
	browser = await puppeteer.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
	});
	page = await browser.newPage();
	await page.setViewport({ width: 1280, height: 900 });
	await page.evaluateOnNewDocument(() => {
		const violations: string[] = [];
		(window as unknown as { cspViolations: string[] }).cspViolations = violations;
		document.addEventListener("securitypolicyviolation", (event) => violations.push(`${event.violatedDirective} ${event.blockedURI}`));
	});
	page.on("console", (message) => {
		if (message.type() === "error" || message.type() === "warn") problems.push(`console.${message.type()}: ${message.text()}`);
	});
	page.on("pageerror", (error) => problems.push(`pageerror: ${error instanceof Error ? error.message : String(error)}`));
	await page.goto(`${origin()}/console/sign-in`);
	await page.type("#appId", inject("managementAppId"));
	await page.type("#secretKey", inject("managementSecretKey"));
	await submit("/console/sign-in");
});

afterAll(async () => {
	await browser?.close();
});

describe("the console, safe by construction, in headless Chromium", () => {
	const appName = unique("safety-app");
	const learnerId = unique("safety-learner");
	const adminEmail = `${unique("safety-dpo")}@example.com`;
	let appId = "";
	let auth = "";

	it("opens on the overview: five charts, each an SVG with its title and a table of its figures", async () => {
		const created = await api("POST", "/appManagement/applications", management(), { name: appName });
		appId = ((await created.json()) as { id: string }).id;
		const credential = (await (await api("POST", `/appManagement/${appId}/credentials`, management(), { name: "setup" })).json()) as { credential: string };
		auth = basicAuthorization(appId, credential.credential);
		for (let i = 0; i < 3; i++) {
			const registered = await api("POST", "/registrations", auth, { courseId: "c1", registrationId: unique("reg"), learner: { id: learnerId, email: "ada@example.com" }, learnerTags: ["t"] });
			expect(registered.status).toBe(204);
		}
		expect((await api("PUT", `/appManagement/users/${encodeURIComponent(adminEmail)}`, management(), { role: "admin" })).status).toBe(204);

		await page.goto(`${origin()}/console/overview`);
		expect(await heading()).toBe("Overview");
		const charts = await page.$$eval("figure.chart", (figures) =>
			figures.map((figure) => ({
				title: figure.querySelector("svg title")?.textContent ?? "",
				role: figure.querySelector("svg")?.getAttribute("role"),
				rows: figure.querySelectorAll("table tbody tr").length,
				width: figure.querySelector("svg")?.getBoundingClientRect().width ?? 0,
			})),
		);
		expect(charts.map((chart) => chart.title)).toEqual([
			"Stored rows against each application's quota",
			"Write budget used this minute",
			"Jobs finished over the last 24 hours",
			"Webhook deliveries of the last 24 hours",
			"Shard fill against the capacity plan",
		]);
		expect(charts.every((chart) => chart.role === "img" && chart.rows > 0 && chart.width > 200)).toBe(true);
		await shoot("overview");
	});

	it("shows a new credential's secret once: reloading the page shows it no more and creates nothing", async () => {
		const count = async () => ((await (await api("GET", `/appManagement/${appId}/credentials`, management())).json()) as { credentials: unknown[] }).credentials.length;
		await page.goto(`${origin()}/console/applications/${appId}`);
		await page.type("#new-credential-name", "reload-check");
		await submit(`/console/applications/${appId}/credentials`);
		const secret = await page.$eval("#new-secret", (output) => output.textContent?.trim() ?? "");
		expect(secret).toMatch(/^[\w-]{43}$/);
		const before = await count();
		expect(before).toBe(2);
		await shoot("application-secret");
		await page.reload();
		expect(await page.$("#new-secret")).toBeNull();
		expect(await page.content()).not.toContain(secret);
		expect(await page.$eval("[role=status]", (element) => element.textContent ?? "")).toContain("already shown");
		expect(await count()).toBe(before);
		console.info(`reload check: credentials before reload ${before}, after ${await count()}`);
	});

	it("keeps a refused form's input and says why beside the field", async () => {
		await page.goto(`${origin()}/console/applications/${appId}`);
		await page.type("#webhook-url", "http://hooks.example.com/x");
		await submit(`/console/applications/${appId}/webhook`);
		expect(await page.$eval("#webhook-url", (input) => (input as HTMLInputElement).value)).toBe("http://hooks.example.com/x");
		expect(await page.$eval("#webhook-url-error", (p) => p.textContent ?? "")).toContain("must start with https:");
		expect(await page.$eval("#webhook-url", (input) => input.getAttribute("aria-describedby"))).toBe("webhook-url-error");
		await shoot("webhook-refused");
	});

	it("shows a test event's outcome, its long event id wrapped within a 375 px screen", async () => {
		await page.goto(`${origin()}/console/applications/${appId}`);
		// A public https host that will not answer here (no network in the test): the outcome says so.
		await page.type("#webhook-url", "https://hooks.example.invalid-tld.com/learner-service");
		await submit(`/console/applications/${appId}/webhook`);
		await submit(`/console/applications/${appId}/webhook/test`);
		expect(await page.$eval("[role=alert], [role=status]", (element) => element.textContent ?? "")).toMatch(/^Test event evt_[0-9a-f]{32} /);
		await shoot("webhook-test-event");
	}, 30_000);

	it("erases a learner everywhere only after a page naming each application and its registrations; a reload repeats nothing", async () => {
		await page.goto(`${origin()}/console/erasures`);
		await shoot("erasures");
		await page.type("#realm-learner", learnerId);
		await page.type("#realm-email", adminEmail);
		await submit("/console/erasures/realm");
		expect(await heading()).toBe(`Erase learner ${learnerId} in every application?`);
		const facts = await page.$eval("dl.confirm-facts", (dl) => dl.textContent ?? "");
		expect(facts).toContain(appName);
		expect(facts).toContain("3 registrations");
		await shoot("confirm-realm-erasure");
		const realmJobs = async () =>
			((await (await api("GET", "/appManagement/jobs?type=deleteRealmLearnerData", management())).json()) as { jobs: unknown[] }).jobs.length;
		const before = await realmJobs();
		await submit("/console/confirm");
		expect(await heading()).toBe("Realm-wide erasure");
		expect(await realmJobs()).toBe(before + 1);
		await page.reload();
		expect(await heading()).toBe("Realm-wide erasure");
		// Back to the confirmation page (the browser may show it from its history) and its button pressed again: the
		// confirmation was carried out once, and nothing is erased twice.
		await page.goBack();
		if (await page.$('form[action="/console/confirm"] button[type="submit"]')) await submit("/console/confirm");
		expect(await page.content()).toContain("This confirmation has expired or was carried out already");
		expect(await realmJobs()).toBe(before + 1);
		console.info(`reload check: realm erasure jobs before ${before}, after confirming ${before + 1}, after a reload and going back ${await realmJobs()}`);
	});

	it("filters the jobs view by application and type, and pages it 100 at a time", async () => {
		const learner = unique("busy-learner");
		expect((await api("POST", "/registrations", auth, { courseId: "c1", registrationId: unique("reg"), learner: { id: learner } })).status).toBe(204);
		for (let i = 0; i < 103; i++) {
			const update = await api("POST", `/learner/${encodeURIComponent(learner)}/updateInfo`, auth, { id: learner, firstName: `n${i}` });
			expect(update.status).toBe(204);
		}
		await page.goto(`${origin()}/console/jobs`);
		await page.select("#jobs-app", appId);
		await page.select("#jobs-type", "updateLearnerInfo");
		await Promise.all([page.waitForNavigation(), page.click('form[action="/console/jobs"] button[type="submit"]')]);
		const rows = () => page.$$eval("tbody tr", (trs) => trs.map((tr) => tr.textContent ?? ""));
		const first = await rows();
		expect(first).toHaveLength(100);
		expect(first.every((row) => row.includes("Update of a learner's details"))).toBe(true);
		await shoot("jobs");
		await Promise.all([page.waitForNavigation(), page.click('a[rel="next"]')]);
		expect(await rows()).toHaveLength(3);
		await Promise.all([page.waitForNavigation(), page.click("tbody tr a")]);
		expect(await heading()).toBe("Update of a learner's details");
		await shoot("job-update");
	}, 60_000);

	it("moves an application only after confirming its shards, and puts the region refusal beside its checkbox", async () => {
		await page.goto(`${origin()}/console/applications/${appId}/move`);
		await page.select("#move-shard", "SHARD_EU_1");
		await submit(`/console/applications/${appId}/move`);
		expect(await heading()).toBe(`Move ${appName}?`);
		expect(await page.$eval("dl.confirm-facts", (dl) => dl.textContent ?? "")).toContain("shard SHARD_EU_1, region eu");
		await shoot("confirm-move");
		await submit("/console/confirm");
		// Refused by the API: back to the form, the shard chosen kept, the reason beside the checkbox.
		expect(new URL(page.url()).pathname).toBe(`/console/applications/${appId}/move`);
		expect(await page.$eval("#move-shard", (select) => (select as HTMLSelectElement).value)).toBe("SHARD_EU_1");
		expect(await page.$eval("#move-region-error", (p) => p.textContent ?? "")).toContain("tick this box to let its data change region");
		await shoot("move-refused");
	});

	it("shows the other views without sideways scrolling at 1280 and 375 px", async () => {
		for (const [route, name, title] of [
			["/console/applications", "applications", "Applications"],
			[`/console/applications/${appId}`, "application", `Application ${appName}`],
			["/console/users", "users", "Realm users and roles"],
			[`/console/applications/${appId}/learners`, "learners", `Learners of ${appName}`],
			[`/console/applications/${appId}/delete`, "confirm-delete", `Delete application ${appName}?`],
		] as const) {
			await page.goto(`${origin()}${route}`);
			expect(await heading()).toBe(title);
			await shoot(name);
		}
	});
});
