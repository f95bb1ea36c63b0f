import type { AuditRecord } from "./audit-append";
import { retryTransient } from "./retry";
import { type Db, prepareWith } from "./types";

/**
 * The audit outbox (SPEC §12; migrations/shard 0012: audit_outbox; ./storage-schema.md, "audit_outbox"). An action
 * written on a shard cannot append its entry in its own transaction (the trail is in the control database), so it
 * writes its record here instead, in its own batch and conditioned as it is: a performed action always leaves its
 * record, a refused one none. The request then appends the entry to the control database as before; the sweeper
 * copies what is here there too (src/jobs/sweeper.ts) — the append's dedupe by (request, action, target) makes the
 * second copy a no-op, and the first for an action whose own append failed — and deletes it.
 */

/**
 * The statement writing `record` into the shard's outbox, for the batch of the action it records. `when`, SQL over
 * parameters numbered from ?6, must hold for it to be written (put it after the action's own statements, conditioned
 * as the action is); `jobId`, SQL over the same parameters, names the job the action recorded when only the batch
 * knows it (a request joining a pending job): it is set as the target's `jobId`.
 */
export function outboxStatement(db: Db, record: AuditRecord, when?: { sql: string; params: readonly unknown[]; jobId?: string }): D1PreparedStatement {
	const target = when?.jobId === undefined ? "?4" : `json_set(?4, '$.jobId', ${when.jobId})`;
	return prepareWith(
		db,
		`INSERT INTO audit_outbox (at, actor, action, target, request_id)
		 SELECT ?1, ?2, ?3, ${target}, ?5 WHERE ${when?.sql ?? "1"}`,
		[record.at, record.actor, record.action, record.target, record.requestId, ...(when?.params ?? [])],
	);
}

/** A record waiting in an outbox: its id there, and the record (its target as written, not yet canonical). */
export interface OutboxRecord extends AuditRecord {
	id: number;
}

/** The oldest `limit` records of the shard's outbox after id `after`, in the order they were written: one range of its rowid. */
export async function outboxRecords(shard: Db, after: number, limit: number): Promise<OutboxRecord[]> {
	const { results } = await retryTransient(() =>
		shard
			.prepare("SELECT id, at, actor, action, target, request_id FROM audit_outbox WHERE id > ?1 ORDER BY id LIMIT ?2")
			.bind(after, limit)
			.all<{ id: number; at: string; actor: string; action: AuditRecord["action"]; target: string; request_id: string }>(),
	);
	return results.map((row) => ({ id: row.id, at: row.at, actor: row.actor, action: row.action, target: row.target, requestId: row.request_id }));
}

/**
 * Deletes the outbox's records up to `lastId`, once their entries are in the trail. Ids are never reused
 * (AUTOINCREMENT), so a record written after they were read has a greater id and stays.
 */
export async function clearOutbox(shard: Db, lastId: number): Promise<void> {
	await retryTransient(() => shard.prepare("DELETE FROM audit_outbox WHERE id <= ?1").bind(lastId).run());
}
