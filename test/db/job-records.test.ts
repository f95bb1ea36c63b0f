import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { markApplicationDeleted, noteDeletionRecorded } from "../../src/db/applications";
import { runUpdateChunk } from "../../src/db/job-chunks";
import { markResent, repairStaleJobs } from "../../src/db/job-sweeps";
import {
	type Job,
	acceptLearnerUpdate,
	getJobById,
	jobHome,
	markJobFailed,
	newJobId,
	recordApplicationDeletion,
} from "../../src/db/jobs";
import { createRegistration } from "../../src/db/registrations";
import { DEFAULT_LIMITS, seedApplication, shardOf } from "../support/seed";

// How a job's record ends (SPEC §11: a job never stays queued or running forever, is not given up while it still
// runs, and an application deletion goes on until the data is gone): the sweeper's re-send count and failure.
// An application's jobs live on its shard, found from the job id.

const MINUTE = 60_000;
const at = (ms: number) => new Date(ms).toISOString();

/** The shard holding a job of an application (its id names the application). */
async function jobDb(jobId: string): Promise<D1Database> {
	const home = jobHome(jobId);
	if (!home || home === "control") throw new Error(`${jobId} is no application's job`);
	return shardOf(home.appId);
}

/** The application's deletion as the route accepts it: marked in the control database, then recorded on its shard. */
async function deleteApplication(appId: string, now: string): Promise<Job | null> {
	expect(await markApplicationDeleted(env.DB, appId, now)).toMatchObject({ appId, deletedAt: now });
	const job = await recordApplicationDeletion(await shardOf(appId), appId, now);
	await noteDeletionRecorded(env.DB, appId, now);
	return job;
}

/** A new application with one learner on two registrations, and an accepted update of that learner. */
async function acceptedUpdate(): Promise<string> {
	const appId = await seedApplication();
	const db = await shardOf(appId);
	const learnerId = `learner-${crypto.randomUUID()}`;
	for (let i = 0; i < 2; i++) {
		const registration = {
			id: `registration-${crypto.randomUUID()}`,
			courseId: "course",
			learner: { id: learnerId },
			xapiRegistrationId: crypto.randomUUID(),
			learnerTags: [],
			registrationTags: [],
			createdAt: at(Date.now()),
		};
		expect(await createRegistration(db, appId, registration, DEFAULT_LIMITS)).toBe(true);
	}
	const jobId = newJobId(appId);
	const acceptance = await acceptLearnerUpdate(
		db,
		{ id: jobId, appId, learnerId, learnerHash: `hash-${jobId}`, payload: { email: "a@example.com" }, createdAt: at(0) },
		DEFAULT_LIMITS,
	);
	expect(acceptance).toEqual({ outcome: "accepted", jobId });
	return jobId;
}

const resendsOf = async (jobId: string) => (await getJobById(await jobDb(jobId), jobId))?.resends;

describe("markResent", () => {
	it("counts a sweep's re-send once, even when the statement is applied twice (a retry after a lost reply)", async () => {
		const jobId = await acceptedUpdate();
		const db = await jobDb(jobId);
		await markResent(db, [jobId], at(10 * MINUTE));
		await markResent(db, [jobId], at(10 * MINUTE));
		expect(await resendsOf(jobId)).toBe(1);
		await markResent(db, [jobId], at(20 * MINUTE));
		expect(await resendsOf(jobId)).toBe(2);
	});
});

describe("repairStaleJobs", () => {
	it("does not give up a job that ran a chunk since its last re-sends", async () => {
		const jobId = await acceptedUpdate();
		const db = await jobDb(jobId);
		for (let sweep = 1; sweep <= 6; sweep++) await markResent(db, [jobId], at(sweep * 10 * MINUTE));
		expect(await resendsOf(jobId)).toBe(6);

		const job = await getJobById(db, jobId);
		if (!job) throw new Error("job not found");
		// At minute 61 a chunk of one registration runs; the worker dies before the second chunk.
		const result = await runUpdateChunk(db, job, crypto.randomUUID(), { registrations: 1, rows: 100 }, at(61 * MINUTE));
		expect(result).toEqual({ claimed: true, completed: false, frozen: false, announce: false });
		expect(await resendsOf(jobId)).toBe(0);

		const repairs = await repairStaleJobs(db, at(80 * MINUTE), at(90 * MINUTE), { maxResends: 6, limit: 100 });
		expect(repairs.stale.map((stale) => stale.id)).toContain(jobId);
		expect((await getJobById(db, jobId))?.status).toBe("running");
	});

	it("gives up a learner job re-sent six times without running", async () => {
		const jobId = await acceptedUpdate();
		const db = await jobDb(jobId);
		for (let sweep = 1; sweep <= 6; sweep++) await markResent(db, [jobId], at(sweep * 10 * MINUTE));
		await repairStaleJobs(db, at(80 * MINUTE), at(90 * MINUTE), { maxResends: 6, limit: 100 });
		const job = await getJobById(db, jobId);
		expect(job?.status).toBe("failed");
		expect(job?.error).toMatch(/^Lost: its message was sent again 6 times without the job being run/);
		expect(job?.payload).toBeNull();
	});
});

describe("markJobFailed", () => {
	it("never fails an application deletion, whatever message asks (deletions go on until the data is gone)", async () => {
		const appId = await seedApplication();
		const deletion = await deleteApplication(appId, at(MINUTE));
		if (!deletion) throw new Error("deletion not accepted");
		const db = await shardOf(appId);
		await markJobFailed(db, deletion.id, "Gave up after 5 attempts", at(2 * MINUTE));
		expect((await getJobById(db, deletion.id))?.status).toBe("queued");
	});

	it("fails a learner job, dropping its learner id and payload", async () => {
		const jobId = await acceptedUpdate();
		const db = await jobDb(jobId);
		await markJobFailed(db, jobId, "Gave up after 5 attempts", at(2 * MINUTE));
		const job = await getJobById(db, jobId);
		expect(job).toMatchObject({ status: "failed", error: "Gave up after 5 attempts", learnerId: null, payload: null });
	});
});

describe("runUpdateChunk", () => {
	it("writes nothing into an application whose deletion was accepted after the update", async () => {
		const jobId = await acceptedUpdate();
		const db = await jobDb(jobId);
		const job = await getJobById(db, jobId);
		if (!job) throw new Error("job not found");
		expect(await deleteApplication(job.appId, at(MINUTE))).not.toBeNull();

		const result = await runUpdateChunk(db, job, crypto.randomUUID(), { registrations: 10, rows: 100 }, at(2 * MINUTE));
		expect(result.claimed).toBe(false);
		const { results } = await db.prepare("SELECT learner_email FROM registrations WHERE app_id = ?1")
			.bind(job.appId)
			.all<{ learner_email: string | null }>();
		expect(results).toEqual([{ learner_email: null }, { learner_email: null }]);
	});
});
