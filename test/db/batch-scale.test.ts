import { describe, expect, it } from "vitest";
import { call } from "../support/client";
import { expectNoContent } from "../support/expect";
import { createApp } from "../support/fixtures";
import { callRecorded, RecordingDb } from "../support/recording";
import { seedRegistrations, shardOf } from "../support/seed";

describe("PUT /learner/tags", () => {
	it(
		"stores 1000 ids x 100 tags in one request, as one D1 call of six statements",
		async () => {
			const app = await createApp();
			const ids = await seedRegistrations(app.appId, "scale", 1000);
			const tags = Array.from({ length: 100 }, (_, i) => `cohort-${i}`);
			// Warms the isolate's credential cache, so the measured request runs only its own statements.
			await callRecorded(new RecordingDb(), "GET", "/ping", { auth: app.auth });

			const recorder = new RecordingDb();
			// Workers clocks advance only across I/O; the request's D1 call is I/O, so the difference is real.
			const started = Date.now();
			const response = await callRecorded(recorder, "PUT", "/learner/tags", { auth: app.auth, body: { ids, tags } });
			const elapsed = Date.now() - started;
			await expectNoContent(response);
			console.log(`batch 1000x100: ${elapsed} ms, ${recorder.statements.length} D1 statements`);
			expect(recorder.calls).toBe(1);
			// The write guard, the stored-row count, the tag counts, the tags, the learners' last write, the unknown ids.
			expect(recorder.statements).toHaveLength(6);

			const stored = await (await shardOf(app.appId)).prepare(
				`SELECT (SELECT count(*) FROM learner_tags WHERE app_id = ?1) AS tags,
				        (SELECT count(*) FROM learner_tag_counts WHERE app_id = ?1 AND tag_count = 100) AS counts`,
			)
				.bind(app.appId)
				.first();
			expect(stored).toEqual({ tags: 100_000, counts: 1000 });
			for (const sample of [ids[0], ids[499], ids[999]]) {
				const read = await call("GET", `/learner/${encodeURIComponent(sample ?? "")}/tags`, { auth: app.auth });
				expect(read.status).toBe(200);
				expect(await read.json()).toEqual({ tags });
			}
		},
		120_000,
	);
});
