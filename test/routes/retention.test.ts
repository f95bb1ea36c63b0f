import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { learnerHash } from "../../src/jobs/contract";
import { RETENTION_APPLICATIONS_PER_SWEEP, enforcePolicy, policiesThisSweep } from "../../src/jobs/retention";
import { findPlacement } from "../../src/db/applications";
import { acceptRetentionErasures } from "../../src/db/retention";
import { sweep } from "../../src/jobs/sweeper";
import { auditTrail } from "../support/audit";
import { apiRequest, call, envWith, fetchWithBindings } from "../support/client";
import { D1_ERRORS, faultyD1 } from "../support/faulty-d1";
import { expectMessage, getJob, jobIdOf } from "../support/expect";
import { createApp, enrol, MANAGEMENT, putTags, realmUser, type TestApp, uniqueValue } from "../support/fixtures";
import { acceptUpdate, drain, sentDuring } from "../support/queue";
import { RecordingDb, recordingDatabases } from "../support/recording";
import { DEFAULT_LIMITS, SHARDS, shardOf } from "../support/seed";
import type { JobMessage } from "../../src/jobs/contract";

/**
 * Retention (SPEC §12): PUT|GET|DELETE /appManagement/applications/{childAppId}/retention; the sweeper erases the
 * application's learners with no write for learnerInactiveDays, as ordinary erasures requested by "retention-policy",
 * found in an index of each learner's last write (learner_activity), written in the same D1 call as every write.
 */

const DAY = 24 * 60 * 60_000;
const retentionPath = (appId: string) => `/appManagement/applications/${appId}/retention`;

async function setPolicy(app: TestApp, days: number): Promise<void> {
	const response = await call("PUT", retentionPath(app.appId), { auth: MANAGEMENT, body: { learnerInactiveDays: days } });
	expect(response.status).toBe(200);
}

/** The learner's last write as stored, or null when it has no row. */
async function lastWrite(app: TestApp, learnerId: string): Promise<string | null> {
	const row = await (await shardOf(app.appId))
		.prepare("SELECT last_write_at FROM learner_activity WHERE app_id = ?1 AND learner_id = ?2")
		.bind(app.appId, learnerId)
		.first<{ last_write_at: string }>();
	return row?.last_write_at ?? null;
}

/** Makes the learner's last write `days` days old, as if nothing had been written to it since. */
async function age(app: TestApp, learnerId: string, days: number): Promise<void> {
	await (await shardOf(app.appId))
		.prepare("UPDATE learner_activity SET last_write_at = ?3 WHERE app_id = ?1 AND learner_id = ?2")
		.bind(app.appId, learnerId, new Date(Date.now() - days * DAY).toISOString())
		.run();
}

/** Runs the Cron Trigger's sweep now, keeping the job messages it sends; answers them. */
async function sweepNow(): Promise<JobMessage[]> {
	const { sent } = await sentDuring(() => worker.scheduled(createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" }), env));
	return sent.map((message) => message.body as JobMessage);
}

describe("PUT|GET|DELETE /appManagement/applications/{childAppId}/retention", () => {
	it("sets, shows and removes an application's policy; off by default", async () => {
		const app = await createApp();
		expect(await expectMessage(await call("GET", retentionPath(app.appId), { auth: MANAGEMENT }), 404)).toBe(
			`Application [${app.appId}] has no retention policy: its learners are kept until erased`,
		);
		const put = await call("PUT", retentionPath(app.appId), { auth: MANAGEMENT, body: { learnerInactiveDays: 365 } });
		expect(put.status).toBe(200);
		const policy = (await put.json()) as Record<string, unknown>;
		expect(policy).toEqual({ learnerInactiveDays: 365, createdDate: expect.any(String), updatedDate: expect.any(String) });
		const got = await call("GET", retentionPath(app.appId), { auth: MANAGEMENT });
		expect(await got.json()).toEqual(policy);
		expect((await call("DELETE", retentionPath(app.appId), { auth: MANAGEMENT })).status).toBe(204);
		expect(await expectMessage(await call("DELETE", retentionPath(app.appId), { auth: MANAGEMENT }), 404)).toBe(
			`Application [${app.appId}] has no retention policy`,
		);
	});

	it("answers 404 for an unknown or deleted application, and 400 naming the field for a bad number of days", async () => {
		const app = await createApp();
		for (const body of [{ learnerInactiveDays: 0 }, { learnerInactiveDays: 1.5 }, {}, { learnerInactiveDays: 36501 }]) {
			expect(await expectMessage(await call("PUT", retentionPath(app.appId), { auth: MANAGEMENT, body }), 400)).toMatch(/learnerInactiveDays/);
		}
		expect((await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT })).status).toBe(204);
		expect(await expectMessage(await call("PUT", retentionPath(app.appId), { auth: MANAGEMENT, body: { learnerInactiveDays: 30 } }), 404)).toBe(
			`Application [${app.appId}] was not found`,
		);
		expect((await call("GET", retentionPath("NOSUCHAPP1"), { auth: MANAGEMENT })).status).toBe(404);
	});
});

describe("the retention sweep", () => {
	it("erases a learner inactive past the limit, and not one written to within it, as erasures with receipts", async () => {
		const app = await createApp();
		const inactive = uniqueValue("inactive");
		const active = uniqueValue("active");
		await enrol(app, { id: inactive, email: `${inactive}@example.com` }, { learnerTags: ["old"] });
		await enrol(app, active, { learnerTags: ["new"] });
		await setPolicy(app, 30);
		await age(app, inactive, 31);
		await age(app, active, 29);

		const sent = await sweepNow();
		const erasures = sent.filter((message) => message.type === "deleteAllLearnerData" && message.jobId.startsWith(`${app.appId}.`));
		expect(erasures).toHaveLength(1);
		for (const message of erasures) await drain(message);

		expect((await call("GET", `/learner/${inactive}/tags`, { auth: app.auth })).status).toBe(404);
		expect(await (await call("GET", `/learner/${active}/tags`, { auth: app.auth })).json()).toEqual({ tags: ["new"] });
		const jobId = erasures[0]?.jobId ?? "";
		expect(await getJob(app.auth, jobId)).toMatchObject({ type: "deleteAllLearnerData", status: "completed", registrationsAffected: 1, tagsRemoved: 1 });
		const receipt = (await (await call("GET", `/jobs/${jobId}/receipt`, { auth: app.auth })).json()) as { receipt: Record<string, unknown> };
		expect(receipt.receipt).toMatchObject({
			jobId,
			applicationId: app.appId,
			learnerHash: await learnerHash(env, app.appId, inactive),
			requestedBy: "retention-policy",
			suppressed: false,
			registrationsDeleted: 1,
		});
		// Its last write went with it; the other learner's stays.
		expect(await lastWrite(app, inactive)).toBeNull();
		expect(await lastWrite(app, active)).not.toBeNull();
		// The learner may be registered again: a policy's erasure does not suppress.
		await enrol(app, inactive);
		// Recorded in the audit trail, by the policy.
		// An erasure's entry (the fields a requested erasure's has), requested by the policy, as its receipt says.
		const requested = await call("POST", `/learner/${active}/delete-information?userEmail=${encodeURIComponent(await realmUser("admin"))}`, { auth: app.auth });
		expect(requested.status).toBe(204);
		const entries = (await auditTrail("?action=learner.erase")).filter((entry) => entry.target.applicationId === app.appId);
		expect(entries.map((entry) => [entry.actor, entry.target])).toEqual([
			[
				"retention-policy",
				{ applicationId: app.appId, jobId, learnerHash: await learnerHash(env, app.appId, inactive), learnerInactiveDays: 30, requester: "retention-policy", suppress: false },
			],
			[`application:${app.appId}`, expect.objectContaining({ jobId: jobIdOf(requested), suppress: false })],
		]);
		const fields = (target: Record<string, unknown> | undefined) => Object.keys(target ?? {}).filter((key) => key !== "learnerInactiveDays").sort();
		expect(fields(entries[0]?.target)).toEqual(fields(entries[1]?.target));
	});

	it("spares a learner written to after the sweep found it inactive: the acceptance checks its last write again", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("woken");
		await enrol(app, learnerId);
		await age(app, learnerId, 40);
		const cutoff = new Date(Date.now() - 30 * DAY).toISOString();
		await putTags(app, "learner", learnerId, ["written-again"]);
		const shard = await shardOf(app.appId);
		const recorded = await acceptRetentionErasures(
			shard,
			app.appId,
			[{ learnerId, learnerHash: await learnerHash(env, app.appId, learnerId), jobId: `${app.appId}.${crypto.randomUUID()}` }],
			cutoff,
			new Date().toISOString(),
			DEFAULT_LIMITS,
			{ requestId: "sweep-test", learnerInactiveDays: 30 },
		);
		expect(recorded).toEqual([]);
	});

	it("takes the applications in turn when there are more policies than one sweep enforces: each within ceil(n / 50) sweeps", () => {
		const count = 2 * RETENTION_APPLICATIONS_PER_SWEEP + 7;
		const policies = Array.from({ length: count }, (_, i) => ({ appId: `APP${String(i).padStart(7, "0")}`, shard: "SHARD_1", learnerInactiveDays: 30 }));
		const sweeps = Math.ceil(count / RETENTION_APPLICATIONS_PER_SWEEP);
		// Sweeps every 5 minutes, from any moment: every policy comes within `sweeps` of them, none more than once.
		for (const from of [Date.UTC(2026, 11, 7, 0, 0), Date.UTC(2026, 11, 7, 13, 35)]) {
			const taken = Array.from({ length: sweeps }, (_, i) => policiesThisSweep(policies, from + i * 5 * 60_000)).flat();
			expect(taken.length).toBeLessThanOrEqual(sweeps * RETENTION_APPLICATIONS_PER_SWEEP);
			expect(new Set(taken.map((policy) => policy.appId)).size).toBe(count);
		}
	});

	it("records an erasure whose audit append failed at the next sweep, once, the failure counted against the control database", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("unrecorded");
		await enrol(app, learnerId);
		await setPolicy(app, 30);
		await age(app, learnerId, 31);
		const shard = (await findPlacement(env.DB, app.appId))?.shard;
		const failing = faultyD1((d1Call) => (d1Call.sql.some((sql) => sql.includes("INSERT INTO audit_log")) ? { message: D1_ERRORS.overloaded, when: "before" } : null));
		const { result: first, sent } = await sentDuring(() => sweep({ ...env, DB: failing }, Date.now()));
		const jobId = sent.map((message) => message.body as JobMessage).find((message) => message.jobId.startsWith(`${app.appId}.`))?.jobId ?? "";
		expect(first.failedDatabases).toContain("DB");
		expect(first.failedDatabases).not.toContain(shard);
		const recorded = async () => (await auditTrail("?action=learner.erase")).filter((entry) => entry.target.jobId === jobId);
		expect(await recorded()).toEqual([]);
		await sweepNow();
		await sweepNow();
		expect((await recorded()).map((entry) => [entry.actor, entry.requestId.startsWith("sweep-")])).toEqual([["retention-policy", true]]);
	});

	it("reaches the inactive learners behind 100 longer inactive ones whose erasures are still pending (a queue backlog)", async () => {
		const app = await createApp();
		const shard = await shardOf(app.appId);
		const ids = Array.from({ length: 101 }, (_, i) => `backlog-${String(i).padStart(3, "0")}-${crypto.randomUUID()}`);
		const now = new Date().toISOString();
		await shard
			.prepare(
				`INSERT INTO registrations (app_id, id, course_id, learner_id, xapi_registration_id, created_at, updated_at)
				 SELECT ?1, 'reg-' || value, 'c', value, lower(hex(randomblob(16))), ?3, ?3 FROM json_each(?2)`,
			)
			.bind(app.appId, JSON.stringify(ids), now)
			.run();
		// The first 100 inactive for 200 days, the last for 100.
		await shard
			.prepare("INSERT INTO learner_activity (app_id, learner_id, last_write_at) SELECT ?1, value, CASE WHEN key < 100 THEN ?3 ELSE ?4 END FROM json_each(?2)")
			.bind(app.appId, JSON.stringify(ids), new Date(Date.now() - 200 * DAY).toISOString(), new Date(Date.now() - 100 * DAY).toISOString())
			.run();
		await shard
			.prepare("UPDATE app_storage SET row_quota = 5000000, stored_rows = stored_rows + 101, registrations = registrations + 101, learners = learners + 101 WHERE app_id = ?1")
			.bind(app.appId)
			.run();
		await setPolicy(app, 30);
		// Each sweep's messages are never delivered: its erasures stay queued.
		const erased = async () => {
			const { results } = await shard
				.prepare("SELECT learner_hash FROM jobs WHERE app_id = ?1 AND type = 'deleteAllLearnerData'")
				.bind(app.appId)
				.all<{ learner_hash: string }>();
			return results.map((row) => row.learner_hash);
		};
		await sentDuring(() => sweep(env, Date.now()));
		expect(await erased()).toHaveLength(100);
		await sentDuring(() => sweep(env, Date.now()));
		const after = await erased();
		expect(after).toHaveLength(101);
		expect(after).toContain(await learnerHash(env, app.appId, ids[100] ?? ""));
	});

	it("leaves an application without a policy alone, however long its learners have been inactive", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("kept");
		await enrol(app, learnerId);
		await age(app, learnerId, 3650);
		const sent = await sweepNow();
		expect(sent.filter((message) => message.jobId.startsWith(`${app.appId}.`))).toEqual([]);
		expect((await call("GET", `/learner/${learnerId}/tags`, { auth: app.auth })).status).toBe(200);
	});
});

describe("each learner's last write (learner_activity)", () => {
	it("is stamped by every write to the learner and goes with the learner's last registration", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("stamped");
		const first = await enrol(app, learnerId);
		const second = await enrol(app, learnerId);
		const writes: [string, () => Promise<unknown>][] = [
			["learner tags", () => putTags(app, "learner", learnerId, ["a"])],
			["learner tags removed", () => call("DELETE", `/learner/${learnerId}/tags`, { auth: app.auth, body: { tags: ["a"] } })],
			["batch tags", () => call("PUT", "/learner/tags", { auth: app.auth, body: { ids: [learnerId], tags: ["b"] } })],
			["registration tags", () => putTags(app, "registrations", first, ["r"])],
			["registration tags removed", () => call("DELETE", `/registrations/${first}/tags`, { auth: app.auth, body: { tags: ["r"] } })],
			["registration tags batch", () => call("PUT", "/registrations/tags", { auth: app.auth, body: { ids: [first], tags: ["s"] } })],
			["an update", () => acceptUpdate(app, { id: learnerId, firstName: "Stamped" })],
			["a registration deleted", () => call("DELETE", `/registrations/${second}`, { auth: app.auth })],
			["a registration created", () => enrol(app, learnerId)],
		];
		for (const [what, write] of writes) {
			await age(app, learnerId, 100);
			const before = Date.now();
			await write();
			expect(Date.parse((await lastWrite(app, learnerId)) ?? ""), what).toBeGreaterThanOrEqual(before - 1000);
		}
		const registrations = (await (await call("GET", `/registrations?learnerId=${learnerId}`, { auth: app.auth })).json()) as { registrations: { id: string }[] };
		for (const { id } of registrations.registrations) expect((await call("DELETE", `/registrations/${id}`, { auth: app.auth })).status).toBe(204);
		expect(await lastWrite(app, learnerId)).toBeNull();
	});

	it("moves with its application, so a move does not restart the policy's clock", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("moved");
		await enrol(app, learnerId);
		await age(app, learnerId, 40);
		const aged = await lastWrite(app, learnerId);
		const from = (await findPlacement(env.DB, app.appId))?.shard;
		const to = SHARDS.find((shard) => shard.region === "default" && shard.name !== from)?.name ?? "";
		const { result, sent } = await sentDuring(() => call("POST", `/appManagement/applications/${app.appId}/move`, { auth: MANAGEMENT, body: { shard: to } }));
		expect(result.status).toBe(204);
		for (const message of sent) await drain(message.body as JobMessage);
		expect((await findPlacement(env.DB, app.appId))?.shard).toBe(to);
		expect(await lastWrite(app, learnerId)).toBe(aged);
	});

	it("keeps PUT /learner/{id}/tags at one D1 call", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("hot");
		await enrol(app, learnerId);
		await putTags(app, "learner", learnerId, ["warm"]);
		const recorder = new RecordingDb();
		const response = await fetchWithBindings(
			apiRequest("PUT", `/learner/${learnerId}/tags`, { auth: app.auth, body: { tags: ["hot"] } }),
			recordingDatabases(recorder),
		);
		expect(response.status).toBe(204);
		expect(recorder.calls).toBe(1);
		expect(recorder.statements.some((statement) => statement.sql.includes("INSERT INTO learner_activity"))).toBe(true);
	});
});

describe("the cost of a retention sweep", () => {
	it("reads and writes as many rows for an application of 100 000 learners as for one of 10 000", async () => {
		const costs: Record<string, { d1Calls: number; rowsRead: number; rowsWritten: number; erasures: number }> = {};
		for (const size of [10_000, 100_000]) {
			const app = await createApp();
			const placement = await findPlacement(env.DB, app.appId);
			const shard = await shardOf(app.appId);
			const now = new Date().toISOString();
			// `size` learners, each with one registration and a last write now; 5 of them inactive for a year.
			await shard
				.prepare(
					`INSERT INTO registrations (app_id, id, course_id, learner_id, xapi_registration_id, created_at, updated_at)
					 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
					 SELECT ?1, 'cost-reg-' || i, 'cost', 'cost-learner-' || i, lower(hex(randomblob(16))), ?3, ?3 FROM n`,
				)
				.bind(app.appId, size, now)
				.run();
			await shard
				.prepare(
					`INSERT INTO learner_activity (app_id, learner_id, last_write_at)
					 SELECT app_id, learner_id, CASE WHEN CAST(substr(learner_id, 14) AS INTEGER) <= 5 THEN ?2 ELSE ?3 END
					 FROM registrations WHERE app_id = ?1`,
				)
				.bind(app.appId, new Date(Date.now() - 365 * DAY).toISOString(), now)
				.run();
			const recorder = new RecordingDb();
			const { result } = await sentDuring(() =>
				enforcePolicy(
					envWith(recordingDatabases(recorder)),
					{ appId: app.appId, shard: placement?.shard ?? "", learnerInactiveDays: 30 },
					Date.now(),
					"cost",
				),
			);
			costs[`${size} learners`] = {
				d1Calls: recorder.calls,
				rowsRead: recorder.statements.reduce((sum, statement) => sum + (statement.meta?.rows_read ?? 0), 0),
				rowsWritten: recorder.statements.reduce((sum, statement) => sum + (statement.meta?.rows_written ?? 0), 0),
				erasures: result.erasures.length,
			};
		}
		console.log(
			[
				"retention sweep of one application, 5 learners inactive (D1 meta):",
				"| learners | D1 calls | rows read | rows written | erasures |",
				...Object.entries(costs).map(([size, cost]) => `| ${size} | ${cost.d1Calls} | ${cost.rowsRead} | ${cost.rowsWritten} | ${cost.erasures} |`),
			].join("\n"),
		);
		const [small, large] = Object.values(costs);
		expect(small?.erasures).toBe(5);
		expect(large).toEqual(small);
	}, 120_000);
});
