import { countRows } from "./app-storage";
import { type ExportObjects, UNPURGED_EXPORTS_OF_LEARNER, exportsListed } from "./exports";
import { type Job, type JobRow, toJob } from "./jobs";
import { type Db, prepareWith } from "./types";

/**
 * Running background jobs, one bounded chunk at a time; each chunk is one db.batch() (one transaction) whose
 * first statement claims it and whose later writes apply only under the claim's lease (./storage-schema.md,
 * "Chunks: claim, lease, position").
 */

/**
 * How much one chunk may do: the registrations it visits, and the rows it deletes (registrations plus their
 * tags, for an erasure). Each chunk is one transaction, so these bound its time whatever a learner holds.
 */
export interface ChunkBounds {
	registrations: number;
	rows: number;
}

/** What one chunk did. */
export interface ChunkResult {
	/** False when another delivery claimed the chunk first (or the job was finished): stop, that one goes on. */
	claimed: boolean;
	completed: boolean;
	/** Not claimed because the application is moving between shards: try again shortly (on its new shard). */
	frozen: boolean;
	/** The application may have a webhook (app_storage.webhook_hint): jobs that ended have events to look at. */
	announce: boolean;
	/**
	 * An erasure's: the learner's exports whose objects (in R2) may still exist. The erasure does not complete while
	 * there is one: the runner deletes their objects (src/jobs/exports.ts purgeExports) before its next chunk.
	 */
	exportsToPurge?: ExportObjects[];
}

async function readChunkResult(results: D1Result[], lease: string): Promise<ChunkResult> {
	const row = results.at(-1)?.results[0] as
		| { status: string; lease: string | null; frozen: number | null; webhook_hint: number | null }
		| undefined;
	const frozen = Boolean(row?.frozen);
	const announce = row?.webhook_hint !== 0;
	if (!row || row.lease !== lease) return { claimed: false, completed: row?.status === "completed", frozen, announce };
	return { claimed: true, completed: row.status === "completed", frozen: false, announce };
}

/**
 * The last statement of every chunk: the job's state after it, whether its application is frozen for a move, and
 * whether it may have a webhook.
 */
const chunkOutcome = (db: Db, job: Job) =>
	db
		.prepare(
			`SELECT status, lease, (SELECT frozen_at IS NOT NULL AND deleted_at IS NULL FROM app_storage WHERE app_id = ?2) AS frozen,
			   (SELECT webhook_hint FROM app_storage WHERE app_id = ?2) AS webhook_hint
			 FROM jobs WHERE id = ?1`,
		)
		.bind(job.id, job.appId);

// No chunk is claimed while the application is frozen for a move (./move.ts): the chunk's writes would be
// journaled, but the job must go on where the application lands.
const NOT_FROZEN_OF = (app: string) =>
	`NOT EXISTS (SELECT 1 FROM app_storage WHERE app_id = ${app} AND frozen_at IS NOT NULL AND deleted_at IS NULL)`;
const NOT_FROZEN = NOT_FROZEN_OF("?1");

// ?3 job id, ?4 cursor read by the worker, ?5 this attempt's lease.
const LEASED = "EXISTS (SELECT 1 FROM jobs WHERE id = ?3 AND lease = ?5 AND cursor = ?4 + 1)";

/**
 * Applies an update to the next chunk of the learner's registrations (pk order, after the job's position).
 * Each field changes only where the update is newer than the field's version (the jobs.seq that last set it:
 * ./storage-schema.md, "Job clock and sequence numbers"). Completes the job, dropping its payload and learner
 * id, after the last chunk. Nothing is claimed once the application's deletion was accepted (SPEC §11: nothing
 * is written into it after that): the deletion removes the job with the rest.
 */
export async function runUpdateChunk(db: Db, job: Job, lease: string, bounds: ChunkBounds, now: string): Promise<ChunkResult> {
	// ?1 app, ?2 learner, ?3 job, ?4 cursor, ?5 lease, ?6 position, ?7 chunk size, ?8 seq, ?9 payload, ?10 now
	const chunk = "SELECT pk FROM registrations WHERE app_id = ?1 AND learner_id = ?2 AND pk > ?6 ORDER BY pk LIMIT ?7";
	const newer = (field: string, column: string) => `(json_type(?9, '$.${field}') IS NOT NULL AND ${column}_seq < ?8)`;
	const set = (field: string, column: string, valueColumn: string) =>
		`${valueColumn} = CASE WHEN ${newer(field, column)} THEN json_extract(?9, '$.${field}') ELSE ${valueColumn} END,
		 ${column}_seq = CASE WHEN ${newer(field, column)} THEN ?8 ELSE ${column}_seq END`;
	const params = [
		job.appId,
		job.learnerId,
		job.id,
		job.cursor,
		lease,
		job.position,
		bounds.registrations,
		job.seq,
		job.payload ?? "{}",
		now,
	];
	const statement = (sql: string) => prepareWith(db, sql, params);
	const results = await db.batch([
		statement(
			`UPDATE jobs SET cursor = cursor + 1, lease = ?5, status = 'running', started_at = coalesce(started_at, ?10),
			   touched_at = ?10, resends = 0, position = coalesce((SELECT max(pk) FROM (${chunk})), position),
			   registrations_affected = registrations_affected + (SELECT count(*) FROM (${chunk}))
			 WHERE id = ?3 AND cursor = ?4 AND status IN ('queued', 'running')
			   AND NOT EXISTS (SELECT 1 FROM app_storage WHERE app_id = ?1 AND deleted_at IS NOT NULL) AND ${NOT_FROZEN}`,
		),
		statement(
			`UPDATE registrations SET
			   ${set("email", "email", "learner_email")},
			   ${set("firstName", "first_name", "learner_first_name")},
			   ${set("lastName", "last_name", "learner_last_name")},
			   updated_at = CASE WHEN ${newer("email", "email")} OR ${newer("firstName", "first_name")}
			     OR ${newer("lastName", "last_name")} THEN ?10 ELSE updated_at END
			 WHERE pk IN (${chunk}) AND ${LEASED}`,
		),
		statement(
			`UPDATE jobs SET status = 'completed', completed_at = ?10, payload = NULL, learner_id = NULL, error = NULL
			 WHERE id = ?3 AND lease = ?5 AND cursor = ?4 + 1 AND (SELECT count(*) FROM (${chunk})) < ?7`,
		),
		chunkOutcome(db, job),
	]);
	return readChunkResult(results, lease);
}

/**
 * Erases the next chunk of the learner's registrations with their tags — as many registrations, in pk order,
 * as fit in `bounds.rows` rows (always at least one; at most `bounds.registrations`) — and drops the learner
 * id and payload of the learner's other jobs. When no registration is left it removes the learner's tags and
 * completes the job, keeping only the HMAC of the learner id, the requester, times and counts.
 */
export async function runErasureChunk(
	db: Db,
	job: Job,
	lease: string,
	bounds: ChunkBounds,
	now: string,
	alongside: D1PreparedStatement[] = [],
): Promise<ChunkResult> {
	// ?1 app, ?2 learner, ?3 job, ?4 cursor, ?5 lease, ?6 registrations per chunk, ?7 learner hash, ?8 now,
	// ?9 rows per chunk. The running row count is taken over the first ?6 registrations only, so a chunk reads
	// at most ?6 of them however many the learner has. The claim records the chunk's last pk as the job's
	// position; the chunk is then every registration of the learner up to it (all that is left of it comes after
	// the previous chunks'), one index range per statement, and nothing for an attempt that lost the claim.
	const chunk = `SELECT pk FROM (
	    SELECT pk, tag_count, sum(1 + tag_count) OVER (ORDER BY pk) AS rows_through
	    FROM (SELECT pk, tag_count FROM registrations WHERE app_id = ?1 AND learner_id = ?2 ORDER BY pk LIMIT ?6))
	  WHERE rows_through <= ?9 OR rows_through = 1 + tag_count`;
	const inChunk = `app_id = ?1 AND learner_id = ?2
	  AND pk <= (SELECT position FROM jobs WHERE id = ?3 AND lease = ?5 AND cursor = ?4 + 1)`;
	const params = [job.appId, job.learnerId, job.id, job.cursor, lease, bounds.registrations, job.learnerHash, now, bounds.rows];
	const completedUnderLease = "EXISTS (SELECT 1 FROM jobs WHERE id = ?3 AND lease = ?5 AND cursor = ?4 + 1 AND status = 'completed')";
	const statement = (sql: string) => prepareWith(db, sql, params);
	const results = await db.batch([
		statement(
			`UPDATE jobs SET cursor = cursor + 1, lease = ?5, status = 'running', started_at = coalesce(started_at, ?8),
			   touched_at = ?8, resends = 0, position = coalesce((SELECT max(pk) FROM (${chunk})), position)
			 WHERE id = ?3 AND cursor = ?4 AND status IN ('queued', 'running') AND ${NOT_FROZEN}`,
		),
		statement(
			`UPDATE jobs SET
			   registrations_affected = registrations_affected + (SELECT count(*) FROM registrations WHERE ${inChunk}),
			   tags_removed = tags_removed + (SELECT coalesce(sum(tag_count), 0) FROM registrations WHERE ${inChunk})
			 WHERE id = ?3 AND ${LEASED}`,
		),
		// The learner's unfinished exports are cancelled (their objects are deleted before the erasure completes: see
		// the completion below); the learner's id goes from them.
		statement(
			`UPDATE jobs SET learner_id = NULL, completed_at = ?8, status = 'completed', error = 'Cancelled: the learner''s data was erased'
			 WHERE app_id = ?1 AND learner_hash = ?7 AND type = 'exportLearnerData' AND status IN ('queued', 'running') AND ${LEASED}`,
		),
		// The learner's updates (never its other erasures: a learner has one erasure pending, which every request
		// for it joins, and whatever one of them promised must hold).
		statement(
			`UPDATE jobs SET payload = NULL, learner_id = NULL, completed_at = coalesce(completed_at, ?8),
			   error = CASE WHEN status IN ('queued', 'running') THEN 'Cancelled: the learner''s data was erased' ELSE error END,
			   status = CASE WHEN status IN ('queued', 'running') THEN 'completed' ELSE status END
			 WHERE app_id = ?1 AND learner_hash = ?7 AND type = 'updateLearnerInfo' AND (payload IS NOT NULL OR learner_id IS NOT NULL)
			   AND ${LEASED}`,
		),
		// Before the deletion: the chunk's registrations, and the learner when none of its registrations is left after them.
		statement(
			countRows(`-(SELECT count(*) + coalesce(sum(tag_count), 0) FROM registrations WHERE ${inChunk})`, "1", {
				registrations: `-(SELECT count(*) FROM registrations WHERE ${inChunk})`,
				learners: `-(EXISTS (SELECT 1 FROM registrations WHERE ${inChunk})
				  AND NOT EXISTS (SELECT 1 FROM registrations WHERE app_id = ?1 AND learner_id = ?2 AND NOT (${inChunk})))`,
			}),
		),
		statement(
			`DELETE FROM registration_tags WHERE app_id = ?1
			   AND registration_id IN (SELECT id FROM registrations WHERE ${inChunk})`,
		),
		statement(`DELETE FROM registrations WHERE ${inChunk}`),
		// Asked with suppression (payload {"suppress":true}): the learner's HMAC stays, refusing its registration
		// (./suppressions.ts). Before the completion, which drops the payload.
		statement(
			`INSERT OR IGNORE INTO suppressions (app_id, learner_hash, job_id, created_at)
			 SELECT ?1, ?7, ?3, ?8 FROM jobs WHERE id = ?3 AND lease = ?5 AND cursor = ?4 + 1 AND json_extract(payload, '$.suppress') = 1
			   AND NOT EXISTS (SELECT 1 FROM registrations WHERE app_id = ?1 AND learner_id = ?2)`,
		),
		// The payload stays: it holds only whether the erasure suppressed its learner, which its receipt states.
		statement(
			`UPDATE jobs SET status = 'completed', completed_at = ?8, learner_id = NULL, error = NULL,
			   tags_removed = tags_removed + (SELECT count(*) FROM learner_tags WHERE app_id = ?1 AND learner_id = ?2)
			 WHERE id = ?3 AND lease = ?5 AND cursor = ?4 + 1
			   AND NOT EXISTS (SELECT 1 FROM registrations WHERE app_id = ?1 AND learner_id = ?2)
			   AND NOT EXISTS (${UNPURGED_EXPORTS_OF_LEARNER})`,
		),
		statement(
			countRows("-(SELECT count(*) FROM learner_tags WHERE app_id = ?1 AND learner_id = ?2)", completedUnderLease),
		),
		statement(`DELETE FROM learner_tags WHERE app_id = ?1 AND learner_id = ?2 AND ${completedUnderLease}`),
		statement(`DELETE FROM learner_tag_counts WHERE app_id = ?1 AND learner_id = ?2 AND ${completedUnderLease}`),
		// Responses kept for Idempotency-Key retries of requests that named the learner (./idempotency.ts).
		statement(`DELETE FROM idempotency_keys WHERE app_id = ?1 AND learner_hash = ?7 AND ${completedUnderLease}`),
		// The learner's last write goes with it (migrations/shard 0010).
		statement(`DELETE FROM learner_activity WHERE app_id = ?1 AND learner_id = ?2 AND ${completedUnderLease}`),
		...alongside,
		statement(UNPURGED_EXPORTS_OF_LEARNER),
		chunkOutcome(db, job),
	]);
	const result = await readChunkResult(results, lease);
	const exportsToPurge = result.claimed && !result.completed ? exportsListed(results.at(-2)) : [];
	return exportsToPurge.length > 0 ? { ...result, exportsToPurge } : result;
}

/**
 * Deletes the next chunk of a deleted application's data: up to `bounds.registrations` rows of each table that holds it,
 * then completes the job once none is left. The applications row stays, marked deleted, so its id is never
 * reused; it holds no learner data.
 */
export async function runApplicationDeletionChunk(
	db: Db,
	job: Job,
	lease: string,
	bounds: ChunkBounds,
	now: string,
): Promise<ChunkResult> {
	// ?1 app, ?2 (unused), ?3 job, ?4 cursor, ?5 lease, ?6 rows per table, ?7 now
	const params = [job.appId, null, job.id, job.cursor, lease, bounds.registrations, now];
	const statement = (sql: string) => prepareWith(db, sql, params);
	const first = (table: string, key: string, extra = "") => `SELECT ${key} FROM ${table} WHERE app_id = ?1${extra} LIMIT ?6`;
	const remaining = (table: string, extra = "") => `EXISTS (SELECT 1 FROM ${table} WHERE app_id = ?1${extra})`;
	const otherJobs = " AND id <> ?3";
	const results = await db.batch([
		statement(
			`UPDATE jobs SET cursor = cursor + 1, lease = ?5, status = 'running', started_at = coalesce(started_at, ?7),
			   touched_at = ?7, resends = 0, registrations_affected = registrations_affected + (SELECT count(*) FROM (${first("registrations", "pk")})),
			   tags_removed = tags_removed + (SELECT count(*) FROM (${first("registration_tags", "rowid")}))
			     + (SELECT count(*) FROM (${first("learner_tags", "rowid")}))
			 WHERE id = ?3 AND cursor = ?4 AND status IN ('queued', 'running')`,
		),
		statement(`DELETE FROM registration_tags WHERE rowid IN (${first("registration_tags", "rowid")}) AND ${LEASED}`),
		statement(`DELETE FROM learner_tags WHERE rowid IN (${first("learner_tags", "rowid")}) AND ${LEASED}`),
		statement(
			`DELETE FROM learner_tag_counts WHERE app_id = ?1
			   AND learner_id IN (${first("learner_tag_counts", "learner_id")}) AND ${LEASED}`,
		),
		statement(`DELETE FROM registrations WHERE pk IN (${first("registrations", "pk")}) AND ${LEASED}`),
		statement(
			`DELETE FROM idempotency_keys WHERE app_id = ?1 AND key_hash IN (${first("idempotency_keys", "key_hash")}) AND ${LEASED}`,
		),
		statement(
			`DELETE FROM suppressions WHERE app_id = ?1 AND learner_hash IN (${first("suppressions", "learner_hash")}) AND ${LEASED}`,
		),
		statement(`DELETE FROM job_members WHERE app_id = ?1 AND job_id IN (${first("job_members", "job_id")}) AND ${LEASED}`),
		statement(
			`DELETE FROM learner_activity WHERE app_id = ?1 AND learner_id IN (${first("learner_activity", "learner_id")}) AND ${LEASED}`,
		),
		statement(`DELETE FROM jobs WHERE id IN (${first("jobs", "id", otherJobs)}) AND ${LEASED}`),
		statement(
			`UPDATE jobs SET status = 'completed', completed_at = ?7, error = NULL
			 WHERE id = ?3 AND lease = ?5 AND cursor = ?4 + 1
			   AND NOT ${remaining("registration_tags")} AND NOT ${remaining("learner_tags")}
			   AND NOT ${remaining("learner_tag_counts")} AND NOT ${remaining("registrations")}
			   AND NOT ${remaining("idempotency_keys")} AND NOT ${remaining("suppressions")} AND NOT ${remaining("job_members")}
			   AND NOT ${remaining("learner_activity")}
			   AND NOT ${remaining("jobs", otherJobs)}`,
		),
		// A deleted application stores nothing: its counters end at zero.
		statement(
			`UPDATE app_storage SET stored_rows = 0, registrations = 0, learners = 0 WHERE app_id = ?1
			   AND EXISTS (SELECT 1 FROM jobs WHERE id = ?3 AND lease = ?5 AND cursor = ?4 + 1 AND status = 'completed')`,
		),
		chunkOutcome(db, job),
	]);
	return readChunkResult(results, lease);
}

/**
 * The next chunk of a bulk erasure (SPEC §9), whose learners are listed in job_members as [HMAC, erasure job id]
 * and `position` is the next one to look at: while that learner's erasure is unfinished, it runs one chunk of it
 * (runErasureChunk, with that job's own claim and lease, whoever else runs it too); once it has finished, the bulk
 * takes its counts and moves past it (at most once: the move is conditioned on the position read), and after the
 * last learner completes (failed if any learner's erasure failed). Each chunk reads one member and one job, so a
 * bulk's rows read grow linearly with its learners, not with their square. Nothing is written while the
 * application is frozen for a move.
 */
export async function runBulkErasureChunk(db: Db, job: Job, lease: string, bounds: ChunkBounds, now: string): Promise<ChunkResult> {
	const found = await db
		.prepare(
			`SELECT m.members ->> ('$[' || CAST(?2 AS INTEGER) || '][1]') AS member, json_array_length(m.members) AS total, j.*
			 FROM job_members m LEFT JOIN jobs j ON j.id = m.members ->> ('$[' || CAST(?2 AS INTEGER) || '][1]') WHERE m.job_id = ?1`,
		)
		.bind(job.id, job.position)
		.first<JobRow & { member: string | null; total: number }>();
	// ?1 bulk, ?2 position read, ?3 app, ?4 now, ?5 the member's job id, ?6 learners in all
	const params = [job.id, job.position, job.appId, now, found?.member ?? null, found?.total ?? 0];
	const statement = (sql: string) => prepareWith(db, sql, params);
	const member = (column: string) => `(SELECT ${column} FROM jobs WHERE id = ?5)`;
	const bulkUnfinished = `status IN ('queued', 'running') AND ${NOT_FROZEN_OF("?3")}`;
	const failedLearners = "Some of its learners could not be erased: ask again for them";
	const progress = [
		// Attended to: the sweeper leaves the bulk alone while its learners' erasures run.
		statement(`UPDATE jobs SET status = 'running', started_at = coalesce(started_at, ?4), touched_at = ?4, resends = 0 WHERE id = ?1 AND ${bulkUnfinished}`),
		// Past a learner whose erasure has finished (or is gone), taking its counts once.
		statement(
			`UPDATE jobs SET position = position + 1,
			   registrations_affected = registrations_affected + coalesce(${member("registrations_affected")}, 0),
			   tags_removed = tags_removed + coalesce(${member("tags_removed")}, 0),
			   error = CASE WHEN ${member("status")} = 'failed' THEN '${failedLearners}' ELSE error END
			 WHERE id = ?1 AND position = ?2 AND ?2 < ?6 AND ${bulkUnfinished}
			   AND NOT EXISTS (SELECT 1 FROM jobs WHERE id = ?5 AND status IN ('queued', 'running'))`,
		),
		statement(
			`UPDATE jobs SET status = CASE WHEN error = '${failedLearners}' THEN 'failed' ELSE 'completed' END, completed_at = ?4,
			   error = CASE WHEN error = '${failedLearners}' THEN error END
			 WHERE id = ?1 AND position >= ?6 AND ${bulkUnfinished}`,
		),
	];
	if (found?.member && found.id && (found.status === "queued" || found.status === "running")) {
		// The learner's erasure runs a chunk, and, if that completed it, the bulk moves on in the same transaction.
		const step = await runErasureChunk(db, toJob(found), lease, bounds, now, progress);
		// Another runner holding that erasure's chunk (its own message, another bulk) does not end this one: the
		// bulk looks again at its next chunk, and finds itself finished there if it is.
		return {
			claimed: true,
			completed: false,
			frozen: step.frozen,
			announce: step.announce,
			...(step.exportsToPurge && { exportsToPurge: step.exportsToPurge }),
		};
	}
	const results = await db.batch([...progress, chunkOutcome(db, job)]);
	const row = results.at(-1)?.results[0] as { status: string; frozen: number | null; webhook_hint: number | null } | undefined;
	return {
		claimed: true,
		completed: row?.status === "completed" || row?.status === "failed",
		frozen: Boolean(row?.frozen),
		announce: row?.webhook_hint !== 0,
	};
}
