import { retryTransient } from "./retry";
import type { Db } from "./types";

/**
 * Each learner's last write (SPEC §12, retention; migrations/shard 0010: learner_activity). Every write to a learner
 * — a registration created or deleted, its tags or its registrations' tags written, an update accepted — carries one
 * of these statements in its own batch (no D1 call of its own), after the write's statements, so that it sees what
 * the write did: only learners that exist are stamped. A learner's row goes with it (its last registration deleted,
 * its erasure, its application's deletion). Stamps never move backwards (isolates' clocks differ slightly).
 */

const STAMP = "ON CONFLICT (app_id, learner_id) DO UPDATE SET last_write_at = max(last_write_at, excluded.last_write_at)";

/** Stamps the learners of ?2 (a JSON array of learner ids) in application ?1 that exist, at ?3, when `when` holds. */
export const touchLearners = (db: Db, appId: string, learnerIds: string[], now: string, when = "1") =>
	db
		.prepare(
			`INSERT INTO learner_activity (app_id, learner_id, last_write_at)
			 SELECT ?1, i.value, ?3 FROM json_each(?2) i
			 WHERE ${when} AND EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = ?1 AND r.learner_id = i.value)
			 ${STAMP}`,
		)
		.bind(appId, JSON.stringify(learnerIds), now);

/** Stamps the learners of the registrations ?2 (a JSON array of registration ids) of application ?1, at ?3, when `when` holds. */
export const touchLearnersOfRegistrations = (db: Db, appId: string, registrationIds: string[], now: string, when = "1") =>
	db
		.prepare(
			`INSERT INTO learner_activity (app_id, learner_id, last_write_at)
			 SELECT DISTINCT ?1, r.learner_id, ?3 FROM json_each(?2) i JOIN registrations r ON r.app_id = ?1 AND r.id = i.value
			 WHERE ${when}
			 ${STAMP}`,
		)
		.bind(appId, JSON.stringify(registrationIds), now);

/** A learner of the application with no write since `cutoff`. */
export interface InactiveLearner {
	learnerId: string;
	lastWriteAt: string;
}

/**
 * Up to `limit` learners of the application whose last write is before `cutoff` and whose erasure is not pending
 * already (it needs no other), longest inactive first: one range of learner_activity_by_last_write, each learner
 * checked with one seek of jobs_erasing_by_learner, so rows read follow the learners found and those being erased,
 * whatever the application holds; a backlog of pending erasures among the longest inactive does not hide the others.
 */
export async function inactiveLearners(db: Db, appId: string, cutoff: string, limit: number): Promise<InactiveLearner[]> {
	const { results } = await retryTransient(() =>
		db
			.prepare(
				`SELECT a.learner_id, a.last_write_at FROM learner_activity a INDEXED BY learner_activity_by_last_write
				 WHERE a.app_id = ?1 AND a.last_write_at < ?2
				   AND NOT EXISTS (SELECT 1 FROM jobs j INDEXED BY jobs_erasing_by_learner WHERE j.app_id = ?1 AND j.learner_id = a.learner_id
				     AND j.type = 'deleteAllLearnerData' AND j.status IN ('queued', 'running'))
				 ORDER BY a.last_write_at LIMIT ?3`,
			)
			.bind(appId, cutoff, limit)
			.all<{ learner_id: string; last_write_at: string }>(),
	);
	return results.map((row) => ({ learnerId: row.learner_id, lastWriteAt: row.last_write_at }));
}
