import { type WriteLimits, writeGuard } from "./app-storage";
import type { AuditRecord } from "./audit-append";
import { outboxStatement } from "./audit-outbox";
import { retryTransient } from "./retry";
import type { Db } from "./types";

/**
 * Suppressions (SPEC §9, as Segment's; migrations/shard: suppressions): the HMAC of a learner erased with
 * ?suppress=true, kept so that no registration naming the learner is accepted again in that application until the
 * suppression is lifted. Recorded by the erasure's completing chunk (./job-chunks.ts); checked by
 * createRegistration (./registrations.ts) in its own transaction.
 */

/** SQL true when the learner whose HMAC is parameter `hash` is suppressed in application ?1. */
export const SUPPRESSED = (hash: string) => `EXISTS (SELECT 1 FROM suppressions WHERE app_id = ?1 AND learner_hash = ${hash})`;

export interface Suppression {
	learnerHash: string;
	jobId: string;
	createdAt: string;
}

/** An erasure of the learner (?1 app, ?2 HMAC) is pending: one seek of jobs_by_learner. */
const ERASING = `EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_by_learner WHERE app_id = ?1 AND learner_hash = ?2
  AND type = 'deleteAllLearnerData' AND status IN ('queued', 'running'))`;

/**
 * Lifts a learner's suppression, in one transaction that starts with the write guard (nothing is written into an
 * application whose deletion was accepted): "lifted", "notSuppressed", or "erasing" while an erasure of the learner
 * is pending — the erasure that asked for the suppression writes it before it completes, and what it promised holds
 * until then; a later one may ask for it again. `audit`, the request's record, goes into the shard's audit outbox
 * (./audit-outbox.ts) in the same transaction when the suppression is lifted. Not retried: a repeat after a lost
 * reply would find nothing to lift and answer "not suppressed".
 */
export async function liftSuppression(
	db: Db,
	appId: string,
	learnerHash: string,
	limits: WriteLimits,
	audit?: AuditRecord,
): Promise<"lifted" | "notSuppressed" | "erasing"> {
	const statements = [
		writeGuard(db, appId, 1, limits),
		// Before the delete, conditioned as it is: written only when there is a suppression to lift.
		...(audit
			? [
					outboxStatement(db, audit, {
						sql: `EXISTS (SELECT 1 FROM suppressions WHERE app_id = ?6 AND learner_hash = ?7) AND NOT ${ERASING.replaceAll("?1", "?6").replaceAll("?2", "?7")}`,
						params: [appId, learnerHash],
					}),
				]
			: []),
		db.prepare(`DELETE FROM suppressions WHERE app_id = ?1 AND learner_hash = ?2 AND NOT ${ERASING}`).bind(appId, learnerHash),
		db.prepare(`SELECT ${ERASING} AS erasing`).bind(appId, learnerHash),
	];
	const results = await db.batch(statements);
	const deleted = results.at(-2);
	if ((deleted?.meta.changes ?? 0) > 0) return "lifted";
	return (results.at(-1)?.results[0] as { erasing: number } | undefined)?.erasing === 1 ? "erasing" : "notSuppressed";
}

/**
 * Suppresses a learner that has nothing left to erase in the application (a realm-wide erasure asked for suppression
 * where another erasure had already erased it), in one guarded transaction; `jobId` is the erasure that asked.
 */
export async function suppressLearner(db: Db, appId: string, learnerHash: string, jobId: string, now: string, limits: WriteLimits): Promise<void> {
	await retryTransient(() =>
		db.batch([
			writeGuard(db, appId, 1, limits),
			db
				.prepare("INSERT OR IGNORE INTO suppressions (app_id, learner_hash, job_id, created_at) VALUES (?1, ?2, ?3, ?4)")
				.bind(appId, learnerHash, jobId, now),
		]),
	);
}

/** An application's suppressions, oldest first (HMACs and dates: no learner id is kept). */
export async function listSuppressions(db: Db, appId: string): Promise<Suppression[]> {
	const { results } = await retryTransient(() =>
		db
			.prepare("SELECT learner_hash, job_id, created_at FROM suppressions WHERE app_id = ?1 ORDER BY created_at, learner_hash")
			.bind(appId)
			.all<{ learner_hash: string; job_id: string; created_at: string }>(),
	);
	return results.map((row) => ({ learnerHash: row.learner_hash, jobId: row.job_id, createdAt: row.created_at }));
}
