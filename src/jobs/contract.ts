import { hmacHex } from "../auth/crypto";
import { markUnsent } from "../db/job-sweeps";
import { JOB_TYPES, jobHome } from "../db/jobs";
import type { Db } from "../db/types";
import { log } from "../log";
import * as z from "zod/mini";

/**
 * The one queue message contract. Messages carry ids only, never personal data: everything a job needs (the
 * learner, the update payload, its progress) lives in its `jobs` row, where an erasure can reach it
 * (src/db/storage-schema.md, "Messages"). Consumers re-validate each body with this schema, since messages
 * outlive deploys.
 */
export const JobMessageSchema = z.object({
	type: z.enum(JOB_TYPES),
	// A shard job's id names its application (src/db/jobs.ts, newJobId), which finds its shard.
	jobId: z.string().check(z.refine((id) => jobHome(id) !== null)),
});
export type JobMessage = z.infer<typeof JobMessageSchema>;

/** Sends a job message (optionally delayed, for continuations and backoff). */
export async function enqueue(env: Pick<Env, "LEARNER_JOBS">, message: JobMessage, delaySeconds?: number): Promise<void> {
	await env.LEARNER_JOBS.send(message, delaySeconds === undefined ? undefined : { delaySeconds });
}

/**
 * Sends the message of a job just recorded. The job is durable already, so a failed send does not fail the
 * request: the job is marked unsent and the next sweep (at most 5 minutes away) sends it.
 */
export async function dispatch(env: Pick<Env, "LEARNER_JOBS" | "LOG_LEVEL">, db: Db, message: JobMessage): Promise<void> {
	try {
		await enqueue(env, message);
	} catch (error) {
		const kind = error instanceof Error ? error.name : typeof error;
		log(env, "warn", { msg: "job message not sent; left to the sweeper", jobId: message.jobId, type: message.type, error: kind });
		// If even this fails, the job's last attended time still makes it stale for the sweeper within minutes.
		await markUnsent(db, message.jobId).catch(() => undefined);
	}
}

/** Where a job's status can be read. */
export const jobLocation = (jobId: string) => `/api/v2/jobs/${jobId}`;

/**
 * The keyed hash (HMAC-SHA-256) that stands for a learner in job records: jobs of one learner can be found
 * by it, and it survives an erasure without naming the learner. Keyed by application too, so the same
 * learner id in two applications gives unrelated hashes.
 */
export const learnerHash = (env: Pick<Env, "LEARNER_HASH_KEY">, appId: string, learnerId: string) =>
	hmacHex(env.LEARNER_HASH_KEY, `${appId}\n${learnerId}`);
