import { type QueueResult, createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import worker from "../../src/index";
import { type JobMessage, JobMessageSchema } from "../../src/jobs/contract";
import { MANAGEMENT, type TestApp, apiRequest, call, fetchWithBindings } from "../helpers";

/** The work queue's name (wrangler.toml); the dead-letter queue's is env.JOBS_DEAD_LETTER_QUEUE. */
export const WORK_QUEUE = "learner-jobs";

/** A value no other test uses, so that a scan of the database can tell it apart. */
export const uniqueValue = (label: string) => `${label}-${crypto.randomUUID()}`;

/** The job id in a Location header (`/api/v2/jobs/{jobId}`), asserting its shape. */
export function jobIdOf(response: Response): string {
	const location = response.headers.get("Location") ?? "";
	expect(location).toMatch(/^\/api\/v2\/jobs\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
	return location.slice("/api/v2/jobs/".length);
}

export interface LearnerFields {
	id: string;
	email?: string | null;
	firstName?: string | null;
	lastName?: string | null;
}

let serial = 0;

/** Creates a registration naming the learner (which brings the learner into existence); returns its id. */
export async function enrol(app: TestApp, learner: LearnerFields, extra: Record<string, unknown> = {}): Promise<string> {
	const registrationId = uniqueValue(`registration-${++serial}`);
	const response = await call("POST", "/registrations", {
		auth: app.auth,
		body: { courseId: "course-1", registrationId, learner, ...extra },
	});
	expect(response.status).toBe(204);
	return registrationId;
}

/** The learner as GET /registrations/{id} shows it on that registration. */
export async function learnerOn(app: TestApp, registrationId: string): Promise<Record<string, unknown>> {
	const response = await call("GET", `/registrations/${encodeURIComponent(registrationId)}`, { auth: app.auth });
	expect(response.status).toBe(200);
	const body = (await response.json()) as { learner: Record<string, unknown> };
	return body.learner;
}

/** How many registrations of the application name the learner, counted in D1. */
export async function registrationCount(appId: string, learnerId: string): Promise<number> {
	const row = await env.DB.prepare("SELECT count(*) AS n FROM registrations WHERE app_id = ?1 AND learner_id = ?2")
		.bind(appId, learnerId)
		.first<{ n: number }>();
	return row?.n ?? 0;
}

export interface JobBody {
	id: string;
	type: string;
	status: string;
	createdDate: string;
	completedDate?: string;
	registrationsAffected: number;
	tagsRemoved?: number;
	message?: string;
}

/** GET /jobs/{jobId}, asserting the 200. */
export async function getJob(auth: string, jobId: string): Promise<JobBody> {
	const response = await call("GET", `/jobs/${jobId}`, { auth });
	expect(response.status).toBe(200);
	return (await response.json()) as JobBody;
}

/**
 * Polls GET /jobs/{jobId} until the job has finished. Miniflare delivers what the Worker sends to its own
 * queue handler, batching for up to max_batch_timeout (1 s), so a small job finishes within a few seconds.
 */
export async function waitForJob(auth: string, jobId: string, timeoutMs = 20_000): Promise<JobBody> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const job = await getJob(auth, jobId);
		if (job.status === "completed" || job.status === "failed") return job;
		if (Date.now() > deadline) throw new Error(`Job ${jobId} still ${job.status} after ${timeoutMs} ms`);
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}

/** A message sent to the captured queue. */
export interface SentMessage {
	body: unknown;
	delaySeconds?: number;
}

/**
 * Stands in for the LEARNER_JOBS binding: keeps what the Worker sends instead of queueing it, so the test
 * decides when, in what order and how often each message is delivered (Miniflare would otherwise deliver it
 * by itself, racing the test).
 */
export function capturedQueue(): { binding: Queue; sent: SentMessage[] } {
	const sent: SentMessage[] = [];
	const binding = {
		send: async (body: unknown, options?: QueueSendOptions) => {
			sent.push(options?.delaySeconds === undefined ? { body } : { body, delaySeconds: options.delaySeconds });
			return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
		},
		sendBatch: async () => {
			throw new Error("sendBatch is not used by the Worker");
		},
	};
	// The Worker only ever calls send(); the rest of the Queue interface is never reached.
	return { binding: binding as unknown as Queue, sent };
}

/** The test environment with some bindings replaced. */
export const envWith = (overrides: Partial<Env>): Env => ({ ...env, ...overrides });

/**
 * Calls the Worker's fetch handler with LEARNER_JOBS captured: the job is accepted and durably recorded as
 * usual, but its message is returned to the test instead of being delivered by Miniflare.
 */
export async function callCapturing(
	method: string,
	path: string,
	options: { auth: string; body?: unknown },
): Promise<{ response: Response; sent: SentMessage[] }> {
	const queue = capturedQueue();
	const response = await fetchWithBindings(apiRequest(method, path, options), { LEARNER_JOBS: queue.binding });
	return { response, sent: queue.sent };
}

/** Accepts an update through the route without delivering it; returns its queue message. */
export async function acceptUpdate(app: TestApp, learner: LearnerFields): Promise<JobMessage> {
	const { response, sent } = await callCapturing("POST", `/learner/${encodeURIComponent(learner.id)}/updateInfo`, {
		auth: app.auth,
		body: learner,
	});
	expect(response.status).toBe(204);
	expect(sent).toEqual([{ body: { type: "updateLearnerInfo", jobId: jobIdOf(response) } }]);
	return JobMessageSchema.parse(sent[0]?.body);
}

/** Accepts an erasure through the route without delivering it; returns its queue message. */
export async function acceptErasure(app: TestApp, learnerId: string, userEmail: string): Promise<JobMessage> {
	const path = `/learner/${encodeURIComponent(learnerId)}/delete-information?userEmail=${encodeURIComponent(userEmail)}`;
	const { response, sent } = await callCapturing("POST", path, { auth: app.auth });
	expect(response.status).toBe(204);
	expect(sent).toEqual([{ body: { type: "deleteAllLearnerData", jobId: jobIdOf(response) } }]);
	return JobMessageSchema.parse(sent[0]?.body);
}

/** A realm user with that role, allowed (owner, admin) or not (member) to request erasures. */
export async function realmUser(role: "owner" | "admin" | "member"): Promise<string> {
	const email = `${uniqueValue(role)}@example.com`;
	const response = await call("PUT", `/appManagement/users/${encodeURIComponent(email)}`, {
		auth: MANAGEMENT,
		body: { role },
	});
	expect(response.status).toBe(204);
	return email;
}

let messageSerial = 0;

/** What the handler did with a batch: getQueueResult's ack/retry state, and the delay each retry asked for. */
export interface Delivery {
	result: QueueResult;
	/** Message ids, `m<n>`, in body order. */
	ids: string[];
	/** Every message.retry() call, in order (getQueueResult reports retried ids but drops their delays). */
	retries: { msgId: string; delaySeconds?: number }[];
}

/** Delivers the bodies to the Worker's queue handler as one batch of `queue`, each with the given attempt number. */
export async function deliver(
	bodies: unknown[],
	options: { env?: Env; queue?: string; attempts?: number } = {},
): Promise<Delivery> {
	const messages = bodies.map((body) => ({
		id: `m${++messageSerial}`,
		timestamp: new Date(),
		attempts: options.attempts ?? 1,
		body,
	}));
	const batch = createMessageBatch(options.queue ?? WORK_QUEUE, messages);
	const retries: Delivery["retries"] = [];
	for (const message of batch.messages) {
		const retry = message.retry.bind(message);
		Object.defineProperty(message, "retry", {
			value: (retryOptions?: QueueRetryOptions) => {
				const delaySeconds = retryOptions?.delaySeconds;
				retries.push(delaySeconds === undefined ? { msgId: message.id } : { msgId: message.id, delaySeconds });
				retry(retryOptions);
			},
		});
	}
	const ctx = createExecutionContext();
	await worker.queue(batch, options.env ?? env, ctx);
	return { result: await getQueueResult(batch, ctx), ids: messages.map((message) => message.id), retries };
}

/**
 * Runs a job to completion as the queue would: delivers its message, then each continuation the consumer
 * sends, one at a time. Answers how many messages were delivered.
 */
export async function drain(message: JobMessage): Promise<number> {
	let pending: unknown[] = [message];
	let delivered = 0;
	while (pending.length > 0) {
		const queue = capturedQueue();
		const { result, ids } = await deliver(pending, { env: envWith({ LEARNER_JOBS: queue.binding }) });
		expect(result.explicitAcks).toEqual(ids);
		expect(result.retryMessages).toEqual([]);
		delivered += pending.length;
		pending = queue.sent.map((sent) => sent.body);
	}
	return delivered;
}

/**
 * Gives the learner `count` registrations, each with one registration tag (`<label>-tag`), in two statements
 * straight in D1: one HTTP call per registration would take minutes.
 */
export async function seedLearnerRegistrations(appId: string, learnerId: string, count: number, label: string): Promise<void> {
	const now = new Date().toISOString();
	await env.DB.batch([
		env.DB.prepare(
			`INSERT INTO registrations (app_id, id, course_id, learner_id, learner_email, learner_first_name, learner_last_name,
			   xapi_registration_id, tag_count, created_at, updated_at)
			 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?3)
			 SELECT ?1, ?2 || '-registration-' || i, 'course-' || ?5, ?2, 'before@example.com', 'Before', 'Before',
			   lower(hex(randomblob(16))), 1, ?4, ?4
			 FROM n`,
		).bind(appId, learnerId, count, now, label),
		env.DB.prepare(
			`INSERT INTO registration_tags (app_id, registration_id, tag)
			 SELECT app_id, id, ?3 || '-tag' FROM registrations WHERE app_id = ?1 AND learner_id = ?2 ORDER BY pk`,
		).bind(appId, learnerId, label),
	]);
}
