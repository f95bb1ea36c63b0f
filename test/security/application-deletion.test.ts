import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { markApplicationDeleted, noteDeletionRecorded } from "../../src/db/applications";
import { type Job, recordApplicationDeletion } from "../../src/db/jobs";
import { JobMessageSchema } from "../../src/jobs/contract";
import { sweep } from "../../src/jobs/sweeper";
import { call } from "../support/client";
import { completedJob, expectMessage, getJob, jobIdOf } from "../support/expect";
import { appOnShard, createApp, enrol, MANAGEMENT, realmUser, uniqueValue } from "../support/fixtures";
import { objectKeys } from "../support/objects";
import { acceptApplicationDeletion, acceptExport, acceptUpdate, callCapturing, deliver, drain, sentDuring } from "../support/queue";
import { SHARDS, shardOf } from "../support/seed";

// SPEC §11: a failed application deletion is retried until the data is gone, and nothing is written into an
// application after its deletion was accepted, whatever any isolate's credential cache still believes. A
// deletion has two halves, the control database's (the application marked deleted, its credentials gone) and
// its shard's (the job recorded, the data fenced off): one the request left half-done is finished by the sweeper.

/** Rows of the application's learner data on its shard, over every table that holds some. */
async function learnerRows(appId: string): Promise<number> {
	const row = await (await shardOf(appId)).prepare(
		`SELECT (SELECT count(*) FROM registrations WHERE app_id = ?1) + (SELECT count(*) FROM learner_tags WHERE app_id = ?1)
		   + (SELECT count(*) FROM registration_tags WHERE app_id = ?1) + (SELECT count(*) FROM learner_tag_counts WHERE app_id = ?1)
		   AS n`,
	)
		.bind(appId)
		.first<{ n: number }>();
	return row?.n ?? -1;
}

/**
 * An application's deletion as another isolate accepts it (the steps of DELETE /appManagement/applications/{id}):
 * the control database marks it deleted, then its shard records the job, then the control database notes that.
 * This isolate is not told: its credential cache still trusts the application's credentials.
 */
async function deleteElsewhere(appId: string): Promise<Job | null> {
	const now = new Date().toISOString();
	const placement = await markApplicationDeleted(env.DB, appId, now);
	if (placement === null || placement === "moving") throw new Error(`application ${appId} could not be marked deleted: ${placement}`);
	const job = await recordApplicationDeletion(await shardOf(appId), appId, now);
	await noteDeletionRecorded(env.DB, appId, now);
	return job;
}

/** The deletion jobs the application's shard holds (one at most, whatever happens). */
async function deletionJobs(appId: string): Promise<{ id: string; status: string }[]> {
	const { results } = await (await shardOf(appId)).prepare("SELECT id, status FROM jobs WHERE app_id = ?1 AND type = 'deleteApplication'")
		.bind(appId)
		.all<{ id: string; status: string }>();
	return results;
}

describe("a failed application deletion", () => {
	it("is not given up when its message's retries are spent: asking again runs it until the data is gone", async () => {
		const app = await createApp();
		await enrol(app, { id: uniqueValue("learner"), email: "gone@example.com" }, { learnerTags: ["t"] });
		const message = await acceptApplicationDeletion(app.appId);

		// Every retry failed: the message reaches the dead-letter queue.
		const dead = await deliver([message], { queue: env.JOBS_DEAD_LETTER_QUEUE });
		expect(dead.result.explicitAcks).toEqual(dead.ids);
		const parked = await getJob(MANAGEMENT, message.jobId);
		expect(parked.status).not.toBe("failed");
		// The dead-letter consumer notes why and leaves it running for the sweeper (docs/jobs-and-webhooks.md,
		// Background jobs).
		const row = await (await shardOf(app.appId)).prepare("SELECT status, error FROM jobs WHERE id = ?1").bind(message.jobId).first();
		expect(row).toEqual({ status: "queued", error: expect.stringContaining("Retries spent; the sweeper sends it again") });

		const again = await callCapturing("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		expect(again.response.status).toBe(204);
		expect(jobIdOf(again.response)).toBe(message.jobId);
		expect(again.sent).toEqual([{ body: message }]);
		await drain(message);

		// Completed, with no word of the attempts that failed before.
		await completedJob(MANAGEMENT, message, { registrationsAffected: 1, tagsRemoved: 1 });
		expect(await learnerRows(app.appId)).toBe(0);
	});

	it("runs again when asked again, even if an earlier version marked it failed", async () => {
		const app = await createApp();
		await enrol(app, { id: uniqueValue("learner") }, { registrationTags: ["r"] });
		const message = await acceptApplicationDeletion(app.appId);
		await (await shardOf(app.appId)).prepare("UPDATE jobs SET status = 'failed', error = 'Gave up after repeated failures' WHERE id = ?1")
			.bind(message.jobId)
			.run();

		const again = await callCapturing("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		expect(again.response.status).toBe(204);
		await drain(JobMessageSchema.parse(again.sent[0]?.body));

		expect(await getJob(MANAGEMENT, message.jobId)).toMatchObject({ id: message.jobId, status: "completed" });
		expect(await learnerRows(app.appId)).toBe(0);
	});
});

describe("writes into a deleted application", () => {
	it("are refused once its deletion completed, even through a credential another isolate still trusts", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const registrationId = await enrol(app, { id: learnerId });
		// This isolate now trusts the credential for 30 s.
		expect((await call("GET", "/ping", { auth: app.auth })).status).toBe(200);
		// Another isolate deletes the application; this one is not told.
		const job = await deleteElsewhere(app.appId);
		expect(job).not.toBeNull();
		await drain({ type: "deleteApplication", jobId: job?.id ?? "" });
		expect(await learnerRows(app.appId)).toBe(0);

		const admin = await realmUser("admin");
		const learner = encodeURIComponent(learnerId);
		const writes: [string, string, unknown?][] = [
			["POST", "/registrations", { courseId: "c", registrationId: uniqueValue("late"), learner: { id: learnerId, email: "late@example.com" } }],
			["PUT", "/learner/tags", { ids: [learnerId], tags: ["late"] }],
			["PUT", `/learner/${learner}/tags`, { tags: ["late"] }],
			["DELETE", `/learner/${learner}/tags`, { tags: ["late"] }],
			["POST", `/learner/${learner}/updateInfo`, { id: learnerId, email: "late@example.com" }],
			["POST", `/learner/${learner}/delete-information?userEmail=${encodeURIComponent(admin)}`],
			["POST", `/learners/delete-information?userEmail=${encodeURIComponent(admin)}`, { ids: [learnerId] }],
			["DELETE", `/learner/${learner}/suppression`],
			["PUT", "/registrations/tags", { ids: [registrationId], tags: ["late"] }],
			["PUT", `/registrations/${encodeURIComponent(registrationId)}/tags`, { tags: ["late"] }],
			["DELETE", `/registrations/${encodeURIComponent(registrationId)}`],
		];
		for (const [method, path, body] of writes) {
			const response = await call(method, path, { auth: app.auth, body: body as Record<string, unknown> | undefined });
			expect(await expectMessage(response, 401), `${method} ${path}`).toBe("Invalid application id or secret key");
		}
		expect(await learnerRows(app.appId)).toBe(0);
		const { n } = (await (await shardOf(app.appId)).prepare("SELECT count(*) AS n FROM jobs WHERE app_id = ?1").bind(app.appId).first<{ n: number }>()) ?? {};
		expect(n).toBe(1);
	});

	it("are refused from the moment its deletion is accepted, before the job has run", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		expect((await call("GET", "/ping", { auth: app.auth })).status).toBe(200);
		await deleteElsewhere(app.appId);

		const response = await call("PUT", `/learner/${encodeURIComponent(learnerId)}/tags`, { auth: app.auth, body: { tags: ["late"] } });
		expect(await expectMessage(response, 401)).toBe("Invalid application id or secret key");
		const { n } = (await (await shardOf(app.appId)).prepare("SELECT count(*) AS n FROM learner_tags WHERE app_id = ?1").bind(app.appId).first<{ n: number }>()) ?? {};
		expect(n).toBe(0);
	});
});

describe("a deletion the control database accepted but its shard never recorded", () => {
	it("is finished by the sweeper: the job is recorded on the shard and the application's data goes", async () => {
		const app = await createApp();
		await enrol(app, { id: uniqueValue("learner"), email: "half-deleted@example.com" }, { learnerTags: ["t"] });
		// The request failed between the two databases: the control database marked the application deleted, the
		// shard never heard of it.
		const placement = await markApplicationDeleted(env.DB, app.appId, new Date().toISOString());
		expect(placement).toMatchObject({ appId: app.appId, deletedAt: expect.any(String) });
		// Its credentials went with the control database's half (an isolate that cached one may trust it a while yet).
		const credentials = await env.DB.prepare("SELECT count(*) AS n FROM credentials WHERE app_id = ?1").bind(app.appId).first<{ n: number }>();
		expect(credentials?.n).toBe(0);
		expect(await deletionJobs(app.appId)).toEqual([]);
		expect(await learnerRows(app.appId)).toBe(3);

		// The sweep past the staleness window records the job on the shard and sends its message.
		const { result: report, sent } = await sentDuring(() => sweep(env, Date.now() + 11 * 60_000));
		expect(report.deletionsRecorded).toBeGreaterThanOrEqual(1);
		const recorded = await deletionJobs(app.appId);
		expect(recorded).toEqual([{ id: expect.stringMatching(new RegExp(`^${app.appId}\\.`)), status: "queued" }]);
		const jobId = recorded[0]?.id ?? "";
		const message = { type: "deleteApplication" as const, jobId };
		expect(sent.filter((entry) => JSON.stringify(entry.body).includes(app.appId))).toEqual([{ body: message }]);

		// The data goes once the job has run, as the queue would run it.
		await drain(message);
		await completedJob(MANAGEMENT, message, { registrationsAffected: 1, tagsRemoved: 1 });
		expect(await learnerRows(app.appId)).toBe(0);

		// Finished: a later sweep records no second job and sends nothing for it.
		const later = await sentDuring(() => sweep(env, Date.now() + 22 * 60_000));
		expect(later.sent.filter((entry) => JSON.stringify(entry.body).includes(app.appId))).toEqual([]);
		expect(await deletionJobs(app.appId)).toEqual([{ id: jobId, status: "completed" }]);
	});
});

describe("exports of an application whose deletion was accepted", () => {
	it("writes nothing: an export delivered after the acceptance claims no chunk, puts nothing in R2 and does not complete, as an update", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId, email: "fenced@example.com" }, { registrationTags: ["fenced"] });
		const exported = await acceptExport(app, learnerId, admin);
		const update = await acceptUpdate(app, { id: learnerId, email: "late@example.com" });
		await acceptApplicationDeletion(app.appId);

		// Both messages arrive before the deletion's.
		await drain(exported);
		await drain(update);
		const shard = await shardOf(app.appId);
		const row = (id: string) => shard.prepare("SELECT status, cursor, started_at FROM jobs WHERE id = ?1").bind(id).first();
		const updateRow = await row(update.jobId);
		expect(updateRow).toEqual({ status: "queued", cursor: 0, started_at: null });
		expect(await row(exported.jobId)).toEqual(updateRow);
		expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([]);
	});

	it("gives no document to the management credentials once the deletion was accepted, before its job has run", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId, email: "fenced-download@example.com" });
		const exported = await acceptExport(app, learnerId, admin);
		await drain(exported);
		expect((await call("GET", `/jobs/${exported.jobId}/export`, { auth: MANAGEMENT })).status).toBe(200);

		const deletion = await acceptApplicationDeletion(app.appId);
		expect(await expectMessage(await call("GET", `/jobs/${exported.jobId}/export`, { auth: MANAGEMENT }), 404)).toMatch(/is gone/);
		await drain(deletion);
		await sweep(env, Date.now() + 11 * 60_000);
		expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([]);
	});

	it("gives no document to the management credentials once the control database accepted the deletion, before its shard half ran", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId, email: "half-deleted@example.com" });
		const exported = await acceptExport(app, learnerId, admin);
		await drain(exported);
		// The deletion's first half (the control database), as when its request failed before the shard's: the
		// sweeper finishes it later.
		await env.DB.prepare("UPDATE applications SET deleted_at = ?2 WHERE id = ?1").bind(app.appId, new Date().toISOString()).run();
		const download = await call("GET", `/jobs/${exported.jobId}/export`, { auth: MANAGEMENT });
		expect(await expectMessage(download, 404)).not.toContain("half-deleted@example.com");
	});

	it("leaves a realm-wide export without a document, naming the application, when its deletion was accepted before its export ran", async () => {
		const kept = await appOnShard(SHARDS[0]?.name ?? "");
		const deleted = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("realm-learner");
		await enrol(kept, { id: learnerId, email: "kept@example.com" });
		await enrol(deleted, { id: learnerId, email: "deleted-app@example.com" });
		const { response, sent } = await callCapturing(
			"POST",
			`/appManagement/learners/${encodeURIComponent(learnerId)}/export?userEmail=${encodeURIComponent(admin)}`,
			{ auth: MANAGEMENT },
		);
		expect(response.status).toBe(204);
		const realmJobId = jobIdOf(response);
		await acceptApplicationDeletion(deleted.appId);
		// The realm job ends in a few messages; one that keeps waiting for the deleted application never would.
		for (const message of sent) await drain(JobMessageSchema.parse(message.body), { limit: 50 });

		const realm = await getJob(MANAGEMENT, realmJobId);
		expect(realm.status).toBe("completed");
		expect(realm.message).toBe(
			`The deletion of application ${deleted.appId} was accepted. The realm's document (whole or not at all) cannot be made`,
		);
		const download = await call("GET", `/jobs/${realmJobId}/export`, { auth: MANAGEMENT });
		expect(await expectMessage(download, 404)).not.toContain("deleted-app@example.com");
	});

	it("answers 404 for a completed realm-wide export once one of its applications' deletion was accepted (whole or not at all)", async () => {
		const kept = await appOnShard(SHARDS[0]?.name ?? "");
		const deleted = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("realm-learner");
		await enrol(kept, { id: learnerId, email: "kept@example.com" });
		await enrol(deleted, { id: learnerId, email: "deleted-later@example.com" });
		const { response, sent } = await callCapturing(
			"POST",
			`/appManagement/learners/${encodeURIComponent(learnerId)}/export?userEmail=${encodeURIComponent(admin)}`,
			{ auth: MANAGEMENT },
		);
		const realmJobId = jobIdOf(response);
		for (const message of sent) await drain(JobMessageSchema.parse(message.body));
		expect((await call("GET", `/jobs/${realmJobId}/export`, { auth: MANAGEMENT })).status).toBe(200);

		await acceptApplicationDeletion(deleted.appId);
		const download = await call("GET", `/jobs/${realmJobId}/export`, { auth: MANAGEMENT });
		expect(await expectMessage(download, 404)).toContain(deleted.appId);
	});
});
