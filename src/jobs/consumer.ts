import { deferJob, jobHome, markJobFailed, recordJobAttemptError } from "../db/jobs";
import { type Db, nowIso } from "../db/types";
import type { DataRegion } from "../shards";
import { log } from "../log";
import { type JobMessage, JobMessageSchema, enqueue } from "./contract";
import { runMove } from "./move";
import { jobDatabase, jobPlacement } from "./job-database";
import { runRealmErasure } from "./realm-erasure";
import { runExport } from "./export";
import { runRealmExport } from "./realm-export";
import { CHUNK_BOUNDS, JOB_PACE, type RunOutcome, runJob } from "./run";
import { dispatchEvents, handleWebhookDeliveries } from "./webhooks";

/** Retry delay for the nth failed attempt: 5 s doubling, capped at 5 minutes. */
export const retryDelaySeconds = (attempts: number) => Math.min(300, 5 * 2 ** Math.max(0, attempts - 1));

/** Error descriptions kept on the job: the error's kind and first line, which never carry bound values. */
const describe = (error: unknown) =>
	error instanceof Error ? `${error.name}: ${error.message.split("\n")[0]?.slice(0, 200)}` : "Unknown error";

/** How long a job of an application frozen for a move waits before it is tried again (on its new shard). */
export const FROZEN_WAIT_SECONDS = 5;

/** Runs one message's share of its job; what remains to do. */
async function runMessage(env: Env, db: Db, job: JobMessage, region: DataRegion): Promise<RunOutcome> {
	if (job.type === "exportLearnerData") {
		if (jobHome(job.jobId) !== "control") return runExport(env, db, job.jobId, { bounds: CHUNK_BOUNDS, chunks: JOB_PACE.chunksPerMessage, region });
		const outcome = await runRealmExport(env, db, job.jobId);
		if (typeof outcome === "string") return outcome;
		await enqueue(env, job, outcome.waitSeconds);
		return "done";
	}
	if (job.type !== "moveApplication" && job.type !== "deleteRealmLearnerData") {
		return runJob(db, job, { bounds: CHUNK_BOUNDS, chunks: JOB_PACE.chunksPerMessage, exports: env });
	}
	const outcome = job.type === "moveApplication" ? await runMove(env, db, job.jobId) : await runRealmErasure(env, db, job.jobId);
	if (typeof outcome === "string") return outcome;
	await enqueue(env, job, outcome.waitSeconds);
	return "done";
}

/** Work queue: runs each job message, acking it when done and retrying it with backoff when it fails. */
async function handleJobs(batch: MessageBatch, env: Env): Promise<void> {
	for (const message of batch.messages) {
		const parsed = JobMessageSchema.safeParse(message.body);
		if (!parsed.success) {
			// No job id to report against and retrying cannot help: logged (by message id) and dropped.
			log(env, "error", { msg: "invalid job message", messageId: message.id, issues: parsed.error.issues.length });
			message.ack();
			continue;
		}
		const job = parsed.data;
		let db: Db | null = null;
		try {
			const placed = await jobPlacement(env, job.jobId);
			db = placed?.db ?? null;
			if (!placed || !db) {
				log(env, "warn", { msg: "job of an unknown application dropped", messageId: message.id, type: job.type });
				message.ack();
				continue;
			}
			const outcome = await runMessage(env, db, job, placed.region);
			if (outcome === "continue") await enqueue(env, job);
			if (outcome === "wait") await enqueue(env, job, FROZEN_WAIT_SECONDS);
			// A job that ended where its application may have a webhook; realm jobs' ends are looked at every time.
			if (outcome === "ended" || (outcome === "done" && jobHome(job.jobId) === "control")) await announceEnds(env, db, job.jobId);
			log(env, "info", { msg: "job step", jobId: job.jobId, type: job.type, outcome, attempts: message.attempts });
			message.ack();
		} catch (error) {
			const reason = `Attempt ${message.attempts} failed: ${describe(error)}`;
			log(env, "error", { msg: "job step failed", jobId: job.jobId, type: job.type, attempts: message.attempts, reason });
			if (db) await recordJobAttemptError(db, job.jobId, reason).catch(() => undefined);
			message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
		}
	}
}

/**
 * Dead-letter queue: a message lands here once its retries are spent. A learner job is marked failed; an
 * application deletion is never failed, only deferred to the sweeper. If the job cannot be marked, the message is
 * retried (src/db/storage-schema.md, "Dead letters").
 */
async function handleDeadLetters(batch: MessageBatch, env: Env): Promise<void> {
	for (const message of batch.messages) {
		const parsed = JobMessageSchema.safeParse(message.body);
		if (!parsed.success) {
			log(env, "error", { msg: "invalid dead-lettered message", messageId: message.id });
			message.ack();
			continue;
		}
		try {
			const { jobId, type } = parsed.data;
			const db = await jobDatabase(env, jobId);
			if (!db) {
				message.ack();
				continue;
			}
			if (type === "deleteApplication" || type === "moveApplication") {
				await deferJob(db, jobId, "Retries spent; the sweeper sends it again", nowIso());
				log(env, "error", { msg: "job deferred to the sweeper", jobId, type });
			} else if (!(await markJobFailed(db, jobId, "Gave up after repeated failures", nowIso()))) {
				// Its application is moving between shards: the failure is recorded once it has landed.
				message.retry({ delaySeconds: FROZEN_WAIT_SECONDS });
				continue;
			} else {
				log(env, "error", { msg: "job failed", jobId, type });
			}
			await announceEnds(env, db, jobId);
			message.ack();
		} catch (error) {
			log(env, "error", { msg: "could not mark job failed", jobId: parsed.data.jobId, reason: describe(error) });
			message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
		}
	}
}

/**
 * Once a job's message is done, before it is acked: starts the delivery of the events of the jobs that ended (this
 * one, and any other of the application's that its chunks ended, such as an erasure cancelling the learner's
 * updates) to the application's webhook (src/jobs/webhooks.ts). A failure retries the message, which finds the job
 * finished and looks again; an event whose delivery message was lost anyway is sent by the sweeper.
 */
async function announceEnds(env: Env, db: Db, jobId: string): Promise<void> {
	const home = jobHome(jobId);
	if (home === null) return;
	await dispatchEvents(env, db, home === "control" ? { dueBefore: nowIso() } : { appId: home.appId });
}

/** Queue consumer entry: dispatches by queue. */
export async function handleQueue(batch: MessageBatch, env: Env, _ctx: ExecutionContext): Promise<void> {
	if (batch.queue === env.JOBS_DEAD_LETTER_QUEUE) return handleDeadLetters(batch, env);
	if (batch.queue === env.WEBHOOK_QUEUE) return handleWebhookDeliveries(batch, env);
	return handleJobs(batch, env);
}
