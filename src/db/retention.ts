import { type WriteLimits, writeGuard } from "./app-storage";
import { type AuditRecord, auditRecorded, auditStatement, wasRecorded } from "./audit-append";
import { JOB_CLOCK, TICK_JOB_CLOCK } from "./jobs";
import { retryTransient } from "./retry";
import { type Db, prepareWith } from "./types";

/**
 * Applications' retention policies (SPEC §12; migrations/control 0009: retention_policies), in the control database:
 * learners with no write for `learnerInactiveDays` (./activity.ts) are erased by the sweeper (src/jobs/retention.ts),
 * which records their erasures on the application's shard (below). Every change of a policy is written with its audit
 * entry, in one transaction that checks the application is live.
 */

export interface RetentionPolicy {
	learnerInactiveDays: number;
	createdAt: string;
	updatedAt: string;
}

interface PolicyRow {
	learner_inactive_days: number;
	created_at: string;
	updated_at: string;
}

const toPolicy = (row: PolicyRow): RetentionPolicy => ({
	learnerInactiveDays: row.learner_inactive_days,
	createdAt: row.created_at,
	updatedAt: row.updated_at,
});

const LIVE = (app: string) => `EXISTS (SELECT 1 FROM applications WHERE id = ${app} AND deleted_at IS NULL)`;

/** Sets a live application's policy; the policy as stored, or null when there is no such application. */
export async function putRetentionPolicy(control: Db, appId: string, days: number, now: string, audit: AuditRecord): Promise<RetentionPolicy | null> {
	const results = await retryTransient(() =>
		control.batch([
			auditStatement(control, audit, { sql: LIVE("?6"), params: [appId] }),
			control
				.prepare(
					`INSERT INTO retention_policies (app_id, learner_inactive_days, created_at, updated_at)
					 SELECT ?1, ?2, ?3, ?3 WHERE ${LIVE("?1")}
					 ON CONFLICT (app_id) DO UPDATE SET learner_inactive_days = excluded.learner_inactive_days, updated_at = excluded.updated_at`,
				)
				.bind(appId, days, now),
			control.prepare(`SELECT * FROM retention_policies WHERE app_id = ?1 AND ${LIVE("?1")}`).bind(appId),
		]),
	);
	const row = results.at(-1)?.results[0] as PolicyRow | undefined;
	return row ? toPolicy(row) : null;
}

/** A live application's policy: "no-application", null (no policy), or the policy. */
export async function getRetentionPolicy(control: Db, appId: string): Promise<RetentionPolicy | null | "no-application"> {
	const [live, policy] = await retryTransient(() =>
		control.batch([
			control.prepare(`SELECT ${LIVE("?1")} AS live`).bind(appId),
			control.prepare("SELECT * FROM retention_policies WHERE app_id = ?1").bind(appId),
		]),
	);
	if (!(live?.results[0] as { live: number } | undefined)?.live) return "no-application";
	const row = policy?.results[0] as PolicyRow | undefined;
	return row ? toPolicy(row) : null;
}

/** Removes a live application's policy (retention off); false when it had none (or is unknown). */
export async function deleteRetentionPolicy(control: Db, appId: string, audit: AuditRecord): Promise<boolean> {
	const results = await retryTransient(() =>
		control.batch([
			auditStatement(control, audit, {
				sql: `EXISTS (SELECT 1 FROM retention_policies WHERE app_id = ?6) AND ${LIVE("?6")}`,
				params: [appId],
			}),
			control.prepare(`DELETE FROM retention_policies WHERE app_id = ?1 AND ${LIVE("?1")}`).bind(appId),
			// Removed by this request: its entry says so, to a repeat after a lost reply too (which finds nothing to delete).
			auditRecorded(control, audit),
		]),
	);
	return wasRecorded(results.at(-1));
}

/** A live application's policy, with the shard holding its data: what the sweeper enforces. */
export interface EnforcedPolicy {
	appId: string;
	shard: string;
	learnerInactiveDays: number;
}

/** Every live application's policy, in application id order (policies are per application: a short list). */
export async function enforcedPolicies(control: Db): Promise<EnforcedPolicy[]> {
	const { results } = await retryTransient(() =>
		control
			.prepare(
				`SELECT p.app_id, a.shard, p.learner_inactive_days FROM retention_policies p JOIN applications a ON a.id = p.app_id
				 WHERE a.deleted_at IS NULL ORDER BY p.app_id`,
			)
			.all<{ app_id: string; shard: string; learner_inactive_days: number }>(),
	);
	return results.map((row) => ({ appId: row.app_id, shard: row.shard, learnerInactiveDays: row.learner_inactive_days }));
}

// --- On the application's shard ----------------------------------------------------------------------------------

/** Who requested an erasure the retention policy started (jobs.requested_by, receipts' requestedBy). */
export const RETENTION_REQUESTER = "retention-policy";

/** A learner the policy erases: its id and HMAC, and the id its erasure job gets. */
export interface RetentionErasure {
	learnerId: string;
	learnerHash: string;
	jobId: string;
}

/**
 * Records an erasure (an ordinary deleteAllLearnerData job, requested by RETENTION_REQUESTER, without suppression)
 * for each learner still inactive since `cutoff` — checked again in this transaction, so a write since the sweep read
 * it spares the learner — that exists and has no erasure pending (it needs none). One transaction starting with the
 * write guard (nothing is written into an application being deleted, or frozen for a move), costing one of the write
 * budget per learner. Answers the erasures recorded. Each erasure's audit record goes into the shard's audit outbox
 * in the same transaction (./audit-outbox.ts), for the sweep to append to the trail: an erasure's entry (its target
 * has an erasure's fields, `requester` and `suppress` false, and the policy's days), actor and requester
 * RETENTION_REQUESTER — named as is, as in its receipt: it is no email, so it has no HMAC.
 */
export async function acceptRetentionErasures(
	shard: Db,
	appId: string,
	learners: RetentionErasure[],
	cutoff: string,
	now: string,
	limits: WriteLimits,
	audit: { requestId: string; learnerInactiveDays: number },
): Promise<RetentionErasure[]> {
	if (learners.length === 0) return [];
	// ?1 app, ?2 learners (JSON), ?3 now, ?4 cutoff, ?5 requester, ?6 the sweep's request id, ?7 the policy's days
	const params = [appId, JSON.stringify(learners), now, cutoff, RETENTION_REQUESTER, audit.requestId, audit.learnerInactiveDays];
	const statement = (sql: string) => prepareWith(shard, sql, params);
	const learner = "l.value ->> '$.learnerId'";
	const results = await retryTransient(() =>
		shard.batch([
			writeGuard(shard, appId, learners.length, limits),
			shard.prepare(TICK_JOB_CLOCK),
			statement(
				`INSERT INTO jobs (id, seq, app_id, type, status, learner_id, learner_hash, requested_by, created_at, touched_at)
				 SELECT l.value ->> '$.jobId', ${JOB_CLOCK}, ?1, 'deleteAllLearnerData', 'queued', ${learner}, l.value ->> '$.learnerHash', ?5, ?3, ?3
				 FROM json_each(?2) l
				 WHERE EXISTS (SELECT 1 FROM learner_activity a WHERE a.app_id = ?1 AND a.learner_id = ${learner} AND a.last_write_at < ?4)
				   AND EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = ?1 AND r.learner_id = ${learner})
				   AND NOT EXISTS (SELECT 1 FROM jobs p WHERE p.app_id = ?1 AND p.learner_hash = l.value ->> '$.learnerHash'
				     AND p.type = 'deleteAllLearnerData' AND p.status IN ('queued', 'running'))
				 ORDER BY l.key`,
			),
			// A row of a learner with no registration left (none should be) would be found again at every sweep: it goes.
			statement(
				`DELETE FROM learner_activity WHERE app_id = ?1 AND learner_id IN (SELECT ${learner} FROM json_each(?2) l)
				   AND NOT EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = ?1 AND r.learner_id = learner_activity.learner_id)`,
			),
			statement("SELECT id FROM jobs WHERE id IN (SELECT l.value ->> '$.jobId' FROM json_each(?2) l)"),
			// The audit record of each erasure recorded by this attempt (a repeat after a lost reply finds the first
			// attempt's, made at an earlier tick of the job clock, and writes none).
			statement(
				`INSERT INTO audit_outbox (at, actor, action, target, request_id)
				 SELECT ?3, ?5, 'learner.erase',
				   json_object('applicationId', ?1, 'jobId', l.value ->> '$.jobId', 'learnerHash', l.value ->> '$.learnerHash',
				     'learnerInactiveDays', ?7, 'requester', ?5, 'suppress', json('false')), ?6
				 FROM json_each(?2) l
				 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = l.value ->> '$.jobId' AND seq = ${JOB_CLOCK})
				 ORDER BY l.key`,
			),
		]),
	);
	const recorded = new Set(((results.at(-2)?.results ?? []) as { id: string }[]).map((row) => row.id));
	return learners.filter((entry) => recorded.has(entry.jobId));
}
