import { exports } from "cloudflare:workers";
import { BASE } from "./client";

/**
 * Who may call an operation, as its OpenAPI `security` says: what the service claims, which the authorization
 * matrix checks against the contract's own table (tests decide scopes from that table, not from this).
 */
export type Access =
	/** No credentials at all (the document and its page). */
	| "public"
	/** The realm's management credentials only. */
	| "management"
	/** Basic application credentials, or a bearer token with `scope`. */
	| "app"
	/** Basic application credentials only (the token endpoints). */
	| "basic"
	/** As "app", and the realm's management credentials too (job status). */
	| "app+management";

/** One operation of the service, read from its own OpenAPI document. */
export interface Operation {
	operationId: string;
	method: string;
	/** Relative to BASE, with `{param}` placeholders. */
	template: string;
	access: Access;
	/** The OAuth scope a bearer token needs (app operations only). */
	scope?: string;
	pathParams: string[];
	queryParams: string[];
	/** The media type of its request body, if it takes one. */
	bodyType?: string;
	/** Its request body's JSON Schema, with refs left as they are. */
	bodySchema?: unknown;
}

type Json = Record<string, unknown>;

const HTTP_METHODS = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];

function accessOf(security: Json[] | undefined): { access: Access; scope?: string } {
	const schemes = new Map((security ?? []).flatMap((requirement) => Object.entries(requirement)));
	if (schemes.size === 0) return { access: "public" };
	const scope = (schemes.get("OAUTH") as string[] | undefined)?.[0];
	if (schemes.has("APP_MANAGEMENT") && schemes.has("APP_NORMAL")) return { access: "app+management", scope };
	if (schemes.has("APP_MANAGEMENT")) return { access: "management" };
	return scope ? { access: "app", scope } : { access: "basic" };
}

let documentPromise: Promise<{ document: Json; operations: Operation[] }> | undefined;

/** GET /openapi.json, fetched once per test file. */
export function loadDocument(): Promise<{ document: Json; operations: Operation[] }> {
	documentPromise ??= (async () => {
		const response = await exports.default.fetch(new Request(`${BASE}/openapi.json`));
		if (response.status !== 200) throw new Error(`GET /openapi.json answered ${response.status}`);
		const document = (await response.json()) as Json;
		const operations: Operation[] = [];
		for (const [template, item] of Object.entries(document.paths as Record<string, Json>)) {
			for (const method of HTTP_METHODS) {
				const operation = item[method] as Json | undefined;
				if (!operation) continue;
				const parameters = ((operation.parameters as Json[] | undefined) ?? []).filter((parameter) => !parameter.$ref);
				const content = (operation.requestBody as { content?: Record<string, { schema?: unknown }> } | undefined)?.content;
				const bodyType = content ? Object.keys(content)[0] : undefined;
				operations.push({
					operationId: operation.operationId as string,
					method: method.toUpperCase(),
					template,
					...accessOf(operation.security as Json[] | undefined),
					pathParams: parameters.filter((parameter) => parameter.in === "path").map((parameter) => parameter.name as string),
					queryParams: parameters.filter((parameter) => parameter.in === "query").map((parameter) => parameter.name as string),
					...(bodyType && { bodyType, bodySchema: content?.[bodyType]?.schema }),
				});
			}
		}
		return { document, operations };
	})();
	return documentPromise;
}

/** The operations of the service, in document order. */
export const loadOperations = async () => (await loadDocument()).operations;

/** The template with each `{param}` replaced by its percent-encoded value (or, raw, as given). */
export function fillPath(template: string, params: Record<string, string>, options: { raw?: boolean } = {}): string {
	return template.replace(/\{([^}]+)\}/g, (_, name: string) => {
		const value = params[name];
		if (value === undefined) throw new Error(`no value for path parameter ${name} of ${template}`);
		return options.raw ? value : encodeURIComponent(value);
	});
}
