import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { createRouter, type AppEnv } from "../context";
import { LIMITS } from "../limits";
import { type Scope } from "../auth/scopes";
import { notFound } from "../errors";
import { BOOKMARK_FORMAT } from "../request-context";
import { ERROR_DESCRIPTIONS, errors } from "./openapi";
import swaggerUiFavicon from "swagger-ui-dist/favicon-32x32.png";
import swaggerUiBundle from "swagger-ui-dist/swagger-ui-bundle.js";
import swaggerUiCss from "swagger-ui-dist/swagger-ui.css";

// The document is plain JSON once generated: post-processing walks it as data.
type JsonObject = Record<string, unknown>;

/** The shape GET /openapi.json promises: an OpenAPI object, open to everything the specification allows. */
const OpenApiDocumentSchema = z
	.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.record(z.string(), z.looseObject({})) })
	.openapi("OpenApiDocument");
export type OpenApiDocument = z.infer<typeof OpenApiDocumentSchema>;

const SCOPE_DESCRIPTIONS: Record<Scope, string> = {
	"read:learner": "Read learner tags and job status",
	"write:learner": "Add and remove learner tags, batch-tag learners, update learner information",
	admin: "Everything, including GDPR erasure of a learner's data (delete-information)",
	"read:registration": "Read registrations and their tags",
	"write:registration": "Create registrations and change their tags",
	"delete:registration": "Delete registrations",
	"read:ping": "Call /ping",
	"read:about": "Call /about",
};

const TOKEN_PATH = "/oauth/authenticate/application/token";
const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;
const MESSAGE_REF = { $ref: "#/components/schemas/MessageSchema" };

const DESCRIPTION = `A self-hostable implementation of the SCORM Cloud API v2 Learner Service, with the registrations, \
application management, OAuth tokens and ping/about it needs. Clients written for SCORM Cloud (such as the official \
generated clients) work by changing only their base path to this server's \`/api/v2\`.

Every error body is \`MessageSchema\` \`{ "message": string }\`.

## Limits

Each violation answers 400 with a message naming the limit.

| what | limit |
|---|---|
| ids (learner, registration, course) | 1-${LIMITS.idLength} characters, no control characters, valid Unicode |
| a tag | 1-${LIMITS.tagLength} characters, no control characters, no comma, valid Unicode |
| tags in one request | ${LIMITS.tagsPerRequest} |
| ids in one batch | ${LIMITS.idsPerBatch} |
| tags on one learner | ${LIMITS.tagsPerLearner} |
| tags on one registration | ${LIMITS.tagsPerRegistration} |
| registrations in one page of GET /registrations | ${LIMITS.registrationsPerPage} |
| email | ${LIMITS.emailLength} characters, a valid address when non-empty |
| first and last names | ${LIMITS.nameLength} characters |
| request body | ${LIMITS.bodyBytes} bytes (1 MiB): 413 beyond |
| token expiration | ${LIMITS.tokenExpirationMax} seconds (default ${LIMITS.tokenExpirationDefault}) |

## Statuses every operation shares

- 400 also answers a malformed \`X-D1-Bookmark\` request header, and a JSON body whose bytes are not UTF-8.
- 405 (with \`Allow\`) answers a method that no operation of a known path takes.
- 413 and 415 answer, on operations that take a body, a body over 1 MiB or of the wrong media type.
- 429 (with \`Retry-After\`) answers, on every operation that takes credentials, a client address or an application \
whose authentication failed too often this minute; on application writes, also an application past its write budget.
- 403 answers, on application writes that add rows, an application past its storage quota.
- 503 (with \`Retry-After\`) answers when the database is overloaded or did not answer after retries.
- 500 answers genuine faults and a misconfigured service (a secret missing or short), with the request id to quote.

## Tenant limits

| what | limit |
|---|---|
| rows one application stores (registrations + learner tags + registration tags) | \`APP_ROW_QUOTA\`, default 5 000 000: 403 beyond |
| rows one application's writes may touch per minute (a batch costs ids x tags, a tag write its tags, a registration 1 + its tags, other writes 1) | \`APP_WRITE_BUDGET\`, default 300 000: 429 until the minute ends |
| requests per application | 1200 per minute: 429 |
| failed authentications | 30 per minute per client address, 120 per minute per application named: 429 for the rest of the minute |

## Read your own writes

Every response carries \`X-Request-Id\` and, once the request touched the database, \`X-D1-Bookmark\`: send that \
bookmark back (request header of the same name) to read at least your own writes from any replica.`;

/** Component entries added to every generated document: security schemes, shared header and parameter. */
const COMPONENTS = {
	securitySchemes: {
		APP_NORMAL: {
			type: "http",
			scheme: "basic",
			description: "An application's credential: Basic base64(appId:secretKey)",
		},
		APP_MANAGEMENT: {
			type: "http",
			scheme: "basic",
			description: "The realm's management credentials (secrets MANAGEMENT_APP_ID / MANAGEMENT_SECRET_KEY)",
		},
		OAUTH: {
			type: "oauth2",
			description: `Bearer tokens from POST ${TOKEN_PATH} (Basic APP_NORMAL); \`admin\` grants every scope`,
			flows: {
				clientCredentials: {
					// An absolute-path reference resolves to the same URL whichever base a reader resolves it against.
					tokenUrl: `/api/v2${TOKEN_PATH}`,
					scopes: SCOPE_DESCRIPTIONS,
				},
			},
		},
	},
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
			description: "The D1 session bookmark after this request; send it back to read your own writes",
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

const messageResponse = (status: keyof typeof ERROR_DESCRIPTIONS) => ({
	description: ERROR_DESCRIPTIONS[status],
	content: { "application/json": { schema: MESSAGE_REF } },
});

/**
 * Adds what the app-wide middleware (src/app.ts) makes every operation able to answer, so the routes declare
 * only their own statuses: 400 for a malformed X-D1-Bookmark, 413/415 for a body, 500 for a fault; and on
 * every operation that authenticates (so reads D1), 429 for throttled failed authentication and 503 when the
 * database is overloaded or unreachable.
 */
function addSharedBehaviour(operation: JsonObject) {
	const responses = operation.responses as Record<string, JsonObject>;
	const shared: (keyof typeof ERROR_DESCRIPTIONS)[] = [400, 500];
	if (operation.requestBody) shared.push(413, 415);
	if (((operation.security as unknown[] | undefined) ?? []).length > 0) shared.push(429, 503);
	for (const status of shared) responses[status] ??= messageResponse(status);
	for (const [status, response] of Object.entries(responses)) {
		response.headers = { ...responseHeaders(status), ...(response.headers as JsonObject | undefined) };
	}
	operation.responses = Object.fromEntries(Object.entries(responses).sort(([a], [b]) => a.localeCompare(b)));
	operation.parameters = [...((operation.parameters as unknown[]) ?? []), { $ref: "#/components/parameters/D1Bookmark" }];
}

/** Descriptions for the tags routes use (a tag not listed here is described by its name). */
const TAG_DESCRIPTIONS: Record<string, string> = {
	LearnerService: "Learner tags, information updates and GDPR erasure",
	RegistrationService: "Registrations: the records that make a learner exist",
	Jobs: "Status of the asynchronous jobs behind updateInfo, delete-information and application deletion",
	ApplicationManagement: "Applications, their credentials and the realm's users (APP_MANAGEMENT)",
	Authentication: "OAuth bearer tokens",
	Ping: "Liveness and credential check",
	About: "Version information",
	Documentation: "This document and the page that renders it",
};

const cache = new WeakMap<OpenAPIHono<AppEnv>, { version: string; document: OpenApiDocument }>();

/**
 * The OpenAPI 3.1 document of every route mounted on `root` under `base`, generated from the same zod schemas
 * that validate requests. Paths are relative to the server url `base`, as SCORM Cloud's clients call them.
 */
export function openApiDocument(root: OpenAPIHono<AppEnv>, base: string, version: string): OpenApiDocument {
	const cached = cache.get(root);
	if (cached?.version === version) return cached.document;
	const generated = root.getOpenAPI31Document({
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
	const document: OpenApiDocument = {
		...generated,
		info: { ...generated.info },
		paths,
		tags: [...operationTags].sort().map((name) => ({ name, description: TAG_DESCRIPTIONS[name] ?? name })),
		components: {
			...generated.components,
			securitySchemes: { ...generated.components?.securitySchemes, ...COMPONENTS.securitySchemes },
			parameters: { ...generated.components?.parameters, ...COMPONENTS.parameters },
			headers: { ...generated.components?.headers, ...COMPONENTS.headers },
		},
	};
	cache.set(root, { version, document });
	return document;
}

// Starts Swagger UI. A file of its own because the page's Content-Security-Policy allows no inline script; the
// page names the document's URL in data-url, so the script holds no path. The default validator is a third-party
// service (validatorUrl: null): this page talks to its own origin only.
const INIT_SCRIPT = `const root = document.getElementById("swagger-ui");
SwaggerUIBundle({ url: root.dataset.url, domNode: root, deepLinking: true, validatorUrl: null });
`;

const JAVASCRIPT = "text/javascript; charset=utf-8";

/**
 * The page's files, bundled with the Worker (wrangler.toml [[rules]]: Swagger UI's files as Text and Data
 * modules, straight from node_modules/swagger-ui-dist). Only these names are served.
 */
const DOCS_FILES: Record<string, { body: string | ArrayBuffer; type: string }> = {
	"init.js": { body: INIT_SCRIPT, type: JAVASCRIPT },
	"swagger-ui-bundle.js": { body: swaggerUiBundle, type: JAVASCRIPT },
	"swagger-ui.css": { body: swaggerUiCss, type: "text/css; charset=utf-8" },
	"favicon-32x32.png": { body: swaggerUiFavicon, type: "image/png" },
};

// Each file's ETag, hashed on its first request in this isolate: the files change only with a deploy.
const etags = new Map<string, Promise<string>>();

async function hashEtag(body: string | ArrayBuffer): Promise<string> {
	const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
	return `"${Array.from(digest.subarray(0, 16), (byte) => byte.toString(16).padStart(2, "0")).join("")}"`;
}

function etagOf(name: string, body: string | ArrayBuffer): Promise<string> {
	let etag = etags.get(name);
	if (!etag) {
		etag = hashEtag(body);
		etags.set(name, etag);
	}
	return etag;
}

/** Whether an If-None-Match header names this ETag (weak comparison, RFC 9110 §13.1.2) or is "*". */
function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
	if (!ifNoneMatch) return false;
	return ifNoneMatch.split(",").some((candidate) => {
		const tag = candidate.trim();
		return tag === "*" || tag.replace(/^W\//, "") === etag;
	});
}

const docsPage = (base: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Learner Service API</title>
<link rel="stylesheet" href="${base}/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="${base}/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-url="${base}/openapi.json"></div>
<script src="${base}/docs/assets/swagger-ui-bundle.js"></script>
<script src="${base}/docs/assets/init.js"></script>
</body>
</html>
`;

/**
 * The docs page's policy: everything from this origin, no inline or eval'd script or style (the init script is
 * its own file). Swagger UI's CSS draws its icons as data: SVG images, the one allowance.
 */
export const DOCS_CSP = [
	"default-src 'self'",
	"script-src 'self'",
	"style-src 'self'",
	"img-src 'self' data:",
	"connect-src 'self'",
	"object-src 'none'",
	"base-uri 'none'",
	"form-action 'none'",
	"frame-ancestors 'none'",
].join("; ");

const openApiRoute = createRoute({
	method: "get",
	path: "/openapi.json",
	tags: ["Documentation"],
	operationId: "getOpenApiDocument",
	summary: "This OpenAPI 3.1 document",
	security: [],
	responses: {
		200: {
			description: "The OpenAPI document",
			content: { "application/json": { schema: OpenApiDocumentSchema } },
		},
	},
});

const docsRoute = createRoute({
	method: "get",
	path: "/docs",
	tags: ["Documentation"],
	operationId: "getDocsPage",
	summary: "A page that renders this document (Swagger UI, served from this Worker)",
	security: [],
	responses: {
		200: {
			description: "The HTML page, under a strict Content-Security-Policy",
			headers: z.object({ "Content-Security-Policy": z.string() }),
			content: { "text/html": { schema: z.string() } },
		},
	},
});

const AssetParams = z.object({
	file: z
		.string()
		.openapi({ param: { name: "file", in: "path" }, enum: Object.keys(DOCS_FILES), example: "init.js" }),
});

const fileContent = (mediaType: string) => ({ [mediaType]: { schema: z.string().openapi({ format: "binary" }) } });

const FileHeaders = z.object({
	ETag: z.string().openapi({ description: "The file's SHA-256 (first 128 bits), for If-None-Match" }),
	"Cache-Control": z.string().openapi({ description: "no-cache: revalidate on each load; unchanged files answer 304" }),
});

const docsAssetRoute = createRoute({
	method: "get",
	path: "/docs/assets/{file}",
	tags: ["Documentation"],
	operationId: "getDocsAsset",
	summary: "A file the docs page loads (Swagger UI, its init script)",
	security: [],
	request: { params: AssetParams },
	responses: {
		200: {
			description: "The file",
			headers: FileHeaders,
			content: {
				...fileContent("text/javascript"),
				...fileContent("text/css"),
				...fileContent("image/png"),
			},
		},
		304: { description: "Not modified since the ETag sent in If-None-Match", headers: FileHeaders },
		...errors(404),
	},
});

/** GET {base}/openapi.json and GET {base}/docs, public; `root` is the app whose routes the document lists. */
export function docsRoutes(root: OpenAPIHono<AppEnv>, base: string) {
	return createRouter()
		.openapi(openApiRoute, (c) => c.json(openApiDocument(root, base, c.env.SERVICE_VERSION), 200))
		.openapi(docsRoute, (c) =>
			c.html(docsPage(base), 200, {
				"Content-Security-Policy": DOCS_CSP,
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy": "no-referrer",
			}),
		)
		.openapi(docsAssetRoute, async (c) => {
			const { file } = c.req.valid("param");
			// Own keys only: `constructor` and the like are on every object's prototype.
			const served = Object.hasOwn(DOCS_FILES, file) ? DOCS_FILES[file] : undefined;
			if (!served) throw notFound(`The docs page has no file [${file}]; it loads ${Object.keys(DOCS_FILES).join(", ")}`);
			const etag = await etagOf(file, served.body);
			// Revalidated on every load (a deploy may change a file under the same name); unchanged files answer 304.
			const headers = { ETag: etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff" };
			if (matchesEtag(c.req.header("If-None-Match"), etag)) return c.body(null, 304, headers);
			return c.body(served.body, 200, { ...headers, "Content-Type": served.type });
		});
}
