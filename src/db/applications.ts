import { insertAppStorage } from "./app-storage";
import { type AuditRecord, auditStatement } from "./audit-append";
import { type KeyedBatch, batchWith } from "./idempotency";
import { type Db, prepareWith } from "./types";

/**
 * The realm's applications and their placement, in the control database (migrations/control). An application's
 * data lives on its shard (`shard`, a D1 binding's name); `dataRegion` is the region it was asked for.
 */
export interface Application {
	id: string;
	name: string;
	dataRegion: "default" | "eu";
	shard: string;
	createdAt: string;
	/** The last change of name or allowDelete; the creation date until then. */
	updatedAt: string;
	/** SCORM Cloud's guard against deleting the application by mistake: deletion is refused while false. */
	allowDelete: boolean;
}

interface ApplicationRow {
	id: string;
	name: string;
	data_region: "default" | "eu";
	shard: string;
	created_at: string;
	updated_at: string | null;
	allow_delete: number;
}

const COLUMNS = "id, name, data_region, shard, created_at, updated_at, allow_delete";

const toApplication = (row: ApplicationRow): Application => ({
	id: row.id,
	name: row.name,
	dataRegion: row.data_region,
	shard: row.shard,
	createdAt: row.created_at,
	updatedAt: row.updated_at ?? row.created_at,
	allowDelete: row.allow_delete === 1,
});

/** Live applications per shard (applications_by_shard), for placement. */
export async function countApplicationsByShard(control: Db): Promise<Map<string, number>> {
	const { results } = await control
		.prepare("SELECT shard, count(*) AS applications FROM applications WHERE deleted_at IS NULL GROUP BY shard")
		.all<{ shard: string; applications: number }>();
	return new Map(results.map((row) => [row.shard, row.applications]));
}

/**
 * Creates an application on `shard` (the database named by app.shard): first the row its shard checks writes
 * against (src/db/app-storage.ts), then the application itself. A failure between the two leaves only an unused
 * storage row on the shard, never an application without one.
 */
export async function insertApplication(control: Db, shard: Db, app: Application, keyed?: KeyedBatch, audit?: AuditRecord): Promise<void> {
	await insertAppStorage(shard, app.id).run();
	await batchWith(
		control,
		[
			control
				.prepare(
					"INSERT INTO applications (id, name, data_region, shard, created_at, updated_at, allow_delete) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
				)
				.bind(app.id, app.name, app.dataRegion, app.shard, app.createdAt, app.updatedAt, app.allowDelete ? 1 : 0),
			...(audit ? [auditStatement(control, audit)] : []),
		],
		keyed,
	);
}

/** Applications not being deleted, oldest first. */
export async function listApplications(control: Db): Promise<Application[]> {
	const { results } = await control
		.prepare(`SELECT ${COLUMNS} FROM applications WHERE deleted_at IS NULL ORDER BY created_at, id`)
		.all<ApplicationRow>();
	return results.map(toApplication);
}

/** A live application (not being deleted), or null. */
export async function findApplication(control: Db, appId: string): Promise<Application | null> {
	const row = await control
		.prepare(`SELECT ${COLUMNS} FROM applications WHERE id = ?1 AND deleted_at IS NULL`)
		.bind(appId)
		.first<ApplicationRow>();
	return row ? toApplication(row) : null;
}

/**
 * Renames a live application and/or sets its allowDelete (an absent change keeps the value), stamping its
 * updateDate, with its audit entry in the same transaction. False when there is no such live application (nothing
 * is written, no entry either).
 */
export async function updateApplication(
	control: Db,
	appId: string,
	changes: { name?: string | undefined; allowDelete?: boolean | undefined },
	now: string,
	audit?: AuditRecord,
): Promise<boolean> {
	const allowDelete = changes.allowDelete === undefined ? null : changes.allowDelete ? 1 : 0;
	const results = await control.batch([
		// The entry first, under the update's own condition: it records the change only if it happens.
		...(audit ? [auditStatement(control, audit, { sql: "EXISTS (SELECT 1 FROM applications WHERE id = ?6 AND deleted_at IS NULL)", params: [appId] })] : []),
		control
			.prepare(
				`UPDATE applications SET name = coalesce(?2, name), allow_delete = coalesce(?3, allow_delete), updated_at = ?4
				 WHERE id = ?1 AND deleted_at IS NULL`,
			)
			.bind(appId, changes.name ?? null, allowDelete, now),
	]);
	return (results.at(-1)?.meta.changes ?? 0) > 0;
}

/** The dates applicationList's since and until may bound (SCORM Cloud's datetimeFilter). */
export const APPLICATION_DATETIME_FILTERS = ["updated", "created"] as const;
/** The orders applicationList may take (SCORM Cloud's orderBy). */
export const APPLICATION_ORDERS = ["updated_asc", "updated_desc", "created_asc", "created_desc"] as const;
/** The fields applicationList's filter text is looked for in (SCORM Cloud's filterBy). */
export const APPLICATION_FILTER_FIELDS = ["app_id", "app_name"] as const;
export type ApplicationOrder = (typeof APPLICATION_ORDERS)[number];

export interface ApplicationFilter {
	/** Which date `since` and `until` bound. */
	datetimeFilter: (typeof APPLICATION_DATETIME_FILTERS)[number];
	/** ISO-8601 UTC bounds, inclusive. */
	since?: string | undefined;
	until?: string | undefined;
	/** Text the field `filterBy` names must contain (case-insensitive). */
	filter?: string | undefined;
	filterBy: (typeof APPLICATION_FILTER_FIELDS)[number];
}

/** Where the previous page ended: the last application's id and dates. */
export interface ApplicationPosition {
	id: string;
	createdAt: string;
	updatedAt: string;
}

/**
 * One page of the realm's live applications matching the filter, after `after`, and optionally how many match in
 * all — one D1 call. The order's date and the id sort (applications_by_created, applications_by_updated), so a
 * since/until bound on that date is a range of the same index; the filter text is a scan of the realm's
 * applications (a realm has thousands at most, never learner data). Each choice picks fixed SQL (no values in
 * SQL text).
 */
export async function listApplicationPage(
	control: Db,
	query: { filter: ApplicationFilter; order: ApplicationOrder; after?: ApplicationPosition | undefined; limit: number; count: boolean },
): Promise<{ applications: Application[]; total?: number }> {
	const { filter, order, after } = query;
	const dateColumn = filter.datetimeFilter === "created" ? "created_at" : "updated_at";
	const orderedBy = order.startsWith("created") ? "created_at" : "updated_at";
	const direction = order.endsWith("_desc") ? "DESC" : "";
	const conditions = ["deleted_at IS NULL"];
	if (filter.since !== undefined) conditions.push(`${dateColumn} >= ?1`);
	if (filter.until !== undefined) conditions.push(`${dateColumn} <= ?2`);
	if (filter.filter !== undefined) conditions.push(`instr(lower(${filter.filterBy === "app_name" ? "name" : "id"}), lower(?3)) > 0`);
	const matching = conditions.join(" AND ");
	const paged = after ? `${matching} AND (${orderedBy}, id) ${direction ? "<" : ">"} (?4, ?5)` : matching;
	const params = [
		filter.since ?? null,
		filter.until ?? null,
		filter.filter ?? null,
		after ? (orderedBy === "created_at" ? after.createdAt : after.updatedAt) : null,
		after?.id ?? null,
		query.limit,
	];
	// Each statement binds as many values as its highest ?N (prepareWith): a filter left out leaves its number unused.
	const statements = [prepareWith(control, `SELECT ${COLUMNS} FROM applications WHERE ${paged} ORDER BY ${orderedBy} ${direction}, id ${direction} LIMIT ?6`, params)];
	if (query.count) statements.push(prepareWith(control, `SELECT count(*) AS total FROM applications WHERE ${matching}`, params));
	const [page, counted] = await control.batch(statements);
	return {
		applications: ((page?.results ?? []) as ApplicationRow[]).map(toApplication),
		...(counted && { total: (counted.results[0] as { total: number }).total }),
	};
}

/** Where an application lives, and whether its deletion was requested. */
export interface Placement {
	appId: string;
	shard: string;
	dataRegion: "default" | "eu";
	deletedAt: string | null;
}

/** An application's placement (deleted or not), or null when there never was such an application. */
export async function findPlacement(control: Db, appId: string): Promise<Placement | null> {
	const row = await control
		.prepare("SELECT id, shard, data_region, deleted_at FROM applications WHERE id = ?1")
		.bind(appId)
		.first<{ id: string; shard: string; data_region: "default" | "eu"; deleted_at: string | null }>();
	return row ? { appId: row.id, shard: row.shard, dataRegion: row.data_region, deletedAt: row.deleted_at } : null;
}

/**
 * The application's (?1) unfinished move, as a condition on the control database's jobs (src/db/jobs.ts records
 * moves). Here rather than there: authentication reads placements through this module on every isolate's first
 * request, which then need not load the job statements (SPEC §6: cold start).
 */
export const UNFINISHED_MOVE = "app_id = ?1 AND type = 'moveApplication' AND status IN ('queued', 'running')";

const MOVING = `EXISTS (SELECT 1 FROM jobs WHERE ${UNFINISHED_MOVE})`;

/**
 * The control database's half of an application's deletion, in one transaction: marks it deleted (its
 * credentials stop working at once, and go, with its retention policy) unless its allowDelete is off or a move of it
 * is unfinished. Its shard then records the deletion job (./jobs.ts, recordApplicationDeletion). Null for an
 * unknown application; "protected" while its allowDelete is off, "moving" while a move is unfinished (nothing
 * changed either way). An application whose deletion was accepted already answers its placement again (a retry),
 * whatever its allowDelete.
 */
export async function markApplicationDeleted(
	control: Db,
	appId: string,
	now: string,
	audit?: AuditRecord,
): Promise<Placement | "protected" | "moving" | null> {
	const results = await control.batch([
		control
			.prepare(`UPDATE applications SET deleted_at = coalesce(deleted_at, ?2) WHERE id = ?1 AND allow_delete = 1 AND NOT ${MOVING}`)
			.bind(appId, now),
		// Recorded once: by the request that marked it deleted (a repeat finds it marked earlier).
		...(audit
			? [auditStatement(control, audit, { sql: "EXISTS (SELECT 1 FROM applications WHERE id = ?6 AND deleted_at = ?7)", params: [appId, now] })]
			: []),
		control
			.prepare("DELETE FROM credentials WHERE app_id = ?1 AND EXISTS (SELECT 1 FROM applications WHERE id = ?1 AND deleted_at IS NOT NULL)")
			.bind(appId),
		// Its retention policy goes with it: its learners go whole with the deletion.
		control
			.prepare("DELETE FROM retention_policies WHERE app_id = ?1 AND EXISTS (SELECT 1 FROM applications WHERE id = ?1 AND deleted_at IS NOT NULL)")
			.bind(appId),
		control
			.prepare(`SELECT id, shard, data_region, deleted_at, allow_delete, ${MOVING} AS moving FROM applications WHERE id = ?1`)
			.bind(appId),
	]);
	const row = results.at(-1)?.results[0] as
		| { id: string; shard: string; data_region: "default" | "eu"; deleted_at: string | null; allow_delete: number; moving: number }
		| undefined;
	if (!row) return null;
	if (row.deleted_at === null) return row.allow_delete === 0 ? "protected" : row.moving ? "moving" : null;
	return { appId: row.id, shard: row.shard, dataRegion: row.data_region, deletedAt: row.deleted_at };
}

/** Notes that the application's shard recorded its deletion job. */
export async function noteDeletionRecorded(control: Db, appId: string, now: string): Promise<void> {
	await control
		.prepare("UPDATE applications SET deletion_recorded_at = coalesce(deletion_recorded_at, ?2) WHERE id = ?1")
		.bind(appId, now)
		.run();
}

/**
 * Applications marked deleted before `cutoff` whose shard never recorded the deletion job (the request failed
 * between the two databases): the sweeper finishes them (applications_deletion_unrecorded).
 */
export async function unrecordedDeletions(control: Db, cutoff: string, limit: number): Promise<Placement[]> {
	const { results } = await control
		.prepare(
			`SELECT id, shard, data_region, deleted_at FROM applications
			 WHERE deleted_at IS NOT NULL AND deletion_recorded_at IS NULL AND deleted_at < ?1 ORDER BY deleted_at LIMIT ?2`,
		)
		.bind(cutoff, limit)
		.all<{ id: string; shard: string; data_region: "default" | "eu"; deleted_at: string }>();
	return results.map((row) => ({ appId: row.id, shard: row.shard, dataRegion: row.data_region, deletedAt: row.deleted_at }));
}

/** Points the application at its new shard, if it is still on `from`: the flip of a move. */
export async function flipPlacement(control: Db, appId: string, from: string, to: string, region: "default" | "eu"): Promise<void> {
	await control
		.prepare("UPDATE applications SET shard = ?3, data_region = ?4 WHERE id = ?1 AND shard = ?2")
		.bind(appId, from, to, region)
		.run();
}
