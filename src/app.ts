import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { methodNotAllowed } from "hono/method-not-allowed";
import { matchedRoutes } from "hono/route";
import { forgetApplication } from "./auth/credentials";
import { ConfigError, config } from "./config";
import { createRouter, type AppEnv } from "./context";
import { refusalOf, secondsLeftInMinute } from "./db/app-storage";
import { d1Trouble } from "./db/retry";
import { ApiError, badRequest, seconds, unauthorized } from "./errors";
import { log } from "./log";
import { checkBookmark, requestContext } from "./request-context";
import { appManagementRoutes } from "./routes/app-management";
import { docsRoutes } from "./routes/docs";
import { jobRoutes } from "./routes/jobs";
import { learnerRoutes } from "./routes/learners";
import { metaRoutes } from "./routes/meta";
import { oauthRoutes } from "./routes/oauth";
import { registrationRoutes } from "./routes/registrations";
import { LIMITS } from "./limits";

export const API_BASE = "/api/v2";

const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;
const FORM_MEDIA_TYPE = "application/x-www-form-urlencoded";
const TOKEN_PATH = `${API_BASE}/oauth/authenticate/application/token`;

/** Whether the request carries a body: by its length when stated, else by the presence of a body stream. */
function hasBody(request: Request): boolean {
	const length = request.headers.get("Content-Length");
	return length !== null ? Number(length) > 0 : request.body !== null;
}

// "METHOD /path" (Hono's pattern) of each operation whose OpenAPI definition declares a request body; read
// from the registry on first use, once every route is mounted.
let bodyOperations: Set<string> | undefined;

/**
 * Whether the request reached an operation that takes no body. A stray body there is ignored, never read, so
 * it gets neither 413 nor 415 (SPEC §1: 415 where JSON is required; the OpenAPI document declares both only on
 * operations that take a body). An unknown path or method keeps the checks.
 */
function takesNoBody(c: Context<AppEnv>): boolean {
	const routes = matchedRoutes(c).filter((route) => route.method !== "ALL");
	if (routes.length === 0) return false;
	bodyOperations ??= new Set(
		app.openAPIRegistry.definitions.flatMap((definition) =>
			definition.type === "route" && definition.route.request?.body
				? [`${definition.route.method.toUpperCase()} ${definition.route.path.replace(/\{([^}]+)\}/g, ":$1")}`]
				: [],
		),
	);
	return !routes.some((route) => bodyOperations?.has(`${route.method} ${route.path}`));
}

const limitBody = bodyLimit({
	maxSize: LIMITS.bodyBytes,
	onError: (c) => c.json({ message: `Request body exceeds the limit of ${LIMITS.bodyBytes} bytes (1 MiB)` }, 413),
});

/** 413 for a body over 1 MiB, where the operation takes one. */
const limitBodySize = createMiddleware<AppEnv>(async (c, next) => {
	if (!hasBody(c.req.raw) || takesNoBody(c)) return next();
	return limitBody(c, next);
});

/** 415 for a body that is not JSON (the token endpoint alone takes a form), where the operation takes one. */
const requireMediaType = createMiddleware<AppEnv>(async (c, next) => {
	if (hasBody(c.req.raw) && !takesNoBody(c)) {
		const mediaType = (c.req.header("Content-Type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
		if (c.req.path === TOKEN_PATH) {
			if (mediaType !== FORM_MEDIA_TYPE) {
				throw new ApiError(415, `This endpoint takes a ${FORM_MEDIA_TYPE} body (got "${mediaType || "none"}")`);
			}
		} else if (!JSON_MEDIA_TYPE.test(mediaType)) {
			throw new ApiError(415, `Request bodies must be application/json (got "${mediaType || "none"}")`);
		} else if (!isUtf8(await c.req.arrayBuffer())) {
			// JSON is UTF-8 (RFC 8259 §8.1); decoding bad bytes would store U+FFFD in their place. Hono keeps the
			// bytes read here for the validator's own parse.
			throw badRequest("The request body is not valid UTF-8");
		}
	}
	await next();
});

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Whether the bytes are well-formed UTF-8. */
function isUtf8(bytes: ArrayBuffer): boolean {
	try {
		strictUtf8.decode(bytes);
		return true;
	} catch {
		return false;
	}
}

/** Fails closed when a secret is missing or short (src/config.ts); otherwise hands the routes the checked config. */
const requireConfig = createMiddleware<AppEnv>(async (c, next) => {
	c.set("config", config(c.env));
	await next();
});

export const app = createRouter();

app.use("*", requestContext);
app.use("*", requireConfig);
app.use("*", checkBookmark);
app.use("*", limitBodySize);
app.use("*", requireMediaType);
app.use(
	"*",
	methodNotAllowed({
		app,
		onMethodNotAllowed: (c, methods) =>
			c.json({ message: `Method ${c.req.method} is not allowed here; use ${methods.join(", ")}` }, 405, {
				Allow: methods.join(", "),
			}),
	}),
);

app.route(API_BASE, metaRoutes);
app.route(API_BASE, oauthRoutes);
app.route(API_BASE, appManagementRoutes);
app.route(API_BASE, learnerRoutes);
app.route(API_BASE, registrationRoutes);
app.route(API_BASE, jobRoutes);
// Public: the OpenAPI document of every route above (generated from this app on first request) and its page.
app.route(API_BASE, docsRoutes(app, API_BASE));

// The path is not echoed: it may hold a learner id.
app.notFound((c) =>
	c.json(
		{
			message: c.req.path.startsWith(`${API_BASE}/`)
				? `No route matches ${c.req.method} at this path`
				: `No route matches this path; the API is served under ${API_BASE}`,
		},
		404,
	),
);

/**
 * What the log may say of an unexpected error: its kind, and D1's own message. Any other message may quote
 * values (a learner id, an email), and a stack is no one's business outside a debugger; D1 names the failing
 * constraint or statement, never a bound value, so its first line is kept.
 */
function describeFault(error: unknown): Record<string, string | undefined> {
	if (!(error instanceof Error)) return { error: typeof error };
	return { error: error.name, detail: error.message.startsWith("D1_") ? error.message.split("\n")[0] : undefined };
}

/** The answer to a write its application's storage row refused (src/db/app-storage.ts). */
function refusedWrite(c: Context<AppEnv>, refusal: NonNullable<ReturnType<typeof refusalOf>>): ApiError {
	const appId = c.var.auth?.appId ?? "";
	switch (refusal) {
		case "application_deleted":
			// This isolate still trusted the application's credential: it stops now, as it has everywhere else.
			forgetApplication(appId);
			return unauthorized("Invalid application id or secret key");
		case "write_budget_exceeded": {
			const wait = String(secondsLeftInMinute(Date.now()));
			return new ApiError(
				429,
				`Write budget exceeded for application ${appId}: its writes may touch ${c.var.config.writeBudget} rows per minute (a batch costs ids x tags); retry after ${seconds(wait)}`,
				{ "Retry-After": wait },
			);
		}
		case "row_quota_exceeded":
			return new ApiError(
				403,
				`Storage quota exceeded for application ${appId}: it may hold ${c.var.config.rowQuota} rows (registrations, learner tags and registration tags); delete some or ask the operator to raise APP_ROW_QUOTA`,
			);
	}
}

/** A D1 outage or overload as the client sees it: 503 with Retry-After (logged, without the error's text). */
function databaseUnavailable(c: Context<AppEnv>, trouble: NonNullable<ReturnType<typeof d1Trouble>>): ApiError {
	log(c.env, "warn", { msg: "database unavailable", requestId: c.var.requestId, trouble });
	const wait = trouble === "overloaded" ? "5" : "1";
	const what = trouble === "overloaded" ? "The database is overloaded" : "The database did not answer";
	return new ApiError(
		503,
		`${what}; retry after ${seconds(wait)} (a write that was not acknowledged may or may not have been applied)`,
		{ "Retry-After": wait },
	);
}

app.onError((caught, c) => {
	// D1 errors the service knows how to answer become ApiErrors, rendered like the rest.
	const refusal = refusalOf(caught);
	const trouble = refusal ? null : d1Trouble(caught);
	const error = refusal ? refusedWrite(c, refusal) : trouble ? databaseUnavailable(c, trouble) : caught;
	if (error instanceof ApiError) {
		return c.json({ message: error.message }, error.status, error.headers);
	}
	if (error instanceof HTTPException) {
		// Hono's own: "Malformed JSON in request body" (400) and the like.
		return c.json({ message: error.message || "Bad request" }, error.status);
	}
	if (error instanceof ConfigError) {
		log(c.env, "error", { msg: "configuration error", requestId: c.var.requestId, detail: error.message });
		return c.json(
			{ message: `The service is misconfigured (the operator's log names the setting); quote request id ${c.var.requestId}` },
			500,
		);
	}
	log(c.env, "error", { msg: "unhandled error", requestId: c.var.requestId, ...describeFault(error) });
	return c.json({ message: `Internal error; quote request id ${c.var.requestId} when reporting it` }, 500);
});
