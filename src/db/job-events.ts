import { NOT_MOVING } from "./app-storage";
import { type Job, type JobRow, toJob } from "./jobs";
import { retryTransient } from "./retry";
import type { Db } from "./types";

/**
 * Job events (SPEC §8), kept on the job's row (migrations/shard 0005; the control database's realm jobs alike): a
 * trigger creates the event when the job ends ('new'); the consumer or the sweeper then looks up the application's
 * webhook and marks it 'pending' (a delivery message is sent) or drops it (no webhook); each delivery attempt is
 * recorded here until it is 'delivered' or 'failed'. src/jobs/webhooks.ts drives this.
 */

/** An event waiting to be looked at. */
export interface NewEvent {
	jobId: string;
	appId: string;
	eventId: string;
}

/**
 * Events not yet looked at: an application's (after one of its jobs ended), or any in the database whose event is
 * due by `dueBefore` (the sweeper's catch-up). At most `limit`, oldest first. For an application's, also the epoch
 * of its webhook hint as it stood before the look (./app-storage.ts clearWebhookHint).
 */
export async function newEvents(
	db: Db,
	where: { appId: string } | { dueBefore: string },
	limit: number,
): Promise<{ events: NewEvent[]; epoch: number | null }> {
	const toEvents = (rows: { id: string; app_id: string; event_id: string }[]) =>
		rows.map((row) => ({ jobId: row.id, appId: row.app_id, eventId: row.event_id }));
	if ("appId" in where) {
		const [found, hint] = await retryTransient(() =>
			db.batch([
				db
					.prepare(`SELECT id, app_id, event_id FROM jobs WHERE app_id = ?1 AND notify_status = 'new' AND ${NOT_MOVING("jobs.app_id")} LIMIT ?2`)
					.bind(where.appId, limit),
				db.prepare("SELECT webhook_epoch AS epoch FROM app_storage WHERE app_id = ?1").bind(where.appId),
			]),
		);
		const epoch = (hint?.results[0] as { epoch: number } | undefined)?.epoch ?? null;
		return { events: toEvents((found?.results ?? []) as { id: string; app_id: string; event_id: string }[]), epoch };
	}
	const { results } = await retryTransient(() =>
		db
			.prepare(
				`SELECT id, app_id, event_id FROM jobs WHERE notify_status = 'new' AND notify_due_at <= ?1 AND ${NOT_MOVING("jobs.app_id")}
				 ORDER BY notify_due_at LIMIT ?2`,
			)
			.bind(where.dueBefore, limit)
			.all<{ id: string; app_id: string; event_id: string }>(),
	);
	return { events: toEvents(results), epoch: null };
}

/**
 * Settles looked-at events: to be delivered (pending, due now) or dropped (no webhook). Answers the events this
 * call settled: another look that settled one first sends its message.
 */
export async function settleNewEvents(db: Db, events: NewEvent[], deliver: (event: NewEvent) => boolean, now: string): Promise<NewEvent[]> {
	if (events.length === 0) return [];
	const decided = events.map((event) => ({ id: event.jobId, event: event.eventId, deliver: deliver(event) ? 1 : 0 }));
	const results = await retryTransient(() =>
		db.batch(
			decided.map((entry) =>
				db
					.prepare(
						`UPDATE jobs SET notify_status = CASE WHEN ?3 THEN 'pending' END, notify_due_at = CASE WHEN ?3 THEN ?4 END
						 WHERE id = ?1 AND event_id = ?2 AND notify_status = 'new' AND ${NOT_MOVING("jobs.app_id")}`,
					)
					.bind(entry.id, entry.event, entry.deliver, now),
			),
		),
	);
	return events.filter((_, i) => decided[i]?.deliver && (results[i]?.meta.changes ?? 0) > 0);
}

/** Deliveries whose attempt was due before `cutoff` and never recorded (a lost message): the sweeper sends them again. */
export async function overdueDeliveries(db: Db, cutoff: string, limit: number): Promise<NewEvent[]> {
	const { results } = await retryTransient(() =>
		db
			.prepare(
				`SELECT id, app_id, event_id FROM jobs WHERE notify_status = 'pending' AND notify_due_at < ?1 AND ${NOT_MOVING("jobs.app_id")}
				 ORDER BY notify_due_at LIMIT ?2`,
			)
			.bind(cutoff, limit)
			.all<{ id: string; app_id: string; event_id: string }>(),
	);
	return results.map((row) => ({ jobId: row.id, appId: row.app_id, eventId: row.event_id }));
}

/** Marks overdue deliveries as sent again now (their next attempt is due now), so the next sweep leaves them. */
export async function markRedelivered(db: Db, events: NewEvent[], now: string): Promise<void> {
	if (events.length === 0) return;
	await retryTransient(() =>
		db
			.prepare(
				`UPDATE jobs SET notify_due_at = ?2 WHERE id IN (SELECT value FROM json_each(?1)) AND notify_status = 'pending'
				   AND notify_due_at < ?2 AND ${NOT_MOVING("jobs.app_id")}`,
			)
			.bind(JSON.stringify(events.map((event) => event.jobId)), now)
			.run(),
	);
}

/**
 * The job whose event is pending delivery under this id, or null (delivered, given up, superseded, gone); "moving"
 * while its application is frozen for a move (the attempt waits: its record would be lost).
 */
export async function pendingDelivery(db: Db, jobId: string, eventId: string): Promise<Job | "moving" | null> {
	const row = await retryTransient(() =>
		db
			.prepare(`SELECT *, NOT ${NOT_MOVING("jobs.app_id")} AS moving FROM jobs WHERE id = ?1 AND event_id = ?2 AND notify_status = 'pending'`)
			.bind(jobId, eventId)
			.first<JobRow & { moving: number }>(),
	);
	if (!row) return null;
	return row.moving ? "moving" : toJob(row);
}

/** One delivery attempt's outcome, as recorded. */
export interface AttemptRecord {
	status: "pending" | "delivered" | "failed";
	httpStatus: number | null;
	error: string | null;
	/** When the next attempt is due (pending). */
	dueAt: string | null;
}

/**
 * Records an attempt at delivering the event, unless another attempt recorded first (the attempt count read
 * before it must still stand); false then, and the caller schedules nothing.
 */
export async function recordAttempt(db: Db, job: Job, attempt: AttemptRecord): Promise<boolean> {
	const event = job.event;
	if (!event) return false;
	const result = await retryTransient(() =>
		db
			.prepare(
				`UPDATE jobs SET notify_status = ?4, notify_attempts = notify_attempts + 1, notify_last_status = ?5,
				   notify_last_error = ?6, notify_due_at = ?7
				 WHERE id = ?1 AND event_id = ?2 AND notify_status = 'pending' AND notify_attempts = ?3 AND ${NOT_MOVING("jobs.app_id")}`,
			)
			.bind(job.id, event.id, event.attempts, attempt.status, attempt.httpStatus, attempt.error, attempt.dueAt)
			.run(),
	);
	return result.meta.changes > 0;
}
