import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { type JobMessage, JobMessageSchema } from "../../src/jobs/contract";
import { openSecret, sealSecret } from "../../src/jobs/webhook-secret";
import { webhookRetryDelaySeconds } from "../../src/jobs/webhooks";
import { call } from "../support/client";
import { getJob, jobIdOf } from "../support/expect";
import { MANAGEMENT, type TestApp, createApp, enrol, realmUser, uniqueValue } from "../support/fixtures";
import { acceptApplicationDeletion, acceptErasure, acceptUpdate, deliver, drain, sentDuring } from "../support/queue";
import { findAnywhere } from "../support/scan";
import { findPlacement } from "../../src/db/applications";
import { settleNewEvents } from "../../src/db/job-events";
import { SHARDS, shardOf } from "../support/seed";
import { type SentDelivery, deliverEvents, deliveriesDuring, legacyVerifiedTimestamp, receiver, setWebhook, verifiedTimestamp } from "../support/webhooks";

/**
 * Job events (SPEC §8): every job that ends is POSTed as { id, type, createdDate, job } to its application's
 * webhook, signed (Learner-Service-Signature: t=<unix>,v1=<HMAC-SHA-256 of "<t>.<body>">), retried through the
 * queue with exponential backoff for at least 24 hours, with the delivery's state on the job resource.
 */

const HOUR = 60 * 60_000;

afterEach(() => {
	vi.restoreAllMocks();
});

/** Runs a job to its end as the queue would, keeping the delivery messages its end sends. */
async function runToEnd(message: JobMessage): Promise<SentDelivery[]> {
	const { deliveries } = await deliveriesDuring(() => drain(message));
	return deliveries;
}

interface Learner {
	id: string;
	email: string;
	firstName: string;
	lastName: string;
}

/** An application with a webhook and a learner whose details must never reach a payload. */
async function hookedApp(): Promise<{ app: TestApp; secret: string; learner: Learner }> {
	const app = await createApp();
	const secret = await setWebhook(app);
	const learner = { id: uniqueValue("hooked-learner"), email: `${uniqueValue("mail")}@example.com`, firstName: uniqueValue("First"), lastName: uniqueValue("Last") };
	await enrol(app, learner);
	return { app, secret, learner };
}

const notificationOf = async (app: TestApp, jobId: string) => (await getJob(app.auth, jobId)).notification;

describe("a job's end", () => {
	it("is POSTed, signed, to the application's webhook with the job resource, and nothing of the learner", async () => {
		const { app, secret, learner } = await hookedApp();
		const update = await acceptUpdate(app, { ...learner, firstName: "Renamed" });
		expect(await notificationOf(app, update.jobId)).toBeUndefined();

		const deliveries = await runToEnd(update);

		expect(deliveries).toEqual([{ body: { eventId: expect.stringMatching(/^evt_[0-9a-f]{32}$/), jobId: update.jobId } }]);
		expect(await notificationOf(app, update.jobId)).toEqual({ status: "pending", attempts: 0 });
		const hook = receiver(() => 204);
		const { delivery, deliveries: next } = await deliverEvents(deliveries);
		hook.restore();

		expect(delivery.result.explicitAcks).toEqual(delivery.ids);
		expect(next).toEqual([]);
		expect(hook.received).toHaveLength(1);
		const [request] = hook.received;
		expect(request?.method).toBe("POST");
		expect(request?.url).toBe("https://hooks.example.com/learner-service");
		expect(request?.headers.get("Content-Type")).toBe("application/json");
		// Standard Webhooks: the event id, the time and the signature over both and the body; no legacy header.
		expect(request?.headers.get("webhook-id")).toBe(deliveries[0]?.body.eventId);
		expect(request?.headers.get("webhook-signature")).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
		expect(request?.headers.get("Learner-Service-Signature")).toBeNull();
		const sentAt = await verifiedTimestamp(secret, request?.headers, request?.body ?? "");
		expect(sentAt).not.toBeNull();
		expect(Math.abs((sentAt ?? 0) - Date.now() / 1000)).toBeLessThan(60);
		const job = await getJob(app.auth, update.jobId);
		const { notification, ...resource } = job;
		expect(notification).toEqual({ status: "delivered", attempts: 1, lastStatus: 204 });
		expect(JSON.parse(request?.body ?? "")).toEqual({
			id: deliveries[0]?.body.eventId,
			type: "job.completed",
			createdDate: job.completedDate,
			job: resource,
		});
		for (const value of [learner.id, learner.email, learner.firstName, learner.lastName, "Renamed"]) {
			expect(request?.body).not.toContain(value);
		}
	});

	it("is signed over the event id and the time: another id or timestamp with the same body does not verify", async () => {
		const { app, secret, learner } = await hookedApp();
		const deliveries = await runToEnd(await acceptUpdate(app, { id: learner.id, firstName: "Renamed" }));
		const hook = receiver(() => 204);
		await deliverEvents(deliveries);
		hook.restore();
		const [request] = hook.received;
		if (!request) throw new Error("no delivery");
		expect(await verifiedTimestamp(secret, request.headers, request.body)).not.toBeNull();
		const replayed = (name: string, value: string) => {
			const headers = new Headers(request.headers);
			headers.set(name, value);
			return headers;
		};
		expect(await verifiedTimestamp(secret, replayed("webhook-id", "evt_00000000000000000000000000000000"), request.body)).toBeNull();
		const timestamp = Number(request.headers.get("webhook-timestamp"));
		expect(await verifiedTimestamp(secret, replayed("webhook-timestamp", String(timestamp + 60)), request.body)).toBeNull();
		expect(await verifiedTimestamp(secret, request.headers, request.body.replace("completed", "failed"))).toBeNull();
	});

	it("under a secret issued before Standard Webhooks (whsec_ and base64url) is signed both ways, so existing receivers keep working", async () => {
		const { app, learner } = await hookedApp();
		// A secret as PUT .../webhook issued them before: 32 random bytes, base64url.
		const bytes = crypto.getRandomValues(new Uint8Array(32));
		const legacy = `whsec_${btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}`;
		await env.DB.prepare("UPDATE webhooks SET secret = ?2 WHERE app_id = ?1")
			.bind(app.appId, await sealSecret(env.LEARNER_HASH_KEY, app.appId, legacy))
			.run();
		const deliveries = await runToEnd(await acceptUpdate(app, { id: learner.id, lastName: "Legacy" }));
		const hook = receiver(() => 204);
		await deliverEvents(deliveries);
		hook.restore();
		const [request] = hook.received;
		if (!request) throw new Error("no delivery");
		expect(await legacyVerifiedTimestamp(legacy, request.headers.get("Learner-Service-Signature"), request.body)).not.toBeNull();
		expect(request.headers.get("Learner-Service-Event-Id")).toBe(request.headers.get("webhook-id"));
		// The same 32 bytes are the Standard Webhooks key: as docs/jobs-and-webhooks.md says, whsec_ + their standard base64.
		const converted = `whsec_${btoa(String.fromCharCode(...bytes))}`;
		expect(await verifiedTimestamp(converted, request.headers, request.body)).not.toBeNull();
	});

	it("that fails is retried with growing delays, the same event each time, until the webhook answers 2xx", async () => {
		const { app, secret, learner } = await hookedApp();
		const update = await acceptUpdate(app, learner);
		let pending = await runToEnd(update);
		const eventId = pending[0]?.body.eventId;
		const answers = [500, 503, 404, 200];
		const hook = receiver((n) => answers[n] ?? 200);
		const delays: (number | undefined)[] = [];
		for (let attempt = 1; pending.length > 0; attempt++) {
			const { deliveries } = await deliverEvents(pending);
			pending = deliveries;
			delays.push(...deliveries.map((delivery) => delivery.delaySeconds));
			if (attempt < answers.length) {
				expect(await notificationOf(app, update.jobId)).toEqual({ status: "pending", attempts: attempt, lastStatus: answers[attempt - 1] });
			}
		}
		hook.restore();

		expect(await notificationOf(app, update.jobId)).toEqual({ status: "delivered", attempts: 4, lastStatus: 200 });
		// As docs/jobs-and-webhooks.md publishes it: the first retry after 30 s, then doubling.
		expect(delays).toEqual([30, 60, 120]);
		// The same event, signed afresh each time.
		const bodies = hook.received.map((request) => JSON.parse(request.body) as { id: string });
		expect(new Set(bodies.map((body) => body.id))).toEqual(new Set([eventId]));
		for (const request of hook.received) {
			expect(await verifiedTimestamp(secret, request.headers, request.body)).not.toBeNull();
		}
	});

	it("is retried for at least 24 hours, then given up", async () => {
		const schedule = Array.from({ length: 40 }, (_, i) => webhookRetryDelaySeconds(i + 1));
		// Waits only grow, and never beyond what a queue message may be delayed (12 hours).
		expect(schedule).toEqual([...schedule].sort((a, b) => a - b));
		expect(Math.max(...schedule)).toBeLessThanOrEqual(12 * 60 * 60);

		const { app } = await hookedApp();
		const update = await acceptUpdate(app, { id: (await hookedLearner(app)).id });
		const pending = await runToEnd(update);
		const shard = await shardOf(app.appId);
		const ageEvent = (ms: number) =>
			shard.prepare("UPDATE jobs SET event_at = ?2 WHERE id = ?1").bind(update.jobId, new Date(Date.now() - ms).toISOString()).run();
		const hook = receiver(() => 503);

		await ageEvent(23.5 * HOUR);
		const { deliveries: again } = await deliverEvents(pending);
		expect(again).toHaveLength(1);
		expect(await notificationOf(app, update.jobId)).toEqual({ status: "pending", attempts: 1, lastStatus: 503 });

		await ageEvent(24 * HOUR + 1000);
		const { deliveries: after } = await deliverEvents(again);
		hook.restore();
		expect(after).toEqual([]);
		expect(await notificationOf(app, update.jobId)).toEqual({ status: "failed", attempts: 2, lastStatus: 503 });
		expect(hook.received).toHaveLength(2);
	});

	it("records why an attempt got no answer at all", async () => {
		const { app, learner } = await hookedApp();
		const update = await acceptUpdate(app, learner);
		const pending = await runToEnd(update);
		const hook = receiver(() => new TypeError("fetch failed"));
		const { deliveries } = await deliverEvents(pending);
		hook.restore();
		expect(deliveries).toHaveLength(1);
		expect(await notificationOf(app, update.jobId)).toEqual({ status: "pending", attempts: 1, lastError: "Connection failed" });
	});

	it("sends nothing and shows no notification when the application has no webhook", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("unhooked");
		await enrol(app, learnerId);
		const update = await acceptUpdate(app, { id: learnerId, firstName: "X" });
		expect(await runToEnd(update)).toEqual([]);
		const job = await getJob(app.auth, update.jobId);
		expect(job.status).toBe("completed");
		expect(job).not.toHaveProperty("notification");
	});

	it("of a job that failed is a job.failed event", async () => {
		const { app, secret, learner } = await hookedApp();
		const update = await acceptUpdate(app, learner);
		// Its retries spent: the dead-letter queue's consumer fails it.
		const { deliveries } = await deliveriesDuring(() => deliver([update], { queue: env.JOBS_DEAD_LETTER_QUEUE }));
		expect(deliveries).toHaveLength(1);
		const hook = receiver(() => 200);
		await deliverEvents(deliveries);
		hook.restore();
		const body = hook.received[0]?.body ?? "";
		expect(await verifiedTimestamp(secret, hook.received[0]?.headers, body)).not.toBeNull();
		expect(JSON.parse(body)).toMatchObject({ type: "job.failed", job: { id: update.jobId, status: "failed" } });
	});

	it("of an erasure and of the application's deletion reach the webhook too", async () => {
		const { app, learner } = await hookedApp();
		const erasure = await acceptErasure(app, learner.id, await realmUser("admin"));
		const hook = receiver(() => 200);
		await deliverEvents(await runToEnd(erasure));
		const deletion = await acceptApplicationDeletion(app.appId);
		// The application's credentials are gone, its data too; its webhook still hears of the deletion.
		await deliverEvents(await runToEnd(deletion));
		hook.restore();
		const events = hook.received.map((request) => JSON.parse(request.body) as { type: string; job: { id: string; type: string } });
		expect(events.map((event) => [event.type, event.job.type, event.job.id])).toEqual([
			["job.completed", "deleteAllLearnerData", erasure.jobId],
			["job.completed", "deleteApplication", deletion.jobId],
		]);
		for (const request of hook.received) expect(request.body).not.toContain(learner.id);
		expect((await getJob(MANAGEMENT, deletion.jobId)).notification).toEqual({ status: "delivered", attempts: 1, lastStatus: 200 });
	});

	it("of a bulk erasure is one event, for the bulk job (none for each learner)", async () => {
		const { app } = await hookedApp();
		const ids = [uniqueValue("bulk-a"), uniqueValue("bulk-b")];
		for (const id of ids) await enrol(app, id);
		const admin = await realmUser("admin");
		const { result, sent } = await sentDuring(() =>
			call("POST", `/learners/delete-information?userEmail=${encodeURIComponent(admin)}`, { auth: app.auth, body: { ids } }),
		);
		expect(result.status).toBe(204);
		const deliveries = await runToEnd(JobMessageSchema.parse(sent[0]?.body));
		expect(deliveries).toEqual([{ body: { eventId: expect.any(String), jobId: jobIdOf(result, app.appId) } }]);
	});

	it("is given up at once when the webhook was removed meanwhile", async () => {
		const { app, learner } = await hookedApp();
		const update = await acceptUpdate(app, learner);
		const pending = await runToEnd(update);
		expect((await call("DELETE", `/appManagement/${app.appId}/webhook`, { auth: MANAGEMENT })).status).toBe(204);
		const hook = receiver(() => 200);
		const { deliveries } = await deliverEvents(pending);
		hook.restore();
		expect(hook.received).toEqual([]);
		expect(deliveries).toEqual([]);
		expect(await notificationOf(app, update.jobId)).toEqual({ status: "failed", attempts: 1, lastError: "The webhook was removed" });
	});

	it("is given up at once, without a request, when the stored URL is one the destination rule refuses", async () => {
		const { app, learner } = await hookedApp();
		const update = await acceptUpdate(app, learner);
		const pending = await runToEnd(update);
		// As a row stored before the rule existed holds it (SPEC §8: https: to a public destination only).
		await env.DB.prepare("UPDATE webhooks SET url = ?2 WHERE app_id = ?1").bind(app.appId, "https://10.0.0.5:8443/hook").run();
		const hook = receiver(() => 200);
		const { deliveries } = await deliverEvents(pending);
		hook.restore();
		expect(hook.received).toEqual([]);
		expect(deliveries).toEqual([]);
		expect(await notificationOf(app, update.jobId)).toEqual({
			status: "failed",
			attempts: 1,
			lastError:
				"Not sent: url must name a public destination: 10.0.0.5 is a private address (10.0.0.0/8); set the webhook again (PUT) with an allowed URL",
		});
	});

	it("is delivered once however often its message arrives", async () => {
		const { app, learner } = await hookedApp();
		const update = await acceptUpdate(app, learner);
		const pending = await runToEnd(update);
		const hook = receiver(() => 200);
		await deliverEvents(pending);
		await deliverEvents(pending);
		hook.restore();
		expect(hook.received).toHaveLength(1);
		expect(await notificationOf(app, update.jobId)).toEqual({ status: "delivered", attempts: 1, lastStatus: 200 });
	});
});

describe("the webhook set again", () => {
	it("signs every delivery from then on with the new secret, and none with the one it replaced", async () => {
		const { app, secret: replaced, learner } = await hookedApp();
		const secret = await setWebhook(app);
		expect(secret).not.toBe(replaced);
		const update = await acceptUpdate(app, learner);
		const pending = await runToEnd(update);
		const hook = receiver(() => 200);
		await deliverEvents(pending);
		hook.restore();
		const [request] = hook.received;
		expect(await verifiedTimestamp(secret, request?.headers, request?.body ?? "")).not.toBeNull();
		expect(await verifiedTimestamp(replaced, request?.headers, request?.body ?? "")).toBeNull();
	});
});

describe("one delivery attempt arriving twice", () => {
	it("is recorded once when the webhook fails both times, with one retry scheduled", async () => {
		const { app, learner } = await hookedApp();
		const update = await acceptUpdate(app, learner);
		const pending = await runToEnd(update);
		const hook = receiver(() => 500);
		const [first, second] = await Promise.all([deliverEvents(pending), deliverEvents(pending)]);
		hook.restore();
		expect(await notificationOf(app, update.jobId)).toEqual({ status: "pending", attempts: 1, lastStatus: 500 });
		expect([...first.deliveries, ...second.deliveries]).toHaveLength(1);
	});
});

describe("a realm job's end", () => {
	it("of a move reaches the moved application's webhook", async () => {
		const { app, secret } = await hookedApp();
		const from = (await findPlacement(env.DB, app.appId))?.shard;
		const to = SHARDS.find((shard) => shard.region === "default" && shard.name !== from)?.name;
		const { result, sent } = await sentDuring(() =>
			call("POST", `/appManagement/applications/${app.appId}/move`, { auth: MANAGEMENT, body: { shard: to } }),
		);
		expect(result.status).toBe(204);
		const move = JobMessageSchema.parse(sent[0]?.body);
		const deliveries = await runToEnd(move);
		expect(deliveries).toEqual([{ body: { eventId: expect.any(String), jobId: move.jobId } }]);
		const hook = receiver(() => 200);
		await deliverEvents(deliveries);
		hook.restore();
		const body = hook.received[0]?.body ?? "";
		expect(await verifiedTimestamp(secret, hook.received[0]?.headers, body)).not.toBeNull();
		expect(JSON.parse(body)).toMatchObject({ type: "job.completed", job: { id: move.jobId, type: "moveApplication", status: "completed" } });
		expect((await getJob(MANAGEMENT, move.jobId)).notification).toEqual({ status: "delivered", attempts: 1, lastStatus: 200 });
	});

	it("of a realm-wide erasure is told to each application with a webhook, as its own erasure's end", async () => {
		const learnerId = uniqueValue("realm-hooked");
		const hooked = await createApp();
		await setWebhook(hooked);
		const plain = await createApp();
		for (const app of [hooked, plain]) await enrol(app, learnerId);
		const admin = await realmUser("admin");
		const { result, sent } = await sentDuring(() =>
			call("POST", `/appManagement/learners/${learnerId}/delete-information?userEmail=${encodeURIComponent(admin)}`, { auth: MANAGEMENT }),
		);
		expect(result.status).toBe(204);
		const deliveries: SentDelivery[] = [];
		for (const message of sent) deliveries.push(...(await runToEnd(JobMessageSchema.parse(message.body))));
		// One: the hooked application's erasure. The other application has no webhook; the realm job no application.
		expect(deliveries).toHaveLength(1);
		const hook = receiver(() => 200);
		await deliverEvents(deliveries);
		hook.restore();
		const event = JSON.parse(hook.received[0]?.body ?? "") as { type: string; job: { id: string; type: string } };
		expect(event.type).toBe("job.completed");
		expect(event.job.type).toBe("deleteAllLearnerData");
		expect(event.job.id.startsWith(`${hooked.appId}.`)).toBe(true);
		expect(hook.received[0]?.body).not.toContain(learnerId);
	});
});

/** A learner of the application (for tests that need one more). */
async function hookedLearner(app: TestApp): Promise<{ id: string }> {
	const id = uniqueValue("hooked-extra");
	await enrol(app, id);
	return { id };
}

describe("the sweeper", () => {
	const sweepAt = async (time: number) => {
		const controller = createScheduledController({ scheduledTime: new Date(time), cron: "*/5 * * * *" });
		const { deliveries } = await deliveriesDuring(() => sentDuring(() => worker.scheduled(controller, env)));
		return deliveries;
	};

	it("starts the delivery of an event nobody looked at, and sends again one whose message was lost", async () => {
		const { app, learner } = await hookedApp();
		const update = await acceptUpdate(app, learner);
		await runToEnd(update);
		const shard = await shardOf(app.appId);
		// As if the consumer died before looking at the event.
		await shard
			.prepare("UPDATE jobs SET notify_status = 'new', notify_due_at = ?2 WHERE id = ?1")
			.bind(update.jobId, new Date(Date.now() - 2 * 60_000).toISOString())
			.run();
		const looked = (await sweepAt(Date.now())).filter((delivery) => delivery.body.jobId === update.jobId);
		expect(looked).toHaveLength(1);
		expect(await notificationOf(app, update.jobId)).toEqual({ status: "pending", attempts: 0 });

		// As if that message was lost: its attempt is long overdue.
		await shard
			.prepare("UPDATE jobs SET notify_due_at = ?2 WHERE id = ?1")
			.bind(update.jobId, new Date(Date.now() - 11 * 60_000).toISOString())
			.run();
		const resent = (await sweepAt(Date.now())).filter((delivery) => delivery.body.jobId === update.jobId);
		expect(resent).toEqual(looked);
		// Sent again once: the next sweep leaves it to its message.
		expect((await sweepAt(Date.now())).filter((delivery) => delivery.body.jobId === update.jobId)).toEqual([]);
	});
});

describe("an event two runners look at at once", () => {
	it("gets one delivery message: the look that settles it first sends it, the other sends nothing", async () => {
		const { app, learner } = await hookedApp();
		const update = await acceptUpdate(app, learner);
		await runToEnd(update);
		const shard = await shardOf(app.appId);
		// As if the consumer ending the job and the sweeper had both just found the event new.
		await shard.prepare("UPDATE jobs SET notify_status = 'new' WHERE id = ?1").bind(update.jobId).run();
		const row = await shard.prepare("SELECT event_id FROM jobs WHERE id = ?1").bind(update.jobId).first<{ event_id: string }>();
		const event = { jobId: update.jobId, appId: app.appId, eventId: row?.event_id ?? "" };
		const now = new Date().toISOString();
		const [one, two] = await Promise.all([settleNewEvents(shard, [event], () => true, now), settleNewEvents(shard, [event], () => true, now)]);
		expect([...one, ...two]).toEqual([event]);
		// And a look after both settles nothing more.
		expect(await settleNewEvents(shard, [event], () => true, now)).toEqual([]);
	});
});

describe("the signing secret", () => {
	it("is stored sealed: no database holds it in the clear, and it opens only for its own application", async () => {
		const app = await createApp();
		const secret = await setWebhook(app);
		expect((await findAnywhere([secret, secret.slice("whsec_".length)])).findings).toEqual([]);
		const sealed = await sealSecret(env.LEARNER_HASH_KEY, app.appId, secret);
		expect(await openSecret(env.LEARNER_HASH_KEY, app.appId, sealed)).toBe(secret);
		expect(await openSecret(env.LEARNER_HASH_KEY, `${app.appId}X`, sealed)).toBeNull();
	});
});
