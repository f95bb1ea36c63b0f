// The docs page as a person sees it: Debian's headless Chromium loads GET /api/v2/docs from the wrangler dev
// server (global-setup.ts), under the page's real Content-Security-Policy and with Swagger UI's files bundled in
// the Worker, and the rendered DOM must list every operation of the OpenAPI document.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { basePath } from "./helpers";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

interface Rendered {
	dom: string;
	/** What the page logged to its console, CSP violations included. */
	console: string[];
}

/**
 * Loads the page in a fresh profile and returns the DOM once the page has settled: virtual time runs ahead while
 * nothing is pending and waits for network fetches, so the dump comes after Swagger UI fetched and drew the
 * document. Quiet flags: nothing but the page's own requests leaves the browser.
 */
async function render(url: string): Promise<Rendered> {
	const profile = mkdtempSync(path.join(tmpdir(), "learner-service-chromium-"));
	try {
		const { stdout, stderr } = await promisify(execFile)(
			CHROMIUM,
			[
				"--headless",
				"--no-sandbox",
				"--disable-gpu",
				"--disable-quic",
				"--no-first-run",
				"--disable-background-networking",
				"--disable-component-update",
				"--disable-sync",
				`--user-data-dir=${profile}`,
				"--enable-logging=stderr",
				"--v=0",
				"--virtual-time-budget=20000",
				"--dump-dom",
				url,
			],
			{ timeout: 90_000, maxBuffer: 64 * 1024 * 1024 },
		);
		return { dom: stdout, console: stderr.split("\n").filter((line) => line.includes(":CONSOLE")) };
	} finally {
		rmSync(profile, { recursive: true, force: true });
	}
}

/** "GET /learner/{learnerId}/tags" for each operation block Swagger UI drew. */
function renderedOperations(dom: string): string[] {
	const blocks = dom.matchAll(/opblock-summary-method">(\w+)<\/span>.*?data-path="([^"]+)"/gs);
	return [...blocks].map(([, method, route]) => `${method} ${route?.replaceAll("&amp;", "&")}`);
}

let documented: string[];
let title: string;

beforeAll(async () => {
	expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`).toBe(true);
	const response = await fetch(`${basePath()}/openapi.json`);
	expect(response.status).toBe(200);
	const document = (await response.json()) as {
		info: { title: string };
		paths: Record<string, Record<string, unknown>>;
		webhooks?: Record<string, Record<string, unknown>>;
	};
	title = document.info.title;
	// Operations, and the webhooks the service calls (drawn by name).
	documented = [...Object.entries(document.paths), ...Object.entries(document.webhooks ?? {})].flatMap(([route, item]) =>
		METHODS.filter((method) => item[method]).map((method) => `${method.toUpperCase()} ${route}`),
	);
});

describe("GET /api/v2/docs in headless Chromium", () => {
	it("draws every operation of the document, loading nothing the page's policy refuses", async () => {
		const { dom, console } = await render(`${basePath()}/docs`);
		expect(console).toEqual([]);
		expect(dom).toContain(title);
		expect(renderedOperations(dom).sort()).toEqual([...documented].sort());
	});

	it("opens the operation a deep link names, with its request body", async () => {
		const { dom, console } = await render(`${basePath()}/docs#/LearnerService/putLearnerTags`);
		expect(console).toEqual([]);
		expect(dom).toContain('<div class="opblock opblock-put is-open" id="operations-LearnerService-putLearnerTags">');
		expect(dom).toContain("opblock-section-request-body");
	});
});
