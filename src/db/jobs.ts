import type { JobType } from "../jobs/contract";
import { fenceAppStorage } from "./app-storage";
import { retryTransient } from "./retry";
import type { Db } from "./types";

/** Advances the job clock; run it in the same batch, just before the INSERT that takes NEXT_SEQ. */
export const TICK_JOB_CLOCK = "UPDATE job_clock SET seq = seq + 1 WHERE id = 1";
/** The job clock's current value: the seq of the newest accepted job (migrations/0001: job_clock). */
export const JOB_CLOCK = "(SELECT seq FROM job_clock WHERE id = 1)";

export type JobStatus = "queued" | "running" | "completed" | "failed";

export interface Job {
	id: string;
	seq: number;
	appId: string;
	type: JobType;
	status: JobStatus;
	learnerId: string | null;
	learnerHash: string | null;
	payload: string | null;
	requestedBy: string | null;
	cursor: number;
	position: number;
	lease: string | null;
	registrationsAffected: number;
	tagsRemoved: number;
	error: string | null;
	createdAt: string;
	startedAt: string | null;
	completedAt: string | null;
	/** When a worker or the sweeper last attended to it while unfinished (null: its message is yet to be sent). */
	touchedAt: string | null;
	/** How many times the sweeper re-sent its message. */
	resends: number;
}

export interface JobRow {
	id: string;
	seq: number;
	app_id: string;
	type: JobType;
	status: JobStatus;
	learner_id: string | null;
	learner_hash: string | null;
	payload: string | null;
	requested_by: string | null;
	cursor: number;
	position: number;
	lease: string | null;
	registrations_affected: number;
	tags_removed: number;
	error: string | null;
	created_at: string;
	started_at: string | null;
	completed_at: string | null;
	touched_at: string | null;
	resends: number;
}

/** A jobs row as a Job. */
export const toJob = (row: JobRow): Job => ({
	id: row.id,
	seq: row.seq,
	appId: row.app_id,
	type: row.type,
	status: row.status,
	learnerId: row.learner_id,
	learnerHash: row.learner_hash,
	payload: row.payload,
	requestedBy: row.requested_by,
	cursor: row.cursor,
	position: row.position,
	lease: row.lease,
	registrationsAffected: row.registrations_affected,
	tagsRemoved: row.tags_removed,
	error: row.error,
	createdAt: row.created_at,
	startedAt: row.started_at,
	completedAt: row.completed_at,
	touchedAt: row.touched_at,
	resends: row.resends,
});

/** A job by id, whatever its application (for the consumer), or null. */
export async function getJobById(db: Db, jobId: string): Promise<Job | null> {
	const row = await retryTransient(() => db.prepare("SELECT * FROM jobs WHERE id = ?1").bind(jobId).first<JobRow>());
	return row ? toJob(row) : null;
}

/** An application's job, or null (another application's job does not exist for the caller). */
export async function getJob(db: Db, appId: string, jobId: string): Promise<Job | null> {
	const row = await retryTransient(() =>
		db.prepare("SELECT * FROM jobs WHERE id = ?1 AND app_id = ?2").bind(jobId, appId).first<JobRow>(),
	);
	return row ? toJob(row) : null;
}

/**
 * Marks a learner job failed with a reason (after the last attempt's recorded error, if any), unless it
 * finished. Its learner id and payload are dropped: a failed learner job is never resumed (asking again starts a
 * new one). Application deletions are never failed: they go on until the data is gone (deferApplicationDeletion).
 */
export async function markJobFailed(db: Db, jobId: string, reason: string, now: string): Promise<void> {
	await db
		.prepare(
			`UPDATE jobs SET status = 'failed', error = ?2 || coalesce('. Last error: ' || error, ''), completed_at = ?3,
			   learner_id = NULL, payload = NULL
			 WHERE id = ?1 AND status IN ('queued', 'running')`,
		)
		.bind(jobId, reason, now)
		.run();
}

/**
 * Notes that an application deletion's message spent its retries (the job stays unfinished, with the reason),
 * and marks it attended to now: the sweeper sends it again once it is stale.
 */
export async function deferApplicationDeletion(db: Db, jobId: string, reason: string, now: string): Promise<void> {
	await db
		.prepare(
			`UPDATE jobs SET error = ?2 || coalesce('. Last error: ' || error, ''), touched_at = ?3
			 WHERE id = ?1 AND status IN ('queued', 'running') AND type = 'deleteApplication'`,
		)
		.bind(jobId, reason, now)
		.run();
}

/**
 * Marks an application deleted and fences off its data (no write lands there after this transaction), and
 * records its deletion job, in one transaction. Asking again while the job is unfinished returns the same job;
 * a job that failed (under an earlier version) is started again. Null when the application is unknown or its
 * deletion has completed.
 */
export async function requestApplicationDeletion(db: Db, appId: string, now: string): Promise<Job | null> {
	const jobId = crypto.randomUUID();
	const ownJob = "app_id = ?1 AND learner_hash IS NULL AND type = 'deleteApplication'";
	const [, , , , , found] = await retryTransient(() =>
		db.batch([
			db.prepare(TICK_JOB_CLOCK),
			db.prepare("UPDATE applications SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL").bind(appId, now),
			fenceAppStorage(db, appId, now),
			db
				.prepare(
					`INSERT INTO jobs (id, seq, app_id, type, status, created_at, touched_at)
					 SELECT ?2, ${JOB_CLOCK}, ?1, 'deleteApplication', 'queued', ?3, ?3
					 WHERE EXISTS (SELECT 1 FROM applications WHERE id = ?1)
					   AND NOT EXISTS (SELECT 1 FROM jobs WHERE ${ownJob})`,
				)
				.bind(appId, jobId, now),
			db
				.prepare(
					`UPDATE jobs SET status = CASE WHEN cursor = 0 THEN 'queued' ELSE 'running' END, completed_at = NULL, touched_at = ?2
					 WHERE ${ownJob} AND status = 'failed'`,
				)
				.bind(appId, now),
			db.prepare(`SELECT * FROM jobs WHERE ${ownJob} LIMIT 1`).bind(appId),
		]),
	);
	const row = (found?.results[0] as JobRow | undefined) ?? null;
	if (!row || row.status === "completed") return null;
	return toJob(row);
}

/** Marks an unfinished job's message as not sent, so the next sweep sends it (best effort: the caller logs). */
export async function markUnsent(db: Db, jobId: string): Promise<void> {
	await db.prepare("UPDATE jobs SET touched_at = NULL WHERE id = ?1 AND status IN ('queued', 'running')").bind(jobId).run();
}

/** An unfinished job nobody has attended to since the cutoff (or whose message was never sent). */
export interface StaleJob {
	id: string;
	type: JobType;
	resends: number;
}

/**
 * The sweeper's repairs, in one transaction, for unfinished jobs not attended to since `cutoff`: an update
 * whose learner has no registration left completes at once (it can no longer apply: its payload goes); a
 * learner job re-sent `maxResends` times already fails, dropping its payload (asking again starts a new one).
 * Then up to `limit` stale jobs to send again, the longest forgotten first. Every statement reads unfinished
 * jobs only (jobs_unfinished_by_touch), however many finished ones the table holds.
 */
export async function repairStaleJobs(
	db: Db,
	cutoff: string,
	now: string,
	options: { maxResends: number; limit: number },
): Promise<{ orphaned: number; givenUp: number; stale: StaleJob[] }> {
	const stale = "status IN ('queued', 'running') AND (touched_at IS NULL OR touched_at < ?1)";
	const [orphaned, givenUp, found] = await retryTransient(() =>
		db.batch([
			db
				.prepare(
					`UPDATE jobs SET status = 'completed', completed_at = ?2, payload = NULL, learner_id = NULL, error = NULL
					 WHERE ${stale} AND type = 'updateLearnerInfo'
					   AND NOT EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = jobs.app_id AND r.learner_id = jobs.learner_id)`,
				)
				.bind(cutoff, now),
			db
				.prepare(
					`UPDATE jobs SET status = 'failed', completed_at = ?2, payload = NULL, learner_id = NULL,
					   error = 'Lost: its message was sent again ' || resends || ' times without the job being run'
					     || coalesce('. Last error: ' || error, '')
					 WHERE ${stale} AND type <> 'deleteApplication' AND resends >= ?3`,
				)
				.bind(cutoff, now, options.maxResends),
			db
				.prepare(`SELECT id, type, resends FROM jobs WHERE ${stale} ORDER BY touched_at LIMIT ?2`)
				.bind(cutoff, options.limit),
		]),
	);
	return {
		orphaned: orphaned?.meta.changes ?? 0,
		givenUp: givenUp?.meta.changes ?? 0,
		stale: (found?.results ?? []) as StaleJob[],
	};
}

/** Records that the sweeper sent these jobs' messages again, now. */
export async function markResent(db: Db, jobIds: string[], now: string): Promise<void> {
	await retryTransient(() =>
		db
			.prepare(
				`UPDATE jobs SET touched_at = ?2, resends = resends + 1
				 WHERE id IN (SELECT value FROM json_each(?1)) AND status IN ('queued', 'running')`,
			)
			.bind(JSON.stringify(jobIds), now)
			.run(),
	);
}
