import { forgetApplication } from "../auth/credentials";
import { forgetPlacement } from "../auth/placements";
import { config } from "../config";
import { findPlacement, flipPlacement } from "../db/applications";
import { type Job, claimStep, getJobById, saveStep } from "../db/jobs";
import {
	MOVED_TABLES,
	type CopyPosition,
	applyJournal,
	countRowsOf,
	deleteRows,
	emptySource,
	forgetJournal,
	freeze,
	hasRows,
	openDestination,
	prepareMove,
	readJournal,
	readRows,
	settleDestination,
	stopJournal,
	unfinishedJobPositions,
	writeRows,
} from "../db/move";
import { retryTransient } from "../db/retry";
import { type Db, nowIso } from "../db/types";
import { type DataRegion, shardDatabase } from "../shards";

/**
 * Moving an application between shards (SPEC §7): a realm job in the control database whose steps copy the
 * application's rows while it keeps working, freeze it for the final catch-up, compare counts, flip its
 * placement, and delete what it left behind once no isolate can still be reading there. The statements are
 * src/db/move.ts; the design: src/db/storage-schema.md, "Moving an application".
 */

/** Steps per message before a continuation (each is a handful of D1 calls: inside the 1000 per invocation). */
export const MOVE_STEPS_PER_MESSAGE = 25;

/** How much one step may do, and when the source is frozen. */
export const MOVE_BOUNDS = {
	/** Rows read from the source and written to the destination per copy step (one table at a time). */
	rowsPerStep: 1000,
	/** Journaled keys replayed per step (each key's rows: a registration or learner with at most 1000 tags). */
	keysPerStep: 100,
	/** Catch-up rounds before the source is frozen even if writes keep the journal full. */
	maxCatchUpRounds: 20,
	/** Steps per message before a continuation (MOVE_STEPS_PER_MESSAGE; the simulation takes fewer). */
	stepsPerMessage: MOVE_STEPS_PER_MESSAGE,
};


type Phase = "prepare" | "clear" | "copy" | "catchUp" | "drain" | "verify" | "flip" | "linger" | "cleanup" | "abort";

/** A move's plan and progress, kept in its job's payload (shard names, keys and times: no personal data). */
export interface MovePlan {
	from: string;
	to: string;
	toRegion: DataRegion;
	phase: Phase;
	/** The table being copied (index in MOVED_TABLES) and the order key of the last row copied. */
	table: number;
	after: CopyPosition;
	rounds: number;
	/** When the source was frozen and when the placement flipped: the window in which writes were refused. */
	frozenAt?: string;
	flippedAt?: string;
	/** Why an abandoned move is failing (set on entering "abort"). */
	reason?: string;
}

export const newMovePlan = (from: string, to: string, toRegion: DataRegion): MovePlan => ({
	from,
	to,
	toRegion,
	phase: "prepare",
	table: 0,
	after: null,
	rounds: 0,
});

/** What a step asks for next: another step, the end, or a pause of some seconds. */
export type StepOutcome = "continue" | "done" | { waitSeconds: number };

interface StepResult {
	plan: MovePlan;
	copied?: number;
	status?: "completed" | "failed";
	wait?: number;
}

/**
 * One step of the move under its fencing token `step`. Every D1 call it makes is safe to repeat: a step
 * repeated after a lost reply or a crash writes what it wrote before.
 */
async function runStep(env: Env, control: Db, job: Job, plan: MovePlan, step: number, nowMs: number): Promise<StepResult> {
	const source = shardDatabase(env, plan.from);
	const dest = shardDatabase(env, plan.to);
	const appId = job.appId;
	const now = new Date(nowMs).toISOString();
	const next = (changes: Partial<MovePlan>): StepResult => ({ plan: { ...plan, ...changes } });
	switch (plan.phase) {
		case "prepare": {
			const placement = await findPlacement(control, appId);
			if (!placement || placement.deletedAt !== null || placement.shard !== plan.from) {
				return { plan, status: "failed" };
			}
			await prepareMove(source, dest, appId, step, now);
			// Rows left on the destination by an abandoned copy go first: the destination must start empty.
			return next({ phase: (await hasRows(dest, appId)) ? "clear" : "copy" });
		}
		case "clear":
			return next({ phase: (await deleteRows(dest, appId, MOVE_BOUNDS.rowsPerStep, step)) ? "copy" : "clear" });
		case "copy": {
			const table = MOVED_TABLES[plan.table];
			if (!table) return next({ phase: "catchUp", rounds: 0 });
			const limit = Math.min(MOVE_BOUNDS.rowsPerStep, table.rowsPerStep ?? MOVE_BOUNDS.rowsPerStep);
			const { rows, last } = await readRows(source, appId, table, plan.after, limit);
			if (rows.length > 0 && !(await writeRows(dest, appId, step, table, rows))) return { plan };
			const copied = table.table === "registrations" ? rows.length : 0;
			if (rows.length < limit) return { ...next({ table: plan.table + 1, after: null }), copied };
			return { ...next({ after: last }), copied };
		}
		case "catchUp":
		case "drain": {
			const { entries, rows } = await readJournal(source, appId, MOVE_BOUNDS.keysPerStep);
			if (entries.length > 0) {
				if (!(await applyJournal(dest, appId, step, entries, rows))) return { plan };
				await forgetJournal(source, appId, entries);
			}
			if (plan.phase === "drain") return next({ phase: entries.length === 0 ? "verify" : "drain" });
			if (entries.length < MOVE_BOUNDS.keysPerStep || plan.rounds + 1 >= MOVE_BOUNDS.maxCatchUpRounds) {
				// Nearly caught up: from here on writes to the application are refused (503, retry shortly) until the flip.
				await freeze(source, appId, now);
				return next({ phase: "drain", frozenAt: now });
			}
			return next({ rounds: plan.rounds + 1 });
		}
		case "verify": {
			const [from, to] = await Promise.all([countRowsOf(source, appId), countRowsOf(dest, appId)]);
			const differing = MOVED_TABLES.filter((_, i) => from.tables[i] !== to.tables[i]).map((table) => table.table);
			if (differing.length > 0) {
				await stopJournal(source, appId, true);
				return next({ phase: "abort", reason: `The copy's row counts differ from the source's (${differing.join(", ")})` });
			}
			const positions = await unfinishedJobPositions(source, appId);
			if (!(await settleDestination(dest, appId, step, from, positions))) return { plan };
			return next({ phase: "flip" });
		}
		case "flip":
			await flipPlacement(control, appId, plan.from, plan.to, plan.toRegion);
			await openDestination(dest, appId, step);
			await stopJournal(source, appId, false);
			forgetApplication(appId);
			forgetPlacement(appId);
			return next({ phase: "linger", flippedAt: now });
		case "linger": {
			// An isolate that verified a credential before the flip may read the old shard until its cache entry
			// expires (src/auth/credentials.ts): the rows stay that long (MOVE_LINGER_SECONDS). Writes there are refused.
			const until = Date.parse(plan.flippedAt ?? now) + config(env).moveLingerMs;
			if (nowMs < until) return { plan, wait: Math.ceil((until - nowMs) / 1000) };
			return next({ phase: "cleanup" });
		}
		case "cleanup":
			if (!(await deleteRows(source, appId, MOVE_BOUNDS.rowsPerStep))) return { plan };
			await emptySource(source, appId);
			return { plan, status: "completed" };
		case "abort":
			if (!(await deleteRows(dest, appId, MOVE_BOUNDS.rowsPerStep, step))) return { plan };
			return { plan, status: "failed" };
	}
}

/** Why a failed move failed, for its job's message. */
const failure = (plan: MovePlan) =>
	plan.reason ?? "The application was deleted or moved by other means before the move started; nothing was moved";

/**
 * Runs up to `steps` steps of the move named by the message. "done" when it finished, is unknown, or another
 * delivery claimed a step first (that one carries on).
 */
export async function runMove(env: Env, control: Db, jobId: string, steps = MOVE_BOUNDS.stepsPerMessage): Promise<StepOutcome> {
	for (let i = 0; i < steps; i++) {
		const job = await retryTransient(() => getJobById(control, jobId));
		if (!job || job.type !== "moveApplication" || job.status === "completed" || job.status === "failed") return "done";
		const plan = JSON.parse(job.payload ?? "null") as MovePlan;
		const lease = crypto.randomUUID();
		const nowMs = Date.now();
		if (!(await retryTransient(() => claimStep(control, job, lease, nowIso())))) return "done";
		// The fencing token grows with every step of every move of the realm (job seq, then the step's cursor).
		const step = job.seq * 1_000_000 + job.cursor + 1;
		const result = await runStep(env, control, job, plan, step, nowMs);
		const registrationsAffected = job.registrationsAffected + (result.copied ?? 0);
		const status = result.status ?? "running";
		await retryTransient(() =>
			saveStep(
				control,
				job,
				lease,
				{
					payload: JSON.stringify(result.plan),
					registrationsAffected,
					status,
					...(status === "failed" && { error: failure(result.plan) }),
				},
				nowIso(),
			),
		);
		if (status !== "running") return "done";
		if (result.wait !== undefined) return { waitSeconds: result.wait };
	}
	return "continue";
}
