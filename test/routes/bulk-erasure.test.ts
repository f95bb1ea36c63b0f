import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { learnerHash } from "../../src/jobs/contract";
import { canonicalJson } from "../../src/receipts";
import { apiRequest, call, envWith, fetchWithBindings } from "../support/client";
import { expectMessage, getJob, jobIdOf, logsOf } from "../support/expect";
import { type TestApp, createApp, enrol, realmUser, tagsOf, uniqueValue } from "../support/fixtures";
import { deliver, drain, sentDuring } from "../support/queue";
import { findAnywhere } from "../support/scan";
import { countOf, shardOf } from "../support/seed";
import type { JobMessage } from "../../src/jobs/contract";

/**
 * Bulk erasure (SPEC §9): POST /learners/delete-information?userEmail= { ids } (admin) → 204 + Location of one job
 * covering every learner; unknown ids → 404 listing them, nothing queued; the job's counts add up over its learners.
 */

const bulkPath = (email: string) => `/learners/delete-information?userEmail=${encodeURIComponent(email)}`;

/** A learner with `registrations` registrations, each with a registration tag, and two learner tags. */
async function learnerWith(app: TestApp, registrations: number): Promise<string> {
	const learnerId = uniqueValue("bulk-learner");
	for (let i = 0; i < registrations; i++) await enrol(app, learnerId, { learnerTags: ["alpha", "beta"], registrationTags: [`r${i}`] });
	return learnerId;
}

const rowsNaming = (appId: string, learnerId: string) =>
	countOf("SELECT count(*) AS n FROM registrations WHERE app_id = ?1 AND learner_id = ?2", appId, learnerId);

async function requestBulk(app: TestApp, email: string, ids: unknown): Promise<{ response: Response; sent: unknown[] }> {
	const { result, sent } = await sentDuring(() => call("POST", bulkPath(email), { auth: app.auth, body: { ids } }));
	return { response: result, sent: sent.map((message) => message.body) };
}

describe("POST /learners/delete-information", () => {
	it("erases every learner named in one job whose counts add up, and leaves every other learner as it was", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const erased = [await learnerWith(app, 1), await learnerWith(app, 2), await learnerWith(app, 3)];
		const kept = await learnerWith(app, 2);
		const keptTags = await tagsOf(app, "learner", kept);

		const { response, sent } = await requestBulk(app, admin, erased);
		expect(response.status).toBe(204);
		const jobId = jobIdOf(response, app.appId);
		expect(sent).toEqual([{ type: "deleteLearnersData", jobId }]);
		await drain(sent[0] as JobMessage);

		const job = await getJob(app.auth, jobId);
		// 6 registrations; each learner's 2 learner tags and one registration tag per registration: 6 + 6.
		expect(job).toMatchObject({ id: jobId, type: "deleteLearnersData", status: "completed", registrationsAffected: 6, tagsRemoved: 12 });
		for (const learnerId of erased) {
			expect(await rowsNaming(app.appId, learnerId)).toBe(0);
			expect((await call("GET", `/learner/${learnerId}/tags`, { auth: app.auth })).status).toBe(404);
		}
		expect(await rowsNaming(app.appId, kept)).toBe(2);
		expect(await tagsOf(app, "learner", kept)).toEqual(keptTags);
		// Nothing anywhere names an erased learner: not the registrations, tags, jobs or stored responses.
		expect((await findAnywhere(erased)).findings).toEqual([]);
	});

	it("ends failed, with no receipt, when one of its learners' erasures failed, having erased the others", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const [doomed, erased] = [await learnerWith(app, 1), await learnerWith(app, 1)];
		const { response, sent } = await requestBulk(app, admin, [doomed, erased]);
		expect(response.status).toBe(204);
		const jobId = jobIdOf(response, app.appId);
		// The first learner's own erasure gives up (its message dead-lettered) before the bulk job gets to it.
		const child = await (await shardOf(app.appId))
			.prepare("SELECT id FROM jobs WHERE parent_id = ?1 AND learner_hash = ?2")
			.bind(jobId, await learnerHash(env, app.appId, doomed))
			.first<{ id: string }>();
		expect(child).not.toBeNull();
		await deliver([{ type: "deleteAllLearnerData", jobId: child?.id ?? "" }], { queue: env.JOBS_DEAD_LETTER_QUEUE });
		expect((await getJob(app.auth, child?.id ?? "")).status).toBe("failed");
		await drain(sent[0] as JobMessage);

		const job = await getJob(app.auth, jobId);
		expect(job).toMatchObject({ status: "failed", message: "Some of its learners could not be erased: ask again for them" });
		expect(await expectMessage(await call("GET", `/jobs/${jobId}/receipt`, { auth: app.auth }), 409)).toContain("failed");
		expect(await rowsNaming(app.appId, erased)).toBe(0);
		expect(await rowsNaming(app.appId, doomed)).toBe(1);
	});

	it("leaves no erased learner's id in the service's logs or in any queue message, request to completion", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const erased = [await learnerWith(app, 2), await learnerWith(app, 1)];
		// Every log line the service writes at its most talkative (info: a line per request and per job step).
		const talkative = envWith({ LOG_LEVEL: "info" });
		const lines = await logsOf(async () => {
			const { result, sent } = await sentDuring(() =>
				fetchWithBindings(apiRequest("POST", bulkPath(admin), { auth: app.auth, body: { ids: erased } }), { LOG_LEVEL: "info" }),
			);
			expect(result.status).toBe(204);
			// Queue messages carry the job's id and type, nothing else.
			for (const message of sent) expect(Object.keys(message.body as object).sort()).toEqual(["jobId", "type"]);
			for (const message of sent) await drain(message.body as JobMessage, { env: talkative });
		});
		expect(lines.length).toBeGreaterThan(0);
		const text = JSON.stringify(lines);
		for (const learnerId of erased) expect(text).not.toContain(learnerId);
		expect(text).not.toContain(admin);
		expect((await findAnywhere(erased)).findings).toEqual([]);
	});

	it("answers 404 listing every unknown id and queues nothing, whoever asks", async () => {
		const app = await createApp();
		const known = await learnerWith(app, 1);
		for (const email of [await realmUser("admin"), await realmUser("member")]) {
			const { response, sent } = await requestBulk(app, email, [known, "nobody-1", "nobody-2"]);
			expect(await expectMessage(response, 404)).toBe("Learners [nobody-1], [nobody-2] were not found; nothing was erased");
			expect(sent).toEqual([]);
		}
		expect(await rowsNaming(app.appId, known)).toBe(1);
		expect(await countOf("SELECT count(*) AS n FROM jobs WHERE app_id = ?1", app.appId)).toBe(0);
	});

	it("answers 403 to a requester who is not a realm owner or admin, and queues nothing", async () => {
		const app = await createApp();
		const learnerId = await learnerWith(app, 1);
		const { response, sent } = await requestBulk(app, await realmUser("member"), [learnerId]);
		expect(await expectMessage(response, 403)).toContain("owner or admin");
		expect(sent).toEqual([]);
		expect(await rowsNaming(app.appId, learnerId)).toBe(1);
	});

	it("answers 400 naming ids when there are none, more than 1000, or not strings", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		for (const ids of [[], Array.from({ length: 1001 }, (_, i) => `l${i}`), "learner", [7]]) {
			const { response, sent } = await requestBulk(app, admin, ids);
			expect(await expectMessage(response, 400)).toContain("ids");
			expect(sent).toEqual([]);
		}
	});

	it("erases a learner named twice once", async () => {
		const app = await createApp();
		const learnerId = await learnerWith(app, 2);
		const { response, sent } = await requestBulk(app, await realmUser("admin"), [learnerId, learnerId]);
		expect(response.status).toBe(204);
		await drain(sent[0] as JobMessage);
		expect(await getJob(app.auth, jobIdOf(response))).toMatchObject({ status: "completed", registrationsAffected: 2, tagsRemoved: 4 });
	});

	it("gives the completed job a signed receipt naming each learner's HMAC, never an id", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learners = [await learnerWith(app, 1), await learnerWith(app, 1)];
		const { response, sent } = await requestBulk(app, admin, learners);
		const jobId = jobIdOf(response);
		const early = await call("GET", `/jobs/${jobId}/receipt`, { auth: app.auth });
		expect(early.status).toBe(409);
		await drain(sent[0] as JobMessage);
		const receipt = await call("GET", `/jobs/${jobId}/receipt`, { auth: app.auth });
		expect(receipt.status).toBe(200);
		const signed = (await receipt.json()) as { receipt: Record<string, unknown>; signature: string };
		const hashes = await Promise.all(learners.map((learnerId) => learnerHash(env, app.appId, learnerId)));
		expect(signed.receipt).toMatchObject({ jobId, applicationId: app.appId, learnerHash: null, requestedBy: admin, registrationsDeleted: 2, tagsRemoved: 6 });
		expect([...(signed.receipt.learnerHashes as string[])].sort()).toEqual([...hashes].sort());
		expect(JSON.stringify(signed.receipt)).not.toContain(learners[0]);
		const key = (await (await call("GET", "/.well-known/erasure-receipt-key")).json()) as { kty: string; crv: string; x: string };
		const imported = await crypto.subtle.importKey("jwk", { kty: key.kty, crv: key.crv, x: key.x }, { name: "Ed25519" }, false, ["verify"]);
		const signature = Uint8Array.from(atob(signed.signature.replace(/-/g, "+").replace(/_/g, "/")), (char) => char.charCodeAt(0));
		const bytes = new TextEncoder().encode(canonicalJson(signed.receipt as never));
		expect(await crypto.subtle.verify("Ed25519", imported, signature, bytes)).toBe(true);
	});
});
