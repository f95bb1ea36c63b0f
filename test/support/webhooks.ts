import { env } from "cloudflare:workers";
import { expect, vi } from "vitest";
import type { WebhookMessage } from "../../src/jobs/webhooks";
import { call } from "./client";
import { MANAGEMENT, type TestApp } from "./fixtures";
import { type Delivery, deliver } from "./queue";

/**
 * Webhooks from a test's side (SPEC §8): setting one, a stand-in receiver (the Worker's outbound fetch, spied on),
 * the delivery queue's messages kept instead of queued, and the signature checked as a receiver would.
 */

/** The delivery queue's name (wrangler.toml; env.WEBHOOK_QUEUE). */
export const WEBHOOK_QUEUE = "learner-webhooks";

/** Sets the application's webhook; answers the signing secret. */
export async function setWebhook(app: TestApp | string, url = "https://hooks.example.com/learner-service"): Promise<string> {
	const appId = typeof app === "string" ? app : app.appId;
	const response = await call("PUT", `/appManagement/${appId}/webhook`, { auth: MANAGEMENT, body: { url } });
	expect(response.status).toBe(200);
	const body = (await response.json()) as { url: string; signingSecret: string };
	expect(body.url).toBe(url);
	return body.signingSecret;
}

/** A request the receiver got. */
export interface Received {
	url: string;
	method: string;
	headers: Headers;
	body: string;
}

/**
 * Stands in for every receiver: the Worker's outbound fetch is answered by `answer` (a status, or a thrown error
 * for no answer at all), given the request's number (0 first). Restore with the returned function.
 */
export function receiver(answer: (n: number) => number | Error): { received: Received[]; restore: () => void } {
	const received: Received[] = [];
	const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
		const request = new Request(input, init);
		received.push({ url: request.url, method: request.method, headers: request.headers, body: await request.text() });
		const outcome = answer(received.length - 1);
		if (outcome instanceof Error) throw outcome;
		return new Response(outcome === 204 ? null : "ok", { status: outcome });
	});
	return { received, restore: () => spy.mockRestore() };
}

/** A delivery message the Worker sent, with its delay. */
export interface SentDelivery {
	body: WebhookMessage;
	delaySeconds?: number;
}

/** Runs `work`, keeping the delivery messages the Worker sends meanwhile instead of queueing them. */
export async function deliveriesDuring<T>(work: () => Promise<T>): Promise<{ result: T; deliveries: SentDelivery[] }> {
	const deliveries: SentDelivery[] = [];
	const queue = env.WEBHOOK_DELIVERIES;
	const keep = (body: unknown, delaySeconds: number | undefined) =>
		deliveries.push(delaySeconds === undefined ? { body: body as WebhookMessage } : { body: body as WebhookMessage, delaySeconds });
	const response = { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
	const single = vi.spyOn(queue, "send").mockImplementation(async (body, options) => {
		keep(body, options?.delaySeconds);
		return response;
	});
	const batch = vi.spyOn(queue, "sendBatch").mockImplementation(async (messages, options) => {
		for (const message of messages) keep(message.body, message.delaySeconds ?? options?.delaySeconds);
		return response;
	});
	try {
		return { result: await work(), deliveries };
	} finally {
		single.mockRestore();
		batch.mockRestore();
	}
}

/** Hands delivery messages to the Worker's queue handler as the delivery queue would; answers what it did and sent. */
export async function deliverEvents(messages: SentDelivery[]): Promise<{ delivery: Delivery; deliveries: SentDelivery[] }> {
	const { result: delivery, deliveries } = await deliveriesDuring(() => deliver(messages.map((message) => message.body), { queue: WEBHOOK_QUEUE }));
	return { delivery, deliveries };
}

const encoder = new TextEncoder();

/**
 * Whether a delivery's headers sign `body` under `secret` as the Standard Webhooks specification says (SPEC §8):
 * webhook-signature `v1,<base64 HMAC-SHA-256 of "<webhook-id>.<webhook-timestamp>.<body>">` under the key the
 * secret's base64 (after whsec_) encodes. Answers the timestamp, or null when it does not verify. (The interop
 * suite verifies with the `standardwebhooks` library itself; this is the same check inside workerd.)
 */
export async function verifiedTimestamp(secret: string, headers: Headers | undefined, body: string): Promise<number | null> {
	const id = headers?.get("webhook-id");
	const timestamp = headers?.get("webhook-timestamp");
	const signatures = (headers?.get("webhook-signature") ?? "").split(" ");
	if (!id || !timestamp || !/^\d+$/.test(timestamp)) return null;
	const encoded = secret.replace(/^whsec_/, "");
	const bytes = Uint8Array.from(atob(encoded.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(encoded.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
	const key = await crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
	for (const signature of signatures) {
		const match = /^v1,([A-Za-z0-9+/]+={0,2})$/.exec(signature);
		if (!match?.[1]) continue;
		const mac = Uint8Array.from(atob(match[1]), (c) => c.charCodeAt(0));
		if (await crypto.subtle.verify("HMAC", key, mac, encoder.encode(`${id}.${timestamp}.${body}`))) return Number(timestamp);
	}
	return null;
}

/** The legacy Learner-Service-Signature check (t=<unix>,v1=<hex HMAC of "<t>.<body>"> under the secret's text). */
export async function legacyVerifiedTimestamp(secret: string, header: string | null, body: string): Promise<number | null> {
	const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? "");
	if (!match?.[1] || !match[2]) return null;
	const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
	const mac = Uint8Array.from(match[2].match(/../g) ?? [], (pair) => Number.parseInt(pair, 16));
	const valid = await crypto.subtle.verify("HMAC", key, mac, encoder.encode(`${match[1]}.${body}`));
	return valid ? Number(match[1]) : null;
}
