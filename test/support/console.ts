import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import worker from "../../src/index";
import { BASE, envWith } from "./client";

/** How a test reaches the operator console (/console): as the browser's forms and links do. */

export const ORIGIN = new URL(BASE).origin;
const CONSOLE = `${ORIGIN}/console`;

let serial = 0;
/** An address no other test uses (failed sign-ins are throttled per address). */
export const freshAddress = () => `203.0.113.${++serial}`;

/** Runs the Worker on `request`, with some bindings replaced. */
export async function fetchConsole(request: Request, bindings: Partial<Env> = {}): Promise<Response> {
	if (Object.keys(bindings).length === 0) return exports.default.fetch(request);
	const ctx = createExecutionContext();
	const response = await worker.fetch(request, envWith(bindings), ctx);
	await waitOnExecutionContext(ctx);
	return response;
}

function form(fields: Record<string, string>): URLSearchParams {
	return new URLSearchParams(fields);
}

/** A POST of a form as a page of the console sends it (same origin), with the cookie when given. */
export function post(path: string, fields: Record<string, string>, options: { cookie?: string; headers?: Record<string, string> } = {}) {
	const headers = new Headers({
		"Content-Type": "application/x-www-form-urlencoded",
		Origin: ORIGIN,
		"Sec-Fetch-Site": "same-origin",
		"CF-Connecting-IP": freshAddress(),
		...options.headers,
	});
	if (options.cookie) headers.set("Cookie", options.cookie);
	// An empty value leaves the header out (as a browser without fetch metadata sends it).
	for (const [name, value] of Object.entries(options.headers ?? {})) if (value === "") headers.delete(name);
	return new Request(`${CONSOLE}${path}`, { method: "POST", headers, body: form(fields), redirect: "manual" });
}

export const get = (path: string, cookie?: string) =>
	new Request(`${CONSOLE}${path}`, { headers: cookie ? { Cookie: cookie } : {}, redirect: "manual" });

/** Signs in with the management credentials; returns the session cookie ("name=value"). */
export async function signIn(): Promise<string> {
	const response = await fetchConsole(post("/sign-in", { appId: env.MANAGEMENT_APP_ID, secretKey: env.MANAGEMENT_SECRET_KEY }));
	expect(response.status).toBe(303);
	const setCookie = response.headers.get("Set-Cookie") ?? "";
	return setCookie.split(";")[0] ?? "";
}

/** The CSRF token the page's forms carry. */
export async function csrfOf(cookie: string, path = "/applications"): Promise<string> {
	const html = await (await fetchConsole(get(path, cookie))).text();
	const token = /name="csrf" value="([0-9a-f]+)"/.exec(html)?.[1];
	expect(token).toBeDefined();
	return token ?? "";
}

/** A signed-in session: its cookie and its forms' token. */
export interface ConsoleSession {
	cookie: string;
	csrf: string;
}

/** Signs in; answers the session's cookie and token. */
export async function session(): Promise<ConsoleSession> {
	const cookie = await signIn();
	return { cookie, csrf: await csrfOf(cookie) };
}

/** Posts a console form in `s`; returns the response. */
export const submit = (s: ConsoleSession, path: string, fields: Record<string, string> = {}) =>
	fetchConsole(post(path, { ...fields, csrf: s.csrf }, { cookie: s.cookie }));

/** The job a console form started: its page's path names it (a draft, `?r=`, may follow). */
export function startedJob(response: Response): string {
	expect(response.status).toBe(303);
	const location = new URL(response.headers.get("Location") ?? "", ORIGIN).pathname;
	expect(location).toMatch(/^\/console\/jobs\//);
	return decodeURIComponent(location.slice("/console/jobs/".length));
}

/** An attribute value as the browser reads it (hono/jsx escapes &, <, >, " and '). */
const unescape = (value: string) =>
	value.replace(/&(amp|lt|gt|quot|#39);/g, (_, name: string) => ({ amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'" })[name] ?? "");

/**
 * The hidden and text fields of each form on the page that posts to `action` (a path under /console), as the
 * browser would send them before anyone types; the CSRF token left out.
 */
export function formsOf(html: string, action: string): Record<string, string>[] {
	const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)].filter(([, attributes]) => attributesOf(attributes ?? "").action === `/console${action}`);
	return forms.map(([, , body]) => {
		const fields: Record<string, string> = {};
		for (const [, attributes] of (body ?? "").matchAll(/<input\b([^>]*)>/g)) {
			const { name, value, type = "text" } = attributesOf(attributes ?? "");
			if (name !== undefined && name !== "csrf" && (type === "hidden" || type === "text")) fields[name] = value ?? "";
		}
		return fields;
	});
}

function attributesOf(text: string): Record<string, string> {
	return Object.fromEntries([...text.matchAll(/([\w-]+)="([^"]*)"/g)].map(([, name, value]) => [name ?? "", unescape(value ?? "")]));
}


/** Follows a console POST's 303 to the page it leads to (with the session's cookie): that page's response. */
export async function follow(s: ConsoleSession, response: Response): Promise<Response> {
	expect(response.status, await response.clone().text()).toBe(303);
	const location = response.headers.get("Location") ?? "";
	expect(location).toMatch(/^\/console\//);
	return fetchConsole(get(location.slice("/console".length), s.cookie));
}

/** The draft token (`r`) a redirect hands its page. */
export const draftOf = (response: Response) => new URL(response.headers.get("Location") ?? "", ORIGIN).searchParams.get("r") ?? "";

/**
 * Posts a form that asks for a confirmation (an erasure, a move, lifting a suppression): asserts it leads to the
 * confirmation page, and answers that page and the token its button posts.
 */
export async function review(s: ConsoleSession, path: string, fields: Record<string, string>): Promise<{ html: string; token: string; response: Response }> {
	const response = await submit(s, path, fields);
	expect(response.status, await response.clone().text()).toBe(303);
	expect(response.headers.get("Location") ?? "").toMatch(/^\/console\/confirm\?r=/);
	const confirmation = await follow(s, response);
	expect(confirmation.status).toBe(200);
	return { html: await confirmation.text(), token: draftOf(response), response };
}

/** Reviews a form's action and presses its confirmation page's button: answers what that POST answered. */
export async function confirmed(s: ConsoleSession, path: string, fields: Record<string, string>): Promise<Response> {
	const { token } = await review(s, path, fields);
	return submit(s, "/confirm", { r: token, confirm: "true" });
}

/** The errors a page's refused form shows beside its fields: field name → sentence (`form`: the form's own). */
export function fieldErrors(html: string): Record<string, string> {
	const names = new Map<string, string>();
	for (const [, attributes] of html.matchAll(/<(?:input|select|textarea)\b([^>]*)>/g)) {
		const { id, "data-error": name } = attributesOf(attributes ?? "");
		if (id && name) names.set(id, name);
	}
	const errors: Record<string, string> = {};
	for (const [, id, text] of html.matchAll(/<p class="field-error" id="([^"]+)-error"[^>]*>([\s\S]*?)<\/p>/g)) {
		errors[names.get(id ?? "") ?? id ?? ""] = unescape(text ?? "");
	}
	const general = /<p class="notice error" role="alert"[^>]*>([\s\S]*?)<\/p>/.exec(html)?.[1];
	if (general !== undefined) errors.form = unescape(general.replace(/<[^>]+>/g, ""));
	return errors;
}

/**
 * What a console POST came to, as the API's status would say it: 303 with the job's API Location when it started a
 * job; otherwise the status of the refusal its page shows (data-api-status), or the page's own status.
 */
export async function outcomeOf(s: ConsoleSession, response: Response): Promise<{ status: number; location: string | null }> {
	const location = new URL(response.headers.get("Location") ?? "", ORIGIN).pathname;
	if (response.status === 303 && location.startsWith("/console/jobs/")) {
		return { status: 303, location: `/api/v2/jobs/${decodeURIComponent(location.slice("/console/jobs/".length))}` };
	}
	if (response.status !== 303) return { status: response.status, location: null };
	const page = await follow(s, response);
	const html = await page.text();
	const refusal = /data-api-status="(\d+)"/.exec(html)?.[1];
	return { status: refusal ? Number(refusal) : page.status, location: null };
}
