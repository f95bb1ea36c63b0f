import { insertAppStorage } from "./app-storage";
import { type AuditRecord, auditStatement } from "./audit";
import { type KeyedBatch, batchWith } from "./idempotency";
import { UNFINISHED_MOVE } from "./jobs";
import type { Db } from "./types";

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
}

interface ApplicationRow {
	id: string;
	name: string;
	data_region: "default" | "eu";
	shard: string;
	created_at: string;
}

const toApplication = (row: ApplicationRow): Application => ({
	id: row.id,
	name: row.name,
	dataRegion: row.data_region,
	shard: row.shard,
	createdAt: row.created_at,
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
				.prepare("INSERT INTO applications (id, name, data_region, shard, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
				.bind(app.id, app.name, app.dataRegion, app.shard, app.createdAt),
			...(audit ? [auditStatement(control, audit)] : []),
		],
		keyed,
	);
}

/** Applications not being deleted, oldest first. */
export async function listApplications(control: Db): Promise<Application[]> {
	const { results } = await control
		.prepare("SELECT id, name, data_region, shard, created_at FROM applications WHERE deleted_at IS NULL ORDER BY created_at, id")
		.all<ApplicationRow>();
	return results.map(toApplication);
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

const MOVING = `EXISTS (SELECT 1 FROM jobs WHERE ${UNFINISHED_MOVE})`;

/**
 * The control database's half of an application's deletion, in one transaction: marks it deleted (its
 * credentials stop working at once, and go, with its retention policy) unless a move of it is unfinished. Its shard then records the
 * deletion job (./jobs.ts, recordApplicationDeletion). Null for an unknown application; "moving" while a move
 * is unfinished (nothing changed).
 */
export async function markApplicationDeleted(
	control: Db,
	appId: string,
	now: string,
	audit?: AuditRecord,
): Promise<Placement | "moving" | null> {
	const results = await control.batch([
		control
			.prepare(`UPDATE applications SET deleted_at = coalesce(deleted_at, ?2) WHERE id = ?1 AND NOT ${MOVING}`)
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
			.prepare(`SELECT id, shard, data_region, deleted_at, ${MOVING} AS moving FROM applications WHERE id = ?1`)
			.bind(appId),
	]);
	const row = results.at(-1)?.results[0] as
		| { id: string; shard: string; data_region: "default" | "eu"; deleted_at: string | null; moving: number }
		| undefined;
	if (!row) return null;
	if (row.deleted_at === null) return row.moving ? "moving" : null;
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
