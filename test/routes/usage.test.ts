import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { shardDatabase } from "../../src/shards";
import { call } from "../support/client";
import { expectMessage, jobIdOf, waitForJob } from "../support/expect";
import { MANAGEMENT, createApp, enrol, putTags, realmUser, uniqueValue } from "../support/fixtures";
import { insertJobs, seedJobId } from "../support/jobs-seed";
import { SHARDS, shardOf } from "../support/seed";

// Usage (SPEC §10: the console's overview is drawn from it; not in SCORM Cloud): counters and index ranges, never a
// count over an application's rows.

interface ApplicationEntry {
	id: string;
	name: string;
	shard: string;
	storedRows: number;
	rowQuota: number;
	writesThisMinute: number;
	writeBudget: number;
	registrations: number;
	learners: number;
}

interface Activity {
	jobs: { since: string; hours: { hour: string; completed: number; failed: number }[]; queued: number; running: number };
	webhookDeliveries: { since: string; delivered: number; failed: number; pending: number; noWebhook: number };
}

async function appUsage(appId: string): Promise<Activity & { application: ApplicationEntry }> {
	const response = await call("GET", `/appManagement/applications/${appId}/usage`, { auth: MANAGEMENT });
	expect(response.status, await response.clone().text()).toBe(200);
	return (await response.json()) as Activity & { application: ApplicationEntry };
}

const counters = (entry: ApplicationEntry) => ({ storedRows: entry.storedRows, registrations: entry.registrations, learners: entry.learners });

describe("GET /appManagement/applications/{childAppId}/usage", () => {
	it("counts a new application's registrations, learners and stored rows against its quota and this minute's write budget", async () => {
		const app = await createApp("usage-counts");
		const fresh = await appUsage(app.appId);
		expect(fresh.application).toEqual({
			id: app.appId,
			name: "usage-counts",
			dataRegion: "default",
			shard: expect.any(String),
			storedRows: 0,
			rowQuota: 5_000_000,
			writesThisMinute: 0,
			writeBudget: 300_000,
			registrations: 0,
			learners: 0,
		});
		const [ada, bob] = [uniqueValue("ada"), uniqueValue("bob")];
		await enrol(app, ada);
		await enrol(app, ada);
		await enrol(app, bob, { learnerTags: ["x", "y"] });
		const after = await appUsage(app.appId);
		expect(counters(after.application)).toEqual({ storedRows: 5, registrations: 3, learners: 2 });
		// Each registration spends 1 of the budget, plus 1 per tag it brings.
		expect(after.application.writesThisMinute).toBeGreaterThanOrEqual(5);
	});

	it("keeps the counters right through deletions and an erasure", async () => {
		const app = await createApp();
		const [ada, bob] = [uniqueValue("ada"), uniqueValue("bob")];
		const first = await enrol(app, ada);
		await enrol(app, ada);
		await enrol(app, bob);
		expect((await call("DELETE", `/registrations/${encodeURIComponent(first)}`, { auth: app.auth })).status).toBe(204);
		expect(counters((await appUsage(app.appId)).application)).toEqual({ storedRows: 2, registrations: 2, learners: 2 });
		const erasure = await call("POST", `/learner/${encodeURIComponent(ada)}/delete-information?userEmail=${encodeURIComponent(await realmUser("admin"))}`, {
			auth: app.auth,
		});
		await waitForJob(app.auth, jobIdOf(erasure));
		expect(counters((await appUsage(app.appId)).application)).toEqual({ storedRows: 1, registrations: 1, learners: 1 });
	}, 20_000);

	it("keeps the counters right across a move: the copy and its replay count on the new shard, and the old one ends at zero", async () => {
		const app = await createApp();
		for (let i = 0; i < 5; i++) await enrol(app, `mover-${i % 3}`);
		await putTags(app, "learner", "mover-0", ["a", "b"]);
		const before = await appUsage(app.appId);
		const from = before.application.shard;
		const target = SHARDS.find((shard) => shard.region === "default" && shard.name !== from)?.name ?? "";
		const move = await call("POST", `/appManagement/applications/${app.appId}/move`, { auth: MANAGEMENT, body: { shard: target } });
		expect((await waitForJob(MANAGEMENT, jobIdOf(move))).status).toBe("completed");
		const after = await appUsage(app.appId);
		expect(after.application.shard).toBe(target);
		expect(counters(after.application)).toEqual({ storedRows: 7, registrations: 5, learners: 3 });
		const left = await shardDatabase(env, from)
			.prepare("SELECT stored_rows, registrations, learners FROM app_storage WHERE app_id = ?1")
			.bind(app.appId)
			.first();
		expect(left).toEqual({ stored_rows: 0, registrations: 0, learners: 0 });
	}, 30_000);

	it("zeroes the counters of a deleted application, and answers 404 for it", async () => {
		const app = await createApp();
		await enrol(app, uniqueValue("learner"));
		const shard = await shardOf(app.appId);
		const deletion = await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		await waitForJob(MANAGEMENT, jobIdOf(deletion));
		expect(await shard.prepare("SELECT stored_rows, registrations, learners FROM app_storage WHERE app_id = ?1").bind(app.appId).first()).toEqual({
			stored_rows: 0,
			registrations: 0,
			learners: 0,
		});
		expect(await expectMessage(await call("GET", `/appManagement/applications/${app.appId}/usage`, { auth: MANAGEMENT }), 404)).toBe(
			`Application [${app.appId}] was not found`,
		);
	}, 20_000);

	it("counts the jobs finished in each of the last 24 hours, those unfinished now, and their webhook deliveries", async () => {
		const app = await createApp();
		const now = Date.now();
		const hour = 3_600_000;
		const at = (hoursAgo: number) => new Date(now - hoursAgo * hour).toISOString();
		const job = (fields: { status: "queued" | "running" | "completed" | "failed"; hoursAgo: number; notify?: "delivered" | "failed" | "pending" | "new" | null }) => ({
			id: seedJobId(app.appId),
			appId: app.appId,
			type: "updateLearnerInfo" as const,
			status: fields.status,
			createdAt: at(fields.hoursAgo + 1),
			completedAt: fields.status === "completed" || fields.status === "failed" ? at(fields.hoursAgo) : null,
			notify: fields.notify ?? null,
		});
		await insertJobs(await shardOf(app.appId), [
			job({ status: "completed", hoursAgo: 0, notify: "delivered" }),
			job({ status: "completed", hoursAgo: 0, notify: "pending" }),
			job({ status: "failed", hoursAgo: 0, notify: "failed" }),
			job({ status: "completed", hoursAgo: 5, notify: "new" }),
			job({ status: "completed", hoursAgo: 5 }),
			// More than 24 hours ago: not counted.
			job({ status: "completed", hoursAgo: 30, notify: "delivered" }),
			job({ status: "queued", hoursAgo: 0 }),
			job({ status: "running", hoursAgo: 0 }),
			job({ status: "running", hoursAgo: 0 }),
			// A bulk erasure's child: its bulk job counts for it.
			{ ...job({ status: "completed", hoursAgo: 0 }), parentId: seedJobId(app.appId) },
		]);
		// A move of it, in the control database.
		await insertJobs(env.DB, [
			{
				id: crypto.randomUUID(),
				appId: app.appId,
				type: "moveApplication",
				status: "failed",
				createdAt: at(3),
				completedAt: at(2),
				payload: '{"from":"SHARD_1","to":"SHARD_2","toRegion":"default","phase":"abort","table":0,"after":null,"rounds":0}',
			},
		]);
		const { jobs, webhookDeliveries } = await appUsage(app.appId);
		expect(jobs.hours).toHaveLength(24);
		expect(jobs.since).toBe(jobs.hours[0]?.hour);
		expect(jobs.hours[23]).toEqual({ hour: new Date(Math.floor(now / hour) * hour).toISOString(), completed: 2, failed: 1 });
		expect(jobs.hours[18]).toMatchObject({ completed: 2, failed: 0 });
		expect(jobs.hours[21]).toMatchObject({ completed: 0, failed: 1 });
		expect(jobs.hours.reduce((sum, entry) => sum + entry.completed + entry.failed, 0)).toBe(6);
		expect({ queued: jobs.queued, running: jobs.running }).toEqual({ queued: 1, running: 2 });
		expect(webhookDeliveries).toEqual({ since: jobs.since, delivered: 1, failed: 1, pending: 2, noWebhook: 2 });
	});
});

describe("GET /appManagement/usage", () => {
	it("lists every live application with its counters, and each shard's applications and fill against the capacity plan", async () => {
		const app = await createApp("realm-usage");
		await enrol(app, uniqueValue("learner"), { learnerTags: ["one"] });
		const response = await call("GET", "/appManagement/usage", { auth: MANAGEMENT });
		expect(response.status).toBe(200);
		const usage = (await response.json()) as Activity & {
			applications: ApplicationEntry[];
			shards: { name: string; region: string; open: boolean; applications: number; storedRows: number; registrations: number; estimatedBytes: number; capacityBytes: number }[];
			capacityPlan: { bytesPerRegistration: number; bytesPerTagRow: number; shardCapacityBytes: number };
		};
		expect(usage.capacityPlan).toEqual({ bytesPerRegistration: 634, bytesPerTagRow: 232, shardCapacityBytes: 8_000_000_000 });
		const entry = usage.applications.find((candidate) => candidate.id === app.appId);
		expect(entry && counters(entry)).toEqual({ storedRows: 2, registrations: 1, learners: 1 });
		expect(usage.shards.map((shard) => shard.name)).toEqual(SHARDS.map((shard) => shard.name));
		for (const shard of usage.shards) {
			const placed = usage.applications.filter((candidate) => candidate.shard === shard.name);
			expect(shard.applications).toBe(placed.length);
			expect(shard.estimatedBytes).toBe(shard.registrations * 634 + (shard.storedRows - shard.registrations) * 232);
			expect(shard.capacityBytes).toBe(8_000_000_000);
			expect(shard.storedRows).toBeGreaterThanOrEqual(placed.reduce((sum, candidate) => sum + candidate.storedRows, 0));
		}
		expect(usage.jobs.hours).toHaveLength(24);
	});

	it("needs the management credentials", async () => {
		const app = await createApp();
		expect((await call("GET", "/appManagement/usage", { auth: app.auth })).status).toBe(401);
	});
});

describe("GET /appManagement/learners/{learnerId}/applications", () => {
	it("names each application holding the learner, with its registrations there, and answers 404 when none does", async () => {
		const [one, two, none] = [await createApp("holder-one"), await createApp("holder-two"), await createApp("holder-none")];
		const learner = `${uniqueValue("learner")} `;
		await enrol(one, learner);
		await enrol(one, learner);
		await enrol(two, learner);
		await enrol(none, learner.trim());
		const response = await call("GET", `/appManagement/learners/${encodeURIComponent(learner)}/applications`, { auth: MANAGEMENT });
		expect(response.status).toBe(200);
		const { applications } = (await response.json()) as { applications: { id: string; name: string; registrations: number }[] };
		expect(applications.map(({ id, name, registrations }) => ({ id, name, registrations }))).toEqual([
			{ id: one.appId, name: "holder-one", registrations: 2 },
			{ id: two.appId, name: "holder-two", registrations: 1 },
		]);
		expect(await expectMessage(await call("GET", `/appManagement/learners/${uniqueValue("nobody")}/applications`, { auth: MANAGEMENT }), 404)).toMatch(
			/^Learner \[nobody-.*\] was not found$/,
		);
	});
});
