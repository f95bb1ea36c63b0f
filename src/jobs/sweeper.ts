import { outboxedRecord, sealAudit } from "../audit";
import { config } from "../config";
import { findPlacement, noteDeletionRecorded, unrecordedDeletions } from "../db/applications";
import { appendAudit, pruneAudit } from "../db/audit";
import { clearOutbox, outboxRecords } from "../db/audit-outbox";
import { deleteExpiredDrafts } from "../db/console-drafts";
import { exportsToExpire } from "../db/exports";
import { deleteExpiredSignOuts } from "../db/console-sign-outs";
import { deleteExpiredKeys } from "../db/idempotency";
import { markResent, pruneFinishedJobs, repairStaleJobs } from "../db/job-sweeps";
import { retryTransient } from "../db/retry";
import { type Job, jobHome, jobsNamed, recordApplicationDeletion } from "../db/jobs";
import type { Db } from "../db/types";
import { describeFault, log } from "../log";
import { shardDatabase } from "../shards";
import { enqueue } from "./contract";
import { collectExportLeftovers, purgeExports } from "./export-objects";
import { enforcePolicy, retentionPolicies } from "./retention";
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
	/** Console drafts and one-time results past their expiry (minutes), deleted by this sweep. */
	consoleDraftsExpired: number;
	/** Finished jobs past their retention (JOB_RETENTION_DAYS; RECEIPT_RETENTION_DAYS for erasures), deleted by this sweep. */
	jobsPruned: number;
	/** Exports whose objects this sweep deleted from R2: past EXPORT_RETENTION_DAYS, or failed. */
	exportsExpired: number;
	/** Export objects no export needs any more (left by an attempt cut off mid-way), deleted by this sweep. */
	exportLeftoversDeleted: number;
	/** Erasures this sweep started for applications' retention policies (SPEC §12). */
	retentionErasures: number;
	/** Audit entries this sweep sealed (hashed into the chain), and deleted past AUDIT_RETENTION_DAYS. */
	auditSealed: number;
	auditPruned: number;
	/**
	 * Records this sweep copied from the shards' audit outboxes into the trail (an entry already appended by its request
	 * is not appended again), then deleted there.
	 */
	auditOutboxed: number;
	/**
	 * Databases, by binding name (`DB` is the control database), at least one step of whose sweep failed: each
	 * failure is logged, what it left undone waits for the next sweep, and the other databases were swept.
	 */
	failedDatabases: string[];
}

/** How long a job's event may wait to be looked at (the consumer does so when the job's message is done). */
export const EVENT_LOOK_MS = 60_000;

/** Finished jobs of each kind (erasures, others) deleted per database per sweep once past their retention. */
export const PRUNED_PER_SWEEP = 1000;

/** Expired idempotency keys deleted per database per sweep (the rest wait for the next). */
export const EXPIRED_KEYS_PER_SWEEP = 5000;

/** Exports whose objects are deleted per shard per sweep once past their retention (the rest wait for the next). */
export const EXPORTS_EXPIRED_PER_SWEEP = 100;

/** Audit entries older than AUDIT_RETENTION_DAYS deleted per sweep. */
export const AUDIT_PRUNED_PER_SWEEP = 5000;

/** Audit outbox records copied per round (one read of the shard, one batch of the control database, one delete). */
export const OUTBOX_BATCH = 500;
/** Rounds per shard per sweep: at most OUTBOX_BATCH × OUTBOX_ROUNDS records copied from each shard's outbox. */
export const OUTBOX_ROUNDS = 10;

/** The control database's binding, as the report and the log name it. */
const CONTROL = "DB";

/** A database the sweep goes through: its binding name, the binding, and whether it holds realm jobs (moves). */
interface SweptDatabase {
	name: string;
	db: Db;
	realm: boolean;
}

/**
 * Runs one step of the sweep that needs `database`. A failure (the database unavailable, say) is logged by the
 * binding's name — never personal data — and noted in the report, and the sweep goes on: one failing database
 * never stops work on the others (SPEC §11). Answers the step's result, or undefined when it failed.
 */
async function attempt<T>(
	env: Env,
	report: SweepReport,
	where: { database: string; step: string; appId?: string },
	work: () => Promise<T>,
): Promise<{ value: T } | undefined> {
	try {
		return { value: await work() };
	} catch (error) {
		if (!report.failedDatabases.includes(where.database)) report.failedDatabases.push(where.database);
		log(env, "error", { msg: "sweep: database failed", ...where, ...describeFault(error) });
		return undefined;
	}
}

/**
 * One database's sweep: its repairs, then its stale jobs' messages sent again, then its events. Counted in the
 * report as each step is done, so what a later step's failure leaves undone is all that goes uncounted.
 */
async function sweepDatabase(env: Env, { db, realm }: SweptDatabase, nowMs: number, report: SweepReport): Promise<void> {
	const now = new Date(nowMs).toISOString();
	report.keysExpired += await retryTransient(() => deleteExpiredKeys(db, now, EXPIRED_KEYS_PER_SWEEP));
	const repairs = await repairStaleJobs(db, new Date(nowMs - STALE_MS).toISOString(), now, {
		maxResends: MAX_RESENDS,
		limit: SWEEP_LIMIT,
		realm,
	});
	report.orphaned += repairs.orphaned;
	report.givenUp += repairs.givenUp;
	const sends = await Promise.allSettled(repairs.stale.map((job) => enqueue(env, { type: job.type, jobId: job.id })));
	const sent = repairs.stale.filter((_, index) => sends[index]?.status === "fulfilled").map((job) => job.id);
	report.sendFailures += repairs.stale.length - sent.length;
	if (sent.length > 0) await markResent(db, sent, now);
	report.resent += sent.length;
	// After the repairs, which may have ended jobs.
	report.eventsDispatched += await dispatchEvents(env, db, { dueBefore: new Date(nowMs - EVENT_LOOK_MS).toISOString() });
	report.deliveriesResent += await redeliverOverdue(env, db, new Date(nowMs - STALE_MS).toISOString(), now);
	const { jobRetentionMs, receiptRetentionMs, exportRetentionMs } = config(env);
	// Exports' objects first, while their jobs (which say where they are) are certainly still there.
	if (!realm) {
		const expired = await exportsToExpire(db, new Date(nowMs - exportRetentionMs).toISOString(), EXPORTS_EXPIRED_PER_SWEEP);
		await purgeExports(env, db, expired);
		report.exportsExpired += expired.length;
	}
	report.jobsPruned += await pruneFinishedJobs(
		db,
		{ job: new Date(nowMs - jobRetentionMs).toISOString(), receipt: new Date(nowMs - receiptRetentionMs).toISOString() },
		PRUNED_PER_SWEEP,
		{ realm },
	);
}

/**
 * Application deletions the control database accepted but whose shard never recorded the job (the request
 * failed between the two): recorded and sent now, each on its own, so that one shard down leaves the deletions
 * on the others to go ahead.
 */
async function finishDeletions(env: Env, nowMs: number, report: SweepReport): Promise<void> {
	const now = new Date(nowMs).toISOString();
	const pending = await attempt(env, report, { database: CONTROL, step: "deletions" }, () =>
		unrecordedDeletions(env.DB, new Date(nowMs - STALE_MS).toISOString(), SWEEP_LIMIT),
	);
	for (const placement of pending?.value ?? []) {
		const { appId, shard } = placement;
		const recorded = await attempt(env, report, { database: shard, step: "deletion", appId }, () =>
			recordApplicationDeletion(shardDatabase(env, shard), appId, now),
		);
		if (!recorded) continue;
		// Unnoted, the deletion is found again by the next sweep, which records nothing twice and sends again.
		if (!(await attempt(env, report, { database: CONTROL, step: "deletion", appId }, () => noteDeletionRecorded(env.DB, appId, now)))) continue;
		report.deletionsRecorded++;
		const job = recorded.value;
		if (job) await enqueue(env, { type: "deleteApplication", jobId: job.id }).catch(() => undefined);
	}
}

/** The exports' jobs among `jobIds`, each read where its application lives now (null: gone with its application). */
async function exportJobsOf(env: Env, jobIds: string[]): Promise<Map<string, Job | null>> {
	const byApp = new Map<string, string[]>();
	for (const jobId of jobIds) {
		const home = jobHome(jobId);
		if (home === null || home === "control") continue;
		byApp.set(home.appId, [...(byApp.get(home.appId) ?? []), jobId]);
	}
	const found = new Map<string, Job | null>(jobIds.map((jobId) => [jobId, null]));
	for (const [appId, ids] of byApp) {
		const placement = await retryTransient(() => findPlacement(env.DB, appId));
		if (!placement) continue;
		for (const job of await retryTransient(() => jobsNamed(shardDatabase(env, placement.shard), ids))) found.set(job.id, job);
	}
	return found;
}

/**
 * Each shard's audit outbox copied into the trail (src/db/audit-outbox.ts), oldest first, then deleted there: an
 * action whose request could not append its entry (the control database failed after the shard's write) is recorded
 * now, with its request's id; one whose request did is not recorded twice (the append's dedupe). Each failure is
 * counted against the database that failed; what it left waits in the outbox for the next sweep.
 */
async function recordOutboxes(env: Env, nowMs: number, report: SweepReport): Promise<void> {
	const now = new Date(nowMs).toISOString();
	for (const { name } of config(env).shards) {
		const shard = shardDatabase(env, name);
		let after = 0;
		for (let round = 0; round < OUTBOX_ROUNDS; round++) {
			const read = await attempt(env, report, { database: name, step: "audit outbox" }, () => outboxRecords(shard, after, OUTBOX_BATCH));
			const records = read?.value ?? [];
			const last = records.at(-1);
			if (!last) break;
			const appended = await attempt(env, report, { database: CONTROL, step: "audit outbox" }, () =>
				appendAudit(env.DB, records.map((record) => outboxedRecord(record, now))),
			);
			// The control database failed: every shard's records wait for the next sweep.
			if (!appended) return;
			if (!(await attempt(env, report, { database: name, step: "audit outbox" }, () => clearOutbox(shard, last.id)))) break;
			report.auditOutboxed += records.length;
			after = last.id;
			if (records.length < OUTBOX_BATCH) break;
		}
	}
}

/**
 * SPEC §12's share of a sweep: each application's retention policy enforced (each on its own, so one shard down
 * leaves the others' go ahead), the shards' audit outboxes copied into the trail, export objects no export needs
 * deleted, and the audit trail sealed and pruned.
 */
async function sweepPrivacy(env: Env, nowMs: number, report: SweepReport): Promise<void> {
	const requestId = `sweep-${crypto.randomUUID()}`;
	const policies = await attempt(env, report, { database: CONTROL, step: "retention" }, () => retentionPolicies(env, nowMs));
	for (const policy of policies?.value ?? []) {
		const enforced = await attempt(env, report, { database: policy.shard, step: "retention", appId: policy.appId }, () =>
			enforcePolicy(env, policy, nowMs, requestId),
		);
		report.retentionErasures += enforced?.value.erasures.length ?? 0;
	}
	// After the policies, whose erasures' records are in the outboxes; before sealing, which then hashes them.
	await recordOutboxes(env, nowMs, report);
	const { exportRetentionMs, auditRetentionMs } = config(env);
	const leftovers = await attempt(env, report, { database: "EXPORTS", step: "export leftovers" }, () =>
		collectExportLeftovers(env, nowMs, { retentionMs: exportRetentionMs, youngMs: STALE_MS, jobsOf: (ids) => exportJobsOf(env, ids) }),
	);
	report.exportLeftoversDeleted += leftovers?.value ?? 0;
	const sealed = await attempt(env, report, { database: CONTROL, step: "audit" }, async () => ({
		sealed: await sealAudit(env.DB),
		pruned: await pruneAudit(env.DB, new Date(nowMs - auditRetentionMs).toISOString(), AUDIT_PRUNED_PER_SWEEP),
	}));
	report.auditSealed += sealed?.value.sealed ?? 0;
	report.auditPruned += sealed?.value.pruned ?? 0;
}

/**
 * One sweep at `nowMs` over every database that holds jobs: the control database (moves) and each shard, then
 * half-requested application deletions and expired console sign-outs. Outside any session: the sweeper must see
 * each primary's latest state. A database that fails is logged and listed in the report (`failedDatabases`) and
 * the rest are swept; only when every database's own sweep failed does it throw, after logging each, so that the
 * Cron Trigger's record of the run shows it failed.
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
		consoleDraftsExpired: 0,
		jobsPruned: 0,
		exportsExpired: 0,
		exportLeftoversDeleted: 0,
		retentionErasures: 0,
		auditSealed: 0,
		auditPruned: 0,
		auditOutboxed: 0,
		failedDatabases: [],
	};
	const databases: SweptDatabase[] = [
		{ name: CONTROL, db: env.DB, realm: true },
		...config(env).shards.map((shard) => ({ name: shard.name, db: shardDatabase(env, shard.name), realm: false })),
	];
	let swept = 0;
	for (const database of databases) {
		if (await attempt(env, report, { database: database.name, step: "jobs" }, () => sweepDatabase(env, database, nowMs, report))) swept++;
	}
	await finishDeletions(env, nowMs, report);
	const signOuts = await attempt(env, report, { database: CONTROL, step: "sign-outs" }, () =>
		deleteExpiredSignOuts(env.DB, new Date(nowMs).toISOString(), EXPIRED_KEYS_PER_SWEEP),
	);
	report.signOutsExpired = signOuts?.value ?? 0;
	await sweepPrivacy(env, nowMs, report);
	const drafts = await attempt(env, report, { database: CONTROL, step: "console drafts" }, () =>
		deleteExpiredDrafts(env.DB, new Date(nowMs).toISOString(), EXPIRED_KEYS_PER_SWEEP),
	);
	report.consoleDraftsExpired = drafts?.value ?? 0;
	const level = report.failedDatabases.length > 0 ? "error" : report.sendFailures > 0 || report.givenUp > 0 ? "warn" : "info";
	log(env, level, { msg: "sweep", ...report });
	if (swept === 0) throw new Error(`Sweep failed on every database: ${databases.map((database) => database.name).join(", ")}`);
	return report;
}
