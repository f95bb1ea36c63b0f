import { findPlacement } from "../db/applications";
import { type Job, claimStep, getJobById, realmErasureChildren, saveStep } from "../db/jobs";
import { retryTransient } from "../db/retry";
import { type Db, nowIso } from "../db/types";
import { shardDatabase } from "../shards";
import type { StepOutcome } from "./move";

/**
 * A realm-wide erasure (SPEC §9): a realm job in the control database whose children — one erasure per
 * application that held the learner — run on their shards as any erasure does (their own messages, the sweeper).
 * The realm job follows them: each step reads every child where its application now lives, sums their counts, and
 * completes once none is unfinished (failed if one failed); until then it looks again after POLL_SECONDS.
 */

/** How long a realm-wide erasure waits between looks at its children. */
export const POLL_SECONDS = 5;

/** Where one child stands: its counts and whether it is finished, or gone with its application's deletion. */
async function childState(env: Env, control: Db, appId: string, jobId: string): Promise<Job | null> {
	const placement = await retryTransient(() => findPlacement(control, appId));
	if (!placement) return null;
	return getJobById(shardDatabase(env, placement.shard), jobId);
}

/** Runs one look at the realm erasure named by the message. */
export async function runRealmErasure(env: Env, control: Db, jobId: string): Promise<StepOutcome> {
	const job = await retryTransient(() => getJobById(control, jobId));
	if (!job || job.type !== "deleteRealmLearnerData" || job.status === "completed" || job.status === "failed") return "done";
	const lease = crypto.randomUUID();
	if (!(await retryTransient(() => claimStep(control, job, lease, nowIso())))) return "done";
	const children = await Promise.all(realmErasureChildren(job).map((child) => childState(env, control, child.appId, child.jobId)));
	// A child gone with its application's deletion erased nothing more here: its application's data went whole.
	const present = children.filter((child): child is Job => child !== null);
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
				payload: job.payload ?? "{}",
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
