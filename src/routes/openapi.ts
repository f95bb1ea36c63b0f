import type { ZodType } from "zod";
import { MessageSchema } from "../schemas";
import { type Scope } from "../auth/scopes";

/** A JSON response entry for createRoute(). */
export const json = <T extends ZodType>(schema: T, description: string) => ({
	description,
	content: { "application/json": { schema } },
});

/** A required JSON request body for createRoute(). */
export const jsonBody = <T extends ZodType>(schema: T, description?: string) => ({
	required: true,
	description,
	content: { "application/json": { schema } },
});

/** What each error status means; the document generator (src/routes/docs.ts) adds the shared ones itself. */
export const ERROR_DESCRIPTIONS = {
	400: "Invalid input: the message names the field or limit",
	401: "Missing or invalid credentials",
	403: "Authenticated, but lacking the scope or privilege this operation needs, or (writes) over the application's storage quota",
	404: "Unknown resource (another application's resources answer the same)",
	405: "Method not allowed on this path",
	409: "Conflict",
	413: "Body over 1 MiB",
	415: "Body is not of the required media type",
	429: "Rate limited (requests, the write budget, or failed authentication): retry after the seconds in Retry-After",
	500: "Internal fault or a misconfigured service, logged with the request id",
	503: "The database is overloaded or did not answer: retry after the seconds in Retry-After",
} as const;
type ErrorStatus = keyof typeof ERROR_DESCRIPTIONS;

/** MessageSchema responses for the given statuses. */
export function errors<S extends ErrorStatus>(...statuses: S[]) {
	return Object.fromEntries(statuses.map((status) => [status, json(MessageSchema, ERROR_DESCRIPTIONS[status])])) as {
		[K in S]: ReturnType<typeof json<typeof MessageSchema>>;
	};
}

/** Statuses every authenticated application route can answer. */
export const APP_ROUTE_ERRORS = [401, 403, 429] as const;

/** OpenAPI security requirement: Basic APP_NORMAL, or OAuth with the scope. */
export const appSecurity = (scope: Scope): Record<string, string[]>[] => [{ APP_NORMAL: [] }, { OAUTH: [scope] }];

export const MANAGEMENT_SECURITY: Record<string, string[]>[] = [{ APP_MANAGEMENT: [] }];
