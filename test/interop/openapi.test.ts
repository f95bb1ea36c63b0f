// The OpenAPI document against the official SCORM Cloud client: an operation the two share (same operationId)
// must have the method and path the client calls, so a client generated from either document calls the same
// URLs under a base path ending in /api/v2.
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { basePath } from "./helpers";

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

/** operationId -> "METHOD /path", read from the client's generated sources (one callApi per operation). */
function clientOperations(): Map<string, string> {
	const entry = createRequire(import.meta.url).resolve("@rusticisoftware/scormcloud-api-v2-client-javascript");
	const apiDirectory = path.join(path.dirname(entry), "rustici-software-cloud-v2-api");
	const operations = new Map<string, string>();
	for (const file of readdirSync(apiDirectory)) {
		const source = readFileSync(path.join(apiDirectory, file), "utf8");
		for (const [, name, route, method] of source.matchAll(
			/this\.(\w+) = function\s*\([^)]*\)\s*\{[\s\S]*?callApi\(\s*'([^']+)',\s*'(\w+)'/g,
		)) {
			if (name && route && method) operations.set(name, `${method} ${route}`);
		}
	}
	return operations;
}

let documented: Map<string, string>;
let servers: unknown;

beforeAll(async () => {
	const response = await fetch(`${basePath()}/openapi.json`);
	expect(response.status).toBe(200);
	const document = (await response.json()) as { servers: unknown; paths: Record<string, Record<string, { operationId: string }>> };
	servers = document.servers;
	documented = new Map(
		Object.entries(document.paths).flatMap(([route, item]) =>
			METHODS.filter((method) => item[method]).map((method) => [
				item[method]?.operationId ?? "",
				`${method.toUpperCase()} ${route}`,
			]),
		),
	);
});

describe("GET /api/v2/openapi.json and the official client", () => {
	it("names the server by the base path the client is given", () => {
		expect(servers).toEqual([{ url: "/api/v2", description: "This server" }]);
		expect(new URL(basePath()).pathname).toBe("/api/v2");
	});

	it("documents every Learner Service operation at the client's method and path", () => {
		const client = clientOperations();
		const learnerService = [
			"getLearnerTags",
			"putLearnerTags",
			"deleteLearnerTags",
			"putLearnerTagsBatch",
			"updateLearnerInfo",
			"deleteAllLearnerData",
		];
		for (const operationId of learnerService) {
			expect(documented.get(operationId), operationId).toBe(client.get(operationId));
		}
	});

	it("gives every operation it shares with the client the client's method and path", () => {
		const client = clientOperations();
		const shared = [...documented].filter(([operationId]) => client.has(operationId));
		expect(shared.length).toBeGreaterThanOrEqual(20);
		expect(shared.filter(([operationId, call]) => client.get(operationId) !== call)).toEqual([]);
	});
});
