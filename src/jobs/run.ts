import {
	type ChunkBounds,
	type ChunkResult,
	runApplicationDeletionChunk,
	runBulkErasureChunk,
	runErasureChunk,
	runUpdateChunk,
} from "../db/job-chunks";
import { type Job, getJobById } from "../db/jobs";
import { retryTransient } from "../db/retry";
import { type Db, nowIso } from "../db/types";
import type { JobMessage } from "./contract";
import { purgeExports } from "./export-objects";

/**
 * How much one chunk may do, and chunks per message. Each chunk is one transaction visiting at most 500
 * registrations and deleting at most 5 000 rows (an erasure takes as many registrations as fit with their tags,
 * at least one, plus the learner's own tags when it completes), well inside D1's 30 s per query. A chunk costs
 * two D1 calls (reading the job, then the chunk's batch), and a message runs at most CHUNKS_PER_MESSAGE chunks
 * before handing on to a continuation message; so a batch of 10 messages makes about 10 * 2 * CHUNKS_PER_MESSAGE
 * D1 calls per invocation (more when transient errors are retried): inside the 1000 queries per invocation that
 * Workers Paid allows, whatever the learner holds.
 */
export const CHUNK_BOUNDS: ChunkBounds = { registrations: 500, rows: 5000 };
export const CHUNKS_PER_MESSAGE = 10;

/**
 * The pace the consumer runs jobs at: chunks per message. An object read at each run, so the whole-service
 * simulation (test/sim) can run jobs one chunk per message and interleave them with everything else.
 */
export const JOB_PACE = { chunksPerMessage: CHUNKS_PER_MESSAGE };

type Step = (db: Db, job: Job, lease: string, bounds: ChunkBounds, now: string) => Promise<ChunkResult>;

/**
 * Realm jobs (moves, realm-wide erasures) and exports, whose chunks write to R2, run elsewhere: src/jobs/move.ts,
 * src/jobs/realm-erasure.ts, src/jobs/export.ts.
 */
type RealmJobType = "moveApplication" | "deleteRealmLearnerData" | "exportLearnerData";

/** How a message is run: chunk bounds, chunks per message, and the export buckets an erasure deletes exports from. */
export interface RunOptions {
	bounds: ChunkBounds;
	chunks: number;
	/** Needed only by an erasure of a learner who has exports (src/jobs/export-objects.ts). */
	exports?: Pick<Env, "EXPORTS" | "EXPORTS_EU">;
}

const STEPS: Record<Exclude<Job["type"], RealmJobType>, Step> = {
	updateLearnerInfo: runUpdateChunk,
	deleteAllLearnerData: runErasureChunk,
	deleteLearnersData: runBulkErasureChunk,
	deleteApplication: runApplicationDeletionChunk,
};

/**
 * What became of a message: nothing more to do; nothing more, and the job ended where its application may have a
 * webhook (its events, and those of jobs its chunk ended, are to be looked at: "ended"); a continuation is needed;
 * or the application is frozen for a move between shards and the job goes on shortly (a continuation after a
 * pause, found on the new shard).
 */
export type RunOutcome = "done" | "ended" | "continue" | "wait";

/** A chunk whose job was found ended under its own lease: ended by the chunk's attempt whose reply was lost. */
const ENDED_UNDER_LEASE: ChunkResult = { claimed: true, completed: true, frozen: false, announce: true };

/**
 * Runs up to CHUNKS_PER_MESSAGE chunks of the job named by the message. A job that is finished, unknown (its
 * application was deleted) or of another type than the message says is "done". Each chunk reads the job and runs
 * under a lease of its own; a transient D1 error repeats both (src/db/storage-schema.md, "Redelivery and
 * retries").
 */
export async function runJob(
	db: Db,
	message: JobMessage,
	options: RunOptions = { bounds: CHUNK_BOUNDS, chunks: JOB_PACE.chunksPerMessage },
): Promise<RunOutcome> {
	// Whether a chunk this message ran may have ended jobs where the application may have a webhook (a bulk erasure
	// ends in its last learner's chunk, and finds itself finished at the next).
	let announce = false;
	for (let chunk = 0; chunk < options.chunks; chunk++) {
		// One lease for every attempt at the chunk: a repeat after a lost reply (retryTransient) that finds the job ended
		// under it knows its first attempt ended it, and announces the end as that attempt would have.
		const lease = crypto.randomUUID();
		const result = await retryTransient(async (): Promise<ChunkResult | null> => {
			const job = await getJobById(db, message.jobId);
			if (!job || job.type !== message.type) return null;
			if (job.type === "moveApplication" || job.type === "deleteRealmLearnerData" || job.type === "exportLearnerData") return null;
			if (job.status === "completed" || job.status === "failed") return job.lease === lease ? ENDED_UNDER_LEASE : null;
			return STEPS[job.type](db, job, lease, options.bounds, nowIso());
		});
		if (result?.frozen) return "wait";
		if (result?.completed) return result.claimed && result.announce ? "ended" : "done";
		// Finished (by this message's last chunk, or before), or another delivery of this message claimed the chunk:
		// it carries the job on.
		if (!result || !result.claimed) return announce ? "ended" : "done";
		announce = result.announce;
		// An erasure completes only once its learner's exports are gone from R2: their objects go now, and the next
		// chunk (this message's, or the next message's) can complete it.
		if (result.exportsToPurge) {
			if (!options.exports) throw new Error("An erasure of a learner with exports needs the export buckets to delete them");
			await purgeExports(options.exports, db, result.exportsToPurge);
		}
	}
	return "continue";
}
