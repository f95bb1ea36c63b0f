import { config } from "../config";
import { noteDeletionRecorded, unrecordedDeletions } from "../db/applications";
import { deleteExpiredSignOuts } from "../db/console-sign-outs";
import { deleteExpiredKeys } from "../db/idempotency";
import { markResent, repairStaleJobs } from "../db/job-sweeps";
import { retryTransient } from "../db/retry";
import { recordApplicationDeletion } from "../db/jobs";
import type { Db } from "../db/types";
import { log } from "../log";
import { shardDatabase } from "../shards";
import { enqueue } from "./contract";
import { dispatchEvents, redeliverOverdue } from "./webhooks";

/**
 * The sweeper, run by a Cron Trigger (wrangler.toml [triggers]: every 5 minutes): a job nobody has attended to
 * for STALE_MS (a send that failed, a worker that died, a dead-letter consumer that could not record a failure)
 * gets its message sent again, so no job stays queued or running forever (SPEC §11). What it repairs, and why
 * sending again is safe: src/db/storage-schema.md, "touched_at, resends and the sweeper".
 */

/** How long an unfinished job may go unattended before its message is sent again. Longer than the work
 * queue's whole retry schedule (5 retries, 5 s doubling: about 155 s), so a message still retrying is left alone. */
export const STALE_MS = 10 * 60_000;
/** A learner job sent again this many times without running fails (its payload dropped); asking again starts a
 * new one. An application deletion is sent again for as long as it takes: its data must go. */
export const MAX_RESENDS = 6;
/** Jobs sent again per sweep (the rest wait for the next). */
export const SWEEP_LIMIT = 100;

export interface SweepReport {
	orphaned: number;
	givenUp: number;
	resent: number;
	sendFailures: number;
	/** Application deletions whose shard's half was finished by this sweep. */
	deletionsRecorded: number;
	/** Idempotency keys past their 24 hours, deleted by this sweep. */
	keysExpired: number;
	/** Job events nobody looked at within EVENT_LOOK_MS, whose delivery this sweep started. */
	eventsDispatched: number;
	/** Webhook deliveries overdue by STALE_MS (their message was lost), sent again by this sweep. */
	deliveriesResent: number;
	/** Console sign-outs past their session's expiry, deleted by this sweep. */
	signOutsExpired: number;
}

/** How long a job's event may wait to be looked at (the consumer does so when the job's message is done). */
export const EVENT_LOOK_MS = 60_000;

/** Expired idempotency keys deleted per database per sweep (the rest wait for the next). */
export const EXPIRED_KEYS_PER_SWEEP = 5000;

/** One database's sweep: its repairs, then its stale jobs' messages sent again. */
async function sweepDatabase(
	env: Env,
	db: Db,
	nowMs: number,
	realm: boolean,
): Promise<Omit<SweepReport, "deletionsRecorded" | "signOutsExpired">> {
	const keysExpired = await retryTransient(() => deleteExpiredKeys(db, new Date(nowMs).toISOString(), EXPIRED_KEYS_PER_SWEEP));
	const now = new Date(nowMs).toISOString();
	const repairs = await repairStaleJobs(db, new Date(nowMs - STALE_MS).toISOString(), now, {
		maxResends: MAX_RESENDS,
		limit: SWEEP_LIMIT,
		realm,
	});
	const sends = await Promise.allSettled(repairs.stale.map((job) => enqueue(env, { type: job.type, jobId: job.id })));
	const sent = repairs.stale.filter((_, index) => sends[index]?.status === "fulfilled").map((job) => job.id);
	if (sent.length > 0) await markResent(db, sent, now);
	// After the repairs, which may have ended jobs.
	const eventsDispatched = await dispatchEvents(env, db, { dueBefore: new Date(nowMs - EVENT_LOOK_MS).toISOString() });
	const deliveriesResent = await redeliverOverdue(env, db, new Date(nowMs - STALE_MS).toISOString(), now);
	return {
		orphaned: repairs.orphaned,
		givenUp: repairs.givenUp,
		resent: sent.length,
		sendFailures: repairs.stale.length - sent.length,
		keysExpired,
		eventsDispatched,
		deliveriesResent,
	};
}

/**
 * Application deletions the control database accepted but whose shard never recorded the job (the request
 * failed between the two): recorded and sent now.
 */
async function finishDeletions(env: Env, nowMs: number): Promise<number> {
	const now = new Date(nowMs).toISOString();
	const pending = await unrecordedDeletions(env.DB, new Date(nowMs - STALE_MS).toISOString(), SWEEP_LIMIT);
	for (const placement of pending) {
		const job = await recordApplicationDeletion(shardDatabase(env, placement.shard), placement.appId, now);
		await noteDeletionRecorded(env.DB, placement.appId, now);
		if (job) await enqueue(env, { type: "deleteApplication", jobId: job.id }).catch(() => undefined);
	}
	return pending.length;
}

/**
 * One sweep at `nowMs` over every database that holds jobs: the control database (moves) and each shard, then
 * half-requested application deletions. Outside any session: the sweeper must see each primary's latest state.
 */
export async function sweep(env: Env, nowMs: number): Promise<SweepReport> {
	const report: SweepReport = {
		orphaned: 0,
		givenUp: 0,
		resent: 0,
		sendFailures: 0,
		deletionsRecorded: 0,
		keysExpired: 0,
		eventsDispatched: 0,
		deliveriesResent: 0,
		signOutsExpired: 0,
	};
	const databases: [Db, boolean][] = [
		[env.DB, true],
		...config(env).shards.map((shard): [Db, boolean] => [shardDatabase(env, shard.name), false]),
	];
	for (const [db, realm] of databases) {
		const part = await sweepDatabase(env, db, nowMs, realm);
		report.orphaned += part.orphaned;
		report.givenUp += part.givenUp;
		report.resent += part.resent;
		report.sendFailures += part.sendFailures;
		report.keysExpired += part.keysExpired;
		report.eventsDispatched += part.eventsDispatched;
		report.deliveriesResent += part.deliveriesResent;
	}
	report.deletionsRecorded = await finishDeletions(env, nowMs);
	report.signOutsExpired = await deleteExpiredSignOuts(env.DB, new Date(nowMs).toISOString(), EXPIRED_KEYS_PER_SWEEP);
	log(env, report.sendFailures > 0 || report.givenUp > 0 ? "warn" : "info", { msg: "sweep", ...report });
	return report;
}
