import { type ChunkResult, runApplicationDeletionChunk, runErasureChunk, runUpdateChunk } from "../db/job-steps";
import { type Job, getJobById } from "../db/jobs";
import { type Db, nowIso } from "../db/types";
import type { JobMessage } from "./contract";

/**
 * Rows per chunk, and chunks per message. Each chunk is one D1 call (one transaction) touching at most
 * CHUNK_SIZE registrations, well inside D1's 30 s per query; a message runs at most CHUNKS_PER_MESSAGE of
 * them and then hands on to a continuation message, so with a batch of 10 messages one invocation makes
 * about 10 * (CHUNKS_PER_MESSAGE + 1) D1 calls: far inside the 1000 queries per invocation that Workers
 * Paid allows, whatever the learner's size.
 */
export const CHUNK_SIZE = 500;
export const CHUNKS_PER_MESSAGE = 10;

const STEPS: Record<Job["type"], (db: Db, job: Job, lease: string, chunkSize: number, now: string) => Promise<ChunkResult>> = {
	updateLearnerInfo: runUpdateChunk,
	deleteAllLearnerData: runErasureChunk,
	deleteApplication: runApplicationDeletionChunk,
};

/** What became of a message: nothing more to do, or a continuation is needed. */
export type RunOutcome = "done" | "continue";

/**
 * Runs up to CHUNKS_PER_MESSAGE chunks of the job named by the message. Idempotent: a job that is finished,
 * unknown (its application was deleted) or of another type than the message says is "done".
 */
export async function runJob(db: Db, message: JobMessage, options = { chunkSize: CHUNK_SIZE, chunks: CHUNKS_PER_MESSAGE }): Promise<RunOutcome> {
	for (let chunk = 0; chunk < options.chunks; chunk++) {
		const job = await getJobById(db, message.jobId);
		if (!job || job.type !== message.type || job.status === "completed" || job.status === "failed") return "done";
		const result = await STEPS[job.type](db, job, crypto.randomUUID(), options.chunkSize, nowIso());
		// Another delivery of this message claimed the chunk: it carries the job on.
		if (!result.claimed || result.completed) return "done";
	}
	return "continue";
}
