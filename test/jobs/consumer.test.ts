import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { jobHome } from "../../src/db/jobs";
import { retryDelaySeconds } from "../../src/jobs/consumer";
import type { JobMessage } from "../../src/jobs/contract";
import { envWith } from "../support/client";
import { d1Binding, everyD1Binding } from "../support/d1-bindings";
import { completedJob, getJob, jobDetails, logsOf } from "../support/expect";
import { createApp, enrol, learnerOn, type TestApp, uniqueValue } from "../support/fixtures";
import { acceptUpdate, deliver, type Delivery } from "../support/queue";
import { registrationCount, shardOf } from "../support/seed";

const OUTAGE = "D1_ERROR: simulated outage";

/**
 * D1 bindings that fail for one job: on every shard, every db.batch() holding a statement bound with that job's id
 * throws (a job's chunk is one batch), and with `everything` so does any single statement bound with it. Other
 * statements, other jobs, and the control database (where the job's application is placed) reach the real
 * databases. The test seam is these bindings, passed in the env.
 */
function failingFor(jobId: string, scope: "chunks" | "everything" = "chunks"): Partial<Env> {
	const fail = () => Promise.reject(new Error(OUTAGE));
	const over = (db: D1Database | D1DatabaseSession) => {
		const tainted = new WeakSet<D1PreparedStatement>();
		const bindable = (statement: D1PreparedStatement): D1PreparedStatement =>
			new Proxy(statement, {
				get: (target, property) => {
					if (property === "bind") {
						return (...values: unknown[]) => {
							const bound = target.bind(...values);
							if (!values.includes(jobId)) return bound;
							tainted.add(bound);
							if (scope === "chunks") return bound;
							const failing = new Proxy(bound, {
								get: (inner, name) =>
									["first", "run", "all", "raw"].includes(String(name)) ? fail : Reflect.get(inner, name, inner),
							});
							tainted.add(failing);
							return failing;
						};
					}
					// D1's statement methods use internal state, so they run on the real statement.
					const value: unknown = Reflect.get(target, property, target);
					return typeof value === "function" ? value.bind(target) : value;
				},
			});
		return {
			prepare: (sql: string) => bindable(db.prepare(sql)),
			batch: <T>(statements: D1PreparedStatement[]) =>
				statements.some((statement) => tainted.has(statement)) ? fail() : db.batch<T>(statements),
		};
	};
	return everyD1Binding((database) => d1Binding(database, over), { control: false }) as Partial<Env>;
}

/** The shard holding a job of an application (its id names the application). */
async function shardOfJob(jobId: string): Promise<D1Database> {
	const home = jobHome(jobId);
	if (home === null || home === "control") throw new Error(`${jobId} is not an application's job`);
	return shardOf(home.appId);
}

/** The job's recorded error, read straight from D1 (GET /jobs shows it only once the job has finished). */
async function recordedError(jobId: string): Promise<string | null> {
	const row = await (await shardOfJob(jobId)).prepare("SELECT error FROM jobs WHERE id = ?1").bind(jobId).first<{ error: string | null }>();
	return row?.error ?? null;
}

/** A learner with one registration, and an update of its email accepted (not delivered). */
async function pendingUpdate(
	app: TestApp,
): Promise<{ learnerId: string; registrationId: string; email: string; message: JobMessage }> {
	const learnerId = uniqueValue("learner");
	const registrationId = await enrol(app, { id: learnerId, email: "before@example.com" });
	const email = `${uniqueValue("after")}@example.com`;
	const message = await acceptUpdate(app, { id: learnerId, email });
	return { learnerId, registrationId, email, message };
}

afterEach(() => {
	vi.restoreAllMocks();
});

describe("queue consumer (learner-jobs)", () => {
	it("runs the job a message names and acks the message", async () => {
		const app = await createApp();
		const { registrationId, learnerId, email, message } = await pendingUpdate(app);

		const { result, ids } = await deliver([message]);

		expect(result.explicitAcks).toEqual(ids);
		expect(result.retryMessages).toEqual([]);
		expect(await learnerOn(app, registrationId)).toEqual({ id: learnerId, email });
		await completedJob(app.auth, message, { registrationsAffected: 1 });
	});

	it("acks a redelivered message whose job has finished, changing nothing", async () => {
		const app = await createApp();
		const { registrationId, learnerId, message } = await pendingUpdate(app);
		await deliver([message]);
		const later = await acceptUpdate(app, { id: learnerId, email: "later@example.com" });
		await deliver([later]);
		const before = await getJob(app.auth, message.jobId);

		const { result, ids } = await deliver([message, message]);

		expect(result.explicitAcks).toEqual(ids);
		expect(result.retryMessages).toEqual([]);
		expect(await learnerOn(app, registrationId)).toEqual({ id: learnerId, email: "later@example.com" });
		expect(await getJob(app.auth, message.jobId)).toEqual(before);
	});

	it("acks a message whose job is unknown (its application was deleted)", async () => {
		const app = await createApp();
		const { result, ids } = await deliver([
			// A realm job's id, an application's job on its shard, and a job of an application that never existed.
			{ type: "deleteAllLearnerData", jobId: crypto.randomUUID() },
			{ type: "deleteAllLearnerData", jobId: `${app.appId}.${crypto.randomUUID()}` },
			{ type: "deleteAllLearnerData", jobId: `${uniqueValue("no-such-app")}.${crypto.randomUUID()}` },
		]);

		expect(result.explicitAcks).toEqual(ids);
		expect(result.retryMessages).toEqual([]);
	});

	it("acks a message naming a job of another type, leaving that job alone", async () => {
		const app = await createApp();
		const { registrationId, learnerId, message } = await pendingUpdate(app);

		const { result, ids } = await deliver([{ type: "deleteAllLearnerData", jobId: message.jobId }]);

		expect(result.explicitAcks).toEqual(ids);
		expect(await registrationCount(app.appId, learnerId)).toBe(1);
		expect(await learnerOn(app, registrationId)).toEqual({ id: learnerId, email: "before@example.com" });
		expect((await getJob(app.auth, message.jobId)).status).toBe("queued");
	});

	it("acks and logs a message whose body is not a job message, without retrying it", async () => {
		const bodies = [
			"not json",
			{ type: "renameLearner", jobId: crypto.randomUUID() },
			{ type: "updateLearnerInfo", jobId: "1" },
		];
		let delivered: Delivery | undefined;

		const logs = await logsOf(async () => {
			delivered = await deliver(bodies);
		});

		expect(delivered?.result.explicitAcks).toEqual(delivered?.ids);
		expect(delivered?.result.retryMessages).toEqual([]);
		expect(logs.filter((line) => line.msg === "invalid job message")).toEqual(
			(delivered?.ids ?? []).map((messageId) => ({ level: "error", msg: "invalid job message", messageId, issues: 1 })),
		);
	});

	it("retries with a growing delay while D1 fails, recording why on the job", async () => {
		const app = await createApp();
		const { registrationId, learnerId, message } = await pendingUpdate(app);
		const outage = envWith(failingFor(message.jobId));

		for (const [attempts, delaySeconds] of [
			[1, 5],
			[2, 10],
			[3, 20],
			[7, 300],
		] as const) {
			const { result, ids, retries } = await deliver([message], { env: outage, attempts });
			expect(result.explicitAcks).toEqual([]);
			expect(result.retryMessages).toEqual([{ msgId: ids[0] }]);
			expect(retries).toEqual([{ msgId: ids[0], delaySeconds }]);
			expect(await recordedError(message.jobId)).toBe(`Attempt ${attempts} failed: Error: ${OUTAGE}`);
		}
		expect(await learnerOn(app, registrationId)).toEqual({ id: learnerId, email: "before@example.com" });
		expect((await getJob(app.auth, message.jobId)).status).toBe("queued");
	});

	it("finishes the job once D1 is back, without the failed attempt's error", async () => {
		const app = await createApp();
		const { registrationId, learnerId, email, message } = await pendingUpdate(app);
		await deliver([message], { env: envWith(failingFor(message.jobId)) });

		const { result, ids } = await deliver([message], { attempts: 2 });

		expect(result.explicitAcks).toEqual(ids);
		expect(await learnerOn(app, registrationId)).toEqual({ id: learnerId, email });
		await completedJob(app.auth, message, { registrationsAffected: 1 });
	});

	it("logs a failed attempt by job id and reason, never with the learner's data", async () => {
		const app = await createApp();
		const { learnerId, email, message } = await pendingUpdate(app);

		const logs = await logsOf(() => deliver([message], { env: envWith(failingFor(message.jobId)) }));

		expect(logs).toEqual([
			{
				level: "error",
				msg: "job step failed",
				jobId: message.jobId,
				type: "updateLearnerInfo",
				attempts: 1,
				reason: `Attempt 1 failed: Error: ${OUTAGE}`,
			},
		]);
		expect(JSON.stringify(logs)).not.toContain(learnerId);
		expect(JSON.stringify(logs)).not.toContain(email);
	});

	it("backs off 5 s doubling per attempt, capped at 5 minutes", () => {
		expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map(retryDelaySeconds)).toEqual([5, 10, 20, 40, 80, 160, 300, 300, 300]);
	});
});

describe("dead-letter consumer (learner-jobs-dlq)", () => {
	it("marks a job that kept failing as failed, with its last error, while the rest of its batch completes", async () => {
		const app = await createApp();
		const first = await pendingUpdate(app);
		const doomed = await pendingUpdate(app);
		const last = await pendingUpdate(app);
		const outage = envWith(failingFor(doomed.message.jobId));

		// wrangler.toml: max_retries = 5, so six deliveries in all before the message is dead-lettered.
		const { result, ids, retries } = await deliver([first.message, doomed.message, last.message], { env: outage });
		expect(result.explicitAcks).toEqual([ids[0], ids[2]]);
		expect(result.retryMessages).toEqual([{ msgId: ids[1] }]);
		expect(retries).toEqual([{ msgId: ids[1], delaySeconds: 5 }]);
		for (let attempts = 2; attempts <= 6; attempts++) {
			const retried = await deliver([doomed.message], { env: outage, attempts });
			expect(retried.result.retryMessages).toEqual([{ msgId: retried.ids[0] }]);
			expect(retried.retries).toEqual([{ msgId: retried.ids[0], delaySeconds: retryDelaySeconds(attempts) }]);
		}
		const dead = await deliver([doomed.message], { queue: env.JOBS_DEAD_LETTER_QUEUE, attempts: 1 });

		expect(dead.result.explicitAcks).toEqual(dead.ids);
		expect(dead.result.retryMessages).toEqual([]);
		expect(await getJob(app.auth, doomed.message.jobId)).toEqual({
			id: doomed.message.jobId,
			type: "updateLearnerInfo",
			status: "failed",
			createdDate: expect.any(String),
			completedDate: expect.any(String),
			...jobDetails({ jobId: doomed.message.jobId, type: "updateLearnerInfo" }),
			registrationsAffected: 0,
			message: `Gave up after repeated failures. Last error: Attempt 6 failed: Error: ${OUTAGE}`,
		});
		expect(await learnerOn(app, doomed.registrationId)).toEqual({ id: doomed.learnerId, email: "before@example.com" });
		for (const done of [first, last]) {
			expect((await getJob(app.auth, done.message.jobId)).status).toBe("completed");
			expect(await learnerOn(app, done.registrationId)).toEqual({ id: done.learnerId, email: done.email });
		}
	});

	it("drops the failed job's learner id and payload: a failed job is never resumed", async () => {
		const app = await createApp();
		const { message } = await pendingUpdate(app);

		await deliver([message], { queue: env.JOBS_DEAD_LETTER_QUEUE });

		const row = await (await shardOf(app.appId)).prepare("SELECT status, learner_id, payload, error FROM jobs WHERE id = ?1")
			.bind(message.jobId)
			.first();
		expect(row).toEqual({ status: "failed", learner_id: null, payload: null, error: "Gave up after repeated failures" });
		const redelivered = await deliver([message]);
		expect(redelivered.result.explicitAcks).toEqual(redelivered.ids);
		expect((await getJob(app.auth, message.jobId)).status).toBe("failed");
	});

	it("leaves a job that finished in the meantime as it was", async () => {
		const app = await createApp();
		const { message } = await pendingUpdate(app);
		await deliver([message]);
		const before = await getJob(app.auth, message.jobId);

		const { result, ids } = await deliver([message], { queue: env.JOBS_DEAD_LETTER_QUEUE });

		expect(result.explicitAcks).toEqual(ids);
		expect(await getJob(app.auth, message.jobId)).toEqual(before);
		expect(before.status).toBe("completed");
	});

	it("retries a dead-lettered message when its job cannot be marked failed, so nothing is dropped", async () => {
		const app = await createApp();
		const { message } = await pendingUpdate(app);
		const outage = envWith(failingFor(message.jobId, "everything"));

		const { result, ids, retries } = await deliver([message], { env: outage, queue: env.JOBS_DEAD_LETTER_QUEUE, attempts: 2 });

		expect(result.explicitAcks).toEqual([]);
		expect(result.retryMessages).toEqual([{ msgId: ids[0] }]);
		expect(retries).toEqual([{ msgId: ids[0], delaySeconds: 10 }]);
		expect((await getJob(app.auth, message.jobId)).status).toBe("queued");
	});

	it("acks and logs a dead-lettered message whose body is not a job message", async () => {
		let delivered: Delivery | undefined;

		const logs = await logsOf(async () => {
			delivered = await deliver([{ jobId: "nothing" }], { queue: env.JOBS_DEAD_LETTER_QUEUE });
		});

		expect(delivered?.result.explicitAcks).toEqual(delivered?.ids);
		expect(logs).toEqual([{ level: "error", msg: "invalid dead-lettered message", messageId: delivered?.ids[0] }]);
	});
});
