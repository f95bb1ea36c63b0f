import { type Db, prepareWith } from "./types";

/**
 * Moving an application's rows from one shard to another (SPEC §7), as statements over the two shard databases;
 * src/jobs/move.ts drives the steps. How a move keeps every acknowledged write: ./storage-schema.md, "Moving an
 * application".
 *
 * - Every write on the source shard is journaled while the move lasts (migrations/shard: moving_apps,
 *   move_journal and their triggers): the key of each changed row (registration id, learner id, job id) with a
 *   version that grows on each change.
 * - The rows are copied in keyset order, chunk by chunk, while the application keeps working.
 * - The journal is replayed (each key's rows on the destination replaced by the source's current ones) until it
 *   is nearly empty, then the source is frozen (writes answer 503 + Retry-After), the rest replayed, the counts
 *   compared, and the placement flipped.
 * - Each write to the destination carries a fencing token (the move step): a late step of the same move cannot
 *   overwrite a newer one.
 */

/** One table of an application's data, and the order its rows are copied in. */
interface MovedTable {
	table: string;
	/** Columns copied (the application id included; never a rowid or INTEGER PRIMARY KEY: the destination numbers its rows). */
	columns: readonly string[];
	/**
	 * The keyset order rows are read in, served by an index starting with app_id. Ends in rowid where the order of
	 * rows within a key is observable (tags come back in the order they were first applied), so the destination,
	 * which numbers rows as they arrive, keeps that order.
	 */
	order: readonly string[];
	/** The journal's kind and the column holding its key. */
	kind: "registration" | "learner" | "job" | "idempotency" | "suppression";
	key: string;
	/**
	 * Replayed in place rather than deleted and inserted again: the destination keeps the row (and its rowid, which
	 * orders it among the application's rows) while `identity` is unchanged; a row whose identity changed (deleted
	 * and created again under the same key) is a new one, and goes after the rest as it did on the source.
	 */
	upsert?: { conflict: string; identity: string };
	/** Rows copied per step, when fewer than the move's (large rows). */
	rowsPerStep?: number;
}

export const MOVED_TABLES: readonly MovedTable[] = [
	{
		table: "registrations",
		columns: [
			"app_id", "id", "course_id", "learner_id", "learner_email", "learner_first_name", "learner_last_name", "instance",
			"xapi_registration_id", "tag_count", "email_seq", "first_name_seq", "last_name_seq", "created_at", "updated_at",
		],
		order: ["pk"],
		kind: "registration",
		key: "id",
		// A registration's pk orders it (listings, the directory's newest details, a job's position): replayed in
		// place, the copy keeps the source's order, so an unfinished job resumes where it was.
		upsert: { conflict: "app_id, id", identity: "xapi_registration_id" },
	},
	{
		table: "registration_tags",
		columns: ["app_id", "registration_id", "tag"],
		order: ["registration_id", "rowid"],
		kind: "registration",
		key: "registration_id",
	},
	{
		table: "learner_tags",
		columns: ["app_id", "learner_id", "tag"],
		order: ["learner_id", "rowid"],
		kind: "learner",
		key: "learner_id",
	},
	{
		table: "learner_tag_counts",
		columns: ["app_id", "learner_id", "tag_count"],
		order: ["learner_id"],
		kind: "learner",
		key: "learner_id",
	},
	{
		table: "jobs",
		columns: [
			"id", "seq", "app_id", "type", "status", "learner_id", "learner_hash", "payload", "requested_by", "cursor", "position",
			"lease", "registrations_affected", "tags_removed", "error", "created_at", "started_at", "completed_at", "touched_at",
			"resends", "parent_id", "event_id", "event_at", "notify_status", "notify_attempts", "notify_last_status",
			"notify_last_error", "notify_due_at",
		],
		order: ["id"],
		kind: "job",
		key: "id",
	},
	{
		table: "job_members",
		columns: ["job_id", "app_id", "members"],
		order: ["job_id"],
		kind: "job",
		key: "job_id",
		// A bulk erasure's list of up to 1000 learners is about 110 kB.
		rowsPerStep: 20,
	},
	{
		table: "idempotency_keys",
		columns: ["app_id", "key_hash", "request_hash", "status", "location", "body", "learner_hash", "created_at", "expires_at"],
		order: ["key_hash"],
		kind: "idempotency",
		key: "key_hash",
	},
	{
		table: "suppressions",
		columns: ["app_id", "learner_hash", "job_id", "created_at"],
		order: ["learner_hash"],
		kind: "suppression",
		key: "learner_hash",
	},
	{
		// Each learner's last write (migrations/shard 0010): the retention policy's clock must not restart with a move.
		table: "learner_activity",
		columns: ["app_id", "learner_id", "last_write_at"],
		order: ["learner_id"],
		kind: "learner",
		key: "learner_id",
	},
];

/** The moved tables without a rowid (WITHOUT ROWID), and the key that stands in for it within an application. */
const WITHOUT_ROWID_KEYS: Record<string, string> = {
	learner_tag_counts: "learner_id",
	idempotency_keys: "key_hash",
	suppressions: "learner_hash",
	learner_activity: "learner_id",
};

/** A table's rows as read from the source: each row's copied columns, in order. */
export type MovedRows = Record<string, unknown>[];

/** Where a copy stands in one table: the order key of the last row copied (null: from the start). */
export type CopyPosition = unknown[] | null;

const orderList = (table: MovedTable) => table.order.join(", ");
const keyset = (table: MovedTable, first: number) =>
	table.order.length === 1 ? `${table.order[0]} > ?${first}` : `(${orderList(table)}) > (${table.order.map((_, i) => `?${first + i}`).join(", ")})`;

/**
 * The next rows of a table after `after`, at most `limit`, with the order key of the last one. One index range
 * of the application's rows.
 */
export async function readRows(
	source: Db,
	appId: string,
	table: MovedTable,
	after: CopyPosition,
	limit: number,
): Promise<{ rows: MovedRows; last: CopyPosition }> {
	const orderColumns = table.order.map((column, i) => `${column} AS move_key_${i}`).join(", ");
	const where = after === null ? "app_id = ?1" : `app_id = ?1 AND ${keyset(table, 3)}`;
	const { results } = await source
		.prepare(`SELECT ${table.columns.join(", ")}, ${orderColumns} FROM ${table.table} WHERE ${where} ORDER BY ${orderList(table)} LIMIT ?2`)
		.bind(appId, limit, ...(after ?? []))
		.all<Record<string, unknown>>();
	const lastRow = results.at(-1);
	const last = lastRow ? table.order.map((_, i) => lastRow[`move_key_${i}`]) : after;
	const rows = results.map((row) => Object.fromEntries(table.columns.map((column) => [column, row[column]])));
	return { rows, last };
}

/**
 * The statement every destination batch starts with: takes the fencing token `step` unless a later step has
 * written already. FENCED is the condition each later statement of the batch carries.
 */
const takeStep = (dest: Db, appId: string, step: number) =>
	dest.prepare("UPDATE app_storage SET move_step = ?2 WHERE app_id = ?1 AND move_step <= ?2").bind(appId, step);
const FENCED = "EXISTS (SELECT 1 FROM app_storage WHERE app_id = ?1 AND move_step = ?2)";

/**
 * Inserts rows read from the source: those already there stay (every moved table has a unique key), or, for a
 * table replayed in place, take the source's values.
 */
const insertRows = (dest: Db, appId: string, step: number, table: MovedTable, rows: MovedRows) => {
	const update = table.upsert
		? ` ON CONFLICT (${table.upsert.conflict}) DO UPDATE SET ${table.columns
				.filter((column) => !table.upsert?.conflict.split(", ").includes(column))
				.map((column) => `${column} = excluded.${column}`)
				.join(", ")}`
		: "";
	return dest
		.prepare(
			`INSERT ${table.upsert ? "" : "OR IGNORE "}INTO ${table.table} (${table.columns.join(", ")})
			 SELECT ${table.columns.map((column) => `value ->> '$.${column}'`).join(", ")} FROM json_each(?3)
			 WHERE ${FENCED} ORDER BY key${update}`,
		)
		.bind(appId, step, JSON.stringify(rows));
};

/** Writes a chunk of copied rows under the fencing token; false when a later step has written already. */
export async function writeRows(dest: Db, appId: string, step: number, table: MovedTable, rows: MovedRows): Promise<boolean> {
	const [fence] = await dest.batch([takeStep(dest, appId, step), insertRows(dest, appId, step, table, rows)]);
	return (fence?.meta.changes ?? 0) > 0;
}

/** A journaled key and the version read. */
export interface JournalEntry {
	kind: MovedTable["kind"];
	key: string;
	version: number;
}

/**
 * Up to `limit` journal entries and, read in the same transaction, the source's current rows for their keys
 * (none, for a key whose rows were deleted).
 */
export async function readJournal(
	source: Db,
	appId: string,
	limit: number,
): Promise<{ entries: JournalEntry[]; rows: MovedRows[] }> {
	// Registrations in their source order (pk; deleted ones first): new ones land on the destination in that order.
	const entries = `SELECT kind, key, version FROM move_journal j WHERE app_id = ?1
	  ORDER BY kind, (SELECT r.pk FROM registrations r WHERE j.kind = 'registration' AND r.app_id = j.app_id AND r.id = j.key), key LIMIT ?2`;
	const results = await source.batch([
		source.prepare(entries).bind(appId, limit),
		...MOVED_TABLES.map((table) =>
			source
				.prepare(
					`SELECT ${table.columns.join(", ")} FROM ${table.table}
					 WHERE app_id = ?1 AND ${table.key} IN (SELECT key FROM (${entries}) WHERE kind = '${table.kind}')
					 ORDER BY ${orderList(table)}`,
				)
				.bind(appId, limit),
		),
	]);
	return {
		entries: (results[0]?.results ?? []) as unknown as JournalEntry[],
		rows: results.slice(1).map((result) => (result.results ?? []) as MovedRows),
	};
}

/**
 * Replaces the destination's rows for the journaled keys with the source's (`rows`, as readJournal read them),
 * under the fencing token; false when a later step has written already.
 */
export async function applyJournal(
	dest: Db,
	appId: string,
	step: number,
	entries: JournalEntry[],
	rows: MovedRows[],
): Promise<boolean> {
	const keys = JSON.stringify(entries.map((entry) => [entry.kind, entry.key]));
	const journaled = (table: MovedTable) =>
		`${table.key} IN (SELECT value ->> '$[1]' FROM json_each(?3) WHERE value ->> '$[0]' = '${table.kind}')`;
	const [fence] = await dest.batch([
		takeStep(dest, appId, step),
		...MOVED_TABLES.map((table, i) => {
			// A row replayed in place stays unless its source row is gone or is another one now (its identity changed).
			const kept = table.upsert
				? ` AND NOT EXISTS (SELECT 1 FROM json_each(?4) s WHERE s.value ->> '$.${table.key}' = ${table.table}.${table.key}
				     AND s.value ->> '$.${table.upsert.identity}' = ${table.table}.${table.upsert.identity})`
				: "";
			const statement = dest.prepare(`DELETE FROM ${table.table} WHERE app_id = ?1 AND ${journaled(table)}${kept} AND ${FENCED}`);
			return table.upsert ? statement.bind(appId, step, keys, JSON.stringify(rows[i] ?? [])) : statement.bind(appId, step, keys);
		}),
		...MOVED_TABLES.map((table, i) => insertRows(dest, appId, step, table, rows[i] ?? [])),
	]);
	return (fence?.meta.changes ?? 0) > 0;
}

/** Drops the journal entries replayed, unless their key changed again since (a newer version stays). */
export async function forgetJournal(source: Db, appId: string, entries: JournalEntry[]): Promise<void> {
	await source
		.prepare(
			`DELETE FROM move_journal WHERE app_id = ?1 AND (kind, key, version) IN
			   (SELECT value ->> '$.kind', value ->> '$.key', value ->> '$.version' FROM json_each(?2))`,
		)
		.bind(appId, JSON.stringify(entries))
		.run();
}

/**
 * Starts journaling the application's writes on the source, and readies the destination: its storage row frozen
 * (no write lands there before the flip). Idempotent.
 */
export async function prepareMove(source: Db, dest: Db, appId: string, step: number, now: string): Promise<void> {
	await dest
		.prepare(
			`INSERT INTO app_storage (app_id, frozen_at, move_step) VALUES (?1, ?2, ?3)
			 ON CONFLICT (app_id) DO UPDATE SET frozen_at = coalesce(frozen_at, ?2), deleted_at = NULL,
			   move_step = max(move_step, ?3)`,
		)
		.bind(appId, now, step)
		.run();
	await source.prepare("INSERT INTO moving_apps (app_id) VALUES (?1) ON CONFLICT DO NOTHING").bind(appId).run();
}

/** Rows of the application left on a shard (any table it moves), for a destination that must start empty. */
export async function hasRows(db: Db, appId: string): Promise<boolean> {
	const row = await db
		.prepare(
			`SELECT ${MOVED_TABLES.map((table) => `EXISTS (SELECT 1 FROM ${table.table} WHERE app_id = ?1)`).join(" OR ")} AS found`,
		)
		.bind(appId)
		.first<{ found: number }>();
	return Boolean(row?.found);
}

/**
 * Deletes up to `limit` rows of each moved table of the application on `db` (a shard it left, or a destination
 * holding an aborted copy), under the fencing token when `step` is given. True when none is left.
 */
export async function deleteRows(db: Db, appId: string, limit: number, step?: number): Promise<boolean> {
	const fenced = step === undefined ? "1" : FENCED;
	const params = [appId, step ?? 0, limit];
	const results = await db.batch([
		...(step === undefined ? [] : [takeStep(db, appId, step)]),
		...MOVED_TABLES.map((table) => {
			// WITHOUT ROWID tables have no rowid: their key within the application stands in.
			const row = WITHOUT_ROWID_KEYS[table.table] ?? "rowid";
			return prepareWith(
				db,
				`DELETE FROM ${table.table} WHERE app_id = ?1 AND ${row} IN (SELECT ${row} FROM ${table.table} WHERE app_id = ?1 LIMIT ?3)
				   AND ${fenced}`,
				params,
			);
		}),
	]);
	const deleted = results.reduce((sum, result) => sum + (result.meta.changes ?? 0), 0);
	return deleted === 0 || !(await hasRows(db, appId));
}

/** Freezes the application on the source: from this transaction on, every write there is refused (retry shortly). */
export async function freeze(source: Db, appId: string, now: string): Promise<void> {
	await source.prepare("UPDATE app_storage SET frozen_at = coalesce(frozen_at, ?2) WHERE app_id = ?1").bind(appId, now).run();
}

/** The application's rows per moved table on a shard, its stored-row count and quota, and the shard's job clock. */
export interface ShardCounts {
	tables: number[];
	storedRows: number;
	/** Its registration and learner counters (migrations/shard 0009), which the destination takes as it takes storedRows. */
	registrations: number;
	learners: number;
	rowQuota: number;
	clock: number;
	/** Whether the application may have a webhook, and the hint's epoch (./app-storage.ts). */
	webhookHint: number;
	webhookEpoch: number;
}

export async function countRowsOf(db: Db, appId: string): Promise<ShardCounts> {
	const results = await db.batch([
		...MOVED_TABLES.map((table) => db.prepare(`SELECT count(*) AS n FROM ${table.table} WHERE app_id = ?1`).bind(appId)),
		db
			.prepare(
				`SELECT (SELECT stored_rows FROM app_storage WHERE app_id = ?1) AS stored_rows,
				   (SELECT registrations FROM app_storage WHERE app_id = ?1) AS registrations,
				   (SELECT learners FROM app_storage WHERE app_id = ?1) AS learners,
				   (SELECT row_quota FROM app_storage WHERE app_id = ?1) AS row_quota, (SELECT seq FROM job_clock WHERE id = 1) AS clock,
				   (SELECT webhook_hint FROM app_storage WHERE app_id = ?1) AS webhook_hint,
				   (SELECT webhook_epoch FROM app_storage WHERE app_id = ?1) AS webhook_epoch`,
			)
			.bind(appId),
	]);
	const value = (result: D1Result | undefined) => (result?.results[0] as { n: number } | undefined)?.n ?? 0;
	const state = results[MOVED_TABLES.length]?.results[0] as
		| {
				stored_rows: number | null;
				registrations: number | null;
				learners: number | null;
				row_quota: number | null;
				clock: number | null;
				webhook_hint: number | null;
				webhook_epoch: number | null;
		  }
		| undefined;
	return {
		tables: MOVED_TABLES.map((_, i) => value(results[i])),
		storedRows: state?.stored_rows ?? 0,
		registrations: state?.registrations ?? 0,
		learners: state?.learners ?? 0,
		rowQuota: state?.row_quota ?? 0,
		clock: state?.clock ?? 0,
		webhookHint: state?.webhook_hint ?? 1,
		webhookEpoch: state?.webhook_epoch ?? 0,
	};
}

/**
 * Where each unfinished job that walks registrations (an update, an erasure, an export) stands on the source, as the id of the
 * last registration it visited (registration pks differ between shards; ids do not). A bulk erasure's position
 * counts its learners, which are the same everywhere.
 */
export async function unfinishedJobPositions(source: Db, appId: string): Promise<{ id: string; registration: string | null }[]> {
	const { results } = await source
		.prepare(
			`SELECT j.id, (SELECT r.id FROM registrations r WHERE r.app_id = ?1 AND r.learner_id = j.learner_id AND r.pk <= j.position
			   ORDER BY r.pk DESC LIMIT 1) AS registration
			 FROM jobs j WHERE j.app_id = ?1 AND j.status IN ('queued', 'running')
			   AND j.type IN ('updateLearnerInfo', 'deleteAllLearnerData', 'exportLearnerData')`,
		)
		.bind(appId)
		.all<{ id: string; registration: string | null }>();
	return results;
}

/**
 * The destination's last step before the flip, in one transaction under the fencing token: the stored-row count
 * (with the quota it was allowed under) and job clock brought up to the source's, unfinished jobs' positions mapped onto the destination's registrations
 * (their leases dropped: whoever held one was on the source).
 */
export async function settleDestination(
	dest: Db,
	appId: string,
	step: number,
	source: ShardCounts,
	positions: { id: string; registration: string | null }[],
): Promise<boolean> {
	const [fence] = await dest.batch([
		takeStep(dest, appId, step),
		// The quota the source's writes were checked against comes along: the count is the source's, already allowed.
		dest
			.prepare(
				`UPDATE app_storage SET row_quota = max(row_quota, ?4), stored_rows = ?3, webhook_hint = ?5, webhook_epoch = max(webhook_epoch, ?6),
				   registrations = ?7, learners = ?8
				 WHERE app_id = ?1 AND ${FENCED}`,
			)
			.bind(
				appId,
				step,
				source.storedRows,
				Math.max(source.rowQuota, source.storedRows),
				source.webhookHint,
				source.webhookEpoch,
				source.registrations,
				source.learners,
			),
		dest.prepare(`UPDATE job_clock SET seq = max(seq, ?3) WHERE id = 1 AND ${FENCED}`).bind(appId, step, source.clock),
		dest
			.prepare(
				`UPDATE jobs SET lease = NULL, position = coalesce((SELECT r.pk FROM registrations r WHERE r.app_id = ?1
				   AND r.id = (SELECT value ->> '$.registration' FROM json_each(?3) WHERE value ->> '$.id' = jobs.id)), 0)
				 WHERE app_id = ?1 AND id IN (SELECT value ->> '$.id' FROM json_each(?3)) AND ${FENCED}`,
			)
			.bind(appId, step, JSON.stringify(positions)),
	]);
	return (fence?.meta.changes ?? 0) > 0;
}

/** Opens the destination to writes (after the placement flipped to it). */
export async function openDestination(dest: Db, appId: string, step: number): Promise<void> {
	await dest.batch([
		takeStep(dest, appId, step),
		dest.prepare(`UPDATE app_storage SET frozen_at = NULL WHERE app_id = ?1 AND ${FENCED}`).bind(appId, step),
	]);
}

/** Stops journaling on the source (after the flip, or when a move is abandoned); `unfreeze` reopens it to writes. */
export async function stopJournal(source: Db, appId: string, unfreeze: boolean): Promise<void> {
	await source.batch([
		source.prepare("DELETE FROM moving_apps WHERE app_id = ?1").bind(appId),
		source.prepare("DELETE FROM move_journal WHERE app_id = ?1").bind(appId),
		...(unfreeze ? [source.prepare("UPDATE app_storage SET frozen_at = NULL WHERE app_id = ?1").bind(appId)] : []),
	]);
}

/** The shard the application left keeps only its storage row, frozen, with nothing stored. */
export async function emptySource(source: Db, appId: string): Promise<void> {
	await source.prepare("UPDATE app_storage SET stored_rows = 0, registrations = 0, learners = 0 WHERE app_id = ?1").bind(appId).run();
}
