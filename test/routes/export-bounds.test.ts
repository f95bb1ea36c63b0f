import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { exportPlan, recordRealmExport } from "../../src/db/exports";
import { claimStep, getJobById } from "../../src/db/jobs";
import { learnerHash } from "../../src/jobs/contract";
import { EXPORT_BOUNDS } from "../../src/jobs/export";
import { fanOutExports } from "../../src/jobs/realm-export";
import { JOB_PACE } from "../../src/jobs/run";
import { sweep } from "../../src/jobs/sweeper";
import { apiRequest, call, envWith, fetchWithBindings } from "../support/client";
import { expectMessage, getJob, jobIdOf } from "../support/expect";
import { MANAGEMENT, type TestApp, appOnShard, createApp, enrol, realmUser, uniqueValue } from "../support/fixtures";
import { objectKeys } from "../support/objects";
import { acceptErasure, acceptExport, deliver, drain, sentDuring } from "../support/queue";
import { SHARDS, seedLearnerRegistrations, shardOf } from "../support/seed";
import type { JobMessage } from "../../src/jobs/contract";

/**
 * What exports may keep in R2 (SPEC §12: every write path counted in the quota or bounded): at most APP_EXPORT_LIMIT
 * exports per application at once (queued, running, or completed and kept), each at most EXPORT_BOUNDS.maxBytes, which
 * the gathering chunks enforce as they go. Together: an application keeps at most APP_EXPORT_LIMIT x 64 MiB of exports.
 */

const DAY = 24 * 60 * 60_000;
const bounds = { ...EXPORT_BOUNDS };
const pace = { ...JOB_PACE };
afterEach(() => {
	Object.assign(EXPORT_BOUNDS, bounds);
	Object.assign(JOB_PACE, pace);
});

/** Bindings setting APP_EXPORT_LIMIT (a var the service reads, not one wrangler.toml declares). */
const limitOf = (limit: number): Partial<Env> => ({ APP_EXPORT_LIMIT: String(limit) }) as unknown as Partial<Env>;

const exportPath = (learnerId: string, email: string) => `/learner/${encodeURIComponent(learnerId)}/export?userEmail=${encodeURIComponent(email)}`;

/** Asks for an export with APP_EXPORT_LIMIT set to `limit`, keeping what it sends from the queue. */
async function exportWithLimit(app: TestApp, learnerId: string, email: string, limit: number): Promise<{ response: Response; sent: JobMessage[] }> {
	const { result: response, sent } = await sentDuring(() =>
		fetchWithBindings(apiRequest("POST", exportPath(learnerId, email), { auth: app.auth }), limitOf(limit)),
	);
	return { response, sent: sent.map((message) => message.body as JobMessage) };
}

async function exportJobsOf(app: TestApp): Promise<number> {
	const row = await (await shardOf(app.appId))
		.prepare("SELECT count(*) AS n FROM jobs WHERE app_id = ?1 AND type = 'exportLearnerData'")
		.bind(app.appId)
		.first<{ n: number }>();
	return row?.n ?? 0;
}

describe("exports an application may hold (APP_EXPORT_LIMIT)", () => {
	it("refuses one more with 429 naming the limit, joins a pending one, and takes one again once an export goes", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learners = Array.from({ length: 4 }, (_, i) => uniqueValue(`held-${i}`));
		for (const learnerId of learners) await enrol(app, learnerId);
		const [first, second, third, fourth] = learners as [string, string, string, string];

		const a = await exportWithLimit(app, first, admin, 2);
		const b = await exportWithLimit(app, second, admin, 2);
		expect([a.response.status, b.response.status]).toEqual([204, 204]);
		// Two pending: a third is refused, saying which limit and what frees it; nothing is recorded for it.
		const refused = await exportWithLimit(app, third, admin, 2);
		expect(await expectMessage(refused.response, 429)).toBe(
			`Export limit reached for application ${app.appId}: it may hold 2 exports at once (queued, running, or completed and kept ` +
				"EXPORT_RETENTION_DAYS), and holds 2; retry once one of them has completed and expired, or ask the operator to raise APP_EXPORT_LIMIT",
		);
		expect(refused.response.headers.get("Retry-After")).toBeNull();
		expect(refused.sent).toEqual([]);
		expect(await exportJobsOf(app)).toBe(2);
		// A pending export holds its place already: asked again, it is answered.
		const again = await exportWithLimit(app, first, admin, 2);
		expect(again.response.status).toBe(204);
		expect(jobIdOf(again.response)).toBe(jobIdOf(a.response));

		// Completed, both are kept: still refused, now with when the oldest goes.
		for (const message of [...a.sent, ...b.sent]) await drain(message);
		const kept = await exportWithLimit(app, third, admin, 2);
		expect(kept.response.status).toBe(429);
		const wait = Number(kept.response.headers.get("Retry-After"));
		expect(wait).toBeGreaterThan(7 * 86_400 - 120);
		expect(wait).toBeLessThanOrEqual(7 * 86_400);
		expect(await expectMessage(kept.response, 429)).toMatch(new RegExp(`the oldest expires in ${wait} seconds, or ask the operator to raise APP_EXPORT_LIMIT$`));

		// An erasure deletes the first learner's export: there is room for one.
		await drain(await acceptErasure(app, first, admin));
		const room = await exportWithLimit(app, third, admin, 2);
		expect(room.response.status).toBe(204);
		for (const message of room.sent) await drain(message);
		expect((await exportWithLimit(app, fourth, admin, 2)).response.status).toBe(429);
		// Past EXPORT_RETENTION_DAYS the sweeper deletes both: room again.
		await sweep(env, Date.now() + 7 * DAY + 60_000);
		expect((await exportWithLimit(app, fourth, admin, 2)).response.status).toBe(204);
	});

	it("does not count cancelled or failed exports, which hold nothing", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const [cancelled, failed, next] = [uniqueValue("cancelled"), uniqueValue("failed"), uniqueValue("next")];
		for (const learnerId of [cancelled, failed, next]) await enrol(app, learnerId);
		const cancelledExport = await exportWithLimit(app, cancelled, admin, 1);
		await drain(await acceptErasure(app, cancelled, admin));
		expect(await getJob(app.auth, jobIdOf(cancelledExport.response))).toMatchObject({ status: "completed", message: "Cancelled: the learner's data was erased" });
		const failedExport = await exportWithLimit(app, failed, admin, 1);
		expect(failedExport.response.status).toBe(204);
		EXPORT_BOUNDS.maxBytes = 10;
		for (const message of failedExport.sent) await drain(message);
		expect((await getJob(app.auth, jobIdOf(failedExport.response))).status).toBe("failed");
		expect((await exportWithLimit(app, next, admin, 1)).response.status).toBe(204);
	});

	it("does not count an export past EXPORT_RETENTION_DAYS that the sweeper has not deleted yet, on either route", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const [expired, kept, refused] = [uniqueValue("expired"), uniqueValue("kept"), uniqueValue("refused")];
		for (const learnerId of [expired, kept, refused]) await enrol(app, learnerId);
		const old = await exportWithLimit(app, expired, admin, 1);
		for (const message of old.sent) await drain(message);
		const oldId = jobIdOf(old.response);
		await (await shardOf(app.appId))
			.prepare("UPDATE jobs SET completed_at = ?2 WHERE id = ?1")
			.bind(oldId, new Date(Date.now() - 8 * DAY).toISOString())
			.run();
		// Expired: its document is gone, though its objects wait for the next sweep.
		expect((await call("GET", `/jobs/${oldId}/export`, { auth: app.auth })).status).toBe(404);
		expect(await objectKeys(`exports/${oldId}/`)).toHaveLength(1);

		const next = await exportWithLimit(app, kept, admin, 1);
		expect(next.response.status).toBe(204);
		for (const message of next.sent) await drain(message);
		// At the limit again: the one it waits for is the export kept, seven days from now, not the expired one.
		const full = await exportWithLimit(app, refused, admin, 1);
		expect(full.response.status).toBe(429);
		expect(Number(full.response.headers.get("Retry-After"))).toBeGreaterThan(6 * 24 * 60 * 60);

		// A realm-wide export looks at each application's exports as the single route does.
		const other = await createApp();
		const [gone, wanted] = [uniqueValue("realm-expired"), uniqueValue("realm-wanted")];
		for (const learnerId of [gone, wanted]) await enrol(other, learnerId);
		const earlier = await exportWithLimit(other, gone, admin, 1);
		for (const message of earlier.sent) await drain(message);
		await (await shardOf(other.appId))
			.prepare("UPDATE jobs SET completed_at = ?2 WHERE id = ?1")
			.bind(jobIdOf(earlier.response), new Date(Date.now() - 8 * DAY).toISOString())
			.run();
		const realmPath = `/appManagement/learners/${encodeURIComponent(wanted)}/export?userEmail=${encodeURIComponent(admin)}`;
		const realm = await sentDuring(() => fetchWithBindings(apiRequest("POST", realmPath, { auth: MANAGEMENT }), limitOf(1)));
		expect(realm.result.status).toBe(204);
	});

	it("refuses a realm-wide export with 429 naming the application at its limit, recording nothing", async () => {
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("realm-held");
		const eu = SHARDS.find((shard) => shard.region === "eu")?.name ?? "";
		const [roomy, full] = [await appOnShard(SHARDS[0]?.name ?? ""), await appOnShard(eu)];
		for (const app of [roomy, full]) await enrol(app, learnerId);
		const other = uniqueValue("holder-of-the-place");
		await enrol(full, other);
		expect((await exportWithLimit(full, other, admin, 1)).response.status).toBe(204);
		const realmPath = `/appManagement/learners/${encodeURIComponent(learnerId)}/export?userEmail=${encodeURIComponent(admin)}`;
		const { result: response, sent } = await sentDuring(() => fetchWithBindings(apiRequest("POST", realmPath, { auth: MANAGEMENT }), limitOf(1)));
		expect(await expectMessage(response, 429)).toMatch(new RegExp(`^Export limit reached for application ${full.appId}: it may hold 1 exports at once`));
		expect(sent).toEqual([]);
		expect(await exportJobsOf(roomy)).toBe(0);
		// At its limit with the learner's own export pending, an application would join that export: not the one named.
		expect((await exportWithLimit(roomy, learnerId, admin, 1)).response.status).toBe(204);
		const again = await sentDuring(() => fetchWithBindings(apiRequest("POST", realmPath, { auth: MANAGEMENT }), limitOf(1)));
		expect(await expectMessage(again.result, 429)).toMatch(new RegExp(`^Export limit reached for application ${full.appId}:`));
		const joined = await sentDuring(() => fetchWithBindings(apiRequest("POST", realmPath, { auth: MANAGEMENT }), limitOf(2)));
		expect(joined.result.status).toBe(204);
	});

	it("fails a realm-wide export whose application reached its limit after the request looked, saying which, keeping no learner id", async () => {
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("realm-raced");
		const app = await createApp();
		await enrol(app, learnerId);
		const other = uniqueValue("took-the-place");
		await enrol(app, other);
		const jobId = crypto.randomUUID();
		await recordRealmExport(env.DB, {
			id: jobId,
			learnerId,
			learnerHash: await learnerHash(env, "", learnerId),
			requestedBy: admin,
			holders: [app.appId],
			createdAt: new Date().toISOString(),
		});
		expect((await exportWithLimit(app, other, admin, 1)).response.status).toBe(204);
		const job = await getJobById(env.DB, jobId);
		const lease = crypto.randomUUID();
		expect(job && (await claimStep(env.DB, job, lease, new Date().toISOString()))).toBe(true);
		const { result } = await sentDuring(async () => (job ? fanOutExports(envWith(limitOf(1)), env.DB, job, lease) : null));
		expect(result).toEqual({ limitReachedIn: app.appId, limit: 1 });
		expect(await getJob(MANAGEMENT, jobId)).toMatchObject({
			status: "failed",
			message: `Application ${app.appId} holds its limit of 1 exports (APP_EXPORT_LIMIT): ask again once some have expired`,
		});
		expect((await getJobById(env.DB, jobId))?.learnerId).toBeNull();
		expect(await exportJobsOf(app)).toBe(1);
	});
});

describe("the largest export (EXPORT_BOUNDS.maxBytes)", () => {
	it("stops gathering as soon as the parts would pass it, fails the export saying so, and keeps nothing", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("too-large");
		await seedLearnerRegistrations(app.appId, learnerId, 1200, learnerId);
		JOB_PACE.chunksPerMessage = 1;
		const exported = await acceptExport(app, learnerId, admin);
		const step = async (message: JobMessage) => (await sentDuring(() => deliver([message]))).sent.map((next) => next.body as JobMessage);
		// The first chunk writes its part; the bound is then set to half as much again as that part.
		const [second] = await step(exported);
		const [part] = await objectKeys(`exports/${exported.jobId}/`);
		const size = (await env.EXPORTS.head(`exports/${exported.jobId}/part-00000001.json`))?.size ?? 0;
		expect(part).toBe(`EXPORTS:exports/${exported.jobId}/part-00000001.json`);
		EXPORT_BOUNDS.maxBytes = Math.floor(size * 1.5);
		// The second part would pass it: not written, and the chunk after fails the export.
		const [last] = second ? await step(second) : [];
		expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([part]);
		expect(last).toBeDefined();
		if (last) await drain(last);
		const job = await getJob(app.auth, exported.jobId);
		expect(job.status).toBe("failed");
		expect(job.message).toMatch(new RegExp(`^The learner's data \\(at least \\d+ bytes\\) is more than one export may hold \\(${EXPORT_BOUNDS.maxBytes} bytes\\)`));
		expect(await objectKeys(`exports/${exported.jobId}/`)).toEqual([]);
		const stored = await getJobById(await shardOf(app.appId), exported.jobId);
		expect(stored?.learnerId).toBeNull();
		expect(stored && exportPlan(stored).purged).toBe(true);
		expect((await call("GET", `/jobs/${exported.jobId}/export`, { auth: app.auth })).status).toBe(409);
	});
});
