import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect, vi } from "vitest";
import worker from "../src/index";
import { checkConformance } from "./conformance";

export const BASE = "http://learner.test/api/v2";

export const basicHeader = (id: string, secret: string) => `Basic ${btoa(`${id}:${secret}`)}`;
export const MANAGEMENT = basicHeader(env.MANAGEMENT_APP_ID, env.MANAGEMENT_SECRET_KEY);

type Body = Record<string, unknown> | unknown[] | string;

/** Ids that a path must carry intact: reserved URL characters, percent signs, quotes, spaces, non-ASCII. */
export const UNUSUAL_IDS = [
	"with/slash/es",
	"100% sure",
	"%2F already encoded",
	"spaces in the middle ",
	'double "quotes"',
	"single 'quotes'",
	"non-ASCII: Łódź 学习者 🎓",
	"?query#fragment&amp",
	"back\\slash",
];

/** `count` distinct strings: prefix0, prefix1, … */
export const range = (count: number, prefix: string) => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

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

/**
 * Runs the Worker's fetch handler on `request` with some bindings replaced, waiting for its waitUntil work. The
 * response is checked against the OpenAPI document, as call()'s are.
 */
export async function fetchWithBindings(request: Request, bindings: Partial<Env>): Promise<Response> {
	const ctx = createExecutionContext();
	const response = await worker.fetch(request, { ...env, ...bindings }, ctx);
	await waitOnExecutionContext(ctx);
	await checkConformance(BASE, request, response);
	return response;
}

/** Calls the Worker's fetch handler, as a client would. */
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
	// Every response a test sees is checked against the OpenAPI document (test/conformance.ts).
	await checkConformance(BASE, request, response);
	return response;
}

/** Asserts status and MessageSchema body, returning the message. */
export async function expectMessage(response: Response, status: number): Promise<string> {
	expect(response.status).toBe(status);
	const body = (await response.json()) as Record<string, unknown>;
	expect(Object.keys(body)).toEqual(["message"]);
	expect(typeof body.message).toBe("string");
	return body.message as string;
}

export interface TestApp {
	appId: string;
	credentialId: string;
	secret: string;
	auth: string;
}

let counter = 0;
/** A fresh application with one enabled credential. */
export async function createApp(name = `app-${++counter}`): Promise<TestApp> {
	const created = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name } });
	expect(created.status).toBe(200);
	const { id: appId } = (await created.json()) as { id: string };
	const cred = await call("POST", `/appManagement/${appId}/credentials`, { auth: MANAGEMENT, body: { name: "main" } });
	expect(cred.status).toBe(200);
	const { id: credentialId, credential: secret } = (await cred.json()) as { id: string; credential: string };
	return { appId, credentialId, secret, auth: basicHeader(appId, secret) };
}

/** A bearer token for the app, with the given scopes. */
export async function mintToken(app: TestApp, scope: string, expiration?: number): Promise<string> {
	const form = new URLSearchParams({ scope });
	if (expiration !== undefined) form.set("expiration", String(expiration));
	const response = await call("POST", "/oauth/authenticate/application/token", {
		auth: app.auth,
		body: form.toString(),
		headers: { "Content-Type": "application/x-www-form-urlencoded" },
	});
	expect(response.status).toBe(200);
	const { access_token } = (await response.json()) as { access_token: string };
	return `Bearer ${access_token}`;
}

/** The JSON log lines written to console.log while `run` ran (restore the spy with vi.restoreAllMocks()). */
export async function logsOf(run: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
	const spy = vi.spyOn(console, "log");
	await run();
	return spy.mock.calls.map(([line]) => JSON.parse(String(line)) as Record<string, unknown>);
}
