import type { RouteConfig, createRoute } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { ZodType } from "zod";
import { requireManagement, requireScope, requireScopeOrManagement } from "../auth/middleware";
import type { Scope } from "../auth/scopes";
import type { AppEnv } from "../context";
import type { SecurityRequirement } from "../openapi/security";
import { MessageSchema } from "../schemas/text";

/**
 * Who may call a route:
 * - `{ scope }`: an application, by Basic APP_NORMAL or a bearer token carrying the scope (`admin` grants all);
 * - `{ scope, basicOnly: true }`: an application by Basic APP_NORMAL only (minting tokens);
 * - `{ scope, orManagement: true }`: as `{ scope }`, or the realm's management credentials (job status);
 * - `"management"`: the realm's management credentials (Basic APP_MANAGEMENT);
 * - `"public"`: anyone.
 */
export type Access = { scope: Scope; basicOnly?: true; orManagement?: true } | "management" | "public";

/** What each error status means; every route's responses take their descriptions from here. */
export const ERROR_DESCRIPTIONS = {
	400: "Invalid input: the message names the field or limit",
	401: "Missing or invalid credentials",
	403: "Authenticated, but lacking the scope or privilege this operation needs, or (writes) over the application's storage quota",
	404: "Unknown resource (another application's resources answer the same)",
	405: "Method not allowed on this path",
	409: "Conflict",
	413: "Body over 1 MiB",
	415: "Body is not of the required media type",
	422: "The Idempotency-Key was used with another request (a different path or body)",
	429: "Rate limited (requests, the write budget, or failed authentication): retry after the seconds in Retry-After",
	500: "Internal fault or a misconfigured service, logged with the request id",
	503: "The database is overloaded or did not answer: retry after the seconds in Retry-After",
} as const;
export type ErrorStatus = keyof typeof ERROR_DESCRIPTIONS;

/** A JSON response entry. */
export const json = <T extends ZodType>(schema: T, description: string) => ({
	description,
	content: { "application/json": { schema } },
});

/** A required JSON request body. */
export const jsonBody = <T extends ZodType>(schema: T, description?: string) => ({
	required: true,
	description,
	content: { "application/json": { schema } },
});

/** A required form (application/x-www-form-urlencoded) request body. */
export const formBody = <T extends ZodType>(schema: T) => ({
	required: true,
	content: { "application/x-www-form-urlencoded": { schema } },
});

type MessageResponse = ReturnType<typeof json<typeof MessageSchema>>;

/** MessageSchema responses for the given statuses. */
export function errors<S extends ErrorStatus>(...statuses: S[]) {
	return Object.fromEntries(statuses.map((status) => [status, json(MessageSchema, ERROR_DESCRIPTIONS[status])])) as {
		[K in S]: MessageResponse;
	};
}

/** The document's security requirement for an access (a HEAD documented beside its GET uses it too). */
export function securityOf(access: Access): SecurityRequirement {
	if (access === "public") return [];
	if (access === "management") return [{ APP_MANAGEMENT: [] }];
	if (access.basicOnly) return [{ APP_NORMAL: [] }];
	const application: SecurityRequirement = [{ APP_NORMAL: [] }, { OAUTH: [access.scope] }];
	return access.orManagement ? [...application, { APP_MANAGEMENT: [] }] : application;
}

function middlewareOf(access: Access): MiddlewareHandler<AppEnv>[] {
	if (access === "public") return [];
	if (access === "management") return [requireManagement];
	if (access.orManagement) return [requireScopeOrManagement(access.scope)];
	return [requireScope(access.scope, access.basicOnly ? { basicOnly: true } : {})];
}

/**
 * The errors a route can answer beyond its own: 400 and 500 on every route (the app-wide middleware checks the
 * X-D1-Bookmark header; faults happen anywhere), 413 and 415 where it takes a body, and where it authenticates
 * 401, 429 (throttled failed authentication, rate and write limits) and 503 (authentication reads D1), plus 403
 * where a scope can be missing.
 */
function sharedErrors(access: Access, takesBody: boolean): ErrorStatus[] {
	const statuses: ErrorStatus[] = [400, 500];
	if (takesBody) statuses.push(413, 415);
	if (access !== "public") statuses.push(401, 429, 503);
	if (typeof access === "object" && !access.basicOnly) statuses.push(403);
	return statuses;
}

/**
 * Error responses without a body, for a HEAD documented beside the GET that answers it (Hono runs GET routes
 * for HEAD and drops the body).
 */
export function bodilessErrors(access: Access, own: readonly ErrorStatus[]) {
	const statuses = [...new Set([...sharedErrors(access, false), ...own])];
	return Object.fromEntries(statuses.map((status) => [status, { description: ERROR_DESCRIPTIONS[status] }]));
}

type Declaration = Omit<RouteConfig, "security" | "middleware"> & {
	access: Access;
	/** The error statuses this route answers beyond those its access and body imply (e.g. 404, 409). */
	errors?: readonly ErrorStatus[];
};

/**
 * One route, declared once: its access drives the auth middleware and the document's security requirement,
 * and its access, body and own errors drive its error responses (MessageSchema).
 *
 * @example
 * router.openapi(
 *   declareRoute({ method: "get", path: "/learner/{learnerId}/tags", access: { scope: "read:learner" }, errors: [404], ... }),
 *   async (c) => c.json({ tags }, 200),
 * );
 */
export function declareRoute<const D extends Declaration>(declaration: D) {
	const { access, errors: own = [], ...route } = declaration;
	const statuses = [...new Set([...sharedErrors(access, route.request?.body !== undefined), ...own])];
	// As @hono/zod-openapi's createRoute types it (the handler's types come from it), built here: that package
	// loads the OpenAPI generator, which only the document needs (src/http/router.ts).
	const config = {
		...(route as Omit<D, "access" | "errors">),
		security: securityOf(access),
		middleware: middlewareOf(access),
		responses: { ...route.responses, ...errors(...statuses) } as D["responses"] & Partial<Record<ErrorStatus, MessageResponse>>,
	};
	return config as ReturnType<typeof createRoute<D["path"], typeof config>>;
}
