import { describe, expect, it } from "vitest";
import { getJobById, jobHome } from "../../src/db/jobs";
import { CHUNKS_PER_MESSAGE, CHUNK_BOUNDS } from "../../src/jobs/run";
import { call } from "../support/client";
import { completedJob, expectMessage } from "../support/expect";
import { createApp, MANAGEMENT, putTags, realmUser, uniqueValue } from "../support/fixtures";
import { acceptApplicationDeletion, acceptErasure, acceptUpdate, drain } from "../support/queue";
import { registrationCount, seedLearnerRegistrations, shardOf } from "../support/seed";

const REGISTRATIONS = 10_000;

/** Chunks the job ran (its cursor counts them), read on the shard its id names. */
async function chunksRun(jobId: string): Promise<number> {
	const home = jobHome(jobId);
	if (home === null || home === "control") throw new Error(`${jobId} is not an application's job`);
	return (await getJobById(await shardOf(home.appId), jobId))?.cursor ?? 0;
}

describe("jobs at scale", () => {
	it(
		`update and then erase a learner with ${REGISTRATIONS} registrations, chunk by chunk`,
		async () => {
			const app = await createApp();
			const learnerId = uniqueValue("learner");
			await seedLearnerRegistrations(app.appId, learnerId, REGISTRATIONS, "scale");
			const learnerTags = ["scale-1", "scale-2", "scale-3"];
			await putTags(app, "learner", learnerId, learnerTags);
			expect(await registrationCount(app.appId, learnerId)).toBe(REGISTRATIONS);

			const details = { id: learnerId, email: "after@example.com", firstName: "After", lastName: "Update" };
			const update = await acceptUpdate(app, details);
			let started = performance.now();
			const updateMessages = await drain(update);
			const updateMs = Math.round(performance.now() - started);
			console.log(`update ${REGISTRATIONS} registrations: ${updateMs} ms, ${updateMessages} messages`);

			await completedJob(app.auth, update, { registrationsAffected: REGISTRATIONS });
			const updated = await (await shardOf(app.appId)).prepare(
				`SELECT count(*) AS n FROM registrations WHERE app_id = ?1 AND learner_id = ?2
				   AND learner_email = 'after@example.com' AND learner_first_name = 'After' AND learner_last_name = 'Update'`,
			)
				.bind(app.appId, learnerId)
				.first<{ n: number }>();
			expect(updated?.n).toBe(REGISTRATIONS);
			// Bounded work: chunks of CHUNK_BOUNDS.registrations rows, at most CHUNKS_PER_MESSAGE of them per message.
			const updateChunks = await chunksRun(update.jobId);
			expect(updateChunks).toBeGreaterThanOrEqual(REGISTRATIONS / CHUNK_BOUNDS.registrations);
			expect(updateMessages).toBe(Math.ceil(updateChunks / CHUNKS_PER_MESSAGE));

			const erasure = await acceptErasure(app, learnerId, await realmUser("admin"));
			started = performance.now();
			const erasureMessages = await drain(erasure);
			const erasureMs = Math.round(performance.now() - started);
			console.log(`erase ${REGISTRATIONS} registrations: ${erasureMs} ms, ${erasureMessages} messages`);

			await completedJob(app.auth, erasure, {
				registrationsAffected: REGISTRATIONS,
				tagsRemoved: REGISTRATIONS + learnerTags.length,
			});
			expect(await registrationCount(app.appId, learnerId)).toBe(0);
			const tagsLeft = await (await shardOf(app.appId)).prepare("SELECT count(*) AS n FROM registration_tags WHERE app_id = ?1")
				.bind(app.appId)
				.first<{ n: number }>();
			expect(tagsLeft?.n).toBe(0);
			expect(await expectMessage(await call("GET", `/learner/${learnerId}/tags`, { auth: app.auth }), 404)).toBe(
				`Learner [${learnerId}] was not found`,
			);
			const erasureChunks = await chunksRun(erasure.jobId);
			expect(erasureChunks).toBeGreaterThanOrEqual(REGISTRATIONS / CHUNK_BOUNDS.registrations);
			expect(erasureMessages).toBe(Math.ceil(erasureChunks / CHUNKS_PER_MESSAGE));
		},
		300_000,
	);

	it(
		`delete an application holding ${REGISTRATIONS} registrations, chunk by chunk`,
		async () => {
			const app = await createApp();
			const learnerId = uniqueValue("learner");
			await seedLearnerRegistrations(app.appId, learnerId, REGISTRATIONS, "scale");
			const deletion = await acceptApplicationDeletion(app.appId);

			const messages = await drain(deletion);

			await completedJob(MANAGEMENT, deletion, { registrationsAffected: REGISTRATIONS, tagsRemoved: REGISTRATIONS });
			expect(await registrationCount(app.appId, learnerId)).toBe(0);
			const chunks = await chunksRun(deletion.jobId);
			expect(chunks).toBeGreaterThanOrEqual(REGISTRATIONS / CHUNK_BOUNDS.registrations);
			expect(messages).toBe(Math.ceil(chunks / CHUNKS_PER_MESSAGE));
		},
		300_000,
	);
});
