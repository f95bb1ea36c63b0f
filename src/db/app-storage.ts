import type { Db } from "./types";

/**
 * Per-application bookkeeping in the database that holds the application's data (migrations/shard:
 * app_storage): whether it is live, how many rows it stores, what its writes spent this minute.
 *
 * Every write batch a request makes starts with writeGuard(): it charges the write's cost to the current minute's
 * budget, and the table's triggers abort the whole batch when the application's deletion was accepted or the
 * budget is spent. Statements that add or remove registrations or tags also move `stored_rows` (countRows()),
 * where a trigger refuses growth past the quota. The checks ride in the write's own transaction: one D1 call, and
 * no isolate's cached credential can slip a write past them. Which writes are guarded, and which are not:
 * ./storage-schema.md, "Write guard, row quota and write budget".
 */

/** The quota and budget in force (src/config.ts). */
export interface WriteLimits {
	rowQuota: number;
	writeBudget: number;
}

/** Why a write was refused: the trigger that aborted its batch. */
export type Refusal = "application_deleted" | "application_moving" | "write_budget_exceeded" | "row_quota_exceeded";

const REFUSALS: readonly Refusal[] = ["application_deleted", "application_moving", "write_budget_exceeded", "row_quota_exceeded"];

/** The refusal a D1 error reports (`D1_ERROR: row_quota_exceeded: SQLITE_CONSTRAINT ...`), or null. */
export function refusalOf(error: unknown): Refusal | null {
	if (!(error instanceof Error)) return null;
	return REFUSALS.find((refusal) => error.message.includes(`${refusal}:`)) ?? null;
}

/** The budget's minute for a time, and the seconds left in it. */
export const budgetMinute = (nowMs: number) => Math.floor(nowMs / 60_000);
export const secondsLeftInMinute = (nowMs: number) => 60 - Math.floor((nowMs % 60_000) / 1000);

/**
 * The first statement of every write batch: charges `cost` (at least 1) to the application's budget for the
 * current minute and records the limits in force. Aborts the batch (application_deleted,
 * write_budget_exceeded) when it must not be written.
 */
export function writeGuard(db: Db, appId: string, cost: number, limits: WriteLimits, nowMs = Date.now()): D1PreparedStatement {
	return db
		.prepare(
			`UPDATE app_storage SET
			   budget_spent = CASE WHEN budget_minute = ?2 THEN budget_spent + ?3 ELSE ?3 END,
			   budget_minute = ?2, write_budget = ?4, row_quota = ?5
			 WHERE app_id = ?1`,
		)
		.bind(appId, budgetMinute(nowMs), Math.max(1, cost), limits.writeBudget, limits.rowQuota);
}

/**
 * SQL moving the application's stored-row count by `delta`, an SQL expression over the batch statement's own
 * parameters (?1 is always the application). Growth past the quota aborts the batch (row_quota_exceeded).
 * `condition`, when given, must hold too (a job step's lease). A statement that adds or removes registrations moves
 * the registration and learner counters too (`people`: their deltas, SQL expressions like `delta`), in the same
 * update: usage reads them instead of counting (migrations/shard 0009).
 */
export const countRows = (delta: string, condition = "1", people?: { registrations: string; learners: string }) =>
	`UPDATE app_storage SET stored_rows = stored_rows + (${delta})${
		people ? `, registrations = registrations + (${people.registrations}), learners = learners + (${people.learners})` : ""
	} WHERE app_id = ?1 AND ${condition}`;

/** A statement creating the application's row (in the batch that creates the application): it has no webhook yet. */
export const insertAppStorage = (db: Db, appId: string) =>
	db.prepare("INSERT INTO app_storage (app_id, webhook_hint) VALUES (?1, 0)").bind(appId);

/**
 * Whether the application may have a webhook (migrations/shard 0008): its jobs' ends create events to deliver only
 * where it may, so that without a webhook a job's end costs no D1 call for them. Set, with the epoch raised, before a
 * webhook is written in the control database (a job ending once the webhook is acknowledged is never missed).
 */
export async function markWebhookPossible(db: Db, appId: string): Promise<"marked" | "moving"> {
	// Not while the application is frozen for a move: the copy has been settled, and the mark would stay behind.
	const result = await db
		.prepare(
			`UPDATE app_storage SET webhook_hint = 1, webhook_epoch = webhook_epoch + 1
			 WHERE app_id = ?1 AND NOT (frozen_at IS NOT NULL AND deleted_at IS NULL)`,
		)
		.bind(appId)
		.run();
	return result.meta.changes > 0 ? "marked" : "moving";
}

/**
 * Clears the hint once a look found no webhook, unless a webhook was set since that look began (`epoch`, read
 * before the look: setting one raises it).
 */
export async function clearWebhookHint(db: Db, appId: string, epoch: number): Promise<void> {
	await db
		.prepare("UPDATE app_storage SET webhook_hint = 0 WHERE app_id = ?1 AND webhook_epoch = ?2")
		.bind(appId, epoch)
		.run();
}

/**
 * A statement fencing the application off: no write that starts with writeGuard() lands after the batch holding it
 * commits (job chunks are not guarded: ./storage-schema.md, "Application deletion").
 */
export const fenceAppStorage = (db: Db, appId: string, now: string) =>
	db.prepare("UPDATE app_storage SET deleted_at = coalesce(deleted_at, ?2) WHERE app_id = ?1").bind(appId, now);

/**
 * SQL true unless the application (`app`, an SQL expression) is frozen for a move on this database: the source in
 * the moments before its placement flips, the destination until then (./storage-schema.md, "Moving an
 * application"). Bookkeeping of an application's jobs waits while it is: a write to the source then would miss the
 * copy, and one to the destination's copy would be overwritten by it. On the control database (realm jobs) it is
 * always true (migrations/control 0006: an empty view).
 */
export const NOT_MOVING = (app: string) =>
	`NOT EXISTS (SELECT 1 FROM app_storage moving WHERE moving.app_id = ${app} AND moving.frozen_at IS NOT NULL AND moving.deleted_at IS NULL)`;
