import { OpenAPIRegistry, OpenApiGeneratorV31 } from "@asteasolutions/zod-to-openapi";
import * as z from "zod";
import type { AppRouter } from "../context";
import "../schemas/openapi-meta";
import { BOOKMARK_FORMAT } from "../request-context";
import { registerSecuritySchemes } from "./security";
import { DESCRIPTION, TAG_DESCRIPTIONS } from "./description";

// The document is plain JSON once generated: post-processing walks it as data.
type JsonObject = Record<string, unknown>;

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

/** The shape GET /openapi.json promises: an OpenAPI object, open to everything the specification allows. */
export const OpenApiDocumentSchema = z
	.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.record(z.string(), z.looseObject({})) })
	.openapi("OpenApiDocument");
export type OpenApiDocument = z.infer<typeof OpenApiDocumentSchema>;

/** Component entries added to every generated document: the shared request header and response headers. */
const COMPONENTS = {
	parameters: {
		D1Bookmark: {
			name: "X-D1-Bookmark",
			in: "header",
			required: false,
			description: "A bookmark from an earlier response: this request reads at least the writes it covers",
			schema: { type: "string", pattern: BOOKMARK_FORMAT.source.replace(/\[0-9a-f\]/g, "[0-9a-fA-F]") },
		},
	},
	headers: {
		"X-Request-Id": { description: "This request's id, also in the service's logs", schema: { type: "string" } },
		"X-D1-Bookmark": {
			description:
				"The D1 session bookmark after this request, naming its database (`SHARD_1:…`, `DB:…`); send it back to read " +
				"your own writes (sent to a request served by another database, it is ignored)",
			schema: { type: "string" },
		},
		"WWW-Authenticate": {
			description: 'Basic realm="learner-service", Bearer realm="learner-service"',
			schema: { type: "string" },
		},
		"Retry-After": { description: "Seconds to wait before retrying", schema: { type: "integer" } },
	},
} as const;

const headerRef = (name: keyof typeof COMPONENTS.headers) => ({ $ref: `#/components/headers/${name}` });

/** Headers a response carries beyond the route's own: every response's, plus the status's challenge or wait. */
function responseHeaders(status: string): JsonObject {
	const headers: JsonObject = { "X-Request-Id": headerRef("X-Request-Id"), "X-D1-Bookmark": headerRef("X-D1-Bookmark") };
	if (status === "401") headers["WWW-Authenticate"] = headerRef("WWW-Authenticate");
	if (status === "429" || status === "503") headers["Retry-After"] = headerRef("Retry-After");
	return headers;
}

/**
 * Adds what the app-wide middleware (src/app.ts) gives every operation: the X-D1-Bookmark request header, and
 * on every response X-Request-Id and X-D1-Bookmark (with WWW-Authenticate on a 401 and Retry-After on a 429 or
 * 503). The error responses themselves come from each route's declaration (src/http/route.ts).
 */
function addSharedBehaviour(operation: JsonObject) {
	const responses = operation.responses as Record<string, JsonObject>;
	for (const [status, response] of Object.entries(responses)) {
		response.headers = { ...responseHeaders(status), ...(response.headers as JsonObject | undefined) };
	}
	operation.responses = Object.fromEntries(Object.entries(responses).sort(([a], [b]) => a.localeCompare(b)));
	operation.parameters = [...((operation.parameters as unknown[]) ?? []), { $ref: "#/components/parameters/D1Bookmark" }];
}

const cache = new WeakMap<readonly AppRouter[], { version: string; document: OpenApiDocument }>();

/**
 * The OpenAPI 3.1 document of every route of `routers` served under `base`, generated from the same zod schemas
 * that validate requests (their declarations, src/http/router.ts), with the security schemes. Paths are relative
 * to the server url `base`, as SCORM Cloud's clients call them. Built on first request for it: no other request
 * loads the generator (SPEC §6).
 */
export function openApiDocument(routers: readonly AppRouter[], base: string, version: string): OpenApiDocument {
	const cached = cache.get(routers);
	if (cached?.version === version) return cached.document;
	const registry = new OpenAPIRegistry();
	registerSecuritySchemes(registry);
	for (const definition of routers.flatMap((router) => router.definitions)) {
		if (definition.type === "route") registry.registerPath({ ...definition.route, path: `${base}${definition.route.path}` });
		else if (definition.type === "webhook") registry.registerWebhook({ ...definition.webhook, path: `${base}/${definition.webhook.path}` });
		else registry.registerComponent(definition.componentType, definition.name, definition.component as never);
	}
	const generated = new OpenApiGeneratorV31(registry.definitions).generateDocument({
		openapi: "3.1.0",
		info: {
			title: "Learner Service (SCORM Cloud API v2)",
			version,
			description: DESCRIPTION,
		},
		servers: [{ url: base, description: "This server" }],
	});
	const paths: Record<string, JsonObject> = {};
	for (const [path, item] of Object.entries(generated.paths ?? {})) {
		const relative = path.startsWith(`${base}/`) ? path.slice(base.length) : path;
		paths[relative] = item as JsonObject;
		for (const method of HTTP_METHODS) {
			const operation = (item as JsonObject)[method] as JsonObject | undefined;
			if (operation) addSharedBehaviour(operation);
		}
	}
	const operationTags = new Set(
		Object.values(paths).flatMap((item) =>
			HTTP_METHODS.flatMap((method) => ((item[method] as JsonObject | undefined)?.tags as string[] | undefined) ?? []),
		),
	);
	// Webhooks are named, not pathed: the base the router mounting put before their names is dropped.
	const webhooks = Object.fromEntries(
		Object.entries(generated.webhooks ?? {}).map(([name, item]) => [name.startsWith(`${base}/`) ? name.slice(base.length + 1) : name, item]),
	);
	const document: OpenApiDocument = {
		...generated,
		info: { ...generated.info },
		paths,
		...(Object.keys(webhooks).length > 0 && { webhooks }),
		tags: [...operationTags].sort().map((name) => ({ name, description: TAG_DESCRIPTIONS[name] ?? name })),
		components: {
			schemas: generated.components?.schemas,
			parameters: { ...generated.components?.parameters, ...COMPONENTS.parameters },
			securitySchemes: generated.components?.securitySchemes,
			headers: { ...generated.components?.headers, ...COMPONENTS.headers },
		},
	};
	cache.set(routers, { version, document });
	return document;
}

