import type { JobType } from "../jobs/contract";
import type { Db } from "./types";

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
	registrationsAffected: number;
	tagsRemoved: number;
	error: string | null;
	createdAt: string;
	startedAt: string | null;
	completedAt: string | null;
}

interface JobRow {
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
	registrations_affected: number;
	tags_removed: number;
	error: string | null;
	created_at: string;
	started_at: string | null;
	completed_at: string | null;
}

const toJob = (row: JobRow): Job => ({
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
	registrationsAffected: row.registrations_affected,
	tagsRemoved: row.tags_removed,
	error: row.error,
	createdAt: row.created_at,
	startedAt: row.started_at,
	completedAt: row.completed_at,
});

export interface NewJob {
	id: string;
	appId: string;
	type: JobType;
	learnerId?: string | null;
	learnerHash?: string | null;
	payload?: string | null;
	requestedBy?: string | null;
	createdAt: string;
}

/**
 * The statement that records a job. `seq` is the job's place in acceptance order: D1 runs statements one at a
 * time, so max(seq) + 1 inside the INSERT is race-free (and O(1) through jobs_by_seq).
 */
export function insertJobStatement(db: Db, job: NewJob): D1PreparedStatement {
	return db
		.prepare(
			`INSERT INTO jobs (id, seq, app_id, type, status, learner_id, learner_hash, payload, requested_by, created_at)
			 VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM jobs), ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8)`,
		)
		.bind(
			job.id,
			job.appId,
			job.type,
			job.learnerId ?? null,
			job.learnerHash ?? null,
			job.payload ?? null,
			job.requestedBy ?? null,
			job.createdAt,
		);
}

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

/** The newest unfinished job of a type for a learner (by HMAC of its id), or null. */
export async function findPendingLearnerJob(
	db: Db,
	appId: string,
	learnerHash: string,
	type: JobType,
): Promise<Job | null> {
	const row = await db
		.prepare(
			`SELECT * FROM jobs WHERE app_id = ?1 AND learner_hash = ?2 AND type = ?3 AND status IN ('queued', 'running')
			 ORDER BY seq DESC LIMIT 1`,
		)
		.bind(appId, learnerHash, type)
		.first<JobRow>();
	return row ? toJob(row) : null;
}

/** Marks a job failed with a reason, unless it already completed. */
export async function markJobFailed(db: Db, jobId: string, reason: string, now: string): Promise<void> {
	await db
		.prepare(
			"UPDATE jobs SET status = 'failed', error = ?2, completed_at = ?3 WHERE id = ?1 AND status IN ('queued', 'running')",
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
	const [, , found] = await db.batch([
		db.prepare("UPDATE applications SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL").bind(appId, now),
		db
			.prepare(
				`INSERT INTO jobs (id, seq, app_id, type, status, created_at)
				 SELECT ?1, (SELECT coalesce(max(seq), 0) + 1 FROM jobs), ?2, 'deleteApplication', 'queued', ?3
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
