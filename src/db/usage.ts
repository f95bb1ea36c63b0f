import { budgetMinute } from "./app-storage";
import type { NotifyStatus } from "./jobs";
import { retryTransient } from "./retry";
import type { Db } from "./types";

/**
 * Usage figures (GET /appManagement/usage, GET /appManagement/applications/{childAppId}/usage), read from counters and
 * indexes only: an application's storage row (stored rows, this minute's writes, registrations and learners, the last
 * two kept by triggers: migrations/shard 0009), and jobs through their listing indexes. What each read costs is in
 * docs/api.md ("Usage").
 */

/** An application's counters on the shard holding it. */
export interface StorageUsage {
	appId: string;
	storedRows: number;
	/** Rows its writes touched in the current minute (the write budget's unit). */
	writesThisMinute: number;
	registrations: number;
	learners: number;
}

/** Jobs of one hour that finished with one status, and what became of their webhook event. */
export interface FinishedJobs {
	/** The hour, as "YYYY-MM-DDTHH" (UTC). */
	hour: string;
	status: "completed" | "failed";
	/** null: the application had no webhook. */
	notify: NotifyStatus | null;
	count: number;
}

/** Unfinished jobs now. */
export interface UnfinishedJobs {
	queued: number;
	running: number;
}

/** What one database says of some applications: their counters, their jobs finished since a time, and unfinished ones. */
export interface DatabaseUsage {
	storage: StorageUsage[];
	finished: FinishedJobs[];
	unfinished: UnfinishedJobs;
}

interface StorageRow {
	app_id: string;
	stored_rows: number;
	writes: number;
	registrations: number;
	learners: number;
}

/**
 * Usage on one database, in one D1 call: the jobs of `jobsOf` finished at or after `since`, up to the end of the current
 * hour (one entry of jobs_finished_by_app each), and unfinished now (index ranges of jobs_listed_by_app_status), and
 * the storage rows of `storageOf` (a shard's; the control database has none). `jobsOf` null: every realm job of the control database,
 * whatever its application (few: moves and realm-wide erasures).
 */
export async function usageOf(
	db: Db,
	of: { jobsOf: string[] | null; storageOf: string[] | null },
	since: string,
	nowMs = Date.now(),
): Promise<DatabaseUsage> {
	const jobsOf = JSON.stringify(of.jobsOf ?? []);
	// Up to the end of the current hour: a completion time ahead of the clock (another machine's) is not "the last 24 hours".
	const until = new Date((Math.floor(nowMs / 3_600_000) + 1) * 3_600_000).toISOString();
	const statements =
		of.jobsOf === null
			? [
					db
						.prepare(
							`SELECT substr(completed_at, 1, 13) AS hour, status, notify_status AS notify, count(*) AS count
							 FROM jobs INDEXED BY jobs_finished_by_completion WHERE status IN ('completed', 'failed') AND completed_at >= ?1 AND completed_at < ?2
							 GROUP BY 1, 2, 3`,
						)
						.bind(since, until),
					db.prepare(
						`SELECT status, count(*) AS count FROM jobs INDEXED BY jobs_listed_by_status
						 WHERE parent_id IS NULL AND status IN ('queued', 'running') GROUP BY status`,
					),
				]
			: [
					db
						.prepare(
							`SELECT substr(completed_at, 1, 13) AS hour, status, notify_status AS notify, count(*) AS count
							 FROM jobs INDEXED BY jobs_finished_by_app
							 WHERE app_id IN (SELECT value FROM json_each(?1)) AND parent_id IS NULL AND status IN ('completed', 'failed')
							   AND completed_at >= ?2 AND completed_at < ?3
							 GROUP BY 1, 2, 3`,
						)
						.bind(jobsOf, since, until),
					db
						.prepare(
							`SELECT status, count(*) AS count FROM jobs INDEXED BY jobs_listed_by_app_status
							 WHERE app_id IN (SELECT value FROM json_each(?1)) AND parent_id IS NULL AND status IN ('queued', 'running')
							 GROUP BY status`,
						)
						.bind(jobsOf),
				];
	if (of.storageOf !== null) {
		statements.push(
			db
				.prepare(
					`SELECT app_id, stored_rows, CASE WHEN budget_minute = ?2 THEN budget_spent ELSE 0 END AS writes, registrations, learners
					 FROM app_storage WHERE app_id IN (SELECT value FROM json_each(?1))`,
				)
				.bind(JSON.stringify(of.storageOf), budgetMinute(nowMs)),
		);
	}
	const [finished, unfinished, storage] = await retryTransient(() => db.batch(statements));
	const counts = new Map(((unfinished?.results ?? []) as { status: string; count: number }[]).map((row) => [row.status, row.count]));
	return {
		finished: (finished?.results ?? []) as FinishedJobs[],
		unfinished: { queued: counts.get("queued") ?? 0, running: counts.get("running") ?? 0 },
		storage: ((storage?.results ?? []) as StorageRow[]).map((row) => ({
			appId: row.app_id,
			storedRows: row.stored_rows,
			writesThisMinute: row.writes,
			registrations: row.registrations,
			learners: row.learners,
		})),
	};
}

/** An application as usage names it, deleted or not. */
export interface UsageApplication {
	id: string;
	name: string;
	dataRegion: "default" | "eu";
	shard: string;
	deleted: boolean;
}

/** A move under way: its application has rows on both shards. */
export interface MoveUnderWay {
	appId: string;
	from: string;
	to: string;
}

/**
 * Every application of the realm, deleted ones included (their jobs count too), in creation order, and the moves
 * under way, in one D1 call: the applications table is read whole (one small row per application: the answer lists
 * them all), the moves from the index range of unfinished jobs.
 */
export async function realmPlacements(control: Db): Promise<{ applications: UsageApplication[]; moves: MoveUnderWay[] }> {
	const [applications, moves] = await retryTransient(() =>
		control.batch([
			control.prepare("SELECT id, name, data_region, shard, deleted_at IS NOT NULL AS deleted FROM applications ORDER BY created_at, id"),
			control.prepare(
				`SELECT app_id, payload ->> '$.from' AS source, payload ->> '$.to' AS target FROM jobs INDEXED BY jobs_listed_by_status
				 WHERE parent_id IS NULL AND status IN ('queued', 'running') AND type = 'moveApplication'`,
			),
		]),
	);
	type ApplicationRow = { id: string; name: string; data_region: "default" | "eu"; shard: string; deleted: number };
	type MoveRow = { app_id: string; source: string; target: string };
	return {
		applications: ((applications?.results ?? []) as ApplicationRow[]).map((row) => ({
			id: row.id,
			name: row.name,
			dataRegion: row.data_region,
			shard: row.shard,
			deleted: row.deleted === 1,
		})),
		moves: ((moves?.results ?? []) as MoveRow[]).map((row) => ({ appId: row.app_id, from: row.source, to: row.target })),
	};
}

/**
 * How many registrations of the learner each of `appIds` holds on this shard (those holding none are left out): one
 * range of registrations_by_app_learner per application.
 */
export async function learnerRegistrations(shard: Db, appIds: string[], learnerId: string): Promise<Map<string, number>> {
	if (appIds.length === 0) return new Map();
	const { results } = await retryTransient(() =>
		shard
			.prepare(
				`SELECT a.value AS app_id, (SELECT count(*) FROM registrations r WHERE r.app_id = a.value AND r.learner_id = ?2) AS registrations
				 FROM json_each(?1) a`,
			)
			.bind(JSON.stringify(appIds), learnerId)
			.all<{ app_id: string; registrations: number }>(),
	);
	return new Map(results.filter((row) => row.registrations > 0).map((row) => [row.app_id, row.registrations]));
}

/** One application as usage names it (deleted or not), or null when there never was one: a primary-key read. */
export async function usageApplication(control: Db, appId: string): Promise<UsageApplication | null> {
	const row = await retryTransient(() =>
		control
			.prepare("SELECT id, name, data_region, shard, deleted_at IS NOT NULL AS deleted FROM applications WHERE id = ?1")
			.bind(appId)
			.first<{ id: string; name: string; data_region: "default" | "eu"; shard: string; deleted: number }>(),
	);
	return row ? { id: row.id, name: row.name, dataRegion: row.data_region, shard: row.shard, deleted: row.deleted === 1 } : null;
}
