import { type WriteLimits, fenceAppStorage, writeGuard } from "./app-storage";
import { retryTransient } from "./retry";
import type { Db } from "./types";

/**
 * The jobs table's records: their shape, reading them, accepting new jobs, and recording failure. Running a job's
 * chunks is ./job-chunks.ts; the sweeper's repairs are ./job-sweeps.ts. The lifecycle (job clock and seq,
 * statuses, cursor and lease, retries, dead letters, the sweeper) is described once: ./storage-schema.md,
 * "Job lifecycle".
 *
 * Accepting a learner job is a write into the application: it starts with writeGuard() (./app-storage.ts).
 */
/** Advances the job clock; run it in the same batch, just before the INSERT that takes JOB_CLOCK. */
export const TICK_JOB_CLOCK = "UPDATE job_clock SET seq = seq + 1 WHERE id = 1";
/** The job clock's current value: the seq of the newest accepted job (migrations/0001: job_clock). */
export const JOB_CLOCK = "(SELECT seq FROM job_clock WHERE id = 1)";

/** The kinds of background job; each has its queue message (src/jobs/contract.ts) and its chunk (./job-chunks.ts). */
export const JOB_TYPES = ["updateLearnerInfo", "deleteAllLearnerData", "deleteApplication"] as const;
export type JobType = (typeof JOB_TYPES)[number];

/** A job's states, in order: queued until a worker claims its first chunk, then running until it ends. */
export const JOB_STATUSES = ["queued", "running", "completed", "failed"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

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

/** Learner fields an update may set; absent = unchanged. */
export interface LearnerInfoPayload {
	email?: string;
	firstName?: string;
	lastName?: string;
}

const LEARNER_EXISTS = "EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = ?1 AND r.learner_id = ?2)";
const PENDING_ERASURE = `SELECT * FROM jobs WHERE app_id = ?1 AND learner_hash = ?3 AND type = 'deleteAllLearnerData'
  AND status IN ('queued', 'running') ORDER BY seq DESC LIMIT 1`;

export type UpdateAcceptance = { outcome: "accepted"; jobId: string } | { outcome: "notFound" } | { outcome: "erasing" };

/**
 * Records an update job if the learner exists and is not being erased, in one transaction costing 1 of the
 * write budget. Not retried: a repeat after a lost reply would queue the update twice.
 */
export async function acceptLearnerUpdate(
	db: Db,
	job: { id: string; appId: string; learnerId: string; learnerHash: string; payload: LearnerInfoPayload; createdAt: string },
	limits: WriteLimits,
): Promise<UpdateAcceptance> {
	const [, , inserted, state] = await db.batch([
		writeGuard(db, job.appId, 1, limits),
		db.prepare(TICK_JOB_CLOCK),
		db
			.prepare(
				`INSERT INTO jobs (id, seq, app_id, type, status, learner_id, learner_hash, payload, created_at, touched_at)
				 SELECT ?4, ${JOB_CLOCK}, ?1, 'updateLearnerInfo', 'queued', ?2, ?3, ?5, ?6, ?6
				 WHERE ${LEARNER_EXISTS} AND NOT EXISTS (${PENDING_ERASURE})`,
			)
			.bind(job.appId, job.learnerId, job.learnerHash, job.id, JSON.stringify(job.payload), job.createdAt),
		db
			.prepare(`SELECT ${LEARNER_EXISTS} AS found, EXISTS (${PENDING_ERASURE}) AS erasing`)
			.bind(job.appId, job.learnerId, job.learnerHash),
	]);
	if ((inserted?.meta.changes ?? 0) > 0) return { outcome: "accepted", jobId: job.id };
	const row = state?.results[0] as { found: number; erasing: number } | undefined;
	return { outcome: row?.erasing ? "erasing" : "notFound" };
}

export type ErasureAcceptance = { outcome: "accepted"; job: Job } | { outcome: "notFound" } | { outcome: "forbidden" };

/**
 * Records an erasure job if the learner exists and the requester is a realm owner or admin, in one
 * transaction costing 1 of the write budget. A request while an erasure of that learner is pending answers
 * with that job instead, so a repeat is harmless and transient errors are retried. An unknown learner is
 * "notFound" whoever asks: the answer never tells whether an email belongs to a realm administrator.
 */
export async function acceptLearnerErasure(
	db: Db,
	job: { id: string; appId: string; learnerId: string; learnerHash: string; requestedBy: string; createdAt: string },
	limits: WriteLimits,
): Promise<ErasureAcceptance> {
	const privileged = "EXISTS (SELECT 1 FROM realm_users u WHERE u.email_key = lower(?5) AND u.role IN ('owner', 'admin'))";
	const [, , , pending] = await retryTransient(() =>
		db.batch([
			writeGuard(db, job.appId, 1, limits),
			db.prepare(TICK_JOB_CLOCK),
			db
				.prepare(
					`INSERT INTO jobs (id, seq, app_id, type, status, learner_id, learner_hash, requested_by, created_at, touched_at)
					 SELECT ?4, ${JOB_CLOCK}, ?1, 'deleteAllLearnerData', 'queued', ?2, ?3, ?5, ?6, ?6
					 WHERE ${privileged} AND ${LEARNER_EXISTS} AND NOT EXISTS (${PENDING_ERASURE})`,
				)
				.bind(job.appId, job.learnerId, job.learnerHash, job.id, job.requestedBy, job.createdAt),
			db
				.prepare(
					`SELECT p.*, ${privileged} AS privileged, ${LEARNER_EXISTS} AS found
					 FROM (SELECT 1) LEFT JOIN (${PENDING_ERASURE}) p`,
				)
				.bind(job.appId, job.learnerId, job.learnerHash, job.id, job.requestedBy),
		]),
	);
	const row = pending?.results[0] as (JobRow & { privileged: number; found: number }) | undefined;
	// A pending erasure stands for the learner while its registrations go.
	if (!row || (row.id === null && !row.found)) return { outcome: "notFound" };
	if (!row.privileged) return { outcome: "forbidden" };
	return { outcome: "accepted", job: toJob(row) };
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
			 WHERE id = ?1 AND status IN ('queued', 'running') AND type <> 'deleteApplication'`,
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

/** Notes why the latest attempt at a job failed (no personal data); the dead-letter consumer reports it. */
export async function recordJobAttemptError(db: Db, jobId: string, reason: string): Promise<void> {
	await db
		.prepare("UPDATE jobs SET error = ?2 WHERE id = ?1 AND status IN ('queued', 'running')")
		.bind(jobId, reason)
		.run();
}
