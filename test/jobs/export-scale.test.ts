import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { findPlacement } from "../../src/db/applications";
import { runExport } from "../../src/jobs/export";
import { CHUNK_BOUNDS } from "../../src/jobs/run";
import { shardDatabase } from "../../src/shards";
import { call, envWith } from "../support/client";
import { createApp, MANAGEMENT, realmUser, uniqueValue } from "../support/fixtures";
import { objectKeys } from "../support/objects";
import { acceptExport } from "../support/queue";
import { RecordingDb, recordingDatabases } from "../support/recording";
import { seedLearnerRegistrations, shardOf } from "../support/seed";

/**
 * SPEC §12: an export is chunked and bounded in rows like an erasure. A learner with 10 000 registrations (a tag
 * each) exports in chunks of at most 500 registrations and 5 000 rows, one R2 part each, whatever else the
 * database holds, its parts deleted once the document is stored; what it reads is printed per registration
 * (docs/privacy.md, "Subject-access exports").
 */

const REGISTRATIONS = 10_000;

interface Cost {
	chunks: number;
	d1Calls: number;
	rowsRead: number;
	maxRowsReadPerChunk: number;
	rowsWritten: number;
}

/** Exports the learner one chunk per call, recording every D1 call; answers what it cost. */
async function exportCost(appId: string, learnerId: string): Promise<Cost> {
	const admin = await realmUser("admin");
	const shardName = (await findPlacement(env.DB, appId))?.shard ?? "";
	const credential = await call("POST", `/appManagement/${appId}/credentials`, { auth: MANAGEMENT, body: { name: "scale" } });
	const { credential: secret } = (await credential.json()) as { credential: string };
	const app = { appId, credentialId: "", secret, auth: `Basic ${btoa(`${appId}:${secret}`)}` };
	const message = await acceptExport(app, learnerId, admin);
	const recorder = new RecordingDb();
	const bindings = recordingDatabases(recorder);
	const shard = recorder.over(shardDatabase(env, shardName));
	const cost: Cost = { chunks: 0, d1Calls: 0, rowsRead: 0, maxRowsReadPerChunk: 0, rowsWritten: 0 };
	for (let chunk = 0; chunk < 200; chunk++) {
		recorder.reset();
		const outcome = await runExport(envWith(bindings), shard, message.jobId, { bounds: CHUNK_BOUNDS, chunks: 1 });
		const read = recorder.statements.reduce((sum, statement) => sum + (statement.meta?.rows_read ?? 0), 0);
		cost.chunks++;
		cost.d1Calls += recorder.calls;
		cost.rowsRead += read;
		cost.maxRowsReadPerChunk = Math.max(cost.maxRowsReadPerChunk, read);
		cost.rowsWritten += recorder.statements.reduce((sum, statement) => sum + (statement.meta?.rows_written ?? 0), 0);
		if (outcome !== "continue") break;
	}
	const document = await call("GET", `/jobs/${message.jobId}/export`, { auth: app.auth });
	expect(document.status).toBe(200);
	const { document: exported } = (await document.json()) as { document: { registrations: unknown[] } };
	expect(exported.registrations).toHaveLength(REGISTRATIONS);
	expect(await objectKeys(`exports/${message.jobId}/`)).toEqual([`EXPORTS:exports/${message.jobId}/document.json`]);
	return cost;
}

describe("exports at scale", () => {
	it(`export a learner with ${REGISTRATIONS} registrations in bounded chunks, reading the same at two database sizes`, async () => {
		const costs: Record<string, Cost> = {};
		for (const others of [0, 90_000]) {
			const app = await createApp();
			const learnerId = uniqueValue("exported-at-scale");
			await seedLearnerRegistrations(app.appId, learnerId, REGISTRATIONS, "scale");
			if (others > 0) {
				await (await shardOf(app.appId))
					.prepare(
						`INSERT INTO registrations (app_id, id, course_id, learner_id, xapi_registration_id, created_at, updated_at)
						 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
						 SELECT ?1, 'other-reg-' || i, 'other', 'other-learner-' || (i % 1000), lower(hex(randomblob(16))), ?3, ?3 FROM n`,
					)
					.bind(app.appId, others, new Date().toISOString())
					.run();
			}
			costs[`${REGISTRATIONS + others} registrations`] = await exportCost(app.appId, learnerId);
		}
		const lines = Object.entries(costs).map(
			([size, cost]) =>
				`| ${size} | ${cost.chunks} | ${cost.d1Calls} | ${cost.rowsRead} | ${(cost.rowsRead / REGISTRATIONS).toFixed(2)} | ${cost.maxRowsReadPerChunk} | ${cost.rowsWritten} |`,
		);
		console.log(
			[
				`export of a learner with ${REGISTRATIONS} registrations (one tag each), one chunk per call (D1 meta):`,
				"| database | chunks | D1 calls | rows read | rows read per registration | max rows read per chunk | rows written |",
				...lines,
			].join("\n"),
		);
		const [small, large] = Object.values(costs);
		// 20 chunks of 500 registrations, one finding none, one of jobs, one finding none, and the last.
		expect(small?.chunks).toBe(24);
		expect(large).toEqual(small);
		// Bounded per chunk: 500 registrations and their tags, read once through the index and once as rows.
		expect(small?.maxRowsReadPerChunk).toBeLessThan(4 * CHUNK_BOUNDS.rows);
	}, 300_000);
});
