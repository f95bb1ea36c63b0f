import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { findPlacement } from "../../src/db/applications";
import type { JobMessage } from "../../src/jobs/contract";
import { MOVE_BOUNDS, runMove } from "../../src/jobs/move";
import { shardDatabase } from "../../src/shards";
import { call, envWith } from "../support/client";
import { getJob, jobIdOf } from "../support/expect";
import { MANAGEMENT, type TestApp, createApp, enrol, learnerOn, uniqueValue } from "../support/fixtures";
import { acceptUpdate, deliver, drain, sentDuring } from "../support/queue";
import { SHARDS } from "../support/seed";

/**
 * The bookkeeping of an application's jobs while the application moves between shards (SPEC §7, §11): the sweeper,
 * the dead-letter consumer and webhook deliveries write to a job's row outside its chunks; none of it may land on
 * the destination's copy before the flip (the copy would overwrite it, or it would overwrite the copy) or on the
 * source once its last changes have been copied (it would be lost).
 */

const saved = { ...MOVE_BOUNDS };
afterEach(() => {
	Object.assign(MOVE_BOUNDS, saved);
});

const placementOf = async (appId: string) => (await findPlacement(env.DB, appId))?.shard ?? "";
const otherDefaultShard = (shard: string) => SHARDS.find((candidate) => candidate.region === "default" && candidate.name !== shard)?.name ?? "";
const planOf = async (jobId: string) =>
	JSON.parse((await env.DB.prepare("SELECT payload FROM jobs WHERE id = ?1").bind(jobId).first<{ payload: string }>())?.payload ?? "{}") as {
		phase?: string;
	};

async function startMove(app: TestApp): Promise<{ jobId: string; from: string; to: string }> {
	const from = await placementOf(app.appId);
	const to = otherDefaultShard(from);
	const { result } = await sentDuring(() => call("POST", `/appManagement/applications/${app.appId}/move`, { auth: MANAGEMENT, body: { shard: to } }));
	expect(result.status).toBe(204);
	return { jobId: jobIdOf(result), from, to };
}

async function moveUntil(jobId: string, until: () => Promise<boolean>): Promise<void> {
	for (let steps = 0; !(await until()); steps++) {
		expect(steps).toBeLessThan(300);
		await runMove(env, env.DB, jobId, 1);
	}
}
const moveFinished = (jobId: string) => async () => !["queued", "running"].includes((await getJob(MANAGEMENT, jobId)).status);

/** The Cron Trigger's sweep, `minutes` from now. */
async function sweepAt(minutes: number): Promise<void> {
	const controller = createScheduledController({ scheduledTime: new Date(Date.now() + minutes * 60_000), cron: "*/5 * * * *" });
	await sentDuring(() => worker.scheduled(controller, env));
}

const jobOn = (shard: string, jobId: string) =>
	shardDatabase(env, shard).prepare("SELECT status, payload FROM jobs WHERE id = ?1").bind(jobId).first<{ status: string; payload: string | null }>();

describe("a job's bookkeeping while its application moves", () => {
	it("leaves the destination's copy alone when the sweeper runs before the flip", async () => {
		// One journal key per catch-up step, so the update's job can be copied over before its learner's registration.
		Object.assign(MOVE_BOUNDS, { keysPerStep: 1, maxCatchUpRounds: 50 });
		const app = await createApp();
		await enrol(app, uniqueValue("already-there"));
		const move = await startMove(app);
		await moveUntil(move.jobId, async () => (await planOf(move.jobId)).phase === "catchUp");
		// A learner who arrives while the move runs, and an update of theirs: both journaled on the shard being left.
		const learnerId = uniqueValue("arrives-while-moving");
		const registrationId = await enrol(app, { id: learnerId, email: "before@example.com" });
		const update = await acceptUpdate(app, { id: learnerId, email: "after@example.com" });
		// Replayed one key at a time: the update's job (kind 'job') reaches the destination before the registration.
		await moveUntil(move.jobId, async () => (await jobOn(move.to, update.jobId)) !== null);
		expect(await shardDatabase(env, move.to).prepare("SELECT count(*) AS n FROM registrations WHERE id = ?1").bind(registrationId).first()).toEqual({
			n: 0,
		});
		// A sweep now finds the job stale, and on the destination its learner without a registration.
		await sweepAt(11);
		expect(await jobOn(move.to, update.jobId)).toMatchObject({ status: "queued" });
		await moveUntil(move.jobId, moveFinished(move.jobId));
		expect(await placementOf(app.appId)).toBe(move.to);
		await drain(update);
		expect(await getJob(app.auth, update.jobId)).toMatchObject({ status: "completed" });
		expect(await learnerOn(app, registrationId)).toMatchObject({ email: "after@example.com" });
	});

	it("records a job's failure where the application lands when the dead-letter consumer meets it frozen", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("dead-lettered");
		await enrol(app, learnerId);
		const update = await acceptUpdate(app, { id: learnerId, firstName: "Never" });
		const move = await startMove(app);
		// Every change copied, the source frozen: the move is about to compare counts and flip.
		await moveUntil(move.jobId, async () => (await planOf(move.jobId)).phase === "verify");
		const { result } = await deliver([update], { queue: env.JOBS_DEAD_LETTER_QUEUE });
		// Nothing written on the frozen source: the dead letter comes back.
		expect(result.retryMessages).toHaveLength(1);
		expect(await jobOn(move.from, update.jobId)).toMatchObject({ status: "queued" });
		await moveUntil(move.jobId, moveFinished(move.jobId));
		const again = await deliver([update as JobMessage], { queue: env.JOBS_DEAD_LETTER_QUEUE });
		expect(again.result.explicitAcks).toHaveLength(1);
		expect(await getJob(app.auth, update.jobId)).toMatchObject({ status: "failed" });
	});
});

describe("a move's linger, at its production value", () => {
	afterEach(() => {
		vi.useRealTimers();
	});

	it("keeps the rows on the shard left for MOVE_LINGER_SECONDS (40) after the flip, then deletes them", async () => {
		// The suites run with MOVE_LINGER_SECONDS = 0 (vitest.config.ts); here the setting is absent: its default.
		const production = envWith({ MOVE_LINGER_SECONDS: undefined } as unknown as Partial<Env>);
		const app = await createApp();
		const learnerId = uniqueValue("lingering");
		await enrol(app, learnerId, { learnerTags: ["t"] });
		const move = await startMove(app);
		vi.useFakeTimers({ toFake: ["Date"] });
		const flippedAt = Date.now();
		// The clock stands still: the steps up to the flip, then the first look at the linger.
		let waited: Awaited<ReturnType<typeof runMove>> = "continue";
		for (let steps = 0; waited === "continue"; steps++) {
			expect(steps).toBeLessThan(100);
			waited = await runMove(production, env.DB, move.jobId, 1);
		}
		expect(await placementOf(app.appId)).toBe(move.to);
		// Flipped: an isolate that cached the old placement less than 30 s ago may still read the rows left behind.
		expect(waited).toEqual({ waitSeconds: 40 });
		const leftBehind = () =>
			shardDatabase(env, move.from).prepare("SELECT count(*) AS n FROM registrations WHERE app_id = ?1").bind(app.appId).first<{ n: number }>();
		vi.setSystemTime(flippedAt + 39_000);
		expect(await runMove(production, env.DB, move.jobId, 1)).toEqual({ waitSeconds: expect.any(Number) });
		expect(await leftBehind()).toEqual({ n: 1 });
		vi.setSystemTime(flippedAt + 41_000);
		for (let steps = 0; (await getJob(MANAGEMENT, move.jobId)).status === "running"; steps++) {
			expect(steps).toBeLessThan(20);
			await runMove(production, env.DB, move.jobId, 1);
		}
		expect(await getJob(MANAGEMENT, move.jobId)).toMatchObject({ status: "completed" });
		expect(await leftBehind()).toEqual({ n: 0 });
	});
});
