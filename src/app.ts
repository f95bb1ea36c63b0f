import type { Context, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { createMiddleware } from "hono/factory";
import { methodNotAllowed } from "hono/method-not-allowed";
import { forgetApplication } from "./auth/credentials";
import { ConfigError, config } from "./config";
import { createRouter, type AppEnv } from "./context";
import { refusalOf, secondsLeftInMinute } from "./db/app-storage";
import { d1Trouble } from "./db/retry";
import { ApiError, seconds, unauthorized } from "./errors";
import { bodyChecks } from "./http/body";
import { describeFault, log } from "./log";
import { registerSecuritySchemes } from "./openapi/security";
import { checkBookmark, requestContext } from "./request-context";
import { appManagementRoutes } from "./routes/app-management";
import { docsRoutes } from "./routes/docs";
import { jobRoutes } from "./routes/jobs";
import { learnerRoutes } from "./routes/learners";
import { metaRoutes } from "./routes/meta";
import { oauthRoutes } from "./routes/oauth";
import { registrationRoutes } from "./routes/registrations";
import { webhookRoutes } from "./routes/webhooks";

export const API_BASE = "/api/v2";

/** Fails closed when a secret is missing or short (src/config.ts); otherwise hands the routes the checked config. */
const requireConfig = createMiddleware<AppEnv>(async (c, next) => {
	c.set("config", config(c.env));
	await next();
});

export const app = createRouter();
registerSecuritySchemes(app.openAPIRegistry);
const { limitBodySize, requireMediaType } = bodyChecks(app.openAPIRegistry);

app.use("*", requestContext);
app.use("*", requireConfig);
app.use("*", checkBookmark);

// The operator console (SPEC §10), beside the API: its module is imported by the first console request, so API
// requests never evaluate it (SPEC §6). Mounted before the API's body checks: its forms are url-encoded, and it
// checks its own bodies. Its actions call this app in-process (src/console/api.ts). Plain (ALL) routes: the
// console is not part of the OpenAPI document.
let consoleApp: Promise<{ fetch: (request: Request, env: Env, ctx?: Context["executionCtx"]) => Response | Promise<Response> }> | undefined;
const serveConsole: MiddlewareHandler<AppEnv> = async (c) => {
	consoleApp ??= import("./console/routes").then(({ consoleRoutes }) => consoleRoutes((request, env, ctx) => app.fetch(request, env, ctx)));
	let ctx: Context["executionCtx"] | undefined;
	try {
		ctx = c.executionCtx;
	} catch {
		ctx = undefined; // app.request() in tests has none
	}
	return (await consoleApp).fetch(c.req.raw, c.env, ctx);
};
app.all("/console", serveConsole);
app.all("/console/*", serveConsole);

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
app.route(API_BASE, webhookRoutes);
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

/** Seconds a write refused during a move is told to wait: the final catch-up and flip take about that long. */
const MOVE_RETRY_AFTER = "2";

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
		case "application_moving":
			// Its data is moving between shards: the placement flips within seconds. This isolate forgets the
			// application's credentials, so the retry reads the new placement.
			forgetApplication(appId);
			return new ApiError(
				503,
				`Application ${appId} is moving between shards and refuses writes for a few seconds; retry after ${seconds(MOVE_RETRY_AFTER)} (nothing was written)`,
				{ "Retry-After": MOVE_RETRY_AFTER },
			);
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
