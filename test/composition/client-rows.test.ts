import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { call, fetchWithBindings } from "../support/client";
import { getJob, jobIdOf } from "../support/expect";
import { MANAGEMENT, type TestApp, createApp, realmUser, uniqueValue } from "../support/fixtures";
import type { JobMessage } from "../../src/jobs/contract";
import { acceptUpdate, drain, sentDuring } from "../support/queue";
import { countOf, seedRegistrations, shardOf } from "../support/seed";

/**
 * Rows a client's requests cause beyond its data (SPEC §11): each kind is inside the quota or has a published bound
 * and lifetime. Repeated erasures of the same learners join the pending ones instead of adding jobs; finished jobs
 * go after JOB_RETENTION_DAYS (30 by default), finished erasures — their receipts' records — after
 * RECEIPT_RETENTION_DAYS (1095 by default), at the production values here.
 */

const DAY = 24 * 60 * 60_000;

const bulkPath = (email: string) => `/learners/delete-information?userEmail=${encodeURIComponent(email)}`;

/** The Cron Trigger's sweep at `days` from now. */
async function sweepAt(days: number): Promise<void> {
	const controller = createScheduledController({ scheduledTime: new Date(Date.now() + days * DAY), cron: "*/5 * * * *" });
	await sentDuring(() => worker.scheduled(controller, env));
}

const jobRows = (app: TestApp) => countOf("SELECT count(*) AS n FROM jobs WHERE app_id = ?1", app.appId);

describe("rows a client's requests cause beyond its data", () => {
	it("adds no erasure for a learner whose erasure is pending: twenty identical bulk erasures at the quota add twenty rows", async () => {
		const app = await createApp();
		const learners = await seedRegistrations(app.appId, uniqueValue("at-quota"), 200);
		const stored = await countOf("SELECT stored_rows AS n FROM app_storage WHERE app_id = ?1", app.appId);
		// The application is at its quota: nothing more of its data may be stored.
		const atQuota = { APP_ROW_QUOTA: String(Math.max(1, stored)) } as unknown as Partial<Env>;
		const admin = await realmUser("admin");
		const request = () =>
			fetchWithBindings(
				new Request(`http://learner.test/api/v2${bulkPath(admin)}`, {
					method: "POST",
					headers: { Authorization: app.auth, "Content-Type": "application/json" },
					body: JSON.stringify({ ids: learners }),
				}),
				atQuota,
			);
		const before = await jobRows(app);
		const first = await sentDuring(request);
		expect(first.result.status).toBe(204);
		expect(await jobRows(app)).toBe(before + 1 + learners.length);
		for (let i = 1; i < 20; i++) expect((await sentDuring(request)).result.status).toBe(204);
		// Each repeat is one row (its own job, naming the erasures it joined), never another erasure per learner.
		expect(await jobRows(app)).toBe(before + 20 + learners.length);
	});

	it("deletes finished jobs after JOB_RETENTION_DAYS and finished erasures, the records of their receipts, after RECEIPT_RETENTION_DAYS", async () => {
		// The production defaults: the test configuration sets neither.
		expect([(env as unknown as Record<string, unknown>).JOB_RETENTION_DAYS, (env as unknown as Record<string, unknown>).RECEIPT_RETENTION_DAYS]).toEqual([
			undefined,
			undefined,
		]);
		const app = await createApp();
		const [kept, erased] = [uniqueValue("kept"), uniqueValue("erased")];
		await seedRegistrations(app.appId, kept, 1);
		await seedRegistrations(app.appId, erased, 2);
		const update = await acceptUpdate(app, { id: `${kept}-learner-0`, firstName: "Kept" });
		await drain(update);
		const admin = await realmUser("admin");
		const { result } = await sentDuring(() =>
			call("POST", bulkPath(admin), { auth: app.auth, body: { ids: [`${erased}-learner-0`, `${erased}-learner-1`] } }),
		);
		const bulk = jobIdOf(result);
		await drain({ type: "deleteLearnersData", jobId: bulk });
		expect((await getJob(app.auth, bulk)).status).toBe("completed");
		const shard = await shardOf(app.appId);
		const members = () => shard.prepare("SELECT count(*) AS n FROM job_members WHERE job_id = ?1").bind(bulk).first<{ n: number }>();

		await sweepAt(29);
		expect((await call("GET", `/jobs/${update.jobId}`, { auth: app.auth })).status).toBe(200);
		await sweepAt(31);
		// The update is gone; the erasure and its receipt stay.
		expect((await call("GET", `/jobs/${update.jobId}`, { auth: app.auth })).status).toBe(404);
		expect((await call("GET", `/jobs/${bulk}/receipt`, { auth: app.auth })).status).toBe(200);
		expect(await members()).toEqual({ n: 1 });
		// A year on, and more: still within RECEIPT_RETENTION_DAYS' 1095.
		await sweepAt(400);
		expect((await call("GET", `/jobs/${bulk}/receipt`, { auth: app.auth })).status).toBe(200);
		await sweepAt(1096);
		expect((await call("GET", `/jobs/${bulk}`, { auth: app.auth })).status).toBe(404);
		expect(await members()).toEqual({ n: 0 });
		expect(await countOf("SELECT count(*) AS n FROM jobs WHERE app_id = ?1 AND type = 'deleteAllLearnerData'", app.appId)).toBe(0);
	});

	it("keeps a realm-wide erasure's receipt as long as every erasure's, and an application's deletion job for good", async () => {
		const admin = await realmUser("admin");
		const app = await createApp();
		const learnerId = uniqueValue("realm-kept");
		await seedRegistrations(app.appId, learnerId, 1);
		const { result: realm, sent } = await sentDuring(() =>
			call("POST", `/appManagement/learners/${learnerId}-learner-0/delete-information?userEmail=${encodeURIComponent(admin)}`, { auth: MANAGEMENT }),
		);
		expect(realm.status).toBe(204);
		for (const message of sent) await drain(message.body as JobMessage);
		const realmJob = jobIdOf(realm);
		expect((await getJob(MANAGEMENT, realmJob)).status).toBe("completed");
		const deleted = await createApp();
		const { result: deletion, sent: deleting } = await sentDuring(() => call("DELETE", `/appManagement/applications/${deleted.appId}`, { auth: MANAGEMENT }));
		expect(deletion.status).toBe(204);
		for (const message of deleting) await drain(message.body as JobMessage);
		const deletionJob = jobIdOf(deletion);
		expect((await getJob(MANAGEMENT, deletionJob)).status).toBe("completed");

		await sweepAt(31);
		expect((await call("GET", `/jobs/${realmJob}/receipt`, { auth: MANAGEMENT })).status).toBe(200);
		await sweepAt(1096);
		expect((await call("GET", `/jobs/${realmJob}`, { auth: MANAGEMENT })).status).toBe(404);
		// The deletion fences the deleted application off: its job stays, however long ago it finished.
		expect((await call("GET", `/jobs/${deletionJob}`, { auth: MANAGEMENT })).status).toBe(200);
	});

	it("prunes by an index of finished jobs, whatever the table holds besides", async () => {
		const shard = await shardOf((await createApp()).appId);
		const { results } = await shard
			.prepare(
				`EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE status IN ('completed', 'failed') AND completed_at < ?1
				   AND type IN ('deleteAllLearnerData') LIMIT 10`,
			)
			.bind(new Date().toISOString())
			.all<{ detail: string }>();
		expect(results.map((row) => row.detail).join("\n")).toContain("jobs_finished_by_completion");
	});
});
