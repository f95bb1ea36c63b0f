import { type QueueResult, createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, vi } from "vitest";
import worker from "../../src/index";
import { type JobMessage, JobMessageSchema } from "../../src/jobs/contract";
import { apiRequest, fetchWithBindings } from "./client";
import { jobIdOf } from "./expect";
import { type LearnerFields, MANAGEMENT, type TestApp } from "./fixtures";

/**
 * The queue, both ends. Sending: env.LEARNER_JOBS is spied on with vi.spyOn, as workers-sdk's queue fixtures do,
 * so a test keeps what the Worker sends (or makes the send fail) instead of Miniflare delivering it by itself,
 * racing the test. Delivering: the Worker's queue handler gets a batch from createMessageBatch, and
 * getQueueResult tells what it acked and retried.
 */

/** The work queue's name (wrangler.toml); the dead-letter queue's is env.JOBS_DEAD_LETTER_QUEUE. */
export const WORK_QUEUE = "learner-jobs";

/** A message the Worker sent to LEARNER_JOBS. */
export interface SentMessage {
	body: unknown;
	delaySeconds?: number;
}

const SEND_RESPONSE = { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };

/**
 * Spies on env.LEARNER_JOBS's send and sendBatch, handing each message the Worker sends (alone or in a batch)
 * to `send` instead of the queue, until the returned function restores the binding. The Worker reads the same
 * binding however it is called (call(), fetchWithBindings(), its queue or scheduled handler with env or
 * envWith()). One spy at a time: spying on a spied method shares the spy, and restoring either restores both.
 */
export function stubSends(send: (message: SentMessage) => Promise<void>): () => void {
	const queue = env.LEARNER_JOBS;
	if (vi.isMockFunction(queue.send)) throw new Error("env.LEARNER_JOBS is already spied on: restore that spy first");
	const message = (body: unknown, delaySeconds: number | undefined): SentMessage =>
		delaySeconds === undefined ? { body } : { body, delaySeconds };
	const single = vi.spyOn(queue, "send").mockImplementation(async (body, options) => {
		await send(message(body, options?.delaySeconds));
		return SEND_RESPONSE;
	});
	const batch = vi.spyOn(queue, "sendBatch").mockImplementation(async (messages, options) => {
		for (const entry of messages) await send(message(entry.body, entry.delaySeconds ?? options?.delaySeconds));
		return SEND_RESPONSE;
	});
	return () => {
		single.mockRestore();
		batch.mockRestore();
	};
}

/** Runs `work`, keeping what the Worker sends meanwhile instead of queueing it; answers both. */
export async function sentDuring<T>(work: () => Promise<T>): Promise<{ result: T; sent: SentMessage[] }> {
	const sent: SentMessage[] = [];
	const restore = stubSends(async (message) => {
		sent.push(message);
	});
	try {
		return { result: await work(), sent };
	} finally {
		restore();
	}
}

/** Runs `work` with every send failing, as when the queue is unreachable after the job row was written. */
export async function withSendsFailing<T>(work: () => Promise<T>): Promise<T> {
	const restore = stubSends(async () => {
		throw new Error("Queue send failed: Network connection lost.");
	});
	try {
		return await work();
	} finally {
		restore();
	}
}

/**
 * Calls the Worker with its sends kept: a job is accepted and durably recorded as usual, but its message is
 * returned to the test instead of being delivered by Miniflare.
 */
export async function callCapturing(
	method: string,
	path: string,
	options: { auth: string; body?: unknown },
): Promise<{ response: Response; sent: SentMessage[] }> {
	const { result: response, sent } = await sentDuring(() => fetchWithBindings(apiRequest(method, path, options), {}));
	return { response, sent };
}

/** Accepts a job through its route without delivering it, asserting the 204 and the one message sent. */
async function acceptJob(type: JobMessage["type"], method: string, path: string, options: { auth: string; body?: unknown }) {
	const { response, sent } = await callCapturing(method, path, options);
	expect(response.status).toBe(204);
	expect(sent).toEqual([{ body: { type, jobId: jobIdOf(response) } }]);
	return JobMessageSchema.parse(sent[0]?.body);
}

/** Accepts an update through the route without delivering it; returns its queue message. */
export const acceptUpdate = (app: TestApp, learner: LearnerFields): Promise<JobMessage> =>
	acceptJob("updateLearnerInfo", "POST", `/learner/${encodeURIComponent(learner.id)}/updateInfo`, { auth: app.auth, body: learner });

/** Accepts an erasure through the route without delivering it; returns its queue message. */
export const acceptErasure = (app: TestApp, learnerId: string, userEmail: string): Promise<JobMessage> =>
	acceptJob(
		"deleteAllLearnerData",
		"POST",
		`/learner/${encodeURIComponent(learnerId)}/delete-information?userEmail=${encodeURIComponent(userEmail)}`,
		{ auth: app.auth },
	);

/** Accepts an export through its route without delivering it; returns its queue message. */
export const acceptExport = (app: TestApp, learnerId: string, userEmail: string): Promise<JobMessage> =>
	acceptJob("exportLearnerData", "POST", `/learner/${encodeURIComponent(learnerId)}/export?userEmail=${encodeURIComponent(userEmail)}`, {
		auth: app.auth,
	});

/** Accepts an application's deletion (DELETE /appManagement/applications/{id}) without delivering it. */
export const acceptApplicationDeletion = (appId: string): Promise<JobMessage> =>
	acceptJob("deleteApplication", "DELETE", `/appManagement/applications/${appId}`, { auth: MANAGEMENT });

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
 * sends, one at a time, asserting that every delivery is acked. `env` replaces the consumer's bindings (a
 * recording D1, say); `attempts` is every delivery's attempt number; `limit`, the most messages a job that ends may
 * take (a job that never ends then fails the test at once instead of running it to its timeout). Answers how many
 * messages were delivered.
 */
export async function drain(message: JobMessage, options: { env?: Env; attempts?: number; limit?: number } = {}): Promise<number> {
	let pending: unknown[] = [message];
	let delivered = 0;
	while (pending.length > 0) {
		if (options.limit !== undefined && delivered >= options.limit) throw new Error(`drain: the job still sends messages after ${delivered}; it does not end`);
		const batch = pending;
		const { result: delivery, sent } = await sentDuring(() => deliver(batch, options));
		expect(delivery.result.explicitAcks).toEqual(delivery.ids);
		expect(delivery.result.retryMessages).toEqual([]);
		delivered += batch.length;
		pending = sent.map((next) => next.body);
	}
	return delivered;
}
