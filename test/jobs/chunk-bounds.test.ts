import { describe, expect, it } from "vitest";
import { runJob } from "../../src/jobs/run";
import { envWith } from "../support/client";
import { completedJob } from "../support/expect";
import { createApp, realmUser, uniqueValue } from "../support/fixtures";
import { acceptErasure, drain } from "../support/queue";
import { RecordingDb, recordingDatabases } from "../support/recording";
import { registrationCount, shardOf } from "../support/seed";

// SPEC §6: chunks are sized in rows, not only in registrations, so each stays inside the platform's
// per-invocation limits whatever a learner holds. A chunk of an erasure deletes at most 5 000 rows of
// registrations and their tags (one registration at the least), plus the learner's own tags when it completes.

const ROWS_PER_CHUNK = 5000;

/** Gives the learner `count` registrations, each with `tags` registration tags, straight in D1. */
async function seedTaggedRegistrations(appId: string, learnerId: string, count: number, tags: number): Promise<void> {
	const now = new Date().toISOString();
	const db = await shardOf(appId);
	await db.batch([
		db.prepare(
			`INSERT INTO registrations (app_id, id, course_id, learner_id, xapi_registration_id, tag_count, created_at, updated_at)
			 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?3)
			 SELECT ?1, ?2 || '-registration-' || i, 'course', ?2, lower(hex(randomblob(16))), ?4, ?5, ?5 FROM n`,
		).bind(appId, learnerId, count, tags, now),
		db.prepare(
			`INSERT INTO registration_tags (app_id, registration_id, tag)
			 WITH RECURSIVE t(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM t WHERE j < ?3)
			 SELECT r.app_id, r.id, 'tag-' || t.j FROM registrations r, t WHERE r.app_id = ?1 AND r.learner_id = ?2`,
		).bind(appId, learnerId, tags),
	]);
}

describe("deleteAllLearnerData chunks", () => {
	it("delete at most 5000 rows each, however many tags the learner's registrations carry", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("tagged");
		// 12 registrations x (1 + 1000 tags) = 12 012 rows.
		await seedTaggedRegistrations(app.appId, learnerId, 12, 1000);
		const message = await acceptErasure(app, learnerId, await realmUser("admin"));

		const recorder = new RecordingDb();
		await drain(message, { env: envWith(recordingDatabases(recorder)) });

		// Each chunk's batch deletes registration tags, then registrations: pair them up in order.
		const deleted = (prefix: string) =>
			recorder.statements.filter((statement) => statement.sql.trimStart().startsWith(prefix)).map((statement) => statement.meta?.changes ?? 0);
		const tagsPerChunk = deleted("DELETE FROM registration_tags");
		const registrationsPerChunk = deleted("DELETE FROM registrations");
		expect(tagsPerChunk.length).toBe(registrationsPerChunk.length);
		const rowsPerChunk = tagsPerChunk.map((tags, chunk) => tags + (registrationsPerChunk[chunk] ?? 0));
		expect(rowsPerChunk.reduce((sum, rows) => sum + rows, 0)).toBe(12 * 1001);
		for (const rows of rowsPerChunk) expect(rows).toBeLessThanOrEqual(ROWS_PER_CHUNK);

		expect(await registrationCount(app.appId, learnerId)).toBe(0);
		await completedJob(app.auth, message, { registrationsAffected: 12, tagsRemoved: 12_000 });
	});

	it("take one registration at the least, even one holding more rows than the bound", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("tagged");
		await seedTaggedRegistrations(app.appId, learnerId, 2, 1000);
		const message = await acceptErasure(app, learnerId, await realmUser("admin"));
		const bounds = { registrations: 500, rows: 100 };

		const shard = await shardOf(app.appId);
		expect(await runJob(shard, message, { bounds, chunks: 1 })).toBe("continue");
		expect(await registrationCount(app.appId, learnerId)).toBe(1);
		// The last registration goes, and the job completes, in the same chunk.
		expect(await runJob(shard, message, { bounds, chunks: 1 })).toBe("done");
		expect(await registrationCount(app.appId, learnerId)).toBe(0);
		await completedJob(app.auth, message, { registrationsAffected: 2, tagsRemoved: 2000 });
	});
});
