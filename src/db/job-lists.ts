import { type Job, type JobRow, type JobStatus, type JobType, toJob } from "./jobs";
import { retryTransient } from "./retry";
import type { Db } from "./types";

/**
 * Listing jobs newest first (GET /jobs, GET /appManagement/jobs), one database at a time: a shard's or the control
 * database's. Every jobs table has the same listing indexes (migrations/shard 0009, migrations/control 0008), so one
 * statement serves both. A bulk erasure's children are never listed: the bulk job stands for them.
 */

/** Jobs per page of a listing (as registrations and learners: 100). */
export const JOBS_PER_PAGE = 100;

/** What a listing keeps: one application's jobs (absent: every job of the database), of one status or type, since a time. */
export interface JobListFilter {
	appId?: string | undefined;
	status?: JobStatus | undefined;
	type?: JobType | undefined;
	/** ISO-8601: jobs accepted at or after it. */
	since?: string | undefined;
}

/** Where a listing stopped in one database: the last job served (jobs are ordered by acceptance time, then id). */
export interface JobListPosition {
	createdAt: string;
	id: string;
}

/** The unfinished statuses: few jobs at any time, so their index range is the cheapest way in. */
const UNFINISHED: readonly JobStatus[] = ["queued", "running"];

/**
 * The index a filter is served by, so a page reads about as many rows as it returns: the application's (or the
 * database's) range for the status or the type. Given both, the status's range when it is an unfinished one (few
 * jobs), else the type's: that range is read until the page is full of jobs of the status too.
 */
function indexFor(filter: JobListFilter): string {
	const scope = filter.appId !== undefined ? "jobs_listed_by_app" : "jobs_listed";
	const byStatus = filter.status !== undefined && (filter.type === undefined || UNFINISHED.includes(filter.status));
	if (byStatus) return `${scope}${scope === "jobs_listed" ? "_by_status" : "_status"}`;
	if (filter.type !== undefined) return `${scope}${scope === "jobs_listed" ? "_by_type" : "_type"}`;
	return scope;
}

/**
 * Up to `limit` jobs matching the filter, newest first, after `after` (the last job of the previous page; null for
 * the first page). One statement, one index range.
 */
export async function listJobs(db: Db, filter: JobListFilter, after: JobListPosition | null, limit: number): Promise<Job[]> {
	// ?1 app, ?2 status, ?3 type, ?4 since, ?5 ?6 the position, ?7 limit: always bound; the SQL names only those in use.
	const conditions = ["parent_id IS NULL"];
	if (filter.appId !== undefined) conditions.push("app_id = ?1");
	if (filter.status !== undefined) conditions.push("status = ?2");
	if (filter.type !== undefined) conditions.push("type = ?3");
	if (filter.since !== undefined) conditions.push("created_at >= ?4");
	if (after !== null) conditions.push("(created_at, id) < (?5, ?6)");
	const sql = `SELECT * FROM jobs INDEXED BY ${indexFor(filter)} WHERE ${conditions.join(" AND ")}
	  ORDER BY created_at DESC, id DESC LIMIT ?7`;
	const { results } = await retryTransient(() =>
		db
			.prepare(sql)
			.bind(
				filter.appId ?? null,
				filter.status ?? null,
				filter.type ?? null,
				filter.since ?? null,
				after?.createdAt ?? null,
				after?.id ?? null,
				limit,
			)
			.all<JobRow>(),
	);
	return results.map(toJob);
}

/** Each application's shard (deleted or not), for those of `appIds` the control database knows. */
export async function placementsOf(control: Db, appIds: string[]): Promise<Map<string, string>> {
	if (appIds.length === 0) return new Map();
	const { results } = await retryTransient(() =>
		control
			.prepare("SELECT id, shard FROM applications WHERE id IN (SELECT value FROM json_each(?1))")
			.bind(JSON.stringify(appIds))
			.all<{ id: string; shard: string }>(),
	);
	return new Map(results.map((row) => [row.id, row.shard]));
}
