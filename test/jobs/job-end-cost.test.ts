import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { clearWebhookHint } from "../../src/db/app-storage";
import { call, envWith } from "../support/client";
import { getJob } from "../support/expect";
import { MANAGEMENT, type TestApp, createApp, enrol, uniqueValue } from "../support/fixtures";
import { acceptUpdate, drain, sentDuring } from "../support/queue";
import { RecordingDb, recordingDatabases } from "../support/recording";
import { shardOf } from "../support/seed";

/**
 * What a job's end costs (SPEC §6): without a webhook, no more D1 calls than before webhooks existed — a one-chunk
 * update is three (its application's placement, the job's read, its chunk); with one, three more for the look at
 * its events — and a webhook set a moment ago is never missed.
 */

/** Runs the update through the consumer, counting every D1 call its message makes; the delivery messages it sends. */
async function runCounted(app: TestApp, learnerId: string): Promise<{ calls: number; deliveries: unknown[] }> {
	const update = await acceptUpdate(app, { id: learnerId, firstName: uniqueValue("name") });
	const recorder = new RecordingDb();
	const deliveries: unknown[] = [];
	const sends = env.WEBHOOK_DELIVERIES;
	const original = sends.sendBatch.bind(sends);
	sends.sendBatch = async (messages) => {
		deliveries.push(...Array.from(messages, (message) => message.body));
		return original([]).catch(() => undefined as never);
	};
	try {
		await drain(update, { env: envWith(recordingDatabases(recorder)) });
	} finally {
		sends.sendBatch = original;
	}
	expect((await getJob(app.auth, update.jobId)).status).toBe("completed");
	return { calls: recorder.calls, deliveries };
}

describe("a job's end", () => {
	it("costs no D1 call for events when the application has no webhook: a one-chunk update is placement, read and chunk", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("no-hook");
		await enrol(app, learnerId);
		expect(await runCounted(app, learnerId)).toEqual({ calls: 3, deliveries: [] });
	});

	it("looks at its events where the application has a webhook, and delivers one set a moment before the job ended", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("hooked");
		await enrol(app, learnerId);
		await runCounted(app, learnerId);
		const put = await call("PUT", `/appManagement/${app.appId}/webhook`, { auth: MANAGEMENT, body: { url: "https://hooks.example.com/a" } });
		expect(put.status).toBe(200);
		const counted = await runCounted(app, learnerId);
		// Placement, read and chunk, then the events (one call), the control database's webhook (one), settling them (one).
		expect(counted.calls).toBe(6);
		expect(counted.deliveries).toEqual([{ eventId: expect.stringMatching(/^evt_/), jobId: expect.any(String) }]);
	});

	it("stops looking once a look found no webhook, unless one was set while it looked", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("unhooked");
		await enrol(app, learnerId);
		const hint = async () =>
			(await (await shardOf(app.appId)).prepare("SELECT webhook_hint, webhook_epoch FROM app_storage WHERE app_id = ?1").bind(app.appId).first()) as {
				webhook_hint: number;
				webhook_epoch: number;
			};
		// A webhook set and removed: the next job end looks, finds none, and stops the looking.
		expect((await call("PUT", `/appManagement/${app.appId}/webhook`, { auth: MANAGEMENT, body: { url: "https://hooks.example.com/b" } })).status).toBe(200);
		expect((await call("DELETE", `/appManagement/${app.appId}/webhook`, { auth: MANAGEMENT })).status).toBe(204);
		expect(await hint()).toEqual({ webhook_hint: 1, webhook_epoch: 1 });
		expect((await runCounted(app, learnerId)).deliveries).toEqual([]);
		expect(await hint()).toEqual({ webhook_hint: 0, webhook_epoch: 1 });
		expect((await runCounted(app, learnerId)).calls).toBe(3);
		// A look that began before a webhook was set does not clear it.
		const { result } = await sentDuring(() =>
			call("PUT", `/appManagement/${app.appId}/webhook`, { auth: MANAGEMENT, body: { url: "https://hooks.example.com/c" } }),
		);
		expect(result.status).toBe(200);
		await clearWebhookHint(await shardOf(app.appId), app.appId, 1);
		expect(await hint()).toEqual({ webhook_hint: 1, webhook_epoch: 2 });
		expect((await runCounted(app, learnerId)).deliveries).toHaveLength(1);
	});
});
