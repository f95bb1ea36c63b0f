import type { Context } from "hono";
import { actingAsApplication, fromConsoleSession } from "../auth/middleware";

/**
 * The console's only way to read or change anything: the API itself, called in-process (no network hop), so
 * every rule, limit and message is the API's. Management routes get the realm's management credentials from the
 * env; application routes act as the chosen application through the channel src/auth/middleware.ts opens for
 * in-process requests only.
 */

/** What the console calls: the API app's fetch (passed in by src/app.ts, which mounts the console). */
export type ApiFetch = (request: Request, env: Env, ctx?: ExecutionCtx) => Response | Promise<Response>;

/** The execution context as Hono types it (the request's waitUntil, passed on to the API). */
export type ExecutionCtx = Context["executionCtx"];

/** The origin in-process requests are addressed to: never resolved, the request does not leave the isolate. */
const INTERNAL = "https://console.internal/api/v2";

/** An API answer: its status, its JSON body (null when it had none), and its Location. */
export interface ApiAnswer<T> {
	status: number;
	ok: boolean;
	body: T | null;
	/** The API's `message` on an error, for the page. */
	message: string;
	location: string | null;
	/** The answer's headers (X-Total-Count, Retry-After). */
	headers: Headers;
}

/** Who the call is made as: the realm's management credentials, or one application (every scope). */
export type Caller = { management: true } | { application: string };

function basicOf(id: string, secret: string): string {
	const bytes = new TextEncoder().encode(`${id}:${secret}`);
	return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

export interface ApiClient {
	<T = unknown>(caller: Caller, method: string, path: string, body?: unknown): Promise<ApiAnswer<T>>;
}

/**
 * A client for one console request: calls `fetch` with the request's env and execution context, marked with the
 * console session it comes from (the audit trail's actor: src/audit.ts).
 */
export function apiClient(fetch: ApiFetch, env: Env, ctx: ExecutionCtx | undefined, sessionId?: string): ApiClient {
	return async <T>(caller: Caller, method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> => {
		const headers = new Headers();
		let callEnv = sessionId === undefined ? env : fromConsoleSession(env, sessionId);
		if ("management" in caller) headers.set("Authorization", basicOf(env.MANAGEMENT_APP_ID, env.MANAGEMENT_SECRET_KEY));
		else callEnv = actingAsApplication(callEnv, caller.application);
		if (body !== undefined) headers.set("Content-Type", "application/json");
		const request = new Request(`${INTERNAL}${path}`, {
			method,
			headers,
			body: body === undefined ? undefined : JSON.stringify(body),
		});
		const response = await fetch(request, callEnv, ctx);
		const text = await response.text();
		let parsed: unknown = null;
		if (text && (response.headers.get("Content-Type") ?? "").includes("json")) parsed = JSON.parse(text);
		const message =
			parsed && typeof parsed === "object" && "message" in parsed && typeof parsed.message === "string"
				? parsed.message
				: response.ok
					? ""
					: `The API answered ${response.status}`;
		return {
			status: response.status,
			ok: response.ok,
			body: parsed as T | null,
			message,
			location: response.headers.get("Location"),
			headers: response.headers,
		};
	};
}

/** Encodes one path segment (learner ids, emails and tags may hold any character). */
export const segment = (value: string) => encodeURIComponent(value);

/** The job id a `Location: /api/v2/jobs/{jobId}` names. */
export const jobIdOf = (location: string | null) => (location ?? "").split("/").pop() ?? "";
