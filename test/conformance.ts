// Response conformance: every response a test gets through `call()` or `fetchWithBindings()`
// (test/support/client.ts) is checked against the service's own OpenAPI document (GET /api/v2/openapi.json): the
// status is declared for that operation, the body matches the declared schema, and objects are closed (a field the
// document does not declare is a violation).
//
// workerd forbids eval/new Function, so validators that compile schemas to code (Ajv) cannot run here;
// @cfworker/json-schema interprets them. Counts go to the reporter (test/conformance-reporter.ts) as task meta,
// the one channel from a workerd isolate back to Node; test/conformance-setup.ts fails the test on a violation.
import { Validator, type Schema } from "@cfworker/json-schema";
import { exports } from "cloudflare:workers";

export interface ConformanceCounts {
	checked: number;
	violations: number;
}

declare module "vitest" {
	interface TaskMeta {
		/** Responses this test (or, on a file, its hooks) checked against the OpenAPI document. */
		conformance?: ConformanceCounts;
	}
}

// The document as JSON data.
type Json = Record<string, unknown>;

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
// Answered by app-wide middleware before any route is chosen (src/app.ts), so possible on any path.
const PRE_ROUTING_STATUSES = new Set([400, 413, 415, 500]);
const MESSAGE_REF = "#/components/schemas/MessageSchema";

interface PathEntry {
	template: string;
	pattern: RegExp;
	params: number;
	item: Json;
}

interface Document {
	base: string;
	paths: PathEntry[];
	schemas: Json;
	validators: Map<string, Validator>;
}

let documentPromise: Promise<Document> | undefined;

/** Fetched from the Worker itself (not through call(), which would check this response against itself). */
function loadDocument(baseUrl: string): Promise<Document> {
	documentPromise ??= (async () => {
		const base = new URL(baseUrl).pathname;
		const response = await exports.default.fetch(new Request(`${baseUrl}/openapi.json`));
		if (response.status !== 200) throw new Error(`GET /openapi.json answered ${response.status}`);
		const document = (await response.json()) as Json;
		const components = (document.components ?? {}) as Json;
		const paths = Object.entries(document.paths as Record<string, Json>).map(([template, item]) => {
			const source = template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+");
			return { template, pattern: new RegExp(`^${source}$`), params: (template.match(/\{/g) ?? []).length, item };
		});
		// OpenAPI: a concrete path wins over a templated one (/registrations/tags over /registrations/{id}).
		paths.sort((a, b) => a.params - b.params);
		return { base, paths, schemas: closeObjects(components.schemas ?? {}) as Json, validators: new Map() };
	})();
	return documentPromise;
}

/**
 * Treats objects as closed: an object schema that does not say what other properties it allows gets
 * `additionalProperties: false` (or, when it combines subschemas with allOf, `unevaluatedProperties: false`,
 * which sees the properties its parts declare). Refs move from #/components/schemas to #/$defs, so one
 * validator root holds them.
 */
function closeObjects(schema: unknown): unknown {
	if (Array.isArray(schema)) return schema.map(closeObjects);
	if (schema === null || typeof schema !== "object") return schema;
	const result: Json = {};
	for (const [key, value] of Object.entries(schema)) {
		if (key === "$ref" && typeof value === "string") {
			result.$ref = value.replace("#/components/schemas/", "#/$defs/");
		} else if (key === "enum" || key === "const" || key === "example" || key === "examples" || key === "default") {
			result[key] = value;
		} else {
			result[key] = closeObjects(value);
		}
	}
	const open = "additionalProperties" in result || "unevaluatedProperties" in result || "patternProperties" in result;
	if (!open && (result.type === "object" || "properties" in result)) {
		if ("allOf" in result) result.unevaluatedProperties = false;
		else result.additionalProperties = false;
	}
	return result;
}

function validatorFor(document: Document, key: string, schema: unknown): Validator {
	let validator = document.validators.get(key);
	if (!validator) {
		const root = { ...(closeObjects(schema) as Json), $defs: document.schemas };
		validator = new Validator(root as Schema, "2020-12", false);
		document.validators.set(key, validator);
	}
	return validator;
}

function messageValidator(document: Document): Validator {
	return validatorFor(document, "MessageSchema", { $ref: MESSAGE_REF });
}

const counts: ConformanceCounts & { messages: string[] } = { checked: 0, violations: 0, messages: [] };

/** Counts and violation messages since the last call, which resets them. */
export function takeConformance(): ConformanceCounts & { messages: string[] } {
	const taken = { ...counts, messages: [...counts.messages] };
	counts.checked = 0;
	counts.violations = 0;
	counts.messages = [];
	return taken;
}

function describeErrors(result: ReturnType<Validator["validate"]>): string {
	return result.errors
		.filter((error) => error.keyword !== "properties" && error.keyword !== "$ref" && error.keyword !== "allOf")
		.slice(0, 5)
		.map((error) => `${error.instanceLocation}: ${error.error}`)
		.join("; ");
}

/** Validates a JSON body; returns a problem description, or null when it conforms. */
async function checkJsonBody(response: Response, validator: Validator): Promise<string | null> {
	const text = await response.text();
	let body: unknown;
	try {
		body = JSON.parse(text);
	} catch {
		return `body is not JSON: ${text.slice(0, 80)}`;
	}
	const result = validator.validate(body);
	return result.valid ? null : `body does not match the schema: ${describeErrors(result)}`;
}

/** A status the app answers outside any operation (unknown path 404, wrong method 405, pre-routing errors). */
async function checkUnrouted(document: Document, method: string, response: Response, allowed: Set<number>): Promise<string | null> {
	if (!allowed.has(response.status)) return `status ${response.status} is not one this request can get (${[...allowed].join(", ")})`;
	// A response to HEAD never has a body, whatever its status.
	if (method === "HEAD") {
		const text = await response.text();
		return text === "" ? null : `HEAD answered a body: ${text.slice(0, 80)}`;
	}
	return checkJsonBody(response, messageValidator(document));
}

function allowedMethods(matching: PathEntry[]): Set<string> {
	const methods = new Set<string>();
	for (const entry of matching) {
		for (const method of HTTP_METHODS) if (entry.item[method]) methods.add(method.toUpperCase());
	}
	// Hono answers HEAD with the GET route, minus the body.
	if (methods.has("GET")) methods.add("HEAD");
	return methods;
}

async function check(document: Document, method: string, url: URL, response: Response): Promise<string | null> {
	const path = url.pathname.startsWith(`${document.base}/`) ? url.pathname.slice(document.base.length) : null;
	const matching = path === null ? [] : document.paths.filter((entry) => entry.pattern.test(path));
	if (matching.length === 0) return checkUnrouted(document, method, response, new Set([...PRE_ROUTING_STATUSES, 404]));

	const lower = method.toLowerCase();
	const entry = matching.find((candidate) => candidate.item[lower] || (lower === "head" && candidate.item.get));
	if (!entry) {
		const problem = await checkUnrouted(document, method, response, new Set([...PRE_ROUTING_STATUSES, 405]));
		if (problem || response.status !== 405) return problem;
		const allow = new Set((response.headers.get("Allow") ?? "").split(/,\s*/).filter(Boolean));
		const expected = allowedMethods(matching);
		const same = allow.size === expected.size && [...allow].every((name) => expected.has(name));
		return same ? null : `405 Allow "${[...allow].join(", ")}" is not the documented methods ${[...expected].join(", ")}`;
	}

	const operation = (entry.item[lower] ?? entry.item.get) as Json;
	const where = `${method} ${entry.template}`;
	const responses = operation.responses as Record<string, Json>;
	const status = String(response.status);
	const declared = responses[status] ?? responses[`${status[0]}XX`] ?? responses.default;
	if (!declared) return `${where}: status ${status} is not declared (declared: ${Object.keys(responses).join(", ")})`;

	const content = declared.content as Record<string, Json> | undefined;
	if (lower === "head" || response.status === 304 || !content) {
		const text = await response.text();
		return text === "" ? null : `${where}: status ${status} declares no body but got ${text.slice(0, 80)}`;
	}
	const mediaType = (response.headers.get("Content-Type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
	const media = content[mediaType];
	if (!media) return `${where}: ${status} answered ${mediaType || "no Content-Type"}, declared ${Object.keys(content).join(", ")}`;
	if (!/^application\/([\w.-]+\+)?json$/.test(mediaType)) {
		await response.body?.cancel();
		return null;
	}
	const problem = await checkJsonBody(response, validatorFor(document, `${where} ${status} ${mediaType}`, media.schema));
	return problem && `${where}: ${status} ${problem}`;
}

/** Checks one response against the OpenAPI document, recording the outcome for this test. */
export async function checkConformance(baseUrl: string, request: Request, response: Response): Promise<void> {
	const document = await loadDocument(baseUrl);
	const url = new URL(request.url);
	const problem = await check(document, request.method, url, response.clone());
	counts.checked += 1;
	if (problem) {
		counts.violations += 1;
		counts.messages.push(`${request.method} ${url.pathname} -> ${response.status}: ${problem}`);
	}
}
