import { describe, expect, it } from "vitest";
import type { JobMessage } from "../../src/jobs/contract";
import { runJob } from "../../src/jobs/run";
import { call } from "../support/client";
import { getJob, jobIdOf } from "../support/expect";
import { createApp, enrol, realmUser, type TestApp, uniqueValue } from "../support/fixtures";
import { acceptErasure, acceptUpdate, drain, sentDuring } from "../support/queue";
import { shardOf } from "../support/seed";

/**
 * GET /jobs/{jobId} `progress` (not in SCORM Cloud): how far an unfinished update or erasure has got, in the
 * learner's registrations (a bulk erasure: its learners), so a client or the console can draw a bar from counts.
 */

/** Runs one chunk of the job, visiting at most one registration. */
async function oneStep(app: TestApp, message: JobMessage): Promise<void> {
	await runJob(await shardOf(app.appId), message, { bounds: { registrations: 1, rows: 5000 }, chunks: 1 });
}

async function learnerWith(app: TestApp, registrations: number): Promise<string> {
	const learnerId = uniqueValue("progress");
	for (let i = 0; i < registrations; i++) await enrol(app, learnerId);
	return learnerId;
}

describe("a job's progress", () => {
	it("counts an erasure's registrations erased of all the learner had, and is gone once it completes", async () => {
		const app = await createApp();
		const learnerId = await learnerWith(app, 3);
		const erasure = await acceptErasure(app, learnerId, await realmUser("admin"));
		expect((await getJob(app.auth, erasure.jobId)).progress).toEqual({ done: 0, total: 3, unit: "registrations" });
		await oneStep(app, erasure);
		expect((await getJob(app.auth, erasure.jobId)).progress).toEqual({ done: 1, total: 3, unit: "registrations" });
		await oneStep(app, erasure);
		expect((await getJob(app.auth, erasure.jobId)).progress).toEqual({ done: 2, total: 3, unit: "registrations" });
		await drain(erasure);
		const done = await getJob(app.auth, erasure.jobId);
		expect(done.status).toBe("completed");
		expect(done).not.toHaveProperty("progress");
	});

	it("counts an update's registrations gone through of all the learner has", async () => {
		const app = await createApp();
		const learnerId = await learnerWith(app, 3);
		const update = await acceptUpdate(app, { id: learnerId, firstName: "Progressing" });
		expect((await getJob(app.auth, update.jobId)).progress).toEqual({ done: 0, total: 3, unit: "registrations" });
		await oneStep(app, update);
		expect((await getJob(app.auth, update.jobId)).progress).toEqual({ done: 1, total: 3, unit: "registrations" });
	});

	it("counts a bulk erasure's learners finished of all it names", async () => {
		const app = await createApp();
		const ids = [await learnerWith(app, 1), await learnerWith(app, 1)];
		const admin = await realmUser("admin");
		const { result, sent } = await sentDuring(() =>
			call("POST", `/learners/delete-information?userEmail=${encodeURIComponent(admin)}`, { auth: app.auth, body: { ids } }),
		);
		const jobId = jobIdOf(result, app.appId);
		expect((await getJob(app.auth, jobId)).progress).toEqual({ done: 0, total: 2, unit: "learners" });
		// One chunk: the first learner's only registration goes, and with it that learner's erasure completes.
		await oneStep(app, sent[0]?.body as JobMessage);
		expect((await getJob(app.auth, jobId)).progress).toEqual({ done: 1, total: 2, unit: "learners" });
	});
});
