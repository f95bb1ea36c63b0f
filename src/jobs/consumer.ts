import { deferApplicationDeletion, markJobFailed, recordJobAttemptError } from "../db/jobs";
import { nowIso } from "../db/types";
import { log } from "../log";
import { JobMessageSchema, enqueue } from "./contract";
import { runJob } from "./run";

/** Retry delay for the nth failed attempt: 5 s doubling, capped at 5 minutes. */
export const retryDelaySeconds = (attempts: number) => Math.min(300, 5 * 2 ** Math.max(0, attempts - 1));

/** Error descriptions kept on the job: the error's kind and first line, which never carry bound values. */
const describe = (error: unknown) =>
	error instanceof Error ? `${error.name}: ${error.message.split("\n")[0]?.slice(0, 200)}` : "Unknown error";

/** Work queue: runs each job message, acking it when done and retrying it with backoff when it fails. */
async function handleJobs(batch: MessageBatch, env: Env): Promise<void> {
	const db = env.DB.withSession("first-primary");
	for (const message of batch.messages) {
		const parsed = JobMessageSchema.safeParse(message.body);
		if (!parsed.success) {
			// No job id to report against and retrying cannot help: logged (by message id) and dropped.
			log(env, "error", { msg: "invalid job message", messageId: message.id, issues: parsed.error.issues.length });
			message.ack();
			continue;
		}
		const job = parsed.data;
		try {
			const outcome = await runJob(db, job);
			if (outcome === "continue") await enqueue(env, job);
			log(env, "info", { msg: "job step", jobId: job.jobId, type: job.type, outcome, attempts: message.attempts });
			message.ack();
		} catch (error) {
			const reason = `Attempt ${message.attempts} failed: ${describe(error)}`;
			log(env, "error", { msg: "job step failed", jobId: job.jobId, type: job.type, attempts: message.attempts, reason });
			await recordJobAttemptError(db, job.jobId, reason).catch(() => undefined);
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
	const db = env.DB.withSession("first-primary");
	for (const message of batch.messages) {
		const parsed = JobMessageSchema.safeParse(message.body);
		if (!parsed.success) {
			log(env, "error", { msg: "invalid dead-lettered message", messageId: message.id });
			message.ack();
			continue;
		}
		try {
			const { jobId, type } = parsed.data;
			if (type === "deleteApplication") {
				await deferApplicationDeletion(db, jobId, "Retries spent; the sweeper sends it again", nowIso());
				log(env, "error", { msg: "application deletion deferred to the sweeper", jobId, type });
			} else {
				await markJobFailed(db, jobId, "Gave up after repeated failures", nowIso());
				log(env, "error", { msg: "job failed", jobId, type });
			}
			message.ack();
		} catch (error) {
			log(env, "error", { msg: "could not mark job failed", jobId: parsed.data.jobId, reason: describe(error) });
			message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
		}
	}
}

/** Queue consumer entry: dispatches by queue. */
export async function handleQueue(batch: MessageBatch, env: Env, _ctx: ExecutionContext): Promise<void> {
	if (batch.queue === env.JOBS_DEAD_LETTER_QUEUE) return handleDeadLetters(batch, env);
	return handleJobs(batch, env);
}
