import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { exportPlan } from "../../src/db/exports";
import { getJobById } from "../../src/db/jobs";
import { sweep } from "../../src/jobs/sweeper";
import { learnerHash } from "../../src/jobs/contract";
import { canonicalJson, type Json } from "../../src/receipts";
import { call } from "../support/client";
import { expectMessage, getJob, jobIdOf } from "../support/expect";
import { appOnShard, createApp, enrol, MANAGEMENT, realmUser, type TestApp, uniqueValue } from "../support/fixtures";
import { objectKeys, objectsNaming } from "../support/objects";
import { acceptErasure, acceptExport, acceptUpdate, drain, sentDuring } from "../support/queue";
import { SHARDS, seedLearnerRegistrations, shardOf } from "../support/seed";
import type { JobMessage } from "../../src/jobs/contract";

/**
 * Subject-access exports (SPEC §12): POST /learner/{learnerId}/export gathers everything the service holds naming the
 * learner, chunk by chunk, into one document signed with the receipt key, kept in R2 (the EU bucket for `eu`
 * applications) for EXPORT_RETENTION_DAYS and fetched at GET /jobs/{jobId}/export; an erasure of the learner deletes it.
 */

interface Signed {
	document: Record<string, unknown> & {
		learner: Record<string, unknown>;
		registrations: Record<string, unknown>[];
		jobs: { id: string; type: string; status: string }[];
		applications?: Signed["document"][];
	};
	signature: string;
	algorithm: string;
	keyId: string;
}

const fromBase64Url = (text: string) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (char) => char.charCodeAt(0));

/** Whether the published receipt key verifies the signed document, inside workerd. */
async function verifies(signed: Signed): Promise<boolean> {
	const jwk = (await (await call("GET", "/.well-known/erasure-receipt-key")).json()) as { kty: string; crv: string; x: string; kid: string };
	const key = await crypto.subtle.importKey("jwk", { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, { name: "Ed25519" }, false, ["verify"]);
	const bytes = new TextEncoder().encode(canonicalJson(signed.document as unknown as Json));
	return signed.keyId === jwk.kid && (await crypto.subtle.verify("Ed25519", key, fromBase64Url(signed.signature), bytes));
}

const exportPath = (learnerId: string, email: string) => `/learner/${encodeURIComponent(learnerId)}/export?userEmail=${encodeURIComponent(email)}`;

async function fetchExport(auth: string, jobId: string): Promise<Signed> {
	const response = await call("GET", `/jobs/${jobId}/export`, { auth });
	expect(response.status).toBe(200);
	expect(response.headers.get("Cache-Control")).toBe("no-store");
	return (await response.json()) as Signed;
}

/** A learner with two registrations (tags on each), learner tags and an update applied. */
async function richLearner(app: TestApp): Promise<{ learnerId: string; registrations: string[] }> {
	const learnerId = uniqueValue("export-learner");
	const registrations = [
		await enrol(app, { id: learnerId, email: `${learnerId}@example.com`, firstName: "Ada" }, { learnerTags: ["alpha"], registrationTags: ["r1"] }),
		await enrol(app, { id: learnerId, lastName: "Lovelace" }, { learnerTags: ["beta"], registrationTags: ["r2", "r3"] }),
	];
	await drain(await acceptUpdate(app, { id: learnerId, firstName: "Augusta" }));
	return { learnerId, registrations };
}

/** Runs the Cron Trigger's sweep at `ms` from now. */
async function sweepAt(ms: number): Promise<void> {
	await worker.scheduled(createScheduledController({ scheduledTime: new Date(Date.now() + ms), cron: "*/5 * * * *" }), env);
}

const DAY = 24 * 60 * 60_000;

describe("POST /learner/{learnerId}/export", () => {
	it("exports every registration with its learner fields and tags, the learner's tags, current details, suppression and jobs, signed", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const { learnerId, registrations } = await richLearner(app);
		const exported = await acceptExport(app, learnerId, admin);
		await drain(exported);

		const job = await getJob(app.auth, exported.jobId);
		expect(job).toEqual({
			id: exported.jobId,
			type: "exportLearnerData",
			status: "completed",
			applicationId: app.appId,
			// The learner by its HMAC, as every learner job's resource names it (never the id).
			learnerHash: expect.stringMatching(/^[0-9a-f]{64}$/),
			createdDate: expect.any(String),
			completedDate: expect.any(String),
			registrationsAffected: 2,
		});
		const signed = await fetchExport(app.auth, exported.jobId);
		expect(await verifies(signed)).toBe(true);
		expect(signed.algorithm).toBe("Ed25519");
		// What the API shows of the learner, exactly.
		const listed = (await (await call("GET", `/registrations?learnerId=${encodeURIComponent(learnerId)}&orderBy=created_asc`, { auth: app.auth })).json()) as {
			registrations: { id: string; course: { id: string }; instance: number; xapiRegistrationId: string; createdDate: string; updated: string; learner: unknown; tags: string[] }[];
		};
		const directory = (await (await call("GET", "/learners?tags=alpha", { auth: app.auth })).json()) as { learners: Record<string, unknown>[] };
		const shown = directory.learners.find((learner) => learner.id === learnerId);
		expect(signed.document).toEqual({
			kind: "learner-export",
			version: 1,
			jobId: exported.jobId,
			applicationId: app.appId,
			dataRegion: "default",
			learnerId,
			learnerHash: await learnerHash(env, app.appId, learnerId),
			requestedBy: admin,
			requestedDate: job.createdDate,
			exportedDate: expect.any(String),
			learner: {
				id: learnerId,
				email: shown?.email,
				firstName: "Augusta",
				lastName: "Lovelace",
				tags: ["alpha", "beta"],
				registrationCount: 2,
				suppressed: false,
			},
			registrations: listed.registrations.map((registration) => ({
				id: registration.id,
				courseId: registration.course.id,
				instance: registration.instance,
				xapiRegistrationId: registration.xapiRegistrationId,
				createdDate: registration.createdDate,
				updatedDate: registration.updated,
				learner: registration.learner,
				tags: registration.tags,
			})),
			jobs: expect.any(Array),
			keyId: signed.keyId,
		});
		expect(signed.document.registrations.map((registration) => registration.id)).toEqual(registrations);
		expect(shown).toMatchObject({ firstName: "Augusta", lastName: "Lovelace", tags: ["alpha", "beta"] });
		// The jobs that named the learner by its HMAC: the update, and this export itself.
		expect(signed.document.jobs.map(({ type, status }) => [type, status]).sort()).toEqual([
			["exportLearnerData", "running"],
			["updateLearnerInfo", "completed"],
		]);
		// The parts the chunks gathered are gone: only the document is kept.
		expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([`EXPORTS:exports/${exported.jobId}/document.json`]);
	});

	it("keeps an eu application's export in the EU bucket, and a default one's in the default bucket", async () => {
		const admin = await realmUser("admin");
		for (const shard of SHARDS) {
			const app = await appOnShard(shard.name);
			const learnerId = uniqueValue("region-learner");
			await enrol(app, learnerId);
			const exported = await acceptExport(app, learnerId, admin);
			await drain(exported);
			const binding = shard.region === "eu" ? "EXPORTS_EU" : "EXPORTS";
			expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([`${binding}:exports/${exported.jobId}/document.json`]);
			expect((await fetchExport(app.auth, exported.jobId)).document.dataRegion).toBe(shard.region);
		}
	});

	it("answers the pending export to a second request, and 409 while an erasure of the learner is pending", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("pending-export");
		await enrol(app, learnerId);
		const first = await acceptExport(app, learnerId, admin);
		const again = await call("POST", exportPath(learnerId, admin), { auth: app.auth });
		expect(again.status).toBe(204);
		expect(jobIdOf(again)).toBe(first.jobId);
		await drain(first);

		const erased = uniqueValue("being-erased");
		await enrol(app, erased);
		await acceptErasure(app, erased, admin);
		expect(await expectMessage(await call("POST", exportPath(erased, admin), { auth: app.auth }), 409)).toBe(
			`Learner [${erased}] is being erased; there will be nothing to export`,
		);
	});

	it("answers 404 for an unknown learner whoever asks, and 403 to a requester who is not a realm owner or admin", async () => {
		const app = await createApp();
		const member = await realmUser("member");
		const unknown = uniqueValue("nobody");
		expect(await expectMessage(await call("POST", exportPath(unknown, member), { auth: app.auth }), 404)).toBe(`Learner [${unknown}] was not found`);
		const learnerId = uniqueValue("guarded");
		await enrol(app, learnerId);
		expect(await expectMessage(await call("POST", exportPath(learnerId, member), { auth: app.auth }), 403)).toMatch(/realm owner or admin/);
		expect(await expectMessage(await call("POST", exportPath(learnerId, "nobody@example.com"), { auth: app.auth }), 403)).toMatch(/realm owner or admin/);
		// Refused means nothing was recorded: no export runs for a requester who may not ask.
		const recorded = await (await shardOf(app.appId))
			.prepare("SELECT count(*) AS n FROM jobs WHERE app_id = ?1 AND type = 'exportLearnerData'")
			.bind(app.appId)
			.first<{ n: number }>();
		expect(recorded?.n).toBe(0);
	});

	it("exports a learner with 1 200 registrations in bounded chunks, each registration once", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("many");
		await seedLearnerRegistrations(app.appId, learnerId, 1200, "many");
		const exported = await acceptExport(app, learnerId, admin);
		const messages = await drain(exported);
		const job = await getJobById(await shardOf(app.appId), exported.jobId);
		// 500 registrations a chunk (5 000 rows with their tags): 3 chunks of registrations, one finding none, one of
		// jobs, one finding none, and the last; 10 chunks a message.
		expect(job?.cursor).toBe(7);
		expect(messages).toBe(1);
		const signed = await fetchExport(app.auth, exported.jobId);
		expect(signed.document.registrations).toHaveLength(1200);
		expect(new Set(signed.document.registrations.map((registration) => registration.id)).size).toBe(1200);
		expect(await verifies(signed)).toBe(true);
	});
});

describe("GET /jobs/{jobId}/export", () => {
	it("answers 409 until the export has completed, 404 for a job that is not an export and for another application", async () => {
		const app = await createApp();
		const other = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("not-yet");
		await enrol(app, learnerId);
		const exported = await acceptExport(app, learnerId, admin);
		expect(await expectMessage(await call("GET", `/jobs/${exported.jobId}/export`, { auth: app.auth }), 409)).toBe(
			`Export [${exported.jobId}] is queued: its document can be fetched once it has completed`,
		);
		await drain(exported);
		expect(await expectMessage(await call("GET", `/jobs/${exported.jobId}/export`, { auth: other.auth }), 404)).toBe(`Job [${exported.jobId}] was not found`);
		const update = await acceptUpdate(app, { id: learnerId, firstName: "X" });
		expect(await expectMessage(await call("GET", `/jobs/${update.jobId}/export`, { auth: app.auth }), 404)).toBe(
			`Job [${update.jobId}] is not an export (exportLearnerData)`,
		);
		// The management credentials read any application's export.
		expect((await fetchExport(MANAGEMENT, exported.jobId)).document.learnerId).toBe(learnerId);
	});

	it("is gone once the learner is erased: 404, nothing in R2 names the learner, and a new export answers 404", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const { learnerId } = await richLearner(app);
		const exported = await acceptExport(app, learnerId, admin);
		await drain(exported);
		expect(await objectsNaming([learnerId])).toEqual([`EXPORTS:exports/${exported.jobId}/document.json`]);

		await drain(await acceptErasure(app, learnerId, admin));

		expect(await objectsNaming([learnerId, `${learnerId}@example.com`])).toEqual([]);
		expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([]);
		expect(await expectMessage(await call("GET", `/jobs/${exported.jobId}/export`, { auth: app.auth }), 404)).toBe(
			`The document of export [${exported.jobId}] is gone: its learner was erased, or its retention passed`,
		);
		expect((await call("POST", exportPath(learnerId, admin), { auth: app.auth })).status).toBe(404);
	});

	it("is gone from the moment the learner's erasure is accepted, before its chunk has run, to its application and to the management credentials", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("erasure-pending");
		await enrol(app, { id: learnerId, email: "pending-erasure@example.com" });
		const exported = await acceptExport(app, learnerId, admin);
		await drain(exported);
		expect((await fetchExport(app.auth, exported.jobId)).document.learnerId).toBe(learnerId);

		const erasure = await acceptErasure(app, learnerId, admin);
		for (const auth of [app.auth, MANAGEMENT]) {
			expect(await expectMessage(await call("GET", `/jobs/${exported.jobId}/export`, { auth }), 404)).toBe(
				`The document of export [${exported.jobId}] is gone: its learner was erased, or its retention passed`,
			);
		}
		await drain(erasure);
		expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([]);
	});

	it("cancels a pending export when the learner is erased, and leaves nothing of it in R2", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("cancelled");
		await seedLearnerRegistrations(app.appId, learnerId, 1200, "cancelled");
		const exported = await acceptExport(app, learnerId, admin);
		// One chunk of the export runs (a part is written), then the erasure, then the export's own message again.
		const { sent } = await sentDuring(() => drainOnce(exported));
		expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([`EXPORTS:exports/${exported.jobId}/part-00000001.json`]);
		await drain(await acceptErasure(app, learnerId, admin));
		for (const message of sent) await drain(message.body as JobMessage);
		expect(await getJob(app.auth, exported.jobId)).toMatchObject({ status: "completed", message: "Cancelled: the learner's data was erased" });
		expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([]);
		expect(await objectsNaming([learnerId])).toEqual([]);
	});

	it("is deleted by the sweeper EXPORT_RETENTION_DAYS (7, its real value) after it completed, and not before", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("expiring");
		await enrol(app, learnerId);
		const exported = await acceptExport(app, learnerId, admin);
		await drain(exported);
		await sweepAt(6 * DAY);
		expect((await fetchExport(app.auth, exported.jobId)).document.learnerId).toBe(learnerId);
		const report = await sweep(env, Date.now() + 7 * DAY + 60_000);
		expect(report.exportsExpired).toBeGreaterThanOrEqual(1);
		expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([]);
		expect((await call("GET", `/jobs/${exported.jobId}/export`, { auth: app.auth })).status).toBe(404);
		// Found through the index of exports still holding objects, and marked: the next sweep reads it no more.
		const job = await getJobById(await shardOf(app.appId), exported.jobId);
		expect(job && exportPlan(job).purged).toBe(true);
	});
});

/** Delivers the export's first message with one chunk only (the pace the simulation uses), its continuation kept. */
async function drainOnce(message: JobMessage): Promise<void> {
	const { JOB_PACE } = await import("../../src/jobs/run");
	const pace = JOB_PACE.chunksPerMessage;
	JOB_PACE.chunksPerMessage = 1;
	try {
		const { deliver } = await import("../support/queue");
		await deliver([message]);
	} finally {
		JOB_PACE.chunksPerMessage = pace;
	}
}

describe("POST /appManagement/learners/{learnerId}/export", () => {
	it("exports the learner from every application holding it, each in its region, and answers the realm's signed document", async () => {
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("realm-export");
		const eu = SHARDS.find((shard) => shard.region === "eu")?.name ?? "";
		const holders = [await appOnShard(SHARDS[0]?.name ?? ""), await appOnShard(eu)];
		for (const app of holders) await enrol(app, learnerId, { learnerTags: [app.appId] });
		const bystander = await createApp();
		await enrol(bystander, uniqueValue("someone-else"));

		const { result: response, sent } = await sentDuring(() =>
			call("POST", `/appManagement/learners/${encodeURIComponent(learnerId)}/export?userEmail=${encodeURIComponent(admin)}`, { auth: MANAGEMENT }),
		);
		expect(response.status).toBe(204);
		const jobId = jobIdOf(response);
		for (const message of sent) await drain(message.body as JobMessage);
		await drain({ type: "exportLearnerData", jobId });
		expect(await getJob(MANAGEMENT, jobId)).toMatchObject({ type: "exportLearnerData", status: "completed", registrationsAffected: 2 });

		const signed = await fetchExport(MANAGEMENT, jobId);
		expect(await verifies(signed)).toBe(true);
		expect(signed.document).toMatchObject({ kind: "learner-export-realm", jobId, learnerId, learnerHash: await learnerHash(env, "", learnerId) });
		const applications = signed.document.applications ?? [];
		expect(applications.map((document) => [document.applicationId, document.dataRegion, (document.learner as { tags: string[] }).tags])).toEqual(
			holders.map((app, i) => [app.appId, i === 0 ? "default" : "eu", [app.appId]]),
		);
		expect(signed.document.jobs).toEqual([expect.objectContaining({ id: jobId, type: "exportLearnerData" })]);
		// Each application's document stays in its own region's bucket; the realm's is made when asked, never stored.
		expect((await objectKeys()).filter((key) => applications.some((document) => key.includes(String(document.jobId))))).toEqual(
			[`EXPORTS:exports/${applications[0]?.jobId}/document.json`, `EXPORTS_EU:exports/${applications[1]?.jobId}/document.json`].sort(),
		);
	});
});

describe("a realm-wide export's document", () => {
	it("is gone once the learner's erasure is accepted in one of its applications, before its chunk has run", async () => {
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("realm-erasure-pending");
		const holders = [await createApp(), await createApp()];
		for (const app of holders) await enrol(app, learnerId);
		const { result: response, sent } = await sentDuring(() =>
			call("POST", `/appManagement/learners/${encodeURIComponent(learnerId)}/export?userEmail=${encodeURIComponent(admin)}`, { auth: MANAGEMENT }),
		);
		const jobId = jobIdOf(response);
		for (const message of sent) await drain(message.body as JobMessage);
		expect((await fetchExport(MANAGEMENT, jobId)).document.kind).toBe("learner-export-realm");

		await acceptErasure(holders[1] as TestApp, learnerId, admin);
		expect(await expectMessage(await call("GET", `/jobs/${jobId}/export`, { auth: MANAGEMENT }), 404)).toContain(holders[1]?.appId);
	});
});

describe("an export whose application moves to another region before it ends", () => {
	const region = (name: "default" | "eu") => SHARDS.find((shard) => shard.region === name)?.name ?? "";

	/** Moves the application to `shard` (allowing the region change), running the move to completion. */
	async function move(app: TestApp, shard: string): Promise<void> {
		const { result: response, sent } = await sentDuring(() =>
			call("POST", `/appManagement/applications/${app.appId}/move`, { auth: MANAGEMENT, body: { shard, allowRegionChange: true } }),
		);
		expect(response.status).toBe(204);
		for (const message of sent) await drain(message.body as JobMessage);
		expect((await getJob(MANAGEMENT, jobIdOf(response))).status).toBe("completed");
	}

	it("gathers and keeps it in the application's region at the time it runs (the EU bucket once moved to eu)", async () => {
		const app = await appOnShard(region("default"));
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("moved-before-export");
		await enrol(app, { id: learnerId, email: "moved@example.com" });
		const exported = await acceptExport(app, learnerId, admin);
		await move(app, region("eu"));
		await drain(exported);

		expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([`EXPORTS_EU:exports/${exported.jobId}/document.json`]);
		expect((await fetchExport(app.auth, exported.jobId)).document).toMatchObject({ dataRegion: "eu", learner: { registrationCount: 1 } });
	});

	it("starts the gathering over in the new region when parts were written before the move, leaving none in the old bucket", async () => {
		const app = await appOnShard(region("default"));
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("moved-mid-export");
		await seedLearnerRegistrations(app.appId, learnerId, 1200, "moved");
		const exported = await acceptExport(app, learnerId, admin);
		const { sent } = await sentDuring(() => drainOnce(exported));
		expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([`EXPORTS:exports/${exported.jobId}/part-00000001.json`]);
		await move(app, region("eu"));
		for (const message of sent) await drain(message.body as JobMessage);

		expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([`EXPORTS_EU:exports/${exported.jobId}/document.json`]);
		const signed = await fetchExport(app.auth, exported.jobId);
		expect(signed.document).toMatchObject({ dataRegion: "eu", learner: { registrationCount: 1200 } });
		expect(signed.document.registrations).toHaveLength(1200);
		expect(await getJob(app.auth, exported.jobId)).toMatchObject({ status: "completed", registrationsAffected: 1200 });
	});
});
