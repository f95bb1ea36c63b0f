import { config } from "../config";
import { inactiveLearners } from "../db/activity";
import { refusalOf } from "../db/app-storage";
import { markUnsent } from "../db/job-sweeps";
import { newJobId } from "../db/jobs";
import { type EnforcedPolicy, acceptRetentionErasures, enforcedPolicies } from "../db/retention";
import { retryTransient } from "../db/retry";
import { shardDatabase } from "../shards";
import { learnerHash } from "./contract";

/**
 * Retention (SPEC §12): an application's policy erases its learners with no write for `learnerInactiveDays`. Each
 * sweep, for each application with a policy, the learners whose last write (learner_activity) is before the cutoff —
 * one index range, longest inactive first, at most RETENTION_PER_APPLICATION — get an ordinary erasure each, requested
 * by "retention-policy", without suppression: receipts, webhooks and the sweeper's care as for any erasure. Each
 * writes its audit record into the shard's audit outbox in its own transaction; the same sweep then appends it to the
 * trail (./sweeper.ts, after the policies), or a later one if the control database fails meanwhile.
 */

/** Learners erased per application per sweep (the rest, at the next sweeps, 5 minutes apart). */
export const RETENTION_PER_APPLICATION = 100;
/** Applications whose policy one sweep enforces (taken in turn, from a place that moves with each sweep). */
export const RETENTION_APPLICATIONS_PER_SWEEP = 50;

const DAY_MS = 24 * 60 * 60_000;
const SWEEP_MS = 5 * 60_000;

/** What one application's enforcement did. */
export interface RetentionOutcome {
	appId: string;
	shard: string;
	/** The erasures recorded (their job ids). */
	erasures: string[];
	/** The application could take no write (being deleted, moving, out of write budget): the next sweep tries again. */
	skipped?: string;
}

/**
 * The policies this sweep enforces: every one when they are few, else RETENTION_APPLICATIONS_PER_SWEEP in turn — each
 * sweep takes the next ones after the previous sweep's, so every policy is enforced once in every
 * ceil(policies / RETENTION_APPLICATIONS_PER_SWEEP) sweeps.
 */
export function policiesThisSweep(policies: EnforcedPolicy[], nowMs: number): EnforcedPolicy[] {
	if (policies.length <= RETENTION_APPLICATIONS_PER_SWEEP) return policies;
	const start = (Math.floor(nowMs / SWEEP_MS) * RETENTION_APPLICATIONS_PER_SWEEP) % policies.length;
	return Array.from({ length: RETENTION_APPLICATIONS_PER_SWEEP }, (_, i) => policies[(start + i) % policies.length] as EnforcedPolicy);
}

/** Enforces one application's policy at `nowMs`: its inactive learners' erasures recorded (with their audit records) and sent. */
export async function enforcePolicy(env: Env, policy: EnforcedPolicy, nowMs: number, requestId: string): Promise<RetentionOutcome> {
	const shard = shardDatabase(env, policy.shard);
	const cutoff = new Date(nowMs - policy.learnerInactiveDays * DAY_MS).toISOString();
	const now = new Date(nowMs).toISOString();
	const found = await inactiveLearners(shard, policy.appId, cutoff, RETENTION_PER_APPLICATION);
	const outcome: RetentionOutcome = { appId: policy.appId, shard: policy.shard, erasures: [] };
	if (found.length === 0) return outcome;
	const wanted = await Promise.all(
		found.map(async ({ learnerId }) => ({ learnerId, learnerHash: await learnerHash(env, policy.appId, learnerId), jobId: newJobId(policy.appId) })),
	);
	let recorded;
	try {
		recorded = await acceptRetentionErasures(shard, policy.appId, wanted, cutoff, now, config(env), { requestId, learnerInactiveDays: policy.learnerInactiveDays });
	} catch (error) {
		const refusal = refusalOf(error);
		if (refusal === null) throw error;
		return { ...outcome, skipped: refusal };
	}
	if (recorded.length === 0) return outcome;
	const messages = recorded.map((erasure) => ({ body: { type: "deleteAllLearnerData" as const, jobId: erasure.jobId } }));
	for (let start = 0; start < messages.length; start += 100) {
		const batch = messages.slice(start, start + 100);
		try {
			await env.LEARNER_JOBS.sendBatch(batch);
		} catch {
			// Recorded already: the next sweep sends what was not sent (markUnsent: it is stale at once).
			for (const message of batch) await markUnsent(shard, message.body.jobId).catch(() => undefined);
		}
	}
	return { ...outcome, erasures: recorded.map((erasure) => erasure.jobId) };
}

/** The policies to enforce now (read from the control database). */
export const retentionPolicies = (env: Env, nowMs: number) =>
	retryTransient(() => enforcedPolicies(env.DB)).then((policies) => policiesThisSweep(policies, nowMs));
