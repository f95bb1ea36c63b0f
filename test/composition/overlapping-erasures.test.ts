import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type JobMessage, learnerHash } from "../../src/jobs/contract";
import { apiRequest, call, fetchWithBindings } from "../support/client";
import { everyD1Binding } from "../support/d1-bindings";
import { D1_ERRORS, faultyD1 } from "../support/faulty-d1";
import { getJob, jobIdOf } from "../support/expect";
import { MANAGEMENT, type TestApp, appOnShard, createApp, enrol, realmUser, uniqueValue } from "../support/fixtures";
import { acceptErasure, callCapturing, drain, sentDuring } from "../support/queue";
import { SHARDS, countOf } from "../support/seed";

/**
 * Erasures of one learner asked while another is under way (SPEC §9, §11): whatever each accepted request promised
 * holds — if any asked for suppression, the learner ends suppressed — and each job and its receipt say truthfully
 * what it did, naming the job that erased the learner when that was another request's.
 */

const erasurePath = (learnerId: string, email: string, suppress: boolean) =>
	`/learner/${encodeURIComponent(learnerId)}/delete-information?userEmail=${encodeURIComponent(email)}${suppress ? "&suppress=true" : ""}`;
const bulkPath = (email: string, suppress: boolean) =>
	`/learners/delete-information?userEmail=${encodeURIComponent(email)}${suppress ? "&suppress=true" : ""}`;
const realmPath = (learnerId: string, email: string, suppress: boolean) =>
	`/appManagement/learners/${encodeURIComponent(learnerId)}/delete-information?userEmail=${encodeURIComponent(email)}${suppress ? "&suppress=true" : ""}`;

/** A registration naming the learner: 409 once it is erased and suppressed, 204 when it may come back. */
const registerAgain = async (app: TestApp, learnerId: string) =>
	(
		await call("POST", "/registrations", {
			auth: app.auth,
			body: { courseId: "again", registrationId: uniqueValue("again"), learner: { id: learnerId } },
		})
	).status;

interface Receipt {
	registrationsDeleted: number;
	tagsRemoved: number;
	learnerHashes?: string[];
	erasureJobIds?: string[];
	suppressed?: boolean;
}

async function receiptOf(auth: string, jobId: string): Promise<Receipt> {
	const response = await call("GET", `/jobs/${jobId}/receipt`, { auth });
	expect(response.status).toBe(200);
	return ((await response.json()) as { receipt: Receipt }).receipt;
}

/** The erasure a realm-wide erasure's receipt names for the learner in `app`. */
async function erasureNamedFor(realmJobId: string, app: TestApp, learnerId: string): Promise<string | undefined> {
	const receipt = await receiptOf(MANAGEMENT, realmJobId);
	const index = receipt.learnerHashes?.indexOf(await learnerHash(env, app.appId, learnerId)) ?? -1;
	return receipt.erasureJobIds?.[index];
}

/** A learner with two registrations, each with a registration tag, and two learner tags: 2 registrations, 4 tags. */
async function learnerIn(app: TestApp, label: string): Promise<string> {
	const learnerId = uniqueValue(label);
	for (let i = 0; i < 2; i++) await enrol(app, learnerId, { learnerTags: ["a", "b"], registrationTags: [`r${i}`] });
	return learnerId;
}

/** Accepts a bulk erasure without delivering it: its job id and message. */
async function acceptBulk(app: TestApp, ids: string[], email: string, suppress: boolean): Promise<{ jobId: string; message: JobMessage }> {
	const { response, sent } = await callCapturing("POST", bulkPath(email, suppress), { auth: app.auth, body: { ids } });
	expect(response.status).toBe(204);
	const jobId = jobIdOf(response, app.appId);
	return { jobId, message: sent[0]?.body as JobMessage };
}

describe("overlapping erasures of one learner", () => {
	for (const [first, second] of [
		["single", "bulk"],
		["single", "single"],
		["bulk", "single"],
		["bulk", "bulk"],
	] as const) {
		for (const [runsFirst, asking] of [
			["earlier", "later"],
			["later", "later"],
			["earlier", "earlier"],
			["later", "earlier"],
		] as const) {
			it(`keep the suppression the ${asking} request asked for: a ${first} erasure, then a ${second} one (the ${runsFirst} one delivered first)`, async () => {
				const app = await createApp();
				const admin = await realmUser("admin");
				const learnerId = await learnerIn(app, "overlap");
				const bystander = await learnerIn(app, "bystander");
				const ask = async (kind: "single" | "bulk", suppress: boolean) => {
					if (kind === "single") {
						const { response, sent } = await callCapturing("POST", erasurePath(learnerId, admin, suppress), { auth: app.auth });
						expect(response.status).toBe(204);
						return { jobId: jobIdOf(response, app.appId), message: sent[0]?.body as JobMessage };
					}
					return acceptBulk(app, kind === "bulk" && !suppress ? [learnerId, bystander] : [learnerId], admin, suppress);
				};
				// One of the two asks for suppression; the other, without it, must not undo that.
				const earlier = await ask(first, asking === "earlier");
				const later = await ask(second, asking === "later");
				const [one, two] = runsFirst === "earlier" ? [earlier, later] : [later, earlier];
				await drain(one.message);
				await drain(two.message);

				// What the suppressing request promised holds: the learner is erased and stays out.
				expect(await registerAgain(app, learnerId)).toBe(409);
				for (const { jobId } of [earlier, later]) expect((await getJob(app.auth, jobId)).status).toBe("completed");
				// Each receipt says what happened: the learner's 2 registrations and 4 tags went once, and a receipt that
				// covers the learner through another request's erasure names that erasure.
				const hash = await learnerHash(env, app.appId, learnerId);
				for (const { jobId } of [earlier, later]) {
					const receipt = await receiptOf(app.auth, jobId);
					if (receipt.learnerHashes) {
						const index = receipt.learnerHashes.indexOf(hash);
						expect(index).toBeGreaterThanOrEqual(0);
						const erasedBy = receipt.erasureJobIds?.[index] ?? "";
						expect((await getJob(app.auth, erasedBy)).type).toBe("deleteAllLearnerData");
						expect(await receiptOf(app.auth, erasedBy)).toMatchObject({ registrationsDeleted: 2, tagsRemoved: 4, suppressed: true });
					} else {
						expect(receipt).toMatchObject({ registrationsDeleted: 2, tagsRemoved: 4, suppressed: true });
					}
				}
			});
		}
	}

	it("keep the suppression a realm-wide erasure asked for when an application's own erasure was pending, and the other way round", async () => {
		const admin = await realmUser("admin");
		for (const realmSuppresses of [true, false]) {
			const apps = [await appOnShard(SHARDS[0]?.name ?? ""), await appOnShard(SHARDS[2]?.name ?? "")];
			const learnerId = uniqueValue("realm-overlap");
			for (const app of apps) await enrol(app, learnerId, { learnerTags: ["t"] });
			const single = await acceptErasure(apps[0] as TestApp, learnerId, admin);
			if (!realmSuppresses) {
				// The application's own erasure is the one asked to suppress.
				const again = await call("POST", erasurePath(learnerId, admin, true), { auth: (apps[0] as TestApp).auth });
				expect(jobIdOf(again)).toBe(single.jobId);
			}
			const { result, sent } = await sentDuring(() => call("POST", realmPath(learnerId, admin, realmSuppresses), { auth: MANAGEMENT }));
			expect(result.status).toBe(204);
			await drain(single);
			for (const message of sent) await drain(message.body as JobMessage);
			const realm = await getJob(MANAGEMENT, jobIdOf(result));
			expect(realm.status).toBe("completed");
			// Suppressed where any accepted request asked for it: in both applications when the realm-wide one did.
			expect(await registerAgain(apps[0] as TestApp, learnerId)).toBe(409);
			expect(await registerAgain(apps[1] as TestApp, learnerId)).toBe(realmSuppresses ? 409 : 204);
			// The realm job's receipt names, for the first application, the erasure that was already under way there.
			expect(await erasureNamedFor(realm.id, apps[0] as TestApp, learnerId)).toBe(single.jobId);
		}
	});

	it("join an application's erasure that has taken the learner's registrations but not yet completed: a realm-wide erasure asking for suppression holds there too", async () => {
		const admin = await realmUser("admin");
		const apps = [await appOnShard(SHARDS[0]?.name ?? ""), await appOnShard(SHARDS[2]?.name ?? "")] as TestApp[];
		const learnerId = uniqueValue("realm-midway");
		for (const app of apps) await enrol(app, learnerId);
		const single = await acceptErasure(apps[0] as TestApp, learnerId, admin);
		// Its chunks have run (the registrations are gone) but the job has not completed: it still stands for the learner.
		const shard = (env as unknown as Record<string, D1Database>)[SHARDS[0]?.name ?? ""] as D1Database;
		await shard.prepare("DELETE FROM registrations WHERE app_id = ?1 AND learner_id = ?2").bind(apps[0]?.appId, learnerId).run();
		const { result, sent } = await sentDuring(() => call("POST", realmPath(learnerId, admin, true), { auth: MANAGEMENT }));
		expect(result.status).toBe(204);
		await drain(single);
		for (const message of sent) await drain(message.body as JobMessage);
		const realm = await getJob(MANAGEMENT, jobIdOf(result));
		expect(realm.status).toBe("completed");
		expect(await registerAgain(apps[0] as TestApp, learnerId)).toBe(409);
		expect(await registerAgain(apps[1] as TestApp, learnerId)).toBe(409);
		expect(await erasureNamedFor(realm.id, apps[0] as TestApp, learnerId)).toBe(single.jobId);
	});

	it("suppress the learner where another erasure took it before the realm-wide erasure asking for suppression got there", async () => {
		const admin = await realmUser("admin");
		const app = await appOnShard(SHARDS[1]?.name ?? "");
		const learnerId = await learnerIn(app, "realm-late");
		// The request records the realm job, but cannot ask the application now (its shard refuses the write): the
		// job's first step will.
		const bindings = everyD1Binding(
			(database) => faultyD1((call) => (call.sql.some((sql) => sql.includes("INSERT INTO jobs")) ? { message: D1_ERRORS.networkLost, when: "before" } : null), database),
			{ control: false },
		);
		const { result, sent } = await sentDuring(() => fetchWithBindings(apiRequest("POST", realmPath(learnerId, admin, true), { auth: MANAGEMENT }), bindings));
		expect(result.status).toBe(204);
		// Meanwhile the application's own erasure, without suppression, takes the learner and completes.
		const single = await acceptErasure(app, learnerId, admin);
		await drain(single);
		expect(await countOf("SELECT count(*) AS n FROM registrations WHERE app_id = ?1 AND learner_id = ?2", app.appId, learnerId)).toBe(0);
		for (const message of sent) await drain(message.body as JobMessage);

		expect((await getJob(MANAGEMENT, jobIdOf(result))).status).toBe("completed");
		// What the realm-wide request promised holds there all the same: the learner stays out.
		expect(await registerAgain(app, learnerId)).toBe(409);
	});

	it("never leave a learner with two erasures under way: a repeated bulk erasure joins the pending ones", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const ids = [await learnerIn(app, "repeat-1"), await learnerIn(app, "repeat-2")];
		const before = await call("GET", `/jobs/${(await acceptBulk(app, ids, admin, false)).jobId}`, { auth: app.auth });
		expect(before.status).toBe(200);
		const rows = () =>
			countOf("SELECT count(*) AS n FROM jobs WHERE app_id = ?1 AND type = 'deleteAllLearnerData' AND status IN ('queued', 'running')", app.appId);
		expect(await rows()).toBe(2);
		for (let i = 0; i < 5; i++) await acceptBulk(app, ids, admin, i % 2 === 0);
		await acceptErasure(app, ids[0] as string, admin);
		// Still one erasure per learner: each repeat joined them.
		expect(await rows()).toBe(2);
	});
});
