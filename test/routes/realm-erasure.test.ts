import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { learnerHash } from "../../src/jobs/contract";
import { shardDatabase } from "../../src/shards";
import { call } from "../support/client";
import { expectMessage, getJob, jobIdOf } from "../support/expect";
import { appOnShard, MANAGEMENT, type TestApp, enrol, realmUser, tagsOf, uniqueValue } from "../support/fixtures";
import { deliver, drain, sentDuring } from "../support/queue";
import { findAnywhere } from "../support/scan";
import { SHARDS, countOf } from "../support/seed";
import type { JobMessage } from "../../src/jobs/contract";

/**
 * Realm-wide erasure (SPEC §9): POST /appManagement/learners/{learnerId}/delete-information?userEmail= erases the
 * learner in every application of the realm, on whichever shards they live, as one realm job whose status and
 * counts add up one child erasure per application that held the learner; applications that never held the learner
 * cost no D1 write.
 */

const realmPath = (learnerId: string, email: string) =>
	`/appManagement/learners/${encodeURIComponent(learnerId)}/delete-information?userEmail=${encodeURIComponent(email)}`;

/** What an application's shard holds that a write would have changed: its storage row and its jobs. */
async function writeTrace(app: TestApp) {
	return {
		jobs: await countOf("SELECT count(*) AS n FROM jobs WHERE app_id = ?1", app.appId),
		budget: await countOf("SELECT budget_spent AS n FROM app_storage WHERE app_id = ?1", app.appId),
	};
}

/**
 * A learner in two applications (on shards 0 and 2), and a realm-wide erasure of it accepted but not delivered: the
 * realm job's id and message, and each application's erasure message by its id (the application's id, a dot, a UUID).
 */
async function pendingRealmErasure(label: string) {
	const admin = await realmUser("admin");
	const learnerId = uniqueValue(label);
	const [first, second] = [await appOnShard(SHARDS[0]?.name ?? ""), await appOnShard(SHARDS[2]?.name ?? "")] as TestApp[];
	for (const app of [first, second]) await enrol(app as TestApp, learnerId);
	const { result, sent } = await sentDuring(() => call("POST", realmPath(learnerId, admin), { auth: MANAGEMENT }));
	const messages = sent.map((message) => message.body as JobMessage);
	const realm = messages.find((message) => message.type === "deleteRealmLearnerData") as JobMessage;
	const childOf = (app: TestApp | undefined) =>
		messages.find((message) => message.type === "deleteAllLearnerData" && message.jobId.startsWith(`${app?.appId}.`)) as JobMessage;
	return { learnerId, jobId: jobIdOf(result), realm, one: childOf(first), two: childOf(second) };
}

describe("POST /appManagement/learners/{learnerId}/delete-information", () => {
	it("erases the learner in every application that holds it, on each shard, as one realm job adding them up", async () => {
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("realm-learner");
		const holding = await Promise.all(SHARDS.map((shard) => appOnShard(shard.name)));
		for (const app of holding) await enrol(app, learnerId, { learnerTags: ["alpha"], registrationTags: ["r"] });
		const bystanderId = uniqueValue("bystander");
		await enrol(holding[0] as TestApp, bystanderId, { learnerTags: ["kept"] });
		const untouched = await appOnShard(SHARDS[1]?.name ?? "");
		await enrol(untouched, uniqueValue("someone-else"));
		const untouchedBefore = await writeTrace(untouched);

		const { result: response, sent } = await sentDuring(() => call("POST", realmPath(learnerId, admin), { auth: MANAGEMENT }));
		expect(response.status).toBe(204);
		const jobId = jobIdOf(response);
		// One erasure per application that held the learner, and the realm job following them.
		const messages = sent.map((message) => message.body as JobMessage);
		expect(messages.filter((message) => message.type === "deleteAllLearnerData")).toHaveLength(3);
		expect(messages.filter((message) => message.type === "deleteRealmLearnerData")).toEqual([{ type: "deleteRealmLearnerData", jobId }]);
		// The application that never held the learner was read, never written.
		expect(await writeTrace(untouched)).toEqual(untouchedBefore);

		for (const message of messages) await drain(message);
		const job = await getJob(MANAGEMENT, jobId);
		// Per application: 1 registration, its registration tag and the learner's tag.
		expect(job).toMatchObject({ id: jobId, type: "deleteRealmLearnerData", status: "completed", registrationsAffected: 3, tagsRemoved: 6 });
		for (const app of holding) {
			expect((await call("GET", `/learner/${learnerId}/tags`, { auth: app.auth })).status).toBe(404);
		}
		expect(await tagsOf(holding[0] as TestApp, "learner", bystanderId)).toEqual(["kept"]);
		expect((await findAnywhere([learnerId])).findings).toEqual([]);
		// An application's credentials do not see the realm's job.
		expect((await call("GET", `/jobs/${jobId}`, { auth: (holding[0] as TestApp).auth })).status).toBe(404);

		// Its receipt names each application's HMAC of the learner, never the id.
		const receipt = await call("GET", `/jobs/${jobId}/receipt`, { auth: MANAGEMENT });
		expect(receipt.status).toBe(200);
		const signed = (await receipt.json()) as { receipt: { learnerHashes: string[]; learnerHash: string } };
		const expected = await Promise.all(holding.map((app) => learnerHash(env, app.appId, learnerId)));
		expect([...signed.receipt.learnerHashes].sort()).toEqual([...expected].sort());
		expect(JSON.stringify(signed)).not.toContain(learnerId);
	});

	it("answers 404 when no application holds the learner, whoever asks, and 403 to a member; nothing queued", async () => {
		const app = await appOnShard(SHARDS[0]?.name ?? "");
		const learnerId = uniqueValue("held");
		await enrol(app, learnerId);
		for (const email of [await realmUser("admin"), await realmUser("member")]) {
			const { result, sent } = await sentDuring(() => call("POST", realmPath("nobody-anywhere", email), { auth: MANAGEMENT }));
			expect(await expectMessage(result, 404)).toBe("Learner [nobody-anywhere] was not found");
			expect(sent).toEqual([]);
		}
		const member = await realmUser("member");
		const { result, sent } = await sentDuring(() => call("POST", realmPath(learnerId, member), { auth: MANAGEMENT }));
		expect(await expectMessage(result, 403)).toContain("owner or admin");
		expect(sent).toEqual([]);
		expect(await countOf("SELECT count(*) AS n FROM jobs WHERE app_id = ?1", app.appId)).toBe(0);
	});

	it("follows its children while they run: running until the last one completes", async () => {
		const { learnerId, jobId, realm, one, two } = await pendingRealmErasure("slow-learner");
		await drain(one);
		// One child done: the realm job looks, stays running, and asks to look again later.
		const { sent: again } = await sentDuring(() => deliver([realm]));
		expect(again.map((message) => message.body)).toEqual([realm]);
		expect(again[0]?.delaySeconds).toBeGreaterThan(0);
		expect(await getJob(MANAGEMENT, jobId)).toMatchObject({ status: "running", registrationsAffected: 1 });
		await drain(two);
		await drain(realm);
		expect(await getJob(MANAGEMENT, jobId)).toMatchObject({ status: "completed", registrationsAffected: 2 });
		expect(await shardDatabase(env, SHARDS[2]?.name ?? "").prepare("SELECT count(*) AS n FROM registrations WHERE learner_id = ?1").bind(learnerId).first<{ n: number }>()).toEqual({ n: 0 });
	});

	it("stays running while a child is unfinished even once another has failed, then ends failed", async () => {
		const { learnerId, jobId, realm, one, two } = await pendingRealmErasure("failing-learner");
		// The first application's erasure gives up (dead-lettered); the second has not run yet.
		await deliver([one], { queue: env.JOBS_DEAD_LETTER_QUEUE });
		await deliver([realm]);
		expect((await getJob(MANAGEMENT, jobId)).status).toBe("running");
		await drain(two);
		await deliver([realm]);
		expect((await getJob(MANAGEMENT, jobId)).status).toBe("failed");
		expect(await shardDatabase(env, SHARDS[2]?.name ?? "").prepare("SELECT count(*) AS n FROM registrations WHERE learner_id = ?1").bind(learnerId).first<{ n: number }>()).toEqual({ n: 0 });
	});
});
