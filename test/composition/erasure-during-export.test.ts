import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type JobMessage, JobMessageSchema } from "../../src/jobs/contract";
import { exportPlan, recordRealmExport } from "../../src/db/exports";
import { claimStep, getJobById } from "../../src/db/jobs";
import { learnerHash } from "../../src/jobs/contract";
import { fanOutExports } from "../../src/jobs/realm-export";
import { JOB_PACE } from "../../src/jobs/run";
import { apiRequest, call, envWith, fetchWithBindings } from "../support/client";
import { expectMessage, getJob, jobIdOf } from "../support/expect";
import { MANAGEMENT, type TestApp, appOnShard, createApp, enrol, realmUser, uniqueValue } from "../support/fixtures";
import { objectKeys, objectsNaming } from "../support/objects";
import { acceptErasure, acceptExport, deliver, drain, sentDuring } from "../support/queue";
import { SHARDS, seedLearnerRegistrations, shardOf } from "../support/seed";

/**
 * An erasure that lands while an export of the same learner is still running (SPEC §12; src/db/storage-schema.md,
 * "Exports (R2)": an erasure cancels the learner's unfinished exports and deletes their objects). The queue is driven
 * by hand, one chunk per message, so the two jobs' chunks interleave in every order that matters: whatever the order,
 * once the erasure has completed no object of the export is left in either bucket, the export is not reported as a
 * completed export with a document, and GET /jobs/{jobId}/export answers what the contract says of an erased
 * learner's export (404, "gone").
 */

const chunks = { ...JOB_PACE };
beforeEach(() => {
	JOB_PACE.chunksPerMessage = 1;
});
afterEach(() => {
	Object.assign(JOB_PACE, chunks);
});

/** Delivers one message (one chunk): answers the continuations it sent, kept from the queue. */
async function step(message: JobMessage): Promise<JobMessage[]> {
	const { result, sent } = await sentDuring(() => deliver([message]));
	expect(result.result.explicitAcks).toEqual(result.ids);
	return sent.map((next) => JobMessageSchema.parse(next.body));
}

/** Runs `chunks` chunks of a job, one message each: answers the message that carries it on (null once it ended). */
async function run(message: JobMessage, count: number): Promise<JobMessage | null> {
	let next: JobMessage | null = message;
	for (let i = 0; i < count && next; i++) next = (await step(next))[0] ?? null;
	return next;
}

const CANCELLED = "Cancelled: the learner's data was erased";

/** A learner with 1 200 registrations (a tag each) on an application of the shard: its export takes 7 chunks. */
async function learnerOn(shard: string): Promise<{ app: TestApp; learnerId: string; admin: string }> {
	const app = await appOnShard(shard);
	const learnerId = uniqueValue("erased-while-exported");
	await seedLearnerRegistrations(app.appId, learnerId, 1200, learnerId);
	return { app, learnerId, admin: await realmUser("admin") };
}

/** What must hold once the erasure has completed, whatever the order the two jobs ran in. */
async function expectExportGone(app: TestApp, learnerId: string, exportId: string): Promise<void> {
	expect(await objectKeys(`exports/${exportId}/`)).toEqual([]);
	expect(await objectsNaming([learnerId, "before@example.com"])).toEqual([]);
	// Reported as cancelled by the erasure, never as an export whose document can be fetched.
	expect(await getJob(app.auth, exportId)).toMatchObject({ type: "exportLearnerData", status: "completed", message: CANCELLED });
	expect(await expectMessage(await call("GET", `/jobs/${exportId}/export`, { auth: app.auth }), 404)).toBe(
		`The document of export [${exportId}] is gone: its learner was erased, or its retention passed`,
	);
	const job = await getJobById(await shardOf(app.appId), exportId);
	expect(job?.learnerId).toBeNull();
	expect(job && exportPlan(job).purged).toBe(true);
	// The learner is gone: a new export finds no one.
	const again = await call("POST", `/learner/${encodeURIComponent(learnerId)}/export?userEmail=${encodeURIComponent("x@example.com")}`, { auth: app.auth });
	expect(again.status).toBe(404);
}

/**
 * A learner with two registrations (a registration tag each, and `learnerTags` if given), an export of it queued and
 * then an erasure accepted, neither run yet.
 */
async function erasureBehindAnExport(label: string, learnerTags: string[] = []) {
	const app = await appOnShard(SHARDS[0]?.name ?? "");
	const admin = await realmUser("admin");
	const learnerId = uniqueValue(label);
	await seedLearnerRegistrations(app.appId, learnerId, 2, learnerId);
	if (learnerTags.length > 0) {
		expect((await call("PUT", `/learner/${encodeURIComponent(learnerId)}/tags`, { auth: app.auth, body: { tags: learnerTags } })).status).toBe(204);
	}
	await acceptExport(app, learnerId, admin);
	return { app, admin, learnerId, erasure: await acceptErasure(app, learnerId, admin) };
}

/**
 * The erasure's first chunk: it deletes the registrations and cancels the export, but completes (taking the learner's
 * own tags) only in a later chunk, once the export's objects are gone. Answers the message that carries it on.
 */
async function firstChunk(erasure: JobMessage): Promise<JobMessage> {
	const next = await run(erasure, 1);
	expect(next).not.toBeNull();
	return next as JobMessage;
}

describe("an erasure landing while an export of the same learner runs", () => {
	for (const shard of SHARDS) {
		const bucket = shard.region === "eu" ? "EXPORTS_EU" : "EXPORTS";

		it(`cancels it between chunks and leaves none of its parts in ${bucket} (${shard.name})`, async () => {
			const { app, learnerId, admin } = await learnerOn(shard.name);
			const exported = await acceptExport(app, learnerId, admin);
			// Two chunks of the export: two parts in the region's bucket.
			const exportNext = await run(exported, 2);
			expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([1, 2].map((n) => `${bucket}:exports/${exported.jobId}/part-0000000${n}.json`));
			expect(exportNext).not.toBeNull();

			const erasure = await acceptErasure(app, learnerId, admin);
			// The erasure's first chunk, then the export's next, then the rest of both.
			const erasureNext = await run(erasure, 1);
			if (exportNext) await drain(exportNext);
			if (erasureNext) await drain(erasureNext);

			expect(await getJob(app.auth, erasure.jobId)).toMatchObject({ status: "completed", registrationsAffected: 1200 });
			await expectExportGone(app, learnerId, exported.jobId);
		});
	}

	for (const [gathered, left] of [
		[4, "a gathering chunk"],
		[6, "only the last chunk, which stores the document,"],
	] as const) {
		it(`does not let the export go on once the erasure is accepted, even when its chunks run first (${left} left)`, async () => {
			const { app, learnerId, admin } = await learnerOn(SHARDS[0]?.name ?? "");
			const exported = await acceptExport(app, learnerId, admin);
			// Three chunks of registrations, one finding none, one of jobs, one finding none, then the last.
			const next = await run(exported, gathered);
			expect(next).not.toBeNull();
			expect(await objectKeys(`exports/${exported.jobId}/`)).toHaveLength(gathered === 4 ? 3 : 4);

			const erasure = await acceptErasure(app, learnerId, admin);
			// One chunk of the export runs before any of the erasure's: it cancels the export, and deletes what it wrote.
			expect(next && (await step(next))).toEqual([]);
			expect(await getJob(app.auth, exported.jobId)).toMatchObject({ status: "completed", message: CANCELLED });
			expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([]);
			expect(await expectMessage(await call("GET", `/jobs/${exported.jobId}/export`, { auth: app.auth }), 404)).toMatch(/is gone/);

			await drain(erasure);
			expect(await getJob(app.auth, erasure.jobId)).toMatchObject({ status: "completed", registrationsAffected: 1200 });
			await expectExportGone(app, learnerId, exported.jobId);
		});
	}

	it("answers a tag removal between the erasure's chunks 404 and removes nothing: the receipt counts every tag the learner had", async () => {
		// Between the erasure's first chunk and its completion the learner does not exist.
		const { app, learnerId, erasure } = await erasureBehindAnExport("tags-between-chunks", ["a", "b"]);
		const learnerTags = `/learner/${encodeURIComponent(learnerId)}/tags`;
		const next = await firstChunk(erasure);
		expect(await getJob(app.auth, erasure.jobId)).toMatchObject({ status: "running", registrationsAffected: 2 });

		expect(await expectMessage(await call("DELETE", learnerTags, { auth: app.auth, body: { tags: ["a"] } }), 404)).toMatch(/not found/);
		expect((await call("PUT", learnerTags, { auth: app.auth, body: { tags: ["c"] } })).status).toBe(404);
		expect((await call("GET", learnerTags, { auth: app.auth })).status).toBe(404);
		const held = await (await shardOf(app.appId))
			.prepare("SELECT tag FROM learner_tags WHERE app_id = ?1 AND learner_id = ?2 ORDER BY tag")
			.bind(app.appId, learnerId)
			.all<{ tag: string }>();
		expect(held.results.map((row) => row.tag)).toEqual(["a", "b"]);

		await drain(next);
		// Two registration tags and the learner's two.
		expect(await getJob(app.auth, erasure.jobId)).toMatchObject({ status: "completed", registrationsAffected: 2, tagsRemoved: 4 });
		const receipt = await call("GET", `/jobs/${erasure.jobId}/receipt`, { auth: app.auth });
		expect(receipt.status).toBe(200);
		expect(((await receipt.json()) as { receipt: unknown }).receipt).toMatchObject({ registrationsDeleted: 2, tagsRemoved: 4 });
	});

	it("lets a bulk erasure asked between the erasure's chunks join it, as the single route does, and keeps the suppression it asks for", async () => {
		const { app, admin, learnerId, erasure } = await erasureBehindAnExport("bulk-between-chunks");
		const next = await firstChunk(erasure);

		// The learner's registrations are gone, its erasure pending: a single erasure would join it (204, the same job).
		const bulk = await call("POST", `/learners/delete-information?userEmail=${encodeURIComponent(admin)}&suppress=true`, {
			auth: app.auth,
			body: { ids: [learnerId] },
		});
		expect(bulk.status).toBe(204);
		const bulkId = jobIdOf(bulk, app.appId);
		await drain(next);
		await drain({ type: "deleteLearnersData", jobId: bulkId });

		expect(await getJob(app.auth, bulkId)).toMatchObject({ status: "completed", registrationsAffected: 2 });
		const receipt = await call("GET", `/jobs/${bulkId}/receipt`, { auth: app.auth });
		expect(receipt.status).toBe(200);
		expect(((await receipt.json()) as { receipt: { erasureJobIds?: string[] } }).receipt.erasureJobIds).toEqual([erasure.jobId]);
		// The suppression the bulk asked for holds: the learner cannot be registered again.
		const again = await call("POST", "/registrations", {
			auth: app.auth,
			body: { courseId: "c", learner: { id: learnerId }, registrationId: uniqueValue("after-suppression") },
		});
		expect(again.status).toBe(409);
	});

	it("refuses a registration of the learner while its erasure is pending (409 naming the job, nothing written), and takes it once the erasure completed", async () => {
		// Acknowledged, it would be deleted by the erasure's next chunk: an acknowledged write must stay.
		const { app, learnerId, erasure } = await erasureBehindAnExport("registered-while-erased");
		const register = (registrationId: string) =>
			call("POST", "/registrations", { auth: app.auth, body: { courseId: "c", learner: { id: learnerId }, registrationId } });
		const refused = `Learner [${learnerId}] is being erased (job [${erasure.jobId}], GET /jobs/${erasure.jobId}): it cannot be registered until that erasure completes`;

		// Queued, then with its registrations deleted and its completion waiting on the export's objects.
		const before = uniqueValue("before-any-chunk");
		expect(await expectMessage(await register(before), 409)).toBe(refused);
		const next = await firstChunk(erasure);
		const between = uniqueValue("between-chunks");
		expect(await expectMessage(await register(between), 409)).toBe(refused);
		for (const id of [before, between]) expect((await call("GET", `/registrations/${id}`, { auth: app.auth })).status).toBe(404);

		await drain(next);
		expect(await getJob(app.auth, erasure.jobId)).toMatchObject({ status: "completed", registrationsAffected: 2 });
		const after = uniqueValue("after-the-erasure");
		expect((await register(after)).status).toBe(204);
		expect((await call("GET", `/registrations/${after}`, { auth: app.auth })).status).toBe(200);
	});

	it("cancels it when the erasure is accepted while its last chunk makes the document: never completed, nothing left", async () => {
		const { app, learnerId, admin } = await learnerOn(SHARDS[0]?.name ?? "");
		const exported = await acceptExport(app, learnerId, admin);
		const last = await run(exported, 6);
		// The erasure is accepted the moment the document is stored, before the chunk completes the export.
		let accepted: Response | null = null;
		const erasurePath = `/learner/${encodeURIComponent(learnerId)}/delete-information?userEmail=${encodeURIComponent(admin)}`;
		const watched = new Proxy(env.EXPORTS, {
			get(target, property) {
				const value = Reflect.get(target, property) as unknown;
				if (property !== "put" || typeof value !== "function") return typeof value === "function" ? value.bind(target) : value;
				return async (...args: Parameters<R2Bucket["put"]>) => {
					const stored = await target.put(...args);
					if (String(args[0]).endsWith("/document.json")) accepted = await fetchWithBindings(apiRequest("POST", erasurePath, { auth: app.auth }), {});
					return stored;
				};
			},
		});
		const { result, sent } = await sentDuring(() => deliver(last ? [last] : [], { env: envWith({ EXPORTS: watched }) }));
		expect(result.result.explicitAcks).toEqual(result.ids);
		expect((accepted as Response | null)?.status).toBe(204);
		expect(await getJob(app.auth, exported.jobId)).toMatchObject({ status: "completed", message: CANCELLED });
		expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([]);
		expect((await call("GET", `/jobs/${exported.jobId}/export`, { auth: app.auth })).status).toBe(404);

		const erasure = sent.map((message) => JobMessageSchema.parse(message.body)).find((message) => message.type === "deleteAllLearnerData");
		expect(erasure).toBeDefined();
		if (erasure) await drain(erasure);
		await expectExportGone(app, learnerId, exported.jobId);
	});

	it("cancels a realm-wide export whose application's export it cancelled: the realm job says so and has no document", async () => {
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("realm-erased-while-exported");
		const eu = SHARDS.find((shard) => shard.region === "eu")?.name ?? "";
		const holders = [await appOnShard(SHARDS[0]?.name ?? ""), await appOnShard(eu)];
		for (const app of holders) await seedLearnerRegistrations(app.appId, learnerId, 600, `${learnerId}-${app.appId}`);
		const { result: response, sent } = await sentDuring(() =>
			call("POST", `/appManagement/learners/${encodeURIComponent(learnerId)}/export?userEmail=${encodeURIComponent(admin)}`, { auth: MANAGEMENT }),
		);
		expect(response.status).toBe(204);
		const realmJobId = jobIdOf(response);
		const children = sent.map((message) => JobMessageSchema.parse(message.body)).filter((message) => message.jobId !== realmJobId);
		expect(children).toHaveLength(2);
		// One chunk of each application's export, then the learner is erased in the EU application only.
		const next: (JobMessage | null)[] = [];
		for (const child of children) next.push(await run(child, 1));
		await drain(await acceptErasure(holders[1] as TestApp, learnerId, admin));
		for (const message of next) if (message) await drain(message);
		await drain({ type: "exportLearnerData", jobId: realmJobId });

		const realm = await getJob(MANAGEMENT, realmJobId);
		expect(realm.status).toBe("completed");
		expect(realm.message).toMatch(/^Cancelled: the learner's data was erased in application /);
		expect(realm.message).toContain(holders[1]?.appId);
		expect((await call("GET", `/jobs/${realmJobId}/export`, { auth: MANAGEMENT })).status).toBe(404);
		const euExport = children.find((child) => child.jobId.startsWith(holders[1]?.appId ?? "-"))?.jobId ?? "";
		expect(await objectKeys(`exports/${euExport}/`)).toEqual([]);
	});

	it("refuses a realm-wide export (409 naming them) while the learner's erasure is pending in some or all of its applications", async () => {
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("realm-export-while-erasing");
		const holders = [await createApp(), await createApp()];
		for (const app of holders) await enrol(app, learnerId);
		const realmPath = (path: string) => `/appManagement/learners/${encodeURIComponent(learnerId)}/${path}?userEmail=${encodeURIComponent(admin)}`;

		await acceptErasure(holders[1] as TestApp, learnerId, admin);
		const some = await sentDuring(() => call("POST", realmPath("export"), { auth: MANAGEMENT }));
		expect(await expectMessage(some.result, 409)).toBe(
			`Learner [${learnerId}] is being erased in application ${holders[1]?.appId}; the realm's export (whole or not at all) cannot be made: ask again once the erasure has completed`,
		);
		expect(some.sent).toEqual([]);

		// A realm-wide erasure, pending everywhere: every application named.
		expect((await call("POST", realmPath("delete-information"), { auth: MANAGEMENT })).status).toBe(204);
		const all = await sentDuring(() => call("POST", realmPath("export"), { auth: MANAGEMENT }));
		expect(await expectMessage(all.result, 409)).toContain(`applications ${holders.map((app) => app.appId).join(", ")};`);
		expect(all.sent).toEqual([]);
	});

	it("ends a realm-wide export without a document, naming the application, when the learner's erasure there was accepted before it was asked", async () => {
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("realm-export-raced-erasure");
		const holders = [await createApp(), await createApp()];
		for (const app of holders) await enrol(app, learnerId);
		// The realm export is recorded (the request looked: no erasure pending), then the erasure is accepted in one
		// application before the realm job asks them.
		const jobId = crypto.randomUUID();
		await recordRealmExport(env.DB, {
			id: jobId,
			learnerId,
			learnerHash: await learnerHash(env, "", learnerId),
			requestedBy: admin,
			holders: holders.map((app) => app.appId),
			createdAt: new Date().toISOString(),
		});
		await acceptErasure(holders[1] as TestApp, learnerId, admin);
		const job = await getJobById(env.DB, jobId);
		const lease = crypto.randomUUID();
		expect(job && (await claimStep(env.DB, job, lease, new Date().toISOString()))).toBe(true);
		const { sent } = await sentDuring(async () => (job ? fanOutExports(env, env.DB, job, lease) : null));
		for (const message of sent) await drain(JobMessageSchema.parse(message.body));
		await drain({ type: "exportLearnerData", jobId });

		expect(await getJob(MANAGEMENT, jobId)).toMatchObject({
			status: "completed",
			message: `An erasure of the learner was pending in application ${holders[1]?.appId}: no export was made there. The realm's document (whole or not at all) cannot be made`,
		});
		expect(await expectMessage(await call("GET", `/jobs/${jobId}/export`, { auth: MANAGEMENT }), 404)).toContain(holders[1]?.appId);
	});
});
