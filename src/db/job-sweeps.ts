import { NOT_MOVING } from "./app-storage";
import { KEEP_EXPORT_PAYLOAD, type JobType } from "./jobs";
import { retryTransient } from "./retry";
import type { Db } from "./types";

/**
 * The sweeper's reads and repairs (src/jobs/sweeper.ts), and the bookkeeping of sent messages: `touched_at` and
 * `resends` (./storage-schema.md, "touched_at, resends and the sweeper").
 */

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
	options: { maxResends: number; limit: number; realm?: boolean },
): Promise<{ orphaned: number; givenUp: number; stale: StaleJob[] }> {
	// A bulk erasure's learners are run by it, never sent on their own: the bulk job is what the sweeper watches.
	// An application frozen for a move is left alone: its jobs go on where it lands (a write here would be lost).
	const stale = `status IN ('queued', 'running') AND (touched_at IS NULL OR touched_at < ?1)${options.realm ? "" : " AND parent_id IS NULL"}
	  AND ${NOT_MOVING("jobs.app_id")}`;
	// The control database's realm jobs (moves) have no learner: only a shard has orphaned updates.
	const orphans = db
		.prepare(
			`UPDATE jobs SET status = 'completed', completed_at = ?2, payload = NULL, learner_id = NULL, error = NULL
			 WHERE ${stale} AND type = 'updateLearnerInfo'
			   AND NOT EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = jobs.app_id AND r.learner_id = jobs.learner_id)`,
		)
		.bind(cutoff, now);
	const results = await retryTransient(() =>
		db.batch([
			...(options.realm ? [] : [orphans]),
			db
				.prepare(
					`UPDATE jobs SET status = 'failed', completed_at = ?2, payload = ${KEEP_EXPORT_PAYLOAD}, learner_id = NULL,
					   error = 'Lost: its message was sent again ' || resends || ' times without the job being run'
					     || coalesce('. Last error: ' || error, '')
					 WHERE ${stale} AND type NOT IN ('deleteApplication', 'moveApplication') AND resends >= ?3`,
				)
				.bind(cutoff, now, options.maxResends),
			db
				.prepare(`SELECT id, type, resends FROM jobs WHERE ${stale} ORDER BY touched_at LIMIT ?2`)
				.bind(cutoff, options.limit),
		]),
	);
	const [orphaned, givenUp, found] = options.realm ? [undefined, ...results] : results;
	return {
		orphaned: orphaned?.meta.changes ?? 0,
		givenUp: givenUp?.meta.changes ?? 0,
		stale: (found?.results ?? []) as StaleJob[],
	};
}

/**
 * Records that the sweeper sent these jobs' messages again, now. Counted once however often it is retried: a
 * job already stamped `now` was counted by an attempt whose reply was lost.
 */
export async function markResent(db: Db, jobIds: string[], now: string): Promise<void> {
	await retryTransient(() =>
		db
			.prepare(
				`UPDATE jobs SET touched_at = ?2, resends = resends + 1
				 WHERE id IN (SELECT value FROM json_each(?1)) AND status IN ('queued', 'running')
				   AND (touched_at IS NULL OR touched_at < ?2) AND ${NOT_MOVING("jobs.app_id")}`,
			)
			.bind(JSON.stringify(jobIds), now)
			.run(),
	);
}

/** Job types whose finished rows are receipts (GET /jobs/{id}/receipt): kept for RECEIPT_RETENTION_DAYS. */
const ERASURE_TYPES = "'deleteAllLearnerData', 'deleteLearnersData', 'deleteRealmLearnerData'";

/**
 * Deletes finished jobs past their retention, at most `limit` of each kind: erasures completed before
 * `receiptCutoff` (their rows are their receipts), other jobs before `jobCutoff`. An application's deletion job stays
 * (it fences off the deleted application); an application frozen for a move is left alone. Served by
 * jobs_finished_by_completion; a bulk erasure's list of learners goes with it. How many went.
 */
export async function pruneFinishedJobs(
	db: Db,
	cutoffs: { job: string; receipt: string },
	limit: number,
	options: { realm: boolean },
): Promise<number> {
	const finished = (types: string, cutoff: string) =>
		`SELECT id FROM jobs WHERE status IN ('completed', 'failed') AND completed_at < ${cutoff} AND type ${types} AND ${NOT_MOVING("jobs.app_id")} LIMIT ?3`;
	const receipts = finished(`IN (${ERASURE_TYPES})`, "?2");
	const others = finished(`NOT IN (${ERASURE_TYPES}, 'deleteApplication')`, "?1");
	const statements = [
		...(options.realm ? [] : [db.prepare(`DELETE FROM job_members WHERE job_id IN (${receipts})`).bind(cutoffs.job, cutoffs.receipt, limit)]),
		db.prepare(`DELETE FROM jobs WHERE id IN (${receipts})`).bind(cutoffs.job, cutoffs.receipt, limit),
		db.prepare(`DELETE FROM jobs WHERE id IN (${others})`).bind(cutoffs.job, cutoffs.receipt, limit),
	];
	const results = await retryTransient(() => db.batch(statements));
	return results.slice(options.realm ? 0 : 1).reduce((sum, result) => sum + (result.meta.changes ?? 0), 0);
}
