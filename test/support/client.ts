import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { vi } from "vitest";
import worker from "../../src/index";
import { checkConformance } from "../conformance";

/**
 * How a test reaches the Worker: as a client does (call), or with some bindings replaced (fetchWithBindings).
 * Every response either gives is checked against the OpenAPI document (test/conformance.ts).
 */

export const BASE = "http://learner.test/api/v2";

type Body = Record<string, unknown> | unknown[] | string;

/** Calls the Worker's fetch handler, as a client would: a JSON body unless the body is a string. */
export async function call(
	method: string,
	path: string,
	options: { auth?: string; body?: Body; headers?: Record<string, string> } = {},
): Promise<Response> {
	const headers = new Headers(options.headers);
	if (options.auth) headers.set("Authorization", options.auth);
	let body: string | undefined;
	if (options.body !== undefined) {
		body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
		if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
	}
	const request = new Request(`${BASE}${path}`, { method, headers, body });
	const response = await exports.default.fetch(request);
	await checkConformance(BASE, request, response);
	return response;
}

/** A request to the API as a client sends it: Basic or Bearer auth, and a JSON body when there is one. */
export function apiRequest(method: string, path: string, options: { auth: string; body?: unknown }): Request {
	const headers = new Headers({ Authorization: options.auth });
	if (options.body !== undefined) headers.set("Content-Type", "application/json");
	return new Request(`${BASE}${path}`, {
		method,
		headers,
		body: options.body === undefined ? undefined : JSON.stringify(options.body),
	});
}

/** The test environment with some bindings replaced. */
export const envWith = (overrides: Partial<Env>): Env => ({ ...env, ...overrides });

/**
 * Runs the Worker's fetch handler on `request` with some bindings replaced (a faulty D1, other limits), waiting
 * for its waitUntil work. To observe or fail queue sends, spy on the binding instead (./queue.ts).
 */
export async function fetchWithBindings(request: Request, bindings: Partial<Env>): Promise<Response> {
	const ctx = createExecutionContext();
	const response = await worker.fetch(request, envWith(bindings), ctx);
	await waitOnExecutionContext(ctx);
	await checkConformance(BASE, request, response);
	return response;
}

/**
 * Spies on env.RATE_LIMITER so that every request passes it, for a test that is one client's burst (thousands
 * of requests a minute from one application). Lasts until vi.restoreAllMocks() or the spy's mockRestore().
 */
export const liftRateLimit = () => vi.spyOn(env.RATE_LIMITER, "limit").mockResolvedValue({ success: true });
