import { type Db, prepareWith } from "./types";

/**
 * How an action appends its audit entry (SPEC §12; migrations/control 0009: audit_log): the statement it puts in its
 * own batch. Kept apart from the trail's reading, sealing and pruning (./audit.ts) because the modules every request
 * loads (credentials, applications, jobs) write audited actions: a request that records nothing loads only this.
 */

/** Every action the trail records (SPEC §12): management and privacy actions, and console sessions. */
export const AUDIT_ACTIONS = [
	"application.create",
	"application.update",
	"application.delete",
	"application.move",
	"application.retention.set",
	"application.retention.delete",
	"credential.create",
	"credential.update",
	"credential.delete",
	"realmUser.put",
	"realmUser.delete",
	"webhook.set",
	"webhook.delete",
	"webhook.test",
	"learner.erase",
	"learners.erase",
	"learner.eraseEverywhere",
	"learner.suppression.lift",
	"learner.export",
	"learner.exportEverywhere",
	"export.download",
	"console.signIn",
	"console.signOut",
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** What an action appends: who, what, on which ids, in which request. `target` is canonical JSON of ids and HMACs. */
export interface AuditRecord {
	at: string;
	actor: string;
	action: AuditAction;
	target: string;
	requestId: string;
}

/**
 * The statement appending `record`, for the batch of the action it records. Its seq is the head's + 1 and its time
 * the later of its own and the head's, both read by the INSERT itself: D1 runs one transaction at a time, so entries
 * appended at once take consecutive places and the chain never forks, and times never decrease along the chain
 * (`since` finds its start in the index on `at`). `when`, SQL over parameters numbered from ?6, must hold for the
 * entry to be appended: put the statement before the action's own, conditioned as it is (it then records only an
 * action that happens). A repeat after a lost reply (retryTransient) finds the entry its first attempt appended and
 * appends nothing more.
 */
export function auditStatement(db: Db, record: AuditRecord, when?: { sql: string; params: readonly unknown[] }): D1PreparedStatement {
	return prepareWith(
		db,
		`INSERT INTO audit_log (seq, at, actor, action, target, request_id)
		 SELECT coalesce((SELECT max(seq) FROM audit_log), 0) + 1,
		   max(?1, coalesce((SELECT at FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)), '')), ?2, ?3, ?4, ?5
		 WHERE ${when?.sql ?? "1"} AND NOT ${APPENDED}`,
		[record.at, record.actor, record.action, record.target, record.requestId, ...(when?.params ?? [])],
	);
}

/** The record's entry is in the trail (?3 to ?5 as auditStatement binds them): one seek of audit_log_by_request. */
const APPENDED = "EXISTS (SELECT 1 FROM audit_log WHERE request_id = ?5 AND action = ?3 AND target = ?4)";

/**
 * A statement answering `recorded` 1 once the record's entry is in the trail: put after an action conditioned as its
 * entry is, it tells whether the request did the action, in this attempt or in one whose reply was lost.
 */
export const auditRecorded = (db: Db, record: AuditRecord): D1PreparedStatement =>
	prepareWith(db, `SELECT ${APPENDED} AS recorded`, [record.at, record.actor, record.action, record.target, record.requestId]);

/** What an auditRecorded statement answered: whether the request did the action. */
export const wasRecorded = (result: D1Result | undefined): boolean =>
	(result?.results[0] as { recorded: number } | undefined)?.recorded === 1;
