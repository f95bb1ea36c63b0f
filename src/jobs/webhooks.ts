import { base64Encode, toHex } from "../auth/crypto";
import { config } from "../config";
import { clearWebhookHint } from "../db/app-storage";
import { type NewEvent, markRedelivered, newEvents, overdueDeliveries, pendingDelivery, recordAttempt, settleNewEvents } from "../db/job-events";
import { type Job, jobHome } from "../db/jobs";
import { type Db, nowIso } from "../db/types";
import { applicationsWithWebhooks, getWebhook } from "../db/webhooks";
import { log } from "../log";
import { type JobResource, jobResource } from "./resource";
import { jobDatabase } from "./job-database";
import { webhookUrlProblem } from "./webhook-destination";
import { isLegacySecret, openSecret, signingKey } from "./webhook-secret";
import * as z from "zod/mini";

/**
 * Webhook events (SPEC §8). A job's end creates its event on its row (migrations/shard 0005); `dispatchEvents`
 * then sends a delivery message to the `learner-webhooks` queue for each event whose application has a webhook,
 * and the delivery consumer POSTs the signed event, recording each attempt on the row and scheduling the next with
 * exponential backoff until one succeeds or 24 hours have passed. The sweeper catches up on events nobody looked
 * at and deliveries whose message was lost (src/jobs/sweeper.ts). At least once: receivers dedupe by event id.
 */

/** A delivery message: ids only (the event and its job), never personal data and never the secret. */
export const WebhookMessageSchema = z.object({
	eventId: z.string().check(z.regex(/^evt_[0-9a-f]{32}$/)),
	jobId: z.string().check(z.refine((id) => jobHome(id) !== null)),
});
export type WebhookMessage = z.infer<typeof WebhookMessageSchema>;

/** How long a delivery of an application moving between shards waits before it is tried again. */
export const MOVING_WAIT_SECONDS = 5;

/** An attempt that got no 2xx within this long failed. */
export const DELIVERY_TIMEOUT_MS = 10_000;
/** Failed deliveries are retried until this long after the event, then given up. */
export const GIVE_UP_AFTER_MS = 24 * 60 * 60_000;
/** Events looked at, or deliveries sent again, per database per call. */
export const EVENTS_PER_LOOK = 100;

/**
 * Seconds before the next attempt after `attempts` failed ones: 30 s doubling, capped at 4 hours. With the 24-hour
 * horizon that is about 14 attempts: 30 s, 1, 2, 4, 8, 16, 32, 64 and 128 minutes, then every 4 hours.
 */
export const webhookRetryDelaySeconds = (attempts: number) => Math.min(4 * 60 * 60, 30 * 2 ** Math.max(0, attempts - 1));

/** What a webhook receives (the body of the POST). */
export interface EventPayload {
	id: string;
	type: "job.completed" | "job.failed" | "webhook.test";
	createdDate: string;
	/** The job resource as GET /jobs/{jobId} answers it, without its `notification`; absent in a test event. */
	job?: JobResource;
}

/** A job's event, as delivered. */
export const eventPayload = (job: Job & { event: NonNullable<Job["event"]> }): EventPayload => ({
	id: job.event.id,
	type: job.status === "failed" ? "job.failed" : "job.completed",
	createdDate: job.event.at,
	job: jobResource(job, { notification: false }),
});

const encoder = new TextEncoder();

const hmacSha256 = async (key: Uint8Array, text: string) =>
	crypto.subtle.sign("HMAC", await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]), encoder.encode(text));

/**
 * The headers that sign an event body sent at `timestamp` (unix seconds), as the Standard Webhooks specification
 * says (SPEC §8), so any of its libraries verifies them: `webhook-id` (the event id, which receivers dedupe by),
 * `webhook-timestamp`, and `webhook-signature: v1,<base64 HMAC-SHA-256 of "<id>.<timestamp>.<body>">` under the
 * secret's key. The id and the time are signed with the body: neither can be replayed with another. Under a secret
 * issued before this scheme (isLegacySecret) the old headers come too: `Learner-Service-Signature: t=<timestamp>,v1=
 * <hex HMAC-SHA-256 of "<timestamp>.<body>" under the secret's text>` and `Learner-Service-Event-Id`. The key is not
 * cached: there is one per application, and a delivery signs once.
 */
export async function signatureHeaders(secret: string, eventId: string, timestamp: number, body: string): Promise<Record<string, string>> {
	const headers: Record<string, string> = {
		"webhook-id": eventId,
		"webhook-timestamp": String(timestamp),
		"webhook-signature": `v1,${base64Encode(await hmacSha256(signingKey(secret), `${eventId}.${timestamp}.${body}`))}`,
	};
	if (isLegacySecret(secret)) {
		headers["Learner-Service-Signature"] = `t=${timestamp},v1=${toHex(await hmacSha256(encoder.encode(secret), `${timestamp}.${body}`))}`;
		headers["Learner-Service-Event-Id"] = eventId;
	}
	return headers;
}

/** One attempt's outcome: the HTTP status answered, or why there was none. */
export interface AttemptOutcome {
	status: number | null;
	error: string | null;
}

export const isDelivered = (outcome: AttemptOutcome) => outcome.status !== null && outcome.status >= 200 && outcome.status < 300;

/**
 * POSTs a signed event to `url`. Redirects are not followed (a 3xx is a failed attempt: the registered URL is the
 * one that must answer), and the answer's body is not read.
 */
export async function postEvent(url: string, secret: string, payload: EventPayload, nowMs: number): Promise<AttemptOutcome> {
	const body = JSON.stringify(payload);
	const signed = await signatureHeaders(secret, payload.id, Math.floor(nowMs / 1000), body);
	try {
		const response = await fetch(url, {
			method: "POST",
			headers: { "Content-Type": "application/json", "User-Agent": "learner-service-webhooks/1", ...signed },
			body,
			redirect: "manual",
			signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
		});
		await response.body?.cancel();
		return { status: response.status, error: null };
	} catch (error) {
		const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
		return { status: null, error: timedOut ? `No answer within ${DELIVERY_TIMEOUT_MS / 1000} s` : "Connection failed" };
	}
}

/**
 * Why a stored webhook URL may not be fetched now, as an attempt's error, or null when it may: the destination
 * rule is checked again before every request, since a row may predate it or have been stored under a development
 * setting since turned off (SPEC §8).
 */
export function unsendable(env: Env, url: string): string | null {
	const problem = webhookUrlProblem(url, { allowLocalhost: config(env).webhookAllowLocalhost });
	return problem && `Not sent: ${problem}; set the webhook again (PUT) with an allowed URL`;
}

/** Sends delivery messages; false when the queue refused them (the sweeper sends them once they are overdue). */
async function sendDeliveries(env: Env, events: NewEvent[], delaySeconds?: number): Promise<boolean> {
	if (events.length === 0) return true;
	try {
		await env.WEBHOOK_DELIVERIES.sendBatch(
			events.map((event) => ({
				body: { eventId: event.eventId, jobId: event.jobId } satisfies WebhookMessage,
				...(delaySeconds !== undefined && { delaySeconds }),
			})),
		);
		return true;
	} catch (error) {
		log(env, "warn", { msg: "webhook delivery not sent; left to the sweeper", events: events.length, error: error instanceof Error ? error.name : typeof error });
		return false;
	}
}

/**
 * Looks at the events not yet looked at (an application's, or every one in `db` when no application is named) and
 * decides them: those whose application has a webhook become pending, and their delivery messages are sent; the
 * rest are dropped. Answers how many deliveries it started.
 */
export async function dispatchEvents(env: Env, db: Db, where: { appId: string } | { dueBefore: string }): Promise<number> {
	const { events, epoch } = await newEvents(db, where, EVENTS_PER_LOOK);
	if (events.length === 0) return 0;
	const appIds = [...new Set(events.map((event) => event.appId).filter((appId) => appId !== ""))];
	const hooked = await applicationsWithWebhooks(env.DB, appIds);
	const started = await settleNewEvents(db, events, (event) => hooked.has(event.appId), nowIso());
	// None there: its jobs' ends stop creating events to look at, unless a webhook was set since the look began.
	if ("appId" in where && epoch !== null && !hooked.has(where.appId)) await clearWebhookHint(db, where.appId, epoch);
	await sendDeliveries(env, started);
	return started.length;
}

/** Sends again the deliveries of `db` overdue since before `cutoff` (their message was lost); answers how many. */
export async function redeliverOverdue(env: Env, db: Db, cutoff: string, now: string): Promise<number> {
	const overdue = await overdueDeliveries(db, cutoff, EVENTS_PER_LOOK);
	if (overdue.length === 0 || !(await sendDeliveries(env, overdue))) return 0;
	await markRedelivered(db, overdue, now);
	return overdue.length;
}

/**
 * One delivery attempt of the event named by the message, recorded on its job. A webhook removed (or whose
 * secret no longer opens, or whose URL the destination rule refuses) since the event gives the delivery up at once.
 */
export async function attemptDelivery(env: Env, message: WebhookMessage, nowMs = Date.now()): Promise<"done" | "later"> {
	const db = await jobDatabase(env, message.jobId);
	const job = db ? await pendingDelivery(db, message.jobId, message.eventId) : null;
	// Its application is moving between shards: the attempt is made once it has landed, and recorded there.
	if (job === "moving") return "later";
	if (!db || !job?.event) return "done";
	const event = job.event;
	const webhook = await getWebhook(env.DB, job.appId);
	const secret = webhook ? await openSecret(env.LEARNER_HASH_KEY, job.appId, webhook.sealedSecret) : null;
	// Each of these stays so until the webhook is set again, which a retry cannot wait for.
	const refusal = !webhook
		? "The webhook was removed"
		: !secret
			? "The webhook's signing secret does not open: register the webhook again"
			: unsendable(env, webhook.url);
	if (!webhook || !secret || refusal) {
		await recordAttempt(db, job, { status: "failed", httpStatus: null, error: refusal, dueAt: null });
		return "done";
	}
	const outcome = await postEvent(webhook.url, secret, eventPayload({ ...job, event }), nowMs);
	if (isDelivered(outcome)) {
		await recordAttempt(db, job, { status: "delivered", httpStatus: outcome.status, error: null, dueAt: null });
		return "done";
	}
	const giveUp = nowMs - Date.parse(event.at) >= GIVE_UP_AFTER_MS;
	const delay = webhookRetryDelaySeconds(event.attempts + 1);
	const recorded = await recordAttempt(db, job, {
		status: giveUp ? "failed" : "pending",
		httpStatus: outcome.status,
		error: outcome.error,
		dueAt: giveUp ? null : new Date(nowMs + delay * 1000).toISOString(),
	});
	log(env, "info", { msg: "webhook attempt failed", jobId: job.id, eventId: event.id, status: outcome.status, givenUp: giveUp });
	if (recorded && !giveUp) await sendDeliveries(env, [{ jobId: job.id, appId: job.appId, eventId: event.id }], delay);
	return "done";
}

/** The delivery queue's consumer: attempts each message's delivery, all of a batch at once (receivers differ). */
export async function handleWebhookDeliveries(batch: MessageBatch, env: Env): Promise<void> {
	await Promise.all(
		batch.messages.map(async (message) => {
			const parsed = WebhookMessageSchema.safeParse(message.body);
			if (!parsed.success) {
				log(env, "error", { msg: "invalid webhook message", messageId: message.id });
				message.ack();
				return;
			}
			try {
				if ((await attemptDelivery(env, parsed.data)) === "later") message.retry({ delaySeconds: MOVING_WAIT_SECONDS });
				else message.ack();
			} catch (error) {
				// A database fault: the attempt was not recorded, so it is made again.
				log(env, "error", { msg: "webhook delivery failed", jobId: parsed.data.jobId, error: error instanceof Error ? error.name : typeof error });
				message.retry({ delaySeconds: 30 });
			}
		}),
	);
}
