import { Hono, type Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { createMiddleware } from "hono/factory";
import { methodNotAllowed } from "hono/method-not-allowed";
import { forgetApplication } from "./auth/credentials";
import { forgetPlacement } from "./auth/placements";
import { ConfigError, config } from "./config";
import type { AppEnv, AppRouter } from "./context";
import { refusalOf, secondsLeftInMinute } from "./db/app-storage";
import { d1Trouble } from "./db/retry";
import { ApiError, seconds, unauthorized } from "./errors";
import { bodyChecks } from "./http/body";
import { describeFault, log } from "./log";
import { checkBookmark, requestContext } from "./request-context";

export const API_BASE = "/api/v2";

/** Fails closed when a secret is missing or short (src/config.ts); otherwise hands the routes the checked config. */
const requireConfig = createMiddleware<AppEnv>(async (c, next) => {
	c.set("config", config(c.env));
	await next();
});

type App = Hono<AppEnv>;
type Fetch = (request: Request, env: Env, ctx?: Context["executionCtx"]) => Response | Promise<Response>;

/**
 * The route groups, each loaded and built by the first request an isolate serves for it (SPEC §6: cold start): a
 * request pays for its own group's routes, schemas and router, never for the others'. Every group is one app with
 * the same middleware, error path and 404/405 answers (buildApp); a path belongs to exactly one group, so a
 * group's 405 knows every method its paths have.
 */
const GROUPS = {
	learnerTags: async () => [(await import("./routes/learner-tags")).learnerTagRoutes],
	learners: async () => [(await import("./routes/learners")).learnerRoutes],
	registrations: async () => [(await import("./routes/registrations")).registrationRoutes],
	jobs: async () => [(await import("./routes/jobs")).jobRoutes],
	management: async () => [(await import("./routes/app-management")).appManagementRoutes],
	// The management API's views and per-application policies: usage, the audit trail, exports, retention, webhooks.
	realm: async () => {
		const [{ webhookRoutes }, { privacyRoutes }, { realmRoutes }] = await Promise.all([
			import("./routes/webhooks"),
			import("./routes/privacy"),
			import("./routes/realm"),
		]);
		return [webhookRoutes, privacyRoutes, realmRoutes];
	},
	oauth: async () => [(await import("./routes/oauth")).oauthRoutes],
	meta: async () => [(await import("./routes/meta")).metaRoutes],
	// The paths of no group: the middleware, then 404.
	none: async () => [],
} satisfies Record<string, () => Promise<AppRouter[]>>;
export type Group = keyof typeof GROUPS | "docs" | "console" | "front";

/**
 * The path with the runs of slashes before and after the base made one. Rustici's generated clients default to a
 * host ending in a slash (".../api/v2/") and append paths that start with one, so every call they make reads
 * "/api/v2//ping"; SCORM Cloud answers it. A redirect would not do: clients do not repeat a POST's body after one.
 * Further on, an empty segment is an empty id ("/learner//tags"), never merged into another route's path; and
 * encoded slashes (%2F, inside an id) are not slashes here and stay as they are.
 */
export const collapseSlashes = (path: string): string => path.replace(BASE_JOIN, `${API_BASE}/`).replace(/^\/{2,}/, "/");
const BASE_JOIN = new RegExp(`^/+${API_BASE.split("/").filter(Boolean).join("/+")}/{2,}`);

/** The management paths of the realm group (GROUPS.realm), apart so that managing applications loads none of them. */
const REALM_PATHS =
	/^\/appManagement\/(?:audit(?:\/head)?|usage|learners\/[^/]+\/(?:export|applications)|applications\/[^/]+\/(?:retention|usage)|[^/]+\/webhook(?:\/test)?)$/;

/**
 * The group a path belongs to (test/structure/route-groups.test.ts checks every route's path against it). The
 * learner tag operations, the hot path, are a group of their own. Repeated slashes count as one.
 */
export function groupOf(rawPath: string): Group {
	const path = collapseSlashes(rawPath);
	if (path === "/") return "front";
	if (path === "/console" || path.startsWith("/console/")) return "console";
	if (!path.startsWith(`${API_BASE}/`)) return "none";
	const rest = path.slice(API_BASE.length);
	switch (rest.split("/")[1]) {
		case "learner":
			return /^\/learner\/(?:[^/]+\/)?tags$/.test(rest) ? "learnerTags" : "learners";
		case "learners":
			return "learners";
		case "registrations":
			return "registrations";
		case "jobs":
		case ".well-known":
			return "jobs";
		case "appManagement":
			// The management token endpoint is the token routes' (src/routes/oauth.ts); the realm's job list is the job
			// routes' (src/routes/jobs.ts), beside GET /jobs.
			if (rest === "/appManagement/token") return "oauth";
			if (rest === "/appManagement/jobs") return "jobs";
			return REALM_PATHS.test(rest) ? "realm" : "management";
		case "oauth":
			return "oauth";
		case "ping":
		case "about":
			return "meta";
		case "openapi.json":
		case "docs":
			return "docs";
		default:
			return "none";
	}
}

/** One group's app: the shared middleware, its routes under the base path, one error path, 404 and 405. */
function buildApp(routers: AppRouter[]): App {
	const app = new Hono<AppEnv>();
	const { limitBodySize, requireMediaType } = bodyChecks(routers, API_BASE);
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
	for (const router of routers) app.route(API_BASE, router.hono);
	app.notFound(notFoundAnswer);
	app.onError(errorAnswer);
	return app;
}

/** Every route of the API: the OpenAPI document's source. */
export const allRouters = async (): Promise<AppRouter[]> => (await Promise.all(Object.values(GROUPS).map((load) => load()))).flat();

/** Every route of the API in one app, with the OpenAPI document and its page (public) listing them all. */
async function buildFullApp(): Promise<App> {
	const routers = await allRouters();
	const { docsRoutes } = await import("./routes/docs");
	return buildApp([...routers, docsRoutes(API_BASE)]);
}

/** The docs group: the OpenAPI document (generated at build time: src/openapi/served.ts) and its page. */
async function buildDocs(): Promise<App> {
	const { docsRoutes } = await import("./routes/docs");
	return buildApp([docsRoutes(API_BASE)]);
}

/**
 * The operator console (SPEC §10), beside the API, behind the API's request context and configuration check (it
 * checks its own bodies: its forms are url-encoded). Its actions call the API in-process through `handle`
 * (src/console/api.ts). Not part of the OpenAPI document.
 */
async function buildConsole(): Promise<Fetch> {
	const { consoleRoutes } = await import("./console/routes");
	const consoleApp = consoleRoutes(handle);
	const app = new Hono<AppEnv>();
	app.use("*", requestContext);
	app.use("*", requireConfig);
	app.use("*", checkBookmark);
	app.all("*", (c) => {
		let ctx: Context["executionCtx"] | undefined;
		try {
			ctx = c.executionCtx;
		} catch {
			ctx = undefined; // app.request() in tests has none
		}
		return consoleApp.fetch(c.req.raw, c.env, ctx);
	});
	app.onError(errorAnswer);
	return (request, env, ctx) => app.fetch(request, env, ctx);
}

// Each group's app, built once per isolate (routes and middleware: no request state).
const built = new Map<Group, Promise<Fetch>>();

/** The routers of a group (tests: each route's path must be served by its group). */
export const groupRouters = (group: keyof typeof GROUPS): Promise<AppRouter[]> => GROUPS[group]();
let full: Promise<App> | undefined;

/** The whole API in one app: the OpenAPI document's source (scripts/openapi-entry.ts), tests and the bench probe. */
export function fullApp(): Promise<App> {
	full ??= buildFullApp();
	full.catch(() => (full = undefined));
	return full;
}

function appFor(group: Group): Promise<Fetch> {
	let fetch = built.get(group);
	if (!fetch) {
		const app: Promise<App | Fetch> =
			group === "console"
				? buildConsole()
				: group === "docs"
					? buildDocs()
					: group === "front"
						? import("./front-door").then(({ frontDoor }): Fetch => (request) => frontDoor(request, API_BASE))
						: GROUPS[group]().then(buildApp);
		fetch = app.then((made): Fetch => (typeof made === "function" ? made : (request, env, ctx) => made.fetch(request, env, ctx)));
		built.set(group, fetch);
		// A failed build (an import that failed) is not kept: the next request tries again.
		fetch.catch(() => built.delete(group));
	}
	return fetch;
}

/**
 * Answers a request with the app of its path's group, built by the first request the isolate serves for it. The
 * group app routes the path with repeated slashes collapsed (collapseSlashes), as the group was chosen.
 */
export async function handle(request: Request, env: Env, ctx?: Context["executionCtx"]): Promise<Response> {
	const url = new URL(request.url);
	const path = collapseSlashes(url.pathname);
	if (path !== url.pathname) {
		url.pathname = path;
		request = new Request(url, request);
	}
	return (await appFor(groupOf(path)))(request, env, ctx);
}

// The path is not echoed: it may hold a learner id.
function notFoundAnswer(c: Context<AppEnv>): Response {
	return c.json(
		{
			message: c.req.path.startsWith(`${API_BASE}/`)
				? `No route matches ${c.req.method} at this path`
				: `No route matches this path; the API is served under ${API_BASE}`,
		},
		404,
	);
}

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
			// application's credentials and placement, so the retry reads the new placement.
			forgetApplication(appId);
			forgetPlacement(appId);
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

/** The one error path: every error any group's routes or middleware throw, rendered as MessageSchema. */
function errorAnswer(caught: Error, c: Context<AppEnv>): Response {
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
}
