import { touchLearners } from "./activity";
import { type AuditRecord, auditStatement } from "./audit-append";
import { outboxStatement } from "./audit-outbox";
import { type KeyedBatch, batchWith } from "./idempotency";
import { NOT_MOVING, type WriteLimits, fenceAppStorage, writeGuard } from "./app-storage";
import { UNFINISHED_MOVE } from "./applications";
import { retryTransient } from "./retry";
import { type Db, prepareWith } from "./types";

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
/** The job clock's current value: the seq of the newest accepted job (migrations/shard: job_clock). */
export const JOB_CLOCK = "(SELECT seq FROM job_clock WHERE id = 1)";

/**
 * The kinds of background job; each has its queue message (src/jobs/contract.ts) and its chunks (./job-chunks.ts,
 * ./move.ts, src/jobs/export.ts). Updates, erasures and application deletions live on the application's shard; moves
 * and realm-wide erasures in the control database; an export on its application's shard, and a realm-wide export in
 * the control database (told apart by the job's id: jobHome).
 */
export const JOB_TYPES = [
	"updateLearnerInfo",
	"deleteAllLearnerData",
	"deleteLearnersData",
	"deleteApplication",
	"moveApplication",
	"deleteRealmLearnerData",
	"exportLearnerData",
] as const;
export type JobType = (typeof JOB_TYPES)[number];

/**
 * A new id for a job of an application's shard: the application's id, a dot, a UUID. The id alone then finds
 * the job's database (the application's placement), for the queue consumer and for GET /jobs/{jobId} with the
 * management credentials. Realm jobs (moves), kept in the control database, are a bare UUID.
 */
export const newJobId = (appId: string) => `${appId}.${crypto.randomUUID()}`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whose shard holds a job: `{ appId }` for a shard job, "control" for a realm job, null for no id of ours. */
export function jobHome(jobId: string): { appId: string } | "control" | null {
	if (UUID.test(jobId)) return "control";
	const dot = jobId.lastIndexOf(".");
	if (dot < 1 || !UUID.test(jobId.slice(dot + 1))) return null;
	return { appId: jobId.slice(0, dot) };
}

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
	/** A bulk erasure's child erasure: the bulk job that runs it (null otherwise). */
	parentId: string | null;
	/** The event of the job's end and its delivery to the application's webhook (./job-events.ts); null before. */
	event: JobEvent | null;
}

/** What became of a job's end: the event's id and time, and its delivery (SPEC §8). */
export interface JobEvent {
	id: string;
	at: string;
	/** null: the application had no webhook to deliver it to. */
	status: NotifyStatus | null;
	attempts: number;
	lastStatus: number | null;
	lastError: string | null;
	/** When the next attempt is due (pending), or since when the event waits to be looked at (new). */
	dueAt: string | null;
}

/** An event's delivery: `new` until the application's webhook is looked up, then pending until delivered or failed. */
export type NotifyStatus = "new" | "pending" | "delivered" | "failed";

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
	/** Absent in the control database's realm jobs. */
	parent_id?: string | null;
	event_id?: string | null;
	event_at?: string | null;
	notify_status?: NotifyStatus | null;
	notify_attempts?: number;
	notify_last_status?: number | null;
	notify_last_error?: string | null;
	notify_due_at?: string | null;
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
	parentId: row.parent_id ?? null,
	event:
		row.event_id && row.event_at
			? {
					id: row.event_id,
					at: row.event_at,
					status: row.notify_status ?? null,
					attempts: row.notify_attempts ?? 0,
					lastStatus: row.notify_last_status ?? null,
					lastError: row.notify_last_error ?? null,
					dueAt: row.notify_due_at ?? null,
				}
			: null,
});

/** How far an unfinished job has got: `done` of `total` registrations (an update, an erasure) or learners (a bulk erasure). */
export interface JobProgress {
	done: number;
	total: number;
	unit: "registrations" | "learners";
}

/**
 * An unfinished learner job's progress, read from its shard in one statement: an update has been through
 * `registrationsAffected` of the learner's registrations and has those after its position left; an erasure has
 * erased `registrationsAffected` and has every registration still naming the learner left; a bulk erasure has
 * finished some of its learners. Null for other jobs (a finished one, an application's deletion, a realm job).
 */
export async function jobProgress(shard: Db, job: Job): Promise<JobProgress | null> {
	if (job.status !== "queued" && job.status !== "running") return null;
	if (job.type === "deleteLearnersData") {
		const row = await retryTransient(() =>
			shard.prepare("SELECT json_array_length(members) AS total FROM job_members WHERE job_id = ?1").bind(job.id).first<{ total: number }>(),
		);
		return { done: job.position, total: row?.total ?? 0, unit: "learners" };
	}
	const walks = job.type === "updateLearnerInfo" || job.type === "deleteAllLearnerData" || job.type === "exportLearnerData";
	if (!walks || job.learnerId === null) return null;
	// An erasure deletes what it has been through, so all that still names the learner is left (position 0).
	const after = job.type === "deleteAllLearnerData" ? 0 : job.position;
	const row = await retryTransient(() =>
		shard
			.prepare("SELECT count(*) AS n FROM registrations WHERE app_id = ?1 AND learner_id = ?2 AND pk > ?3")
			.bind(job.appId, job.learnerId, after)
			.first<{ n: number }>(),
	);
	return { done: job.registrationsAffected, total: job.registrationsAffected + (row?.n ?? 0), unit: "registrations" };
}

/** A job by id, whatever its application (for the consumer), or null. */
export async function getJobById(db: Db, jobId: string): Promise<Job | null> {
	const row = await retryTransient(() => db.prepare("SELECT * FROM jobs WHERE id = ?1").bind(jobId).first<JobRow>());
	return row ? toJob(row) : null;
}

/** The newest erasure of the learner in the application that completed at or after `since`, if any. */
export async function completedErasureSince(db: Db, appId: string, learnerHash: string, since: string): Promise<Job | null> {
	const row = await retryTransient(() =>
		db
			.prepare(
				`SELECT * FROM jobs WHERE app_id = ?1 AND learner_hash = ?2 AND type = 'deleteAllLearnerData' AND status = 'completed'
				   AND completed_at >= ?3 ORDER BY seq DESC LIMIT 1`,
			)
			.bind(appId, learnerHash, since)
			.first<JobRow>(),
	);
	return row ? toJob(row) : null;
}

/** The jobs among `ids` that exist in this database. */
export async function jobsNamed(db: Db, ids: string[]): Promise<Job[]> {
	if (ids.length === 0) return [];
	const { results } = await db.prepare("SELECT * FROM jobs WHERE id IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(ids)).all<JobRow>();
	return results.map(toJob);
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

/** Whether an erasure (of one learner) suppresses, or suppressed, its learner: its payload says so, and keeps saying it. */
export const erasureSuppressed = (job: Job): boolean =>
	job.payload !== null && (JSON.parse(job.payload) as { suppress?: boolean }).suppress === true;

/** An erasure's payload when it suppresses its learner (?8: 1 to suppress): read by its completing chunk. */
const SUPPRESS_PAYLOAD = `CASE WHEN ?8 THEN '{"suppress":true}' END`;

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
	keyed?: KeyedBatch,
): Promise<UpdateAcceptance> {
	const [, , inserted, state] = await batchWith(db, [
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
		// An update asked for is a write to the learner (./activity.ts); one refused because the learner is being erased
		// stamps a learner whose row goes with the erasure.
		touchLearners(db, job.appId, [job.learnerId], job.createdAt),
	], keyed);
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
	job: {
		id: string;
		appId: string;
		learnerId: string;
		learnerHash: string;
		requestedBy: string;
		createdAt: string;
		/** Keep the learner's HMAC once erased, refusing its registration until lifted (./suppressions.ts). */
		suppress?: boolean;
	},
	limits: WriteLimits,
	requesterMayErase: boolean,
	keyed?: KeyedBatch,
	audit?: AuditRecord,
): Promise<ErasureAcceptance> {
	// ?7: whether the requester is a realm owner or admin, which the control database knows (./realm-users.ts,
	// getRealmUserRole); it is weighed here, after the learner's existence, so the answer never tells it.
	// The request's audit record (its target without the job, which only this batch knows) goes into the outbox when the
	// request is accepted: the requester may erase and an erasure is pending now (recorded here, or joined).
	const pendingNow = PENDING_ERASURE_OF("?6", "?7");
	const outbox = audit
		? [outboxStatement(db, audit, { sql: `?8 AND EXISTS (${pendingNow})`, params: [job.appId, job.learnerHash, requesterMayErase ? 1 : 0], jobId: `(${pendingNow})` })]
		: [];
	const [, , , pending] = await retryTransient(() =>
		batchWith(db, [
			writeGuard(db, job.appId, 1, limits),
			db.prepare(TICK_JOB_CLOCK),
			db
				.prepare(
					`INSERT INTO jobs (id, seq, app_id, type, status, learner_id, learner_hash, requested_by, created_at, touched_at, payload)
					 SELECT ?4, ${JOB_CLOCK}, ?1, 'deleteAllLearnerData', 'queued', ?2, ?3, ?5, ?6, ?6, ${SUPPRESS_PAYLOAD}
					 WHERE ?7 AND ${LEARNER_EXISTS} AND NOT EXISTS (${PENDING_ERASURE})`,
				)
				.bind(job.appId, job.learnerId, job.learnerHash, job.id, job.requestedBy, job.createdAt, requesterMayErase ? 1 : 0, job.suppress ? 1 : 0),
			db
				.prepare(
					`SELECT p.*, ?7 AS privileged, ${LEARNER_EXISTS} AS found
					 FROM (SELECT 1) LEFT JOIN (${PENDING_ERASURE}) p`,
				)
				.bind(job.appId, job.learnerId, job.learnerHash, job.id, job.requestedBy, null, requesterMayErase ? 1 : 0),
			// Asked again with suppression while one is pending: the pending erasure suppresses too.
			db
				.prepare(
					`UPDATE jobs SET payload = ${SUPPRESS_PAYLOAD} WHERE ?8 AND ?7 AND id = (SELECT id FROM (${PENDING_ERASURE}))`,
				)
				.bind(job.appId, job.learnerId, job.learnerHash, job.id, job.requestedBy, null, requesterMayErase ? 1 : 0, job.suppress ? 1 : 0),
			...outbox,
		], keyed),
	);
	const row = pending?.results[0] as (JobRow & { privileged: number; found: number }) | undefined;
	// A pending erasure stands for the learner while its registrations go.
	if (!row || (row.id === null && !row.found)) return { outcome: "notFound" };
	if (!row.privileged) return { outcome: "forbidden" };
	return { outcome: "accepted", job: toJob(row) };
}

/**
 * Marks a learner job failed with a reason (after the last attempt's recorded error, if any), unless it
 * finished; a bulk erasure's unfinished learners with it. Their learner ids and payloads are dropped: a failed
 * learner job is never resumed (asking again starts a new one). Application deletions and moves are never failed:
 * they go on until done (deferJob). False when the job's application is frozen for a move (nothing written: ask
 * again once it has landed).
 */
export async function markJobFailed(db: Db, jobId: string, reason: string, now: string): Promise<boolean> {
	const [, moving] = await db.batch([
		db
			.prepare(
				`UPDATE jobs SET status = 'failed', error = ?2 || coalesce('. Last error: ' || error, ''), completed_at = ?3,
				   learner_id = NULL, payload = ${KEEP_EXPORT_PAYLOAD}
				 WHERE (id = ?1 OR parent_id = ?1) AND status IN ('queued', 'running') AND type NOT IN ('deleteApplication', 'moveApplication')
				   AND ${NOT_MOVING("jobs.app_id")}`,
			)
			.bind(jobId, reason, now),
		db.prepare(`SELECT NOT ${NOT_MOVING("jobs.app_id")} AS moving FROM jobs WHERE id = ?1`).bind(jobId),
	]);
	return !(moving?.results[0] as { moving: number } | undefined)?.moving;
}

/**
 * Notes that the message of a job that is never failed (an application deletion: its data must go; a move: it
 * must not leave its application frozen) spent its retries. The job stays unfinished, with the reason, marked
 * attended to now: the sweeper sends it again once it is stale. Nothing is written while its application is frozen
 * for a move (the sweeper finds the job where it lands).
 */
export async function deferJob(db: Db, jobId: string, reason: string, now: string): Promise<void> {
	await db
		.prepare(
			`UPDATE jobs SET error = ?2 || coalesce('. Last error: ' || error, ''), touched_at = ?3
			 WHERE id = ?1 AND status IN ('queued', 'running') AND type IN ('deleteApplication', 'moveApplication')
			   AND ${NOT_MOVING("jobs.app_id")}`,
		)
		.bind(jobId, reason, now)
		.run();
}

/**
 * Records an application's deletion job on its shard, fencing off its data (no write lands there after this
 * transaction), in one transaction: the shard's half of a deletion, after the control database marked the
 * application deleted (./applications.ts, markApplicationDeleted). Asking again while the job is unfinished
 * returns the same job; a job that failed (under an earlier version) is started again. Null when the shard holds
 * no such application or its deletion has completed.
 */
export async function recordApplicationDeletion(shard: Db, appId: string, now: string): Promise<Job | null> {
	const jobId = newJobId(appId);
	const ownJob = "app_id = ?1 AND learner_hash IS NULL AND type = 'deleteApplication'";
	const [, , , , found] = await retryTransient(() =>
		shard.batch([
			shard.prepare(TICK_JOB_CLOCK),
			fenceAppStorage(shard, appId, now),
			shard
				.prepare(
					`INSERT INTO jobs (id, seq, app_id, type, status, created_at, touched_at)
					 SELECT ?2, ${JOB_CLOCK}, ?1, 'deleteApplication', 'queued', ?3, ?3
					 WHERE EXISTS (SELECT 1 FROM app_storage WHERE app_id = ?1)
					   AND NOT EXISTS (SELECT 1 FROM jobs WHERE ${ownJob})`,
				)
				.bind(appId, jobId, now),
			shard
				.prepare(
					`UPDATE jobs SET status = CASE WHEN cursor = 0 THEN 'queued' ELSE 'running' END, completed_at = NULL, touched_at = ?2
					 WHERE ${ownJob} AND status = 'failed'`,
				)
				.bind(appId, now),
			shard.prepare(`SELECT * FROM jobs WHERE ${ownJob} LIMIT 1`).bind(appId),
		]),
	);
	const row = (found?.results[0] as JobRow | undefined) ?? null;
	if (!row || row.status === "completed") return null;
	return toJob(row);
}

/** Notes why the latest attempt at a job failed (no personal data); the dead-letter consumer reports it. */
export async function recordJobAttemptError(db: Db, jobId: string, reason: string): Promise<void> {
	await db
		.prepare(`UPDATE jobs SET error = ?2 WHERE id = ?1 AND status IN ('queued', 'running') AND ${NOT_MOVING("jobs.app_id")}`)
		.bind(jobId, reason)
		.run();
}

/**
 * A learner job's payload once it ends: an update's goes (it holds learner details); an export's stays, since it
 * names no one and says where the export's objects are (its region) and whether they were deleted (./exports.ts).
 */
export const KEEP_EXPORT_PAYLOAD = "CASE WHEN type = 'exportLearnerData' THEN payload END";


/**
 * Records a move of a live application from shard `from` to `to` (a realm job, in the control database), unless
 * one is unfinished. Returns the application's unfinished move (this one, or the one already under way), or null
 * when the application is unknown, deleted, or not on `from` (it moved meanwhile).
 */
export async function acceptMove(
	control: Db,
	move: { id: string; appId: string; from: string; to: string; payload: string; createdAt: string },
	keyed?: KeyedBatch,
	audit?: AuditRecord,
): Promise<Job | null> {
	const results = await retryTransient(() =>
		batchWith(control, [
			control.prepare(TICK_JOB_CLOCK),
			control
				.prepare(
					`INSERT INTO jobs (id, seq, app_id, type, status, payload, created_at, touched_at)
					 SELECT ?2, ${JOB_CLOCK}, ?1, 'moveApplication', 'queued', ?4, ?5, ?5
					 WHERE EXISTS (SELECT 1 FROM applications WHERE id = ?1 AND deleted_at IS NULL AND shard = ?3)
					   AND NOT EXISTS (SELECT 1 FROM jobs WHERE ${UNFINISHED_MOVE})`,
				)
				.bind(move.appId, move.id, move.from, move.payload, move.createdAt),
			// Recorded when this request's move is the one recorded (not when it found one under way).
			...(audit ? [auditStatement(control, audit, { sql: "EXISTS (SELECT 1 FROM jobs WHERE id = ?6)", params: [move.id] })] : []),
			control.prepare(`SELECT * FROM jobs WHERE ${UNFINISHED_MOVE} LIMIT 1`).bind(move.appId),
		], keyed),
	);
	const row = results.at(-1)?.results[0] as JobRow | undefined;
	return row ? toJob(row) : null;
}

/**
 * Claims the next step of a realm job (optimistic: the cursor read must still be current) under `lease`; false
 * when another delivery claimed it first or the job is finished. A repeat after a lost reply (retryTransient) finds
 * the claim its first attempt made (the cursor one on, under this lease) and holds it still.
 */
export async function claimStep(db: Db, job: Job, lease: string, now: string): Promise<boolean> {
	const result = await db
		.prepare(
			`UPDATE jobs SET cursor = ?2 + 1, lease = ?3, status = 'running', started_at = coalesce(started_at, ?4),
			   touched_at = ?4, resends = 0
			 WHERE id = ?1 AND (cursor = ?2 OR (cursor = ?2 + 1 AND lease = ?3)) AND status IN ('queued', 'running')`,
		)
		.bind(job.id, job.cursor, lease, now)
		.run();
	return result.meta.changes > 0;
}

/** Records what a claimed step did: its new plan and progress, and the job's end when `status` says so. */
export async function saveStep(
	db: Db,
	job: Job,
	lease: string,
	step: {
		payload: string;
		registrationsAffected: number;
		tagsRemoved?: number;
		status: "running" | "completed" | "failed";
		error?: string;
	},
	now: string,
): Promise<void> {
	await db
		.prepare(
			`UPDATE jobs SET payload = ?3, registrations_affected = ?4, status = ?5, error = ?6, touched_at = ?7,
			   completed_at = CASE WHEN ?5 = 'running' THEN NULL ELSE ?7 END, tags_removed = coalesce(?9, tags_removed)
			 WHERE id = ?1 AND lease = ?2 AND cursor = ?8`,
		)
		.bind(job.id, lease, step.payload, step.registrationsAffected, step.status, step.error ?? null, now, job.cursor + 1, step.tagsRemoved ?? null)
		.run();
}

/** One learner of a bulk erasure: its id and its HMAC (jobs.learner_hash). */
export interface BulkLearner {
	learnerId: string;
	learnerHash: string;
}

export type BulkErasureAcceptance = { outcome: "accepted"; job: Job } | { outcome: "notFound"; missing: string[] } | { outcome: "forbidden" };

/** An erasure as no longer pending: finished, whatever its outcome. */
export const PENDING_ERASURE_OF = (app: string, hash: string) =>
	`SELECT p.id FROM jobs p WHERE p.app_id = ${app} AND p.learner_hash = ${hash} AND p.type = 'deleteAllLearnerData'
	   AND p.status IN ('queued', 'running') ORDER BY p.seq DESC LIMIT 1`;

/**
 * Records a bulk erasure (SPEC §9): one job covering every learner, in one transaction costing one of the write
 * budget per learner. Each learner is erased by one erasure job: the one already pending for it, if any (joined, as
 * a repeated single request joins it: a learner never has two erasures running, so neither can cancel what the
 * other promised), else a child erasure of the bulk's own; asked with suppression, every one of them suppresses.
 * The learners and their erasures are listed, in order, in job_members (./storage-schema.md). All or nothing: when a
 * learner does not exist, nothing is recorded and the unknown ids are answered (whoever asks, as for one learner);
 * then a requester who is not a realm owner or admin is refused. `learners` must be free of duplicate ids.
 */
export async function acceptBulkErasure(
	db: Db,
	job: { id: string; appId: string; learners: BulkLearner[]; requestedBy: string; createdAt: string; childIds: string[]; suppress?: boolean },
	limits: WriteLimits,
	requesterMayErase: boolean,
	keyed?: KeyedBatch,
	audit?: AuditRecord,
): Promise<BulkErasureAcceptance> {
	// ?1 app, ?2 job, ?3 learners (JSON [{learnerId, learnerHash, childId}]), ?4 requester, ?5 now, ?6 privileged, ?7 -, ?8 suppress
	const learners = JSON.stringify(job.learners.map((learner, i) => ({ ...learner, childId: job.childIds[i] })));
	// A pending erasure stands for its learner while its registrations go (as for acceptLearnerErasure): the bulk joins it.
	const unknown = `SELECT l.value ->> '$.learnerId' AS id FROM json_each(?3) l
	  WHERE NOT EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = ?1 AND r.learner_id = l.value ->> '$.learnerId')
	    AND NOT EXISTS (${PENDING_ERASURE_OF("?1", "l.value ->> '$.learnerHash'")})`;
	// Recorded by this attempt: a retry after a lost reply (retryTransient) finds the job, made by the attempt before
	// (an earlier tick of the job clock), and writes nothing more.
	const recorded = `EXISTS (SELECT 1 FROM jobs WHERE id = ?2 AND seq = ${JOB_CLOCK})`;
	const hashes = "SELECT l.value ->> '$.learnerHash' FROM json_each(?3) l";
	const params = [job.appId, job.id, learners, job.requestedBy, job.createdAt, requesterMayErase ? 1 : 0, null, job.suppress ? 1 : 0];
	const statement = (sql: string) => prepareWith(db, sql, params);
	const results = await retryTransient(() =>
		batchWith(
			db,
			[
				writeGuard(db, job.appId, job.learners.length, limits),
				db.prepare(TICK_JOB_CLOCK),
				statement(
					`INSERT INTO jobs (id, seq, app_id, type, status, requested_by, created_at, touched_at, payload)
					 SELECT ?2, ${JOB_CLOCK}, ?1, 'deleteLearnersData', 'queued', ?4, ?5, ?5, CASE WHEN ?8 THEN '{"suppress":true}' END
					 WHERE ?6 AND NOT EXISTS (${unknown}) AND NOT EXISTS (SELECT 1 FROM jobs WHERE id = ?2)`,
				),
				// A child erasure for each learner with none pending.
				statement(
					`INSERT INTO jobs (id, seq, app_id, type, status, learner_id, learner_hash, requested_by, created_at, touched_at, parent_id, payload)
					 SELECT l.value ->> '$.childId', ${JOB_CLOCK}, ?1, 'deleteAllLearnerData', 'queued', l.value ->> '$.learnerId',
					   l.value ->> '$.learnerHash', ?4, ?5, ?5, ?2, ${SUPPRESS_PAYLOAD}
					 FROM json_each(?3) l WHERE ${recorded} AND NOT EXISTS (${PENDING_ERASURE_OF("?1", "l.value ->> '$.learnerHash'")})
					 ORDER BY l.key`,
				),
				// Asked with suppression: the erasures it joins suppress too.
				statement(
					`UPDATE jobs SET payload = ${SUPPRESS_PAYLOAD}
					 WHERE ?8 AND ${recorded} AND app_id = ?1 AND type = 'deleteAllLearnerData' AND status IN ('queued', 'running')
					   AND learner_hash IN (${hashes})`,
				),
				statement(
					`INSERT INTO job_members (job_id, app_id, members)
					 SELECT ?2, ?1, (SELECT json_group_array(json_array(h, (${PENDING_ERASURE_OF("?1", "h")})))
					   FROM (SELECT l.value ->> '$.learnerHash' AS h FROM json_each(?3) l ORDER BY l.key))
					 WHERE ${recorded}`,
				),
				statement(`SELECT id FROM (${unknown})`),
				statement("SELECT * FROM jobs WHERE id = ?2"),
				// The request's audit record, into the outbox with the job it recorded (./audit-outbox.ts).
				...(audit ? [outboxStatement(db, audit, { sql: `EXISTS (SELECT 1 FROM jobs WHERE id = ?6 AND seq = ${JOB_CLOCK})`, params: [job.id] })] : []),
			],
			keyed,
		),
	);
	// The job, once recorded, is the answer: on a retry its learners may already be erased (and so unknown).
	const row = results[7]?.results[0] as JobRow | undefined;
	if (row) return { outcome: "accepted", job: toJob(row) };
	const missing = ((results[6]?.results ?? []) as { id: string }[]).map((row) => row.id);
	if (missing.length > 0) return { outcome: "notFound", missing };
	return { outcome: "forbidden" };
}

/** One learner of a bulk erasure as it erased it: the learner's HMAC and the erasure job that erased it. */
export interface BulkMember {
	learnerHash: string;
	jobId: string;
}

/** A bulk erasure's learners, in the order it erases them, each with the erasure job it relies on (job_members). */
export async function bulkMembers(db: Db, jobId: string): Promise<BulkMember[]> {
	const row = await retryTransient(() => db.prepare("SELECT members FROM job_members WHERE job_id = ?1").bind(jobId).first<{ members: string }>());
	const members = JSON.parse(row?.members ?? "[]") as [string, string][];
	return members.map(([learnerHash, memberJobId]) => ({ learnerHash, jobId: memberJobId }));
}

/** One application's share of a realm-wide erasure: its erasure job on its shard, and the learner's HMAC there. */
export interface RealmErasureChild {
	appId: string;
	jobId: string;
	learnerHash: string;
}

/** A realm-wide erasure's plan: whether it suppresses, and its children once it has asked every application. */
export interface RealmErasurePlan {
	suppress: boolean;
	/** The applications that held the learner when the erasure was accepted: what it promised to erase. */
	holders: string[];
	/** Absent until the realm job has asked every application holding the learner (src/jobs/realm-erasure.ts). */
	children?: RealmErasureChild[];
}

/**
 * Records a realm-wide erasure (SPEC §9), a realm job in the control database (`app_id` ""), before any of its work:
 * its first step asks every application holding the learner for an erasure (src/jobs/realm-erasure.ts), so an
 * Idempotency-Key recorded in the same transaction covers all of it. The learner's id is kept on the job until that
 * step has named the children (then dropped: they carry their own); `learner_hash` is the learner's realm-wide HMAC.
 */
export async function recordRealmErasure(
	control: Db,
	job: { id: string; learnerId: string; learnerHash: string; requestedBy: string; suppress: boolean; holders: string[]; createdAt: string },
	keyed?: KeyedBatch,
	audit?: AuditRecord,
): Promise<void> {
	const plan: RealmErasurePlan = { suppress: job.suppress, holders: job.holders };
	await batchWith(
		control,
		[
			control.prepare(TICK_JOB_CLOCK),
			control
				.prepare(
					`INSERT INTO jobs (id, seq, app_id, type, status, learner_id, learner_hash, payload, requested_by, created_at, touched_at)
					 VALUES (?1, ${JOB_CLOCK}, '', 'deleteRealmLearnerData', 'queued', ?2, ?3, ?4, ?5, ?6, ?6)`,
				)
				.bind(job.id, job.learnerId, job.learnerHash, JSON.stringify(plan), job.requestedBy, job.createdAt),
			...(audit ? [auditStatement(control, audit)] : []),
		],
		keyed,
	);
}

/**
 * Records the children a realm-wide erasure's first step asked for (under its claim), dropping the learner's id: from
 * here on only the children, on their shards, name the learner.
 */
export async function saveRealmChildren(control: Db, job: Job, lease: string, plan: RealmErasurePlan, now: string): Promise<void> {
	await control
		.prepare("UPDATE jobs SET payload = ?3, learner_id = NULL, touched_at = ?4 WHERE id = ?1 AND lease = ?2 AND cursor = ?5")
		.bind(job.id, lease, JSON.stringify(plan), now, job.cursor + 1)
		.run();
}

/** A realm-wide erasure's plan, from its payload. */
export const realmErasurePlan = (job: Job): RealmErasurePlan => ({
	suppress: false,
	holders: [],
	...(JSON.parse(job.payload ?? "{}") as Partial<RealmErasurePlan>),
});

/** A realm-wide erasure's children, from its payload (none yet before it has asked the applications). */
export const realmErasureChildren = (job: Job): RealmErasureChild[] => realmErasurePlan(job).children ?? [];
