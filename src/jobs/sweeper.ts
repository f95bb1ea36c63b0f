import { markResent, repairStaleJobs } from "../db/job-sweeps";
import { log } from "../log";
import { enqueue } from "./contract";

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
}

/** One sweep at `nowMs`: repairs what can be repaired in SQL, then sends stale jobs' messages again. */
export async function sweep(env: Pick<Env, "DB" | "LEARNER_JOBS" | "LOG_LEVEL">, nowMs: number): Promise<SweepReport> {
	// Outside any session: the sweeper must see the primary's latest state.
	const db = env.DB;
	const now = new Date(nowMs).toISOString();
	const repairs = await repairStaleJobs(db, new Date(nowMs - STALE_MS).toISOString(), now, {
		maxResends: MAX_RESENDS,
		limit: SWEEP_LIMIT,
	});
	const sends = await Promise.allSettled(repairs.stale.map((job) => enqueue(env, { type: job.type, jobId: job.id })));
	const sent = repairs.stale.filter((_, index) => sends[index]?.status === "fulfilled").map((job) => job.id);
	if (sent.length > 0) await markResent(db, sent, now);
	const report: SweepReport = {
		orphaned: repairs.orphaned,
		givenUp: repairs.givenUp,
		resent: sent.length,
		sendFailures: repairs.stale.length - sent.length,
	};
	log(env, report.sendFailures > 0 || report.givenUp > 0 ? "warn" : "info", { msg: "sweep", ...report });
	return report;
}
