import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { API_BASE, allRouters, fullApp } from "../../src/app";
import { openApiDocument } from "../../src/openapi/document";
import { docsRoutes } from "../../src/routes/docs";
import { LIMITS } from "../../src/limits";
import { SCOPES } from "../../src/auth/scopes";
import { call } from "../support/client";
import { expectMessage } from "../support/expect";

type Json = Record<string, unknown>;
const METHODS = ["get", "put", "post", "delete", "head", "patch", "options"];

async function getDocument(): Promise<Json & { paths: Record<string, Record<string, Json>>; components: Json }> {
	const response = await call("GET", "/openapi.json");
	expect(response.status).toBe(200);
	return response.json();
}

const operations = (paths: Record<string, Record<string, Json>>) =>
	Object.entries(paths).flatMap(([path, item]) =>
		METHODS.filter((method) => item[method]).map((method) => ({ path, method, operation: item[method] as Json })),
	);

const schemaOf = (document: Json, name: string) =>
	((document.components as Json).schemas as Record<string, Json>)[name] as Json & { properties: Record<string, Json> };

describe("GET /openapi.json", () => {
	it("answers the OpenAPI 3.1 document without credentials", async () => {
		const document = await getDocument();
		expect(document.openapi).toBe("3.1.0");
		expect(document.info).toMatchObject({ title: expect.any(String), version: "1.0.0" });
		expect(document.servers).toEqual([{ url: "/api/v2", description: "This server" }]);
	});

	it("is the document the routes declare now (generated at build time: npm run openapi)", async () => {
		const declared = openApiDocument([...(await allRouters()), docsRoutes(API_BASE)], API_BASE, env.SERVICE_VERSION);
		expect(await getDocument(), "src/openapi/openapi.json.txt is out of date: run npm run openapi").toEqual(declared);
	});

	it("names this deployment's SERVICE_VERSION, whatever the document was generated with", async () => {
		const response = await fullApp().then((app) =>
			app.fetch(new Request("http://localhost/api/v2/openapi.json"), { ...env, SERVICE_VERSION: "9.9.9-test" }),
		);
		expect(response.status).toBe(200);
		expect(((await response.json()) as { info: { version: string } }).info.version).toBe("9.9.9-test");
	});

	it("lists every route of the app, at the paths the official client calls", async () => {
		const { paths } = await getDocument();
		const documented = new Set(operations(paths).map(({ path, method }) => `${method.toUpperCase()} ${path}`));
		const routed = (await fullApp()).routes
			.filter((route) => route.method !== "ALL")
			.map((route) => `${route.method} ${route.path.replace(/^\/api\/v2/, "").replace(/:(\w+)/g, "{$1}")}`);
		expect(routed.length).toBeGreaterThan(0);
		expect(routed.filter((route) => !documented.has(route))).toEqual([]);
		expect(Object.keys(paths).filter((path) => path.startsWith("/api/v2"))).toEqual([]);
		expect(paths["/ping"]?.get?.operationId).toBe("pingAppId");
	});

	it("declares the statuses the app-wide middleware adds to every operation", async () => {
		const { paths } = await getDocument();
		for (const { path, method, operation } of operations(paths)) {
			const statuses = Object.keys(operation.responses as Json);
			expect(statuses, `${method} ${path}`).toEqual(expect.arrayContaining(["400", "500"]));
			if (operation.requestBody) expect(statuses, `${method} ${path}`).toEqual(expect.arrayContaining(["413", "415"]));
		}
	});

	it("registers the three security schemes, with every scope", async () => {
		const { components } = await getDocument();
		const schemes = components.securitySchemes as Record<string, Json>;
		expect(schemes.APP_NORMAL).toMatchObject({ type: "http", scheme: "basic" });
		expect(schemes.APP_MANAGEMENT).toMatchObject({ type: "http", scheme: "basic" });
		expect(schemes.OAUTH).toMatchObject({
			type: "oauth2",
			flows: { clientCredentials: { tokenUrl: "/api/v2/oauth/authenticate/application/token" } },
		});
		const { scopes } = (schemes.OAUTH as { flows: { clientCredentials: { scopes: Json } } }).flows.clientCredentials;
		expect(Object.keys(scopes).sort()).toEqual([...SCOPES].sort());
	});

	it("declares for each application operation Basic, or OAuth with the one scope SPEC §2 gives it", async () => {
		const { paths } = await getDocument();
		const declared = Object.fromEntries(
			operations(paths)
				.filter(({ operation }) => JSON.stringify(operation.security ?? []).includes("APP_NORMAL"))
				.map(({ operation }) => [operation.operationId, operation.security]),
		);
		const either = (scope: string) => [{ APP_NORMAL: [] }, { OAUTH: [scope] }];
		expect(declared).toEqual({
			getLearnerTags: either("read:learner"),
			putLearnerTags: either("write:learner"),
			deleteLearnerTags: either("write:learner"),
			putLearnerTagsBatch: either("write:learner"),
			updateLearnerInfo: either("write:learner"),
			deleteAllLearnerData: either("admin"),
			deleteLearnersData: either("admin"),
			deleteLearnerSuppression: either("admin"),
			getLearners: either("read:learner"),
			// Job status: read:learner, or the realm's management credentials (which follow application deletions).
			getJob: [...either("read:learner"), { APP_MANAGEMENT: [] }],
			// An erasure's signed receipt: as its job status.
			getJobReceipt: [...either("read:learner"), { APP_MANAGEMENT: [] }],
			// A subject-access export (SPEC §12) and its document: admin, as an erasure; the document also with management.
			exportLearnerData: either("admin"),
			getJobExport: [...either("admin"), { APP_MANAGEMENT: [] }],
			// The application's job list (the realm's is the management API's).
			getJobs: either("read:learner"),
			createRegistration: either("write:registration"),
			getRegistrations: either("read:registration"),
			getRegistrationProgress: either("read:registration"),
			getRegistration: either("read:registration"),
			deleteRegistration: either("delete:registration"),
			getRegistrationTags: either("read:registration"),
			putRegistrationTags: either("write:registration"),
			deleteRegistrationTags: either("write:registration"),
			putRegistrationTagsBatch: either("write:registration"),
			pingAppId: either("read:ping"),
			getAbout: either("read:about"),
			// Tokens are minted with Basic application credentials only.
			getAppToken: [{ APP_NORMAL: [] }],
			createToken: [{ APP_NORMAL: [] }],
		});
	});

	it("publishes the limits as schema constraints", async () => {
		const document = await getDocument();
		const tags = schemaOf(document, "TagListSchema").properties.tags as Json & { items: Json };
		expect(tags.maxItems).toBe(LIMITS.tagsPerRequest);
		expect(tags.items).toMatchObject({ minLength: 1, maxLength: LIMITS.tagLength, pattern: expect.any(String) });
		// The pattern says what the validator says: no comma, no control character.
		const tagPattern = new RegExp(tags.items.pattern as string);
		expect(["a tag", "étiquette"].every((tag) => tagPattern.test(tag))).toBe(true);
		expect(["a,b", "a\u0000b", "a\u009fb"].some((tag) => tagPattern.test(tag))).toBe(false);
		const ids = schemaOf(document, "BatchTagsSchema").properties.ids as Json & { items: Json };
		expect(ids).toMatchObject({ minItems: 1, maxItems: LIMITS.idsPerBatch });
		expect(ids.items).toMatchObject({ minLength: 1, maxLength: LIMITS.idLength, pattern: expect.any(String) });
		const learner = schemaOf(document, "LearnerSchema").properties;
		expect(JSON.stringify(learner.email)).toContain(`"maxLength":${LIMITS.emailLength}`);
		expect(JSON.stringify(learner.firstName)).toContain(`"maxLength":${LIMITS.nameLength}`);
		expect(document.info).toMatchObject({ description: expect.stringContaining(`| tags on one learner | ${LIMITS.tagsPerLearner} |`) });
	});
});

describe("GET /docs", () => {
	it("answers the page under a Content-Security-Policy that allows no inline or third-party script", async () => {
		const response = await call("GET", "/docs");
		expect(response.status).toBe(200);
		expect(response.headers.get("Content-Type")).toBe("text/html; charset=UTF-8");
		const policy = response.headers.get("Content-Security-Policy") ?? "";
		expect(policy).toContain("default-src 'self'");
		expect(policy).toContain("script-src 'self';");
		const html = await response.text();
		expect(html).toContain('<script src="/api/v2/docs/assets/init.js"></script>');
		expect(html).not.toMatch(/<script>|https?:\/\//);
	});

	it("answers 405 with a JSON message for another method", async () => {
		const response = await call("POST", "/docs", { body: {} });
		expect(await expectMessage(response, 405)).toBe("Method POST is not allowed here; use GET, HEAD");
	});
});

describe("GET /docs/assets/:file", () => {
	it("serves the init script and Swagger UI, bundled with the Worker", async () => {
		const init = await call("GET", "/docs/assets/init.js");
		expect(init.status).toBe(200);
		expect(init.headers.get("Content-Type")).toMatch(/^text\/javascript/);
		expect(await init.text()).toContain("SwaggerUIBundle({");
		const bundle = await call("GET", "/docs/assets/swagger-ui-bundle.js");
		expect(bundle.status).toBe(200);
		expect((await bundle.text()).length).toBeGreaterThan(100_000);
		const css = await call("GET", "/docs/assets/swagger-ui.css");
		expect(css.headers.get("Content-Type")).toMatch(/^text\/css/);
		expect(await css.text()).toContain(".swagger-ui");
		const icon = await call("GET", "/docs/assets/favicon-32x32.png");
		expect(icon.headers.get("Content-Type")).toBe("image/png");
		// A PNG's signature: the bytes arrive as they are in swagger-ui-dist, not as text.
		expect([...new Uint8Array(await icon.arrayBuffer()).subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
	});

	it("serves the same bytes on every request", async () => {
		// The favicon is an ArrayBuffer module: a response must copy it, never take it over.
		const bodies: string[] = [];
		for (let i = 0; i < 3; i++) {
			const icon = await call("GET", "/docs/assets/favicon-32x32.png");
			expect(icon.status).toBe(200);
			bodies.push(Array.from(new Uint8Array(await icon.arrayBuffer())).join(","));
		}
		expect(bodies[0]?.length).toBeGreaterThan(100);
		expect(new Set(bodies).size).toBe(1);
	});

	it("asks caches to revalidate, and gives each file its own ETag", async () => {
		const responses = await Promise.all(
			["init.js", "swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"].map((file) => call("GET", `/docs/assets/${file}`)),
		);
		for (const response of responses) await response.body?.cancel();
		expect(responses.map((response) => response.headers.get("Cache-Control"))).toEqual(Array(4).fill("no-cache"));
		const etags = responses.map((response) => response.headers.get("ETag") ?? "");
		expect(etags.every((etag) => /^"[0-9a-f]{32}"$/.test(etag))).toBe(true);
		expect(new Set(etags).size).toBe(4);
	});

	it("answers 304 to a matching If-None-Match", async () => {
		const first = await call("GET", "/docs/assets/init.js");
		await first.body?.cancel();
		const etag = first.headers.get("ETag") ?? "";
		expect(etag).not.toBe("");
		const second = await call("GET", "/docs/assets/init.js", { headers: { "If-None-Match": etag } });
		expect(second.status).toBe(304);
		expect(second.headers.get("ETag")).toBe(etag);
		expect(await second.text()).toBe("");
		// Weak and listed validators match too; another file's does not.
		const weak = await call("GET", "/docs/assets/init.js", { headers: { "If-None-Match": `"other", W/${etag}` } });
		expect(weak.status).toBe(304);
		const other = await call("GET", "/docs/assets/swagger-ui.css", { headers: { "If-None-Match": etag } });
		expect(other.status).toBe(200);
		await other.body?.cancel();
	});

	it("answers 404 for any other file, even one swagger-ui-dist ships", async () => {
		expect(await expectMessage(await call("GET", "/docs/assets/LICENSE"), 404)).toBe(
			"The docs page has no file [LICENSE]; it loads init.js, swagger-ui-bundle.js, swagger-ui.css, favicon-32x32.png",
		);
	});
});
