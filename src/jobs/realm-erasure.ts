import { sha256Hex } from "../auth/crypto";
import { config } from "../config";
import { findPlacement, listApplications } from "../db/applications";
import { refusalOf } from "../db/app-storage";
import {
	type Job,
	type RealmErasureChild,
	acceptLearnerErasure,
	claimStep,
	completedErasureSince,
	getJobById,
	jobsNamed,
	realmErasurePlan,
	saveRealmChildren,
	saveStep,
} from "../db/jobs";
import { suppressLearner } from "../db/suppressions";
import { applicationsHolding, applicationsHoldingForErasure } from "../db/learners";
import { retryTransient } from "../db/retry";
import { type Db, nowIso } from "../db/types";
import { shardDatabase } from "../shards";
import { dispatch, learnerHash } from "./contract";
import type { StepOutcome } from "./move";

/**
 * A realm-wide erasure (SPEC §9): a realm job in the control database, recorded before any of its work (with the
 * request's Idempotency-Key, if any), naming the applications that held the learner then. The request itself then
 * asks each of them for an erasure — joining one already pending there, as any erasure request does — and names
 * them as the job's children; should it not get that far, the job's first step does it. The children run on their
 * shards as any erasure does (their own messages, the sweeper). The realm job follows them: each step reads every
 * child where its application now lives, sums their counts, and completes once none is unfinished (failed if one
 * failed); until then it looks again after POLL_SECONDS.
 */

/** How long a realm-wide erasure waits between looks at its children, or before asking an application again. */
export const POLL_SECONDS = 5;

/**
 * The live applications holding the learner, with their shards: each shard asked once, all at the same time. For an
 * erasure (`forErasure`), an application whose own erasure of the learner is still pending holds it too, so the
 * realm-wide erasure joins that erasure (src/db/learners.ts applicationsHoldingForErasure).
 */
export async function realmHolders(
	env: Env,
	control: Db,
	learnerId: string,
	options: { forErasure?: boolean } = {},
): Promise<{ appId: string; shard: string }[]> {
	const applications = await retryTransient(() => listApplications(control));
	const byShard = Map.groupBy(applications, (app) => app.shard);
	const found = await Promise.all(
		[...byShard].map(async ([shard, apps]) => {
			const db = shardDatabase(env, shard);
			const hashed = options.forErasure
				? await Promise.all(apps.map(async (app) => ({ appId: app.id, learnerHash: await learnerHash(env, app.id, learnerId) })))
				: null;
			const appIds = await retryTransient(() =>
				hashed ? applicationsHoldingForErasure(db, hashed, learnerId) : applicationsHolding(db, apps.map((app) => app.id), learnerId),
			);
			return appIds.map((appId) => ({ appId, shard }));
		}),
	);
	return found.flat();
}

/**
 * The id a realm job gives its job in an application (an erasure; an export, ./realm-export.ts), the same on every
 * attempt: a repeated ask finds the job an earlier attempt started (even once finished) instead of losing it.
 */
export async function childJobId(realmJobId: string, appId: string, kind: "realm-erasure" | "realm-export" = "realm-erasure"): Promise<string> {
	const hex = await sha256Hex(`${kind}\n${realmJobId}\n${appId}`);
	return `${appId}.${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Asks each application that held the learner when the realm erasure was accepted for its erasure: one of its own
 * (its id fixed by the realm job's), or the erasure already pending there, which it joins (suppressing if asked).
 * Where the learner is gone already, the erasure that took it since is the child; asked for suppression, the
 * learner is suppressed there all the same. Answers the children, or "wait" when an application cannot take a write
 * just now (moving between shards, out of write budget): asking again later finds what this attempt started.
 */
export async function askApplications(env: Env, control: Db, job: Job): Promise<RealmErasureChild[] | "wait"> {
	const plan = realmErasurePlan(job);
	const learnerId = job.learnerId;
	if (learnerId === null) throw new Error("A realm-wide erasure lost its learner before asking the applications");
	const children: RealmErasureChild[] = [];
	for (const appId of plan.holders) {
		const placement = await retryTransient(() => findPlacement(control, appId));
		// Deleted meanwhile: its data goes whole with it.
		if (!placement || placement.deletedAt !== null) continue;
		const db = shardDatabase(env, placement.shard);
		const id = await childJobId(job.id, appId);
		const hash = await learnerHash(env, appId, learnerId);
		try {
			const acceptance = await acceptLearnerErasure(
				db,
				{ id, appId, learnerId, learnerHash: hash, requestedBy: job.requestedBy ?? "", createdAt: nowIso(), suppress: plan.suppress },
				config(env),
				true,
			);
			if (acceptance.outcome === "accepted") {
				await dispatch(env, db, { type: "deleteAllLearnerData", jobId: acceptance.job.id });
				children.push({ appId, jobId: acceptance.job.id, learnerHash: hash });
				continue;
			}
			// Nothing left to erase: an earlier attempt's erasure, or another request's, has taken it since.
			const [earlier] = await retryTransient(() => jobsNamed(db, [id]));
			const since = earlier ?? (await completedErasureSince(db, appId, hash, job.createdAt));
			if (since) children.push({ appId, jobId: since.id, learnerHash: hash });
			if (plan.suppress) await suppressLearner(db, appId, hash, since?.id ?? job.id, nowIso(), config(env));
		} catch (error) {
			const refusal = refusalOf(error);
			if (refusal === "application_deleted") continue;
			if (refusal === "application_moving" || refusal === "write_budget_exceeded") return "wait";
			throw error;
		}
	}
	return children;
}

/**
 * Asks the applications and records the children under the step's claim, dropping the learner's id from the realm
 * job; "wait" as askApplications.
 */
export async function fanOut(env: Env, control: Db, job: Job, lease: string): Promise<RealmErasureChild[] | "wait"> {
	const children = await askApplications(env, control, job);
	if (children === "wait") return children;
	await retryTransient(() => saveRealmChildren(control, job, lease, { ...realmErasurePlan(job), children }, nowIso()));
	return children;
}

/** Where one child stands: its counts and whether it is finished, or gone with its application's deletion. */
async function childState(env: Env, control: Db, appId: string, jobId: string): Promise<Job | null> {
	const placement = await retryTransient(() => findPlacement(control, appId));
	if (!placement) return null;
	return getJobById(shardDatabase(env, placement.shard), jobId);
}

/** Runs one step of the realm erasure named by the message: asking the applications, or a look at its children. */
export async function runRealmErasure(env: Env, control: Db, jobId: string): Promise<StepOutcome> {
	const job = await retryTransient(() => getJobById(control, jobId));
	if (!job || job.type !== "deleteRealmLearnerData" || job.status === "completed" || job.status === "failed") return "done";
	const lease = crypto.randomUUID();
	if (!(await retryTransient(() => claimStep(control, job, lease, nowIso())))) return "done";
	const plan = realmErasurePlan(job);
	let children = plan.children;
	if (!children) {
		const asked = await fanOut(env, control, job, lease);
		if (asked === "wait") return { waitSeconds: POLL_SECONDS };
		children = asked;
	}
	const states = await Promise.all(children.map((child) => childState(env, control, child.appId, child.jobId)));
	// A child gone with its application's deletion erased nothing more here: its application's data went whole.
	const present = states.filter((child): child is Job => child !== null);
	const unfinished = present.some((child) => child.status === "queued" || child.status === "running");
	const failed = present.some((child) => child.status === "failed");
	const registrationsAffected = present.reduce((sum, child) => sum + child.registrationsAffected, 0);
	const tagsRemoved = present.reduce((sum, child) => sum + child.tagsRemoved, 0);
	const status = unfinished ? "running" : failed ? "failed" : "completed";
	await retryTransient(() =>
		saveStep(
			control,
			job,
			lease,
			{
				payload: JSON.stringify({ ...plan, children }),
				registrationsAffected,
				tagsRemoved,
				status,
				...(status === "failed" && { error: "The learner could not be erased in some applications: ask again" }),
			},
			nowIso(),
		),
	);
	return unfinished ? { waitSeconds: POLL_SECONDS } : "done";
}
