import type { JobType } from "../jobs/contract";
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
});

/** A job by id, whatever its application (for the consumer), or null. */
export async function getJobById(db: Db, jobId: string): Promise<Job | null> {
	const row = await db.prepare("SELECT * FROM jobs WHERE id = ?1").bind(jobId).first<JobRow>();
	return row ? toJob(row) : null;
}

/** An application's job, or null (another application's job does not exist for the caller). */
export async function getJob(db: Db, appId: string, jobId: string): Promise<Job | null> {
	const row = await db.prepare("SELECT * FROM jobs WHERE id = ?1 AND app_id = ?2").bind(jobId, appId).first<JobRow>();
	return row ? toJob(row) : null;
}

/**
 * Marks a job failed with a reason (after the last attempt's recorded error, if any), unless it finished. Its
 * learner id and payload are dropped: a failed job is never resumed (asking again starts a new one).
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
 * Marks an application deleted (its credentials stop working at once) and records its deletion job, in one
 * transaction. Asking again while the job is unfinished returns the same job. Null when the application is
 * unknown or its deletion has completed.
 */
export async function requestApplicationDeletion(db: Db, appId: string, now: string): Promise<Job | null> {
	const jobId = crypto.randomUUID();
	const [, , , found] = await db.batch([
		db.prepare(TICK_JOB_CLOCK),
		db.prepare("UPDATE applications SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL").bind(appId, now),
		db
			.prepare(
				`INSERT INTO jobs (id, seq, app_id, type, status, created_at)
				 SELECT ?1, ${JOB_CLOCK}, ?2, 'deleteApplication', 'queued', ?3
				 WHERE EXISTS (SELECT 1 FROM applications WHERE id = ?2)
				   AND NOT EXISTS (SELECT 1 FROM jobs WHERE app_id = ?2 AND learner_hash IS NULL AND type = 'deleteApplication')`,
			)
			.bind(jobId, appId, now),
		db
			.prepare("SELECT * FROM jobs WHERE app_id = ?1 AND learner_hash IS NULL AND type = 'deleteApplication' LIMIT 1")
			.bind(appId),
	]);
	const row = (found?.results[0] as JobRow | undefined) ?? null;
	if (!row || row.status === "completed") return null;
	return toJob(row);
}
