import { type AuditAction, type AuditRecord, auditStatement } from "./audit-append";
import { retryTransient } from "./retry";
import { type Db, prepareWith } from "./types";

export { AUDIT_ACTIONS, type AuditAction, type AuditRecord, auditStatement } from "./audit-append";

/**
 * The audit trail (SPEC §12; migrations/control 0009: audit_log), in the control database: one entry per management
 * or privacy action, appended in the same transaction as the action wherever the action is written here. How the
 * chain is made and sealed: ./storage-schema.md, "audit_log"; the hashing is src/audit.ts (this layer has no crypto).
 */

/** An entry as stored: its hashes are null until it is sealed. */
export interface AuditRow {
	seq: number;
	at: string;
	actor: string;
	action: AuditAction;
	target: string;
	requestId: string;
	prevHash: string | null;
	hash: string | null;
}

interface AuditDbRow {
	seq: number;
	at: string;
	actor: string;
	action: AuditAction;
	target: string;
	request_id: string;
	prev_hash: string | null;
	hash: string | null;
}

const toRow = (row: AuditDbRow): AuditRow => ({
	seq: row.seq,
	at: row.at,
	actor: row.actor,
	action: row.action,
	target: row.target,
	requestId: row.request_id,
	prevHash: row.prev_hash,
	hash: row.hash,
});

/**
 * Appends records on their own (an action written elsewhere: on a shard, or nowhere), in order, in one transaction.
 * Safe to repeat only in the sense that a repeat appends again: the caller appends after its action succeeded.
 */
export async function appendAudit(control: Db, records: AuditRecord[]): Promise<void> {
	if (records.length === 0) return;
	await retryTransient(() => control.batch(records.map((record) => auditStatement(control, record))));
}

/**
 * Up to `limit` entries not yet sealed, in seq order, with the hash of the entry just before the first (null when it
 * is the first entry of the chain).
 */
export async function unsealedAudit(control: Db, limit: number): Promise<{ prevHash: string | null; entries: AuditRow[] }> {
	const [entries, before] = await retryTransient(() =>
		control.batch([
			// A range of audit_log_unsealed, which holds only the entries still without a hash.
			control.prepare("SELECT * FROM audit_log WHERE hash IS NULL AND seq > 0 ORDER BY seq LIMIT ?1").bind(limit),
			control.prepare(
				`SELECT hash FROM audit_log WHERE seq = (SELECT min(seq) FROM audit_log WHERE hash IS NULL) - 1`,
			),
		]),
	);
	const prev = (before?.results[0] as { hash: string | null } | undefined)?.hash ?? null;
	return { prevHash: prev, entries: ((entries?.results ?? []) as AuditDbRow[]).map(toRow) };
}

/**
 * Writes computed hashes onto entries still unsealed (one statement): an entry another sealer got to first keeps the
 * values it wrote, which are the same (each hash is a function of the entries before it).
 */
export async function sealAuditEntries(control: Db, sealed: { seq: number; prevHash: string; hash: string }[]): Promise<void> {
	if (sealed.length === 0) return;
	await retryTransient(() =>
		control
			.prepare(
				`UPDATE audit_log SET prev_hash = s.value ->> '$.prevHash', hash = s.value ->> '$.hash'
				 FROM json_each(?1) s WHERE audit_log.seq = s.value ->> '$.seq' AND audit_log.hash IS NULL`,
			)
			.bind(JSON.stringify(sealed))
			.run(),
	);
}

/** The filters GET /appManagement/audit takes. */
export interface AuditQuery {
	/** Entries after this seq (0: from the start). */
	after: number;
	/** Entries at or after this time (ISO-8601). */
	since?: string;
	action?: AuditAction;
	limit: number;
}

/**
 * One page of the trail in seq order. `since` becomes a lower bound on seq (times never decrease along the chain:
 * the first entry at or after it, from audit_log_by_at); `action` reads audit_log_by_action. Rows read follow the
 * page, not the trail's length.
 */
export async function listAudit(control: Db, query: AuditQuery): Promise<AuditRow[]> {
	// The first entry at or after `since` is the first of its range of audit_log_by_at (whose entries end in seq).
	const from = "max(?1, coalesce((SELECT seq FROM audit_log WHERE at >= ?2 ORDER BY at, seq LIMIT 1) - 1, (SELECT max(seq) FROM audit_log)))";
	const sql =
		query.action === undefined
			? `SELECT * FROM audit_log WHERE seq > ${query.since === undefined ? "?1" : from} ORDER BY seq LIMIT ?3`
			: `SELECT * FROM audit_log INDEXED BY audit_log_by_action WHERE action = ?4 AND seq > ${query.since === undefined ? "?1" : from}
			   ORDER BY seq LIMIT ?3`;
	const params = [query.after, query.since ?? null, query.limit, query.action ?? null];
	const { results } = await retryTransient(() => prepareWith(control, sql, params).all<AuditDbRow>());
	return results.map(toRow);
}

/**
 * The newest sealed entry's seq and hash (null: the trail has no sealed entry). Sealing goes in seq order, so it is
 * the entry just before the first unsealed one, or the last entry when every one is sealed.
 */
export async function auditHead(control: Db): Promise<{ seq: number; hash: string } | null> {
	const row = await retryTransient(() =>
		control
			.prepare(
				`SELECT seq, hash FROM audit_log
				 WHERE seq = coalesce((SELECT min(seq) FROM audit_log WHERE hash IS NULL) - 1, (SELECT max(seq) FROM audit_log))`,
			)
			.first<{ seq: number; hash: string | null }>(),
	);
	return row?.hash ? { seq: row.seq, hash: row.hash } : null;
}

/**
 * Deletes up to `limit` sealed entries older than `cutoff`, oldest first. Never the newest sealed one (the link the
 * next entry's seal starts from), nor the newest entry older than `cutoff`: a trail that no longer starts at entry 1
 * starts with an entry recorded before the cutoff, so an auditor can tell that everything deleted before it was
 * older than AUDIT_RETENTION_DAYS (scripts/verify-audit.mjs). How many went.
 */
export async function pruneAudit(control: Db, cutoff: string, limit: number): Promise<number> {
	const result = await retryTransient(() =>
		control
			.prepare(
				`DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log INDEXED BY audit_log_by_at WHERE at < ?1 ORDER BY at, seq LIMIT ?2)
				   AND hash IS NOT NULL AND seq < (SELECT max(seq) FROM audit_log WHERE hash IS NOT NULL)
				   AND seq < (SELECT seq FROM audit_log INDEXED BY audit_log_by_at WHERE at < ?1 ORDER BY at DESC, seq DESC LIMIT 1)`,
			)
			.bind(cutoff, limit)
			.run(),
	);
	return result.meta.changes;
}
