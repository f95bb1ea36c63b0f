import { type AuditRecord, auditStatement } from "./audit-append";
import { outboxStatement } from "./audit-outbox";
import { NOT_MOVING, type WriteLimits, writeGuard } from "./app-storage";
import { type KeyedBatch, batchWith } from "./idempotency";
import { type Job, type JobRow, type JobStatus, JOB_CLOCK, TICK_JOB_CLOCK, toJob } from "./jobs";
import { retryTransient } from "./retry";
import { type Db, prepareWith } from "./types";

/**
 * Subject-access exports (SPEC §12) as jobs: accepting one, the reads its chunks make, and the bookkeeping of the
 * objects it leaves in R2 (src/jobs/export.ts writes them). The job's payload names no one: the export's region
 * (which bucket holds its objects), its phase and where it stands, how many parts it wrote, and, once its objects
 * are deleted, `purged`. The lifecycle: ./storage-schema.md, "Exports".
 */

/** Where an export stands between chunks (its jobs row's payload). */
export interface ExportPlan {
	/** The region of the application when the export was asked: its objects live in that region's bucket. */
	region: "default" | "eu";
	/** registrations (by pk, after `position`), then jobs naming the learner (by id, after `after`), then finish. */
	phase: "registrations" | "jobs" | "finish";
	/** The last job id listed (jobs phase). */
	after?: string;
	/** Parts written so far: R2 objects part 1..parts. */
	parts: number;
	/**
	 * Bytes of the parts written so far, and of the one that would have taken them past the largest export
	 * (src/jobs/export.ts EXPORT_BOUNDS): then nothing more is written and the export fails.
	 */
	bytes?: number;
	/** Its objects were deleted (retention passed, the learner erased, or the job failed). */
	purged?: true;
}

export const exportPlan = (job: Pick<Job, "payload">): ExportPlan => ({
	region: "default",
	phase: "registrations",
	parts: 0,
	...(JSON.parse(job.payload ?? "{}") as Partial<ExportPlan>),
});

const LEARNER_EXISTS = "EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = ?1 AND r.learner_id = ?2)";

/**
 * An export whose objects are, or will be, in R2: queued, running, or completed with its document and not yet deleted.
 * The WHERE of jobs_exports_held (shard 0011), which serves every count of them.
 */
const HELD = `type = 'exportLearnerData' AND json_extract(payload, '$.purged') IS NULL
  AND (status IN ('queued', 'running') OR (status = 'completed' AND error IS NULL))`;

/**
 * Those of the application (`app`) held now, the retention's cutoff being `cutoff`: unfinished (no completion yet), or
 * completed after the cutoff. One completed before it has expired (its download is gone) though the sweeper may not
 * have deleted its objects yet: it holds no place. Two ranges of jobs_exports_held, neither reading the expired ones.
 */
const HELD_NOW = (app: string, cutoff: string, limit: string) =>
	`((SELECT count(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_exports_held WHERE app_id = ${app} AND ${HELD} AND completed_at IS NULL LIMIT ${limit}))
	 + (SELECT count(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_exports_held WHERE app_id = ${app} AND ${HELD} AND completed_at > ${cutoff} LIMIT ${limit})))`;

/** The oldest completion among those held: its retention's end is when one of them goes. */
const HELD_OLDEST_OF = (app: string, cutoff: string) =>
	`(SELECT min(completed_at) FROM jobs INDEXED BY jobs_exports_held WHERE app_id = ${app} AND ${HELD} AND completed_at > ${cutoff})`;

/** The application's (?1) exports held, counted up to the limit (?9) in each range; ?10 the retention's cutoff. */
const HELD_COUNT = HELD_NOW("?1", "?10", "?9");
const HELD_OLDEST = HELD_OLDEST_OF("?1", "?10");

/** When exports completed before now expired: `retentionMs` before it. */
export const retentionCutoff = (nowMs: number, retentionMs: number) => new Date(nowMs - retentionMs).toISOString();

/** The limits an export's acceptance weighs: the write guard's, and how many exports an application may hold. */
export interface ExportLimits extends WriteLimits {
	/** APP_EXPORT_LIMIT (src/config.ts). */
	exportLimit: number;
	/** EXPORT_RETENTION_DAYS in ms: an export completed longer ago has expired and holds no place. */
	exportRetentionMs: number;
}
const PENDING = (type: string) => `SELECT * FROM jobs WHERE app_id = ?1 AND learner_hash = ?3 AND type = '${type}'
  AND status IN ('queued', 'running') ORDER BY seq DESC LIMIT 1`;
/** The id of the pending job of `type` of the learner whose HMAC is `hash` in application `app` (SQL parameters). */
const PENDING_OF = (app: string, hash: string, type: string) => `SELECT id FROM jobs WHERE app_id = ${app} AND learner_hash = ${hash} AND type = '${type}'
  AND status IN ('queued', 'running') ORDER BY seq DESC LIMIT 1`;

export type ExportAcceptance =
	| { outcome: "accepted"; job: Job }
	| { outcome: "notFound" }
	| { outcome: "forbidden" }
	| { outcome: "erasing" }
	/** The application holds `limit` exports already; the oldest completed one (if any) completed at `oldest`. */
	| { outcome: "limit"; limit: number; oldest: string | null };

/**
 * Records an export of a learner that exists, asked by a realm owner or admin, in one transaction costing 1 of the
 * write budget: it starts with the write guard, so nothing is recorded in an application whose deletion was accepted
 * (or that is frozen for a move). A request while one is pending answers with that job; while the learner's erasure
 * is pending, "erasing" (the erasure would delete the export); while the application holds `exportLimit` exports
 * (queued, running, or completed and kept), "limit": what an application keeps in R2 is bounded (./storage-schema.md,
 * "Exports (R2)"). The order of the answers is the erasure's: an unknown learner is "notFound" whoever asks, then the
 * requester's privilege is weighed; a pending export is answered whatever the limit, as it holds its place already.
 */
export async function acceptLearnerExport(
	db: Db,
	job: { id: string; appId: string; learnerId: string; learnerHash: string; requestedBy: string; region: "default" | "eu"; createdAt: string },
	limits: ExportLimits,
	requesterMayExport: boolean,
	keyed?: KeyedBatch,
	audit?: AuditRecord,
): Promise<ExportAcceptance> {
	// ?1 app, ?2 learner, ?3 hash, ?4 job, ?5 requester, ?6 now, ?7 privileged, ?8 payload, ?9 the export limit,
	// ?10 the retention's cutoff
	const plan: ExportPlan = { region: job.region, phase: "registrations", parts: 0 };
	const params = [
		job.appId,
		job.learnerId,
		job.learnerHash,
		job.id,
		job.requestedBy,
		job.createdAt,
		requesterMayExport ? 1 : 0,
		JSON.stringify(plan),
		limits.exportLimit,
		retentionCutoff(Date.parse(job.createdAt), limits.exportRetentionMs),
	];
	const statement = (sql: string) => prepareWith(db, sql, params);
	const [, , , state] = await retryTransient(() =>
		batchWith(
			db,
			[
				writeGuard(db, job.appId, 1, limits),
				db.prepare(TICK_JOB_CLOCK),
				statement(
					`INSERT INTO jobs (id, seq, app_id, type, status, learner_id, learner_hash, requested_by, created_at, touched_at, payload)
					 SELECT ?4, ${JOB_CLOCK}, ?1, 'exportLearnerData', 'queued', ?2, ?3, ?5, ?6, ?6, ?8
					 WHERE ?7 AND ${LEARNER_EXISTS} AND NOT EXISTS (${PENDING("deleteAllLearnerData")})
					   AND NOT EXISTS (${PENDING("exportLearnerData")}) AND ${HELD_COUNT} < ?9`,
				),
				statement(
					`SELECT p.*, ?7 AS privileged, ${LEARNER_EXISTS} AS found, EXISTS (${PENDING("deleteAllLearnerData")}) AS erasing,
					   CASE WHEN p.id IS NULL THEN ${HELD_OLDEST} END AS oldest_held
					 FROM (SELECT 1) LEFT JOIN (${PENDING("exportLearnerData")}) p`,
				),
				// The request's audit record, into the outbox (./audit-outbox.ts) when it is accepted as the statement
				// before answers it: the learner exists, the requester may export, no erasure is pending, and an export is
				// pending now (recorded here, or joined) — the job it names.
				...(audit
					? [
							outboxStatement(db, audit, {
								sql: `?6 AND EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = ?7 AND r.learner_id = ?8)
								  AND NOT EXISTS (${PENDING_OF("?7", "?9", "deleteAllLearnerData")}) AND EXISTS (${PENDING_OF("?7", "?9", "exportLearnerData")})`,
								params: [requesterMayExport ? 1 : 0, job.appId, job.learnerId, job.learnerHash],
								jobId: `(${PENDING_OF("?7", "?9", "exportLearnerData")})`,
							}),
						]
					: []),
			],
			keyed,
		),
	);
	const row = state?.results[0] as (JobRow & { privileged: number; found: number; erasing: number; oldest_held: string | null }) | undefined;
	if (!row?.found) return { outcome: "notFound" };
	if (!row.privileged) return { outcome: "forbidden" };
	if (row.erasing) return { outcome: "erasing" };
	// Neither recorded nor pending: the application holds its limit of exports.
	if (row.id === null) return { outcome: "limit", limit: limits.exportLimit, oldest: row.oldest_held };
	return { outcome: "accepted", job: toJob(row) };
}

/**
 * Whether each application (on this shard) may take an export of the learner now: the exports it holds, counted up
 * to `limit`, and whether one of this learner is pending there (a new request joins it). One statement; a realm-wide
 * export asks it of every shard holding the learner before it records anything.
 */
export async function exportRoom(
	db: Db,
	apps: { appId: string; learnerHash: string }[],
	limit: number,
	cutoff: string,
): Promise<Map<string, { held: number; pending: boolean; erasing: boolean; oldest: string | null }>> {
	if (apps.length === 0) return new Map();
	const app = "json_extract(a.value, '$.appId')";
	const pendingOf = (type: string) =>
		`EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_by_learner WHERE app_id = ${app}
		   AND learner_hash = json_extract(a.value, '$.learnerHash') AND type = '${type}' AND status IN ('queued', 'running'))`;
	const { results } = await retryTransient(() =>
		db
			.prepare(
				`SELECT ${app} AS app_id, ${HELD_NOW(app, "?3", "?2")} AS held, ${HELD_OLDEST_OF(app, "?3")} AS oldest,
				   ${pendingOf("exportLearnerData")} AS pending, ${pendingOf("deleteAllLearnerData")} AS erasing
				 FROM json_each(?1) a`,
			)
			.bind(JSON.stringify(apps), limit, cutoff)
			.all<{ app_id: string; held: number; oldest: string | null; pending: number; erasing: number }>(),
	);
	return new Map(
		results.map((row) => [row.app_id, { held: row.held, pending: Boolean(row.pending), erasing: Boolean(row.erasing), oldest: row.oldest }]),
	);
}

/** The application (?1) is live: an export's reads find nothing once its deletion was accepted, so nothing goes to R2. */
const LIVE_APP = "NOT EXISTS (SELECT 1 FROM app_storage WHERE app_id = ?1 AND deleted_at IS NOT NULL)";

/** A registration as an export's part holds it: what the API shows, and each learner field's version. */
export interface ExportedRegistration {
	pk: number;
	id: string;
	courseId: string;
	instance: number;
	xapiRegistrationId: string;
	createdDate: string;
	updatedDate: string;
	learner: { id: string; email: string | null; firstName: string | null; lastName: string | null };
	/** The job clock that last set each field: the learner's current details are its newest values (./learners.ts). */
	versions: { email: number; firstName: number; lastName: number };
	tags: string[];
}

interface RegistrationRow {
	pk: number;
	id: string;
	course_id: string;
	instance: number;
	xapi_registration_id: string;
	created_at: string;
	updated_at: string;
	learner_id: string;
	learner_email: string | null;
	learner_first_name: string | null;
	learner_last_name: string | null;
	email_seq: number;
	first_name_seq: number;
	last_name_seq: number;
	tags_json: string;
}

/**
 * The learner's next registrations after `after` (pk order) with their tags: as many as fit in `bounds.rows` rows
 * with their tags (at least one, at most `bounds.registrations`), as an erasure's chunk is sized; none once the
 * application's deletion was accepted. One statement: the
 * learner's index range, then each registration's row and its tags' range.
 */
export async function exportRegistrations(
	db: Db,
	job: Pick<Job, "appId" | "learnerId">,
	after: number,
	bounds: { registrations: number; rows: number },
): Promise<ExportedRegistration[]> {
	const { results } = await retryTransient(() =>
		db
			.prepare(
				`WITH chunk(pk) AS (SELECT pk FROM (
				   SELECT pk, tag_count, sum(1 + tag_count) OVER (ORDER BY pk) AS rows_through
				   FROM (SELECT pk, tag_count FROM registrations WHERE app_id = ?1 AND learner_id = ?2 AND pk > ?3 AND ${LIVE_APP} ORDER BY pk LIMIT ?4))
				 WHERE rows_through <= ?5 OR rows_through = 1 + tag_count)
				 SELECT r.pk, r.id, r.course_id, r.instance, r.xapi_registration_id, r.created_at, r.updated_at, r.learner_id,
				   r.learner_email, r.learner_first_name, r.learner_last_name, r.email_seq, r.first_name_seq, r.last_name_seq,
				   (SELECT json_group_array(tag) FROM (SELECT t.tag FROM registration_tags t INDEXED BY registration_tags_in_order
				      WHERE t.app_id = r.app_id AND t.registration_id = r.id ORDER BY t.rowid)) AS tags_json
				 FROM chunk c JOIN registrations r ON r.pk = c.pk ORDER BY r.pk`,
			)
			.bind(job.appId, job.learnerId, after, bounds.registrations, bounds.rows)
			.all<RegistrationRow>(),
	);
	return results.map((row) => ({
		pk: row.pk,
		id: row.id,
		courseId: row.course_id,
		instance: row.instance,
		xapiRegistrationId: row.xapi_registration_id,
		createdDate: row.created_at,
		updatedDate: row.updated_at,
		learner: { id: row.learner_id, email: row.learner_email, firstName: row.learner_first_name, lastName: row.learner_last_name },
		versions: { email: row.email_seq, firstName: row.first_name_seq, lastName: row.last_name_seq },
		tags: JSON.parse(row.tags_json) as string[],
	}));
}

/** A job that named the learner, as its export lists it: ids, type, status and dates (no payload, no requester). */
export type ExportedJob = {
	id: string;
	type: string;
	status: JobStatus;
	createdDate: string;
	completedDate?: string;
};

/**
 * Up to `limit` of the application's jobs naming the learner by its HMAC, after job id `after`, in id order; none
 * once the application's deletion was accepted.
 */
export async function exportJobs(db: Db, appId: string, learnerHash: string, after: string, limit: number): Promise<ExportedJob[]> {
	const { results } = await retryTransient(() =>
		db
			.prepare(
				`SELECT id, type, status, created_at, completed_at FROM jobs INDEXED BY jobs_by_learner_id
				 WHERE app_id = ?1 AND learner_hash = ?2 AND id > ?3 AND ${LIVE_APP} ORDER BY id LIMIT ?4`,
			)
			.bind(appId, learnerHash, after, limit)
			.all<{ id: string; type: string; status: JobStatus; created_at: string; completed_at: string | null }>(),
	);
	return results.map((row) => ({
		id: row.id,
		type: row.type,
		status: row.status,
		createdDate: row.created_at,
		...(row.completed_at !== null && { completedDate: row.completed_at }),
	}));
}

/** The learner's own tags (first applied first, at most 1000) and its suppression, read at an export's end. */
export async function exportLearnerState(
	db: Db,
	appId: string,
	learnerId: string,
	learnerHash: string,
): Promise<{ tags: string[]; suppressed: boolean }> {
	const [tags, suppression] = await retryTransient(() =>
		db.batch([
			db
				.prepare("SELECT tag FROM learner_tags INDEXED BY learner_tags_in_order WHERE app_id = ?1 AND learner_id = ?2 ORDER BY rowid")
				.bind(appId, learnerId),
			db.prepare("SELECT 1 AS found FROM suppressions WHERE app_id = ?1 AND learner_hash = ?2").bind(appId, learnerHash),
		]),
	);
	return {
		tags: ((tags?.results ?? []) as { tag: string }[]).map((row) => row.tag),
		suppressed: (suppression?.results.length ?? 0) > 0,
	};
}

/**
 * Whether an application's completed exports of a learner (by HMAC) are withdrawn: an erasure of the learner is
 * pending there (it will delete them), or the application's deletion was accepted. One statement: a probe of
 * jobs_by_learner (app, HMAC, type, status) and the application's app_storage row.
 */
export async function exportWithdrawn(db: Db, appId: string, learnerHash: string): Promise<boolean> {
	const row = await db
		.prepare(
			`SELECT EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_by_learner WHERE app_id = ?1 AND learner_hash = ?2
			     AND type = 'deleteAllLearnerData' AND status IN ('queued', 'running'))
			   OR EXISTS (SELECT 1 FROM app_storage WHERE app_id = ?1 AND deleted_at IS NOT NULL) AS withdrawn`,
		)
		.bind(appId, learnerHash)
		.first<{ withdrawn: number }>();
	return Boolean(row?.withdrawn);
}

/** What a claimed chunk of an export did. */
export interface ExportStep {
	/** The plan after the chunk. */
	plan: ExportPlan;
	/** The last registration visited (pk), or the position unchanged. */
	position: number;
	/** Registrations this chunk exported. */
	registrations: number;
}

export interface ExportClaim {
	claimed: boolean;
	/** The job's status after the attempt (another delivery may have finished it, or an erasure cancelled it). */
	status: string | null;
	/**
	 * The job ended without a document to keep: cancelled (by an erasure of its learner, or by this attempt, finding
	 * one pending) or failed. Whatever it wrote is to be deleted.
	 */
	abandoned: boolean;
	/** The application is frozen for a move: nothing was claimed; try again shortly. */
	frozen: boolean;
	/**
	 * The application's deletion was accepted: nothing was claimed, and nothing of the export may stay (its deletion
	 * removes the job with the rest).
	 */
	deleted: boolean;
	/** The application may have a webhook (app_storage.webhook_hint): the job's end has an event to look at. */
	announce: boolean;
}

/**
 * The application (?2) takes the export's chunks: not frozen for a move, and its deletion not accepted (SPEC §11:
 * nothing is written into an application after that, the export's objects included).
 */
const CLAIMABLE = "NOT EXISTS (SELECT 1 FROM app_storage WHERE app_id = ?2 AND (frozen_at IS NOT NULL OR deleted_at IS NOT NULL))";

/** The application (?2) is live: its deletion was not accepted. */
const LIVE = "NOT EXISTS (SELECT 1 FROM app_storage WHERE app_id = ?2 AND deleted_at IS NOT NULL)";

/** What an erasure's chunk writes on the learner's exports it cancels, and what an export writes cancelling itself. */
export const EXPORT_CANCELLED = "Cancelled: the learner's data was erased";

/**
 * An erasure of the export's learner is pending (?2 app, ?9 the learner's HMAC): the erasure will delete whatever the
 * export gathers, so the export goes no further. One probe of jobs_by_learner (app, HMAC, type, status).
 */
const ERASURE_PENDING = `EXISTS (SELECT 1 FROM jobs e INDEXED BY jobs_by_learner WHERE e.app_id = ?2 AND e.learner_hash = ?9
  AND e.type = 'deleteAllLearnerData' AND e.status IN ('queued', 'running'))`;

/** Cancels the export (?1) read at cursor ?8 when an erasure of its learner is pending, dropping the learner's id. */
const CANCEL_IF_ERASING = (where: string) =>
	`UPDATE jobs SET status = 'completed', completed_at = ?4, touched_at = ?4, learner_id = NULL, error = '${EXPORT_CANCELLED.replaceAll("'", "''")}'
	 WHERE id = ?1 AND ${where} AND ${ERASURE_PENDING}`;

/**
 * Claims the export's next chunk and records what it did, in one transaction: the cursor read must still be current
 * (optimistic, as every chunk's claim), the job unfinished, its application not frozen for a move. The chunk's part
 * was written to R2 before: a claim lost leaves it to whoever holds the chunk (the same part, under the same name).
 * An erasure of the learner accepted since the export began cancels it instead (as the erasure's first chunk would):
 * nothing more is gathered, and no document is made of a learner being erased.
 */
export async function claimExportStep(db: Db, job: Job, lease: string, step: ExportStep, now: string): Promise<ExportClaim> {
	// ?1 job, ?2 app, ?3 lease, ?4 now, ?5 position, ?6 plan, ?7 registrations, ?8 cursor read, ?9 learner HMAC
	const params = [job.id, job.appId, lease, now, step.position, JSON.stringify(step.plan), step.registrations, job.cursor, job.learnerHash];
	const [, , outcome] = await db.batch([
		prepareWith(db, CANCEL_IF_ERASING(`cursor = ?8 AND status IN ('queued', 'running') AND ${CLAIMABLE}`), params),
		prepareWith(
			db,
			`UPDATE jobs SET cursor = cursor + 1, lease = ?3, status = 'running', started_at = coalesce(started_at, ?4), touched_at = ?4,
			   resends = 0, position = ?5, payload = ?6, registrations_affected = registrations_affected + ?7
			 WHERE id = ?1 AND cursor = ?8 AND status IN ('queued', 'running') AND ${CLAIMABLE}`,
			params,
		),
		prepareWith(
			db,
			`SELECT status, error IS NOT NULL AS ended_without_document, lease = ?3 AS claimed,
			   (SELECT frozen_at IS NOT NULL AND deleted_at IS NULL FROM app_storage WHERE app_id = ?2) AS frozen,
			   (SELECT deleted_at IS NOT NULL FROM app_storage WHERE app_id = ?2) AS deleted,
			   (SELECT webhook_hint FROM app_storage WHERE app_id = ?2) AS webhook_hint
			 FROM jobs WHERE id = ?1`,
			params,
		),
	]);
	const row = outcome?.results[0] as
		| { status: string; ended_without_document: number; claimed: number; frozen: number | null; deleted: number | null; webhook_hint: number | null }
		| undefined;
	const status = row?.status ?? null;
	return {
		claimed: Boolean(row?.claimed),
		status,
		abandoned: status === "failed" || (status === "completed" && Boolean(row?.ended_without_document)),
		frozen: !row?.claimed && Boolean(row?.frozen),
		deleted: !row?.claimed && Boolean(row?.deleted),
		announce: row?.webhook_hint !== 0,
	};
}

/**
 * Completes an export under the lease its final chunk claimed, dropping the learner's id: from here on the job names
 * the learner by HMAC only, and its document is in R2. Not completed when the lease was lost (another delivery took
 * the chunk over, or an erasure cancelled the job), when an erasure of the learner is pending (then it cancels the
 * export instead, in the same transaction), or when the application's deletion was accepted (`deleted`: then nothing
 * of the export may stay).
 */
export async function completeExport(db: Db, job: Job, lease: string, now: string): Promise<{ completed: boolean; deleted: boolean }> {
	// ?1 job, ?2 app, ?3 lease, ?4 now, ?5 cursor claimed, ?9 learner HMAC
	const params = [job.id, job.appId, lease, now, job.cursor + 1, null, null, null, job.learnerHash];
	const underLease = `lease = ?3 AND cursor = ?5 AND status = 'running' AND ${NOT_MOVING("jobs.app_id")} AND ${LIVE}`;
	// An erasure of the learner accepted while the document was being made: cancelled, not completed.
	const [, , completed, application] = await db.batch([
		prepareWith(db, CANCEL_IF_ERASING(underLease), params),
		prepareWith(db, `UPDATE jobs SET status = 'completed', completed_at = ?4, learner_id = NULL, error = NULL, touched_at = ?4 WHERE id = ?1 AND ${underLease}`, params),
		// Completed under this lease: a repeat after a lost reply (retryTransient) finds the completion its first attempt made.
		prepareWith(db, "SELECT 1 FROM jobs WHERE id = ?1 AND lease = ?3 AND cursor = ?5 AND status = 'completed' AND error IS NULL", params),
		prepareWith(db, "SELECT 1 FROM app_storage WHERE app_id = ?2 AND deleted_at IS NOT NULL", params),
	]);
	return { completed: (completed?.results.length ?? 0) > 0, deleted: (application?.results.length ?? 0) > 0 };
}

/** Fails an export whose document cannot be made (too large to sign as one), under its lease, dropping the learner id. */
export async function failExport(db: Db, job: Job, lease: string, reason: string, now: string): Promise<void> {
	await db
		.prepare(
			`UPDATE jobs SET status = 'failed', completed_at = ?3, learner_id = NULL, error = ?5
			 WHERE id = ?1 AND lease = ?2 AND cursor = ?4 AND status = 'running' AND ${NOT_MOVING("jobs.app_id")}`,
		)
		.bind(job.id, lease, now, job.cursor + 1, reason)
		.run();
}

/** An export whose objects are to be deleted: its id and the region whose bucket holds them. */
export interface ExportObjects {
	jobId: string;
	region: "default" | "eu" | null;
}

const exportObjects = (row: { id: string; payload: string | null }): ExportObjects => {
	const region = (JSON.parse(row.payload ?? "{}") as Partial<ExportPlan>).region;
	return { jobId: row.id, region: region === "default" || region === "eu" ? region : null };
};

/** The statement listing a learner's exports whose objects may still exist (?1 app, ?7 its HMAC): an erasure reads it. */
export const UNPURGED_EXPORTS_OF_LEARNER = `SELECT id, payload FROM jobs WHERE app_id = ?1 AND learner_hash = ?7 AND type = 'exportLearnerData'
  AND json_extract(payload, '$.purged') IS NULL`;

/** The exports an erasure chunk's results list (UNPURGED_EXPORTS_OF_LEARNER's rows). */
export const exportsListed = (result: D1Result | undefined): ExportObjects[] =>
	((result?.results ?? []) as { id: string; payload: string | null }[]).map(exportObjects);

/** Marks exports' objects as deleted (their jobs stay, for their dates and status, until job retention). */
export async function markExportsPurged(db: Db, jobIds: string[]): Promise<void> {
	if (jobIds.length === 0) return;
	await retryTransient(() =>
		db
			.prepare(
				`UPDATE jobs SET payload = json_set(coalesce(payload, '{}'), '$.purged', json('true'))
				 WHERE id IN (SELECT value FROM json_each(?1)) AND type = 'exportLearnerData' AND ${NOT_MOVING("jobs.app_id")}`,
			)
			.bind(JSON.stringify(jobIds))
			.run(),
	);
}

/**
 * Up to `limit` finished exports whose objects may still be in R2 and whose retention has passed (completed, or
 * failed, before `cutoff`), oldest first. Served by jobs_exports_unpurged, which holds only these: rows read follow
 * the exports due, however many jobs the shard holds.
 */
export async function exportsToExpire(db: Db, cutoff: string, limit: number): Promise<ExportObjects[]> {
	const { results } = await retryTransient(() =>
		db
			.prepare(
				`SELECT id, payload FROM jobs INDEXED BY jobs_exports_unpurged
				 WHERE type = 'exportLearnerData' AND status IN ('completed', 'failed') AND json_extract(payload, '$.purged') IS NULL
				   AND completed_at < ?1 ORDER BY completed_at LIMIT ?2`,
			)
			.bind(cutoff, limit)
			.all<{ id: string; payload: string | null }>(),
	);
	return results.map(exportObjects);
}

// --- Realm-wide exports (the control database) -------------------------------------------------------------------

/** One application's share of a realm-wide export: its export job there. */
export interface RealmExportChild {
	appId: string;
	jobId: string;
}

/** A realm-wide export's plan (payload): the applications that held the learner, and their exports once asked. */
export interface RealmExportPlan {
	holders: string[];
	children?: RealmExportChild[];
	/** Applications where an erasure of the learner was pending when asked: the realm's document cannot be made. */
	erasing?: string[];
}

export const realmExportPlan = (job: Pick<Job, "payload">): RealmExportPlan => ({
	holders: [],
	...(JSON.parse(job.payload ?? "{}") as Partial<RealmExportPlan>),
});

/**
 * Records a realm-wide export (a realm job, app_id "") before any application is asked, with the request's
 * Idempotency-Key and its audit entry, in one transaction. It keeps the learner's id until its children are named.
 */
export async function recordRealmExport(
	control: Db,
	job: { id: string; learnerId: string; learnerHash: string; requestedBy: string; holders: string[]; createdAt: string },
	keyed?: KeyedBatch,
	audit?: AuditRecord,
): Promise<void> {
	const plan: RealmExportPlan = { holders: job.holders };
	await batchWith(
		control,
		[
			control.prepare(TICK_JOB_CLOCK),
			control
				.prepare(
					`INSERT INTO jobs (id, seq, app_id, type, status, learner_id, learner_hash, payload, requested_by, created_at, touched_at)
					 VALUES (?1, ${JOB_CLOCK}, '', 'exportLearnerData', 'queued', ?2, ?3, ?4, ?5, ?6, ?6)`,
				)
				.bind(job.id, job.learnerId, job.learnerHash, JSON.stringify(plan), job.requestedBy, job.createdAt),
			...(audit ? [auditStatement(control, audit)] : []),
		],
		keyed,
	);
}

/** Records a realm-wide export's children under the claim of the step that asked for them, dropping the learner's id. */
export async function saveRealmExportChildren(control: Db, job: Job, lease: string, plan: RealmExportPlan, now: string): Promise<void> {
	await control
		.prepare("UPDATE jobs SET payload = ?3, learner_id = NULL, touched_at = ?4 WHERE id = ?1 AND lease = ?2 AND cursor = ?5")
		.bind(job.id, lease, JSON.stringify(plan), now, job.cursor + 1)
		.run();
}

/** Fails a realm-wide export under the claim of the step that asked the applications, dropping the learner's id. */
export async function failRealmExport(control: Db, job: Job, lease: string, reason: string, now: string): Promise<void> {
	await control
		.prepare(
			`UPDATE jobs SET status = 'failed', error = ?3, learner_id = NULL, completed_at = ?4, touched_at = ?4
			 WHERE id = ?1 AND lease = ?2 AND cursor = ?5`,
		)
		.bind(job.id, lease, reason, now, job.cursor + 1)
		.run();
}

/** The realm jobs (control database) that named a learner by its realm-wide HMAC, in id order, at most `limit`. */
export async function realmJobsNaming(control: Db, learnerHash: string, limit: number): Promise<ExportedJob[]> {
	const { results } = await retryTransient(() =>
		control
			.prepare(
				`SELECT id, type, status, created_at, completed_at FROM jobs INDEXED BY jobs_by_learner
				 WHERE learner_hash = ?1 AND app_id = '' ORDER BY id LIMIT ?2`,
			)
			.bind(learnerHash, limit)
			.all<{ id: string; type: string; status: JobStatus; created_at: string; completed_at: string | null }>(),
	);
	return results.map((row) => ({
		id: row.id,
		type: row.type,
		status: row.status,
		createdDate: row.created_at,
		...(row.completed_at !== null && { completedDate: row.completed_at }),
	}));
}
