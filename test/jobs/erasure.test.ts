import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { findPlacement } from "../../src/db/applications";
import { call } from "../support/client";
import { completedJob, type JobBody, jobIdOf, waitForJob } from "../support/expect";
import { createApp, enrol, learnerOn, putTags, realmUser, type TestApp, uniqueValue } from "../support/fixtures";
import { acceptUpdate, deliver } from "../support/queue";
import { findAnywhere } from "../support/scan";
import { registrationCount, shardOf } from "../support/seed";

/**
 * What an erasure record keeps instead of the learner id (docs/privacy.md, "What survives an erasure"): the lower-case
 * hex HMAC-SHA-256 of "<appId>\n<learnerId>" keyed by the LEARNER_HASH_KEY secret. Computed here with Web
 * Crypto from the configured key, not with the service's own function, so a record keyed otherwise fails.
 */
async function expectedLearnerHash(appId: string, learnerId: string): Promise<string> {
	const encoder = new TextEncoder();
	const key = await crypto.subtle.importKey("raw", encoder.encode(env.LEARNER_HASH_KEY), { name: "HMAC", hash: "SHA-256" }, false, [
		"sign",
	]);
	const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(`${appId}\n${learnerId}`));
	return [...new Uint8Array(mac)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Unique learner details, so that a scan finds them only where they were put. */
const detailsOf = (label: string) => ({
	email: `${uniqueValue(label)}@example.com`,
	firstName: uniqueValue(`${label}-first`),
	lastName: uniqueValue(`${label}-last`),
});

/** Requests the erasure through the route (the local queue delivers it) and waits for the job to finish. */
async function erase(app: TestApp, learnerId: string, userEmail: string): Promise<JobBody> {
	const path = `/learner/${encodeURIComponent(learnerId)}/delete-information?userEmail=${encodeURIComponent(userEmail)}`;
	const response = await call("POST", path, { auth: app.auth });
	expect(response.status).toBe(204);
	return waitForJob(app.auth, jobIdOf(response, app.appId));
}

const LEARNER_TABLES = ["registrations", "registration_tags", "learner_tags", "learner_tag_counts", "learner_activity", "jobs"];

/** The learner tables of the application's shard, as findAnywhere names them (`<binding>.<table>`). */
async function learnerTablesOf(appId: string): Promise<string[]> {
	const placement = await findPlacement(env.DB, appId);
	if (!placement) throw new Error(`no application ${appId}`);
	return LEARNER_TABLES.map((table) => `${placement.shard}.${table}`);
}

describe("deleteAllLearnerData job", () => {
	it("leaves no value naming the learner in any table once it completes", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const details = detailsOf("original");
		const tags = ["learner-tag", "learner-tag", "registration-tag", "registration-tag"].map(uniqueValue);
		const registrations = [
			await enrol(app, { id: learnerId, ...details }, { learnerTags: [tags[0]], registrationTags: [tags[2]] }),
			await enrol(app, { id: learnerId, email: details.email }, { registrationTags: [tags[2], tags[3]] }),
			await enrol(app, { id: learnerId }),
		];
		await putTags(app, "learner", learnerId, [tags[1] ?? ""]);
		// A completed update, and one still pending when the erasure runs: both hold details in their payloads.
		const updated = detailsOf("updated");
		const done = await acceptUpdate(app, { id: learnerId, ...updated });
		await deliver([done]);
		expect(await learnerOn(app, registrations[2] ?? "")).toEqual({ id: learnerId, ...updated });
		const pending = detailsOf("pending");
		const pendingUpdate = await acceptUpdate(app, { id: learnerId, ...pending });
		const needles = [learnerId, ...Object.values(details), ...Object.values(updated), ...Object.values(pending), ...tags];
		// The learner's data is on the application's shard, and nowhere else in the realm.
		const learnerTables = await learnerTablesOf(app.appId);
		const before = await findAnywhere(needles);
		expect(new Set(before.findings.map(({ table }) => table))).toEqual(new Set(learnerTables));
		const admin = await realmUser("admin");

		const { id: jobId } = await erase(app, learnerId, admin);

		const job = await completedJob(app.auth, { type: "deleteAllLearnerData", jobId }, { registrationsAffected: 3, tagsRemoved: 5 });
		const after = await findAnywhere(needles);
		expect(after.tables).toEqual(expect.arrayContaining(learnerTables));
		expect(after.findings).toEqual([]);
		expect(await registrationCount(app.appId, learnerId)).toBe(0);
		// The job keeps only the HMAC of the learner id, the requester, times and counts (and its own bookkeeping).
		const shard = await shardOf(app.appId);
		expect(await shard.prepare("SELECT * FROM jobs WHERE id = ?1").bind(jobId).first()).toEqual({
			id: jobId,
			seq: expect.any(Number),
			app_id: app.appId,
			type: "deleteAllLearnerData",
			status: "completed",
			learner_id: null,
			learner_hash: await expectedLearnerHash(app.appId, learnerId),
			payload: null,
			requested_by: admin,
			cursor: 1,
			// The last registration pk the job erased up to: a row number, nothing of the learner.
			position: expect.any(Number),
			lease: expect.stringMatching(/^[0-9a-f-]{36}$/),
			registrations_affected: 3,
			tags_removed: 5,
			error: null,
			created_at: job.createdDate,
			started_at: expect.any(String),
			completed_at: job.completedDate,
			touched_at: expect.any(String),
			resends: 0,
			// Not part of a bulk erasure.
			parent_id: null,
			// Its end's event (ids and times only), dropped at once: the application has no webhook.
			event_id: expect.stringMatching(/^evt_[0-9a-f]{32}$/),
			event_at: job.completedDate,
			notify_status: null,
			notify_attempts: 0,
			notify_last_status: null,
			notify_last_error: null,
			notify_due_at: null,
		});
		// The learner's other jobs keep the same HMAC and nothing else of the learner.
		const { results: others } = await shard.prepare(
			"SELECT id, status, learner_id, learner_hash, payload FROM jobs WHERE app_id = ?1 AND id <> ?2 ORDER BY seq",
		)
			.bind(app.appId, jobId)
			.all();
		const hash = await expectedLearnerHash(app.appId, learnerId);
		expect(others).toEqual([
			{ id: done.jobId, status: "completed", learner_id: null, learner_hash: hash, payload: null },
			{ id: pendingUpdate.jobId, status: "completed", learner_id: null, learner_hash: hash, payload: null },
		]);
	});

	it("erases only the learner with exactly that id (ids are case-sensitive)", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("Learner");
		const lookalike = learnerId.toLowerCase();
		const kept = await enrol(app, { id: lookalike, email: "kept@example.com" }, { learnerTags: ["kept"] });
		await enrol(app, { id: learnerId }, { learnerTags: ["gone"] });

		const job = await erase(app, learnerId, await realmUser("owner"));

		expect(job.registrationsAffected).toBe(1);
		expect(await registrationCount(app.appId, learnerId)).toBe(0);
		expect(await learnerOn(app, kept)).toEqual({ id: lookalike, email: "kept@example.com" });
		const tags = await call("GET", `/learner/${lookalike}/tags`, { auth: app.auth });
		expect(tags.status).toBe(200);
		expect(await tags.json()).toEqual({ tags: ["kept"] });
	});
});
