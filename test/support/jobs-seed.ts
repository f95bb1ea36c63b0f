import { env } from "cloudflare:workers";
import type { JobStatus, JobType } from "../../src/db/jobs";

/** Job rows straight into a database, past the API: listings need many jobs, at chosen times. */

export interface SeedJob {
	id: string;
	appId: string;
	type: JobType;
	status: JobStatus;
	createdAt: string;
	completedAt?: string | null;
	parentId?: string | null;
	/** A finished job's event delivery (null: the application had no webhook). */
	notify?: "new" | "pending" | "delivered" | "failed" | null;
	payload?: string | null;
	requestedBy?: string | null;
	learnerHash?: string | null;
}

/** Inserts the jobs into `db` (a shard, or the control database for realm jobs) in one statement. */
export async function insertJobs(db: D1Database, jobs: SeedJob[]): Promise<void> {
	for (let start = 0; start < jobs.length; start += 500) {
		const chunk = jobs.slice(start, start + 500).map((job) => ({
			...job,
			completedAt: job.completedAt ?? (job.status === "completed" || job.status === "failed" ? job.createdAt : null),
			parentId: job.parentId ?? null,
			notify: job.notify ?? null,
			eventId: job.status === "completed" || job.status === "failed" ? `evt_${crypto.randomUUID().replaceAll("-", "")}` : null,
		}));
		await db
			.prepare(
				`INSERT INTO jobs (id, seq, app_id, type, status, created_at, completed_at, parent_id, event_id, event_at, notify_status,
				   payload, requested_by, learner_hash, touched_at)
				 SELECT value ->> '$.id', 0, value ->> '$.appId', value ->> '$.type', value ->> '$.status', value ->> '$.createdAt',
				   value ->> '$.completedAt', value ->> '$.parentId', value ->> '$.eventId', value ->> '$.completedAt', value ->> '$.notify',
				   value ->> '$.payload', value ->> '$.requestedBy', value ->> '$.learnerHash', value ->> '$.createdAt'
				 FROM json_each(?1) ORDER BY key`,
			)
			.bind(JSON.stringify(chunk))
			.run();
	}
}

/** An id shaped as the service shapes an application's job ids. */
export const seedJobId = (appId: string) => `${appId}.${crypto.randomUUID()}`;

/** The control database (realm jobs). */
export const control = () => env.DB;
