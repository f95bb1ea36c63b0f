import { describe, expect, it } from "vitest";
import { type ChunkBounds, runApplicationDeletionChunk, runErasureChunk, runUpdateChunk } from "../../src/db/job-chunks";
import { type Job, getJobById, jobHome } from "../../src/db/jobs";
import { runJob } from "../../src/jobs/run";
import { completedJob, getJob } from "../support/expect";
import { createApp, enrol, type LearnerFields, learnerOn, MANAGEMENT, realmUser, type TestApp, uniqueValue } from "../support/fixtures";
import { acceptApplicationDeletion, acceptErasure, acceptUpdate, deliver, drain } from "../support/queue";
import { registrationCount, shardOf } from "../support/seed";

/** Chunks of one registration, so a test can interleave them. */
const ONE_REGISTRATION: ChunkBounds = { registrations: 1, rows: 1 };

// Every job here is accepted through its route with the queue captured, so nothing is delivered unless the
// test delivers it: the tests choose the order, and repeat deliveries, as an at-least-once queue may.

/** Delivers each message in its own batch, in the order given, asserting each is acked. */
async function deliverInOrder(...messages: unknown[]): Promise<void> {
	for (const message of messages) {
		const { result, ids } = await deliver([message]);
		expect(result.explicitAcks).toEqual(ids);
	}
}

/** The shard holding a job of an application (its id names the application). */
async function shardOfJob(jobId: string): Promise<D1Database> {
	const home = jobHome(jobId);
	if (home === null || home === "control") throw new Error(`${jobId} is not an application's job`);
	return shardOf(home.appId);
}

async function jobRow(jobId: string): Promise<Job> {
	const job = await getJobById(await shardOfJob(jobId), jobId);
	if (!job) throw new Error(`job ${jobId} is missing`);
	return job;
}

/** A learner with `count` registrations carrying the given details; returns the registration ids. */
async function learnerWith(app: TestApp, learner: LearnerFields, count: number): Promise<string[]> {
	const registrationIds: string[] = [];
	for (let i = 0; i < count; i++) registrationIds.push(await enrol(app, learner));
	return registrationIds;
}

describe("updateLearnerInfo jobs: acceptance order and repeated delivery", () => {
	it("leave the later accepted email when two updates arrive in reverse order, each twice", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const registrations = await learnerWith(app, { id: learnerId, email: "start@example.com", firstName: "Kept" }, 2);
		const earlier = await acceptUpdate(app, { id: learnerId, email: "a@example.com" });
		const later = await acceptUpdate(app, { id: learnerId, email: "b@example.com" });

		await deliverInOrder(later, later, earlier, earlier);

		for (const registrationId of registrations) {
			expect(await learnerOn(app, registrationId)).toEqual({ id: learnerId, email: "b@example.com", firstName: "Kept" });
		}
		await completedJob(app.auth, later, { registrationsAffected: 2 });
		expect((await getJob(app.auth, earlier.jobId)).status).toBe("completed");
	});

	it("leave the later accepted email when both arrive in one batch, in reverse order and twice", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const [registrationId] = await learnerWith(app, { id: learnerId }, 1);
		const earlier = await acceptUpdate(app, { id: learnerId, email: "a@example.com" });
		const later = await acceptUpdate(app, { id: learnerId, email: "b@example.com" });

		const { result, ids } = await deliver([later, earlier, later, earlier]);

		expect(result.explicitAcks).toEqual(ids);
		expect(await learnerOn(app, registrationId ?? "")).toEqual({ id: learnerId, email: "b@example.com" });
	});

	it("apply a firstName-only and a lastName-only update whatever order they arrive in", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const start = { id: learnerId, email: "e@example.com", firstName: "F0", lastName: "L0" };
		const registrations = await learnerWith(app, start, 2);
		const firstName = await acceptUpdate(app, { id: learnerId, firstName: "F1" });
		const lastName = await acceptUpdate(app, { id: learnerId, lastName: "L1" });

		await deliverInOrder(lastName, lastName, firstName, firstName);

		for (const registrationId of registrations) {
			expect(await learnerOn(app, registrationId)).toEqual({ ...start, firstName: "F1", lastName: "L1" });
		}
	});

	it("keep acceptance order when the two jobs' chunks interleave", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const registrations = await learnerWith(app, { id: learnerId, email: "start@example.com" }, 3);
		const earlier = await acceptUpdate(app, { id: learnerId, email: "a@example.com", firstName: "A" });
		const later = await acceptUpdate(app, { id: learnerId, email: "b@example.com" });

		// One registration of the later job, all of the earlier one, then the rest of the later one.
		const shard = await shardOf(app.appId);
		expect(await runJob(shard, later, { bounds: ONE_REGISTRATION, chunks: 1 })).toBe("continue");
		expect(await runJob(shard, earlier, { bounds: ONE_REGISTRATION, chunks: 10 })).toBe("done");
		expect(await runJob(shard, later, { bounds: ONE_REGISTRATION, chunks: 10 })).toBe("done");

		for (const registrationId of registrations) {
			expect(await learnerOn(app, registrationId)).toEqual({ id: learnerId, email: "b@example.com", firstName: "A" });
		}
		expect((await jobRow(later.jobId)).registrationsAffected).toBe(3);
	});

	it("apply an update chunk once when two deliveries race for it", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await learnerWith(app, { id: learnerId }, 2);
		const update = await acceptUpdate(app, { id: learnerId, lastName: "Raced" });
		const snapshot = await jobRow(update.jobId);
		const shard = await shardOf(app.appId);

		const winner = await runUpdateChunk(shard, snapshot, crypto.randomUUID(), ONE_REGISTRATION, new Date().toISOString());
		const loser = await runUpdateChunk(shard, snapshot, crypto.randomUUID(), ONE_REGISTRATION, new Date().toISOString());

		expect(winner).toEqual({ claimed: true, completed: false, frozen: false, announce: false });
		expect(loser).toEqual({ claimed: false, completed: false, frozen: false, announce: false });
		expect(await jobRow(update.jobId)).toMatchObject({ cursor: 1, registrationsAffected: 1, status: "running" });
		await deliverInOrder(update);
		expect(await jobRow(update.jobId)).toMatchObject({
			registrationsAffected: 2,
			status: "completed",
			payload: null,
			learnerId: null,
		});
	});

	it("erase a chunk once when two deliveries race for it", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await learnerWith(app, { id: learnerId }, 3);
		const erasure = await acceptErasure(app, learnerId, await realmUser("admin"));
		const snapshot = await jobRow(erasure.jobId);
		const shard = await shardOf(app.appId);

		const winner = await runErasureChunk(shard, snapshot, crypto.randomUUID(), ONE_REGISTRATION, new Date().toISOString());
		const loser = await runErasureChunk(shard, snapshot, crypto.randomUUID(), ONE_REGISTRATION, new Date().toISOString());

		expect(winner).toEqual({ claimed: true, completed: false, frozen: false, announce: false });
		expect(loser).toEqual({ claimed: false, completed: false, frozen: false, announce: false });
		expect(await registrationCount(app.appId, learnerId)).toBe(2);
		expect(await jobRow(erasure.jobId)).toMatchObject({ cursor: 1, registrationsAffected: 1 });
		await drain(erasure);
		expect(await registrationCount(app.appId, learnerId)).toBe(0);
		expect((await getJob(app.auth, erasure.jobId)).registrationsAffected).toBe(3);
	});

	it("delete an application's chunk once, counted once, when two deliveries race for it", async () => {
		const app = await createApp();
		await learnerWith(app, { id: uniqueValue("learner") }, 3);
		const deletion = await acceptApplicationDeletion(app.appId);
		const snapshot = await jobRow(deletion.jobId);

		const now = new Date().toISOString();
		const shard = await shardOf(app.appId);
		const winner = await runApplicationDeletionChunk(shard, snapshot, crypto.randomUUID(), ONE_REGISTRATION, now);
		const loser = await runApplicationDeletionChunk(shard, snapshot, crypto.randomUUID(), ONE_REGISTRATION, now);

		expect(winner).toEqual({ claimed: true, completed: false, frozen: false, announce: false });
		expect(loser).toEqual({ claimed: false, completed: false, frozen: false, announce: false });
		const left = await shard.prepare("SELECT count(*) AS n FROM registrations WHERE app_id = ?1").bind(app.appId).first<{ n: number }>();
		expect(left?.n).toBe(2);
		await drain(deletion);
		expect(await getJob(MANAGEMENT, deletion.jobId)).toMatchObject({ status: "completed", registrationsAffected: 3 });
	});

	it("change nothing when delivered after the learner's erasure completed, even to a new learner of that id", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await learnerWith(app, { id: learnerId, email: "start@example.com" }, 2);
		const update = await acceptUpdate(app, { id: learnerId, email: "stale@example.com", firstName: "Stale" });
		const erasure = await acceptErasure(app, learnerId, await realmUser("owner"));
		await drain(erasure);
		const fresh = await enrol(app, { id: learnerId, email: "fresh@example.com" });

		await deliverInOrder(update, update);

		expect(await registrationCount(app.appId, learnerId)).toBe(1);
		expect(await learnerOn(app, fresh)).toEqual({ id: learnerId, email: "fresh@example.com" });
		await completedJob(app.auth, update, { registrationsAffected: 0, message: "Cancelled: the learner's data was erased" });
	});

	it("leave a registration created after the update was accepted with its own details", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const [existing] = await learnerWith(app, { id: learnerId, email: "old@example.com" }, 1);
		const update = await acceptUpdate(app, { id: learnerId, email: "new@example.com", firstName: "New" });
		const own = { id: learnerId, email: "own@example.com", firstName: "Own", lastName: "Details" };
		const created = await enrol(app, own);

		await deliverInOrder(update);

		expect(await learnerOn(app, existing ?? "")).toEqual({ id: learnerId, email: "new@example.com", firstName: "New" });
		expect(await learnerOn(app, created)).toEqual(own);

		const later = await acceptUpdate(app, { id: learnerId, lastName: "Later" });
		await deliverInOrder(later);

		expect(await learnerOn(app, created)).toEqual({ ...own, lastName: "Later" });
	});
});
