import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { type JobMessage, JobMessageSchema } from "../../src/jobs/contract";
import { apiRequest, fetchWithBindings } from "../support/client";
import { getJob, jobIdOf } from "../support/expect";
import { appOnShard, createApp, enrol, learnerOn, realmUser, type TestApp, uniqueValue } from "../support/fixtures";
import { acceptUpdate, drain, sentDuring, type SentMessage, withSendsFailing } from "../support/queue";
import { SHARDS, shardOf } from "../support/seed";

// SPEC §11: a job never stays queued or running forever. The sweeper runs on a Cron Trigger (wrangler.toml,
// every 5 minutes) and sends again the message of any job nobody attended to for 10 minutes.

const MINUTE = 60_000;

/** Runs the Worker's scheduled handler as the Cron Trigger would at `time`, capturing what it sends. */
async function sweepAt(time: number): Promise<SentMessage[]> {
	const controller = createScheduledController({ scheduledTime: new Date(time), cron: "*/5 * * * *" });
	const { sent } = await sentDuring(() => worker.scheduled(controller, env));
	return sent;
}

/** Calls a route whose job message cannot be sent. */
const callWithLostSend = (method: string, path: string, app: TestApp, body?: unknown) =>
	withSendsFailing(() => fetchWithBindings(apiRequest(method, path, { auth: app.auth, body }), {}));

/** The messages sent for these jobs, in any order. */
const messagesFor = (sent: SentMessage[], jobIds: string[]) =>
	sent.map((message) => JobMessageSchema.parse(message.body)).filter((message) => jobIds.includes(message.jobId));

describe("a job whose message was lost", () => {
	it("is still accepted (the job is durable), then sent by the next sweep and run", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const registrationId = await enrol(app, { id: learnerId, email: "old@example.com" });

		const response = await callWithLostSend("POST", `/learner/${encodeURIComponent(learnerId)}/updateInfo`, app, {
			id: learnerId,
			email: "new@example.com",
		});
		expect(response.status).toBe(204);
		const jobId = jobIdOf(response, app.appId);
		expect((await getJob(app.auth, jobId)).status).toBe("queued");

		const [message, ...rest] = messagesFor(await sweepAt(Date.now()), [jobId]);
		expect(rest).toEqual([]);
		expect(message).toEqual({ type: "updateLearnerInfo", jobId });
		await drain(message ?? { type: "updateLearnerInfo", jobId });
		expect((await getJob(app.auth, jobId)).status).toBe("completed");
		expect(await learnerOn(app, registrationId)).toEqual({ id: learnerId, email: "new@example.com" });
	});

	it("no longer blocks updates when it was an erasure: the sweep sends it and the erasure completes", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId, email: "erase-me@example.com" });
		const path = `/learner/${encodeURIComponent(learnerId)}/delete-information?userEmail=${encodeURIComponent(await realmUser("admin"))}`;
		const erasure = await callWithLostSend("POST", path, app);
		expect(erasure.status).toBe(204);
		const jobId = jobIdOf(erasure, app.appId);

		const [message] = messagesFor(await sweepAt(Date.now()), [jobId]);
		await drain(message ?? { type: "deleteAllLearnerData", jobId });

		expect((await getJob(app.auth, jobId)).status).toBe("completed");
		const update = await callWithLostSend("POST", `/learner/${encodeURIComponent(learnerId)}/updateInfo`, app, { id: learnerId });
		expect(update.status).toBe(404);
	});
});

describe("an unfinished job nobody attends to", () => {
	it("is left alone while fresh, and sent again once 10 minutes have passed without progress", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		// Accepted and sent, but the message never arrives: the worker that took it died.
		const message = await acceptUpdate(app, { id: learnerId, lastName: "Swept" });

		expect(messagesFor(await sweepAt(Date.now() + 5 * MINUTE), [message.jobId])).toEqual([]);
		expect(messagesFor(await sweepAt(Date.now() + 11 * MINUTE), [message.jobId])).toEqual([message]);
		// Just sent again: not again until another 10 minutes pass.
		expect(messagesFor(await sweepAt(Date.now() + 12 * MINUTE), [message.jobId])).toEqual([]);
	});

	it("fails after its message was sent again six times without the job running, and drops its payload", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		const message = await acceptUpdate(app, { id: learnerId, email: "never@example.com" });

		let time = Date.now();
		for (let resend = 1; resend <= 6; resend++) {
			time += 11 * MINUTE;
			expect(messagesFor(await sweepAt(time), [message.jobId])).toEqual([message]);
		}
		time += 11 * MINUTE;
		expect(messagesFor(await sweepAt(time), [message.jobId])).toEqual([]);

		const job = await getJob(app.auth, message.jobId);
		expect(job).toMatchObject({ status: "failed", message: "Lost: its message was sent again 6 times without the job being run" });
		const row = await (await shardOf(app.appId)).prepare("SELECT payload, learner_id FROM jobs WHERE id = ?1").bind(message.jobId).first();
		expect(row).toEqual({ payload: null, learner_id: null });
	});

	it("completes at once, dropping its payload, when it is an update whose learner has no registration left", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const registrationId = await enrol(app, { id: learnerId });
		const message = await acceptUpdate(app, { id: learnerId, email: "orphan@example.com" });
		const removed = await fetchWithBindings(
			apiRequest("DELETE", `/registrations/${encodeURIComponent(registrationId)}`, { auth: app.auth }),
			{},
		);
		expect(removed.status).toBe(204);

		expect(messagesFor(await sweepAt(Date.now() + 11 * MINUTE), [message.jobId])).toEqual([]);
		expect(await getJob(app.auth, message.jobId)).toMatchObject({ status: "completed", registrationsAffected: 0 });
		const row = await (await shardOf(app.appId)).prepare("SELECT payload, learner_id FROM jobs WHERE id = ?1").bind(message.jobId).first();
		expect(row).toEqual({ payload: null, learner_id: null });
	});

	it("is sent again whichever shard holds it: one sweep covers every shard", async () => {
		const apps = await Promise.all(SHARDS.map((shard) => appOnShard(shard.name)));
		const messages: JobMessage[] = [];
		for (const app of apps) {
			const learnerId = uniqueValue("learner");
			await enrol(app, { id: learnerId });
			messages.push(await acceptUpdate(app, { id: learnerId, lastName: "Swept" }));
		}
		const jobIds = messages.map((message) => message.jobId);

		expect(messagesFor(await sweepAt(Date.now() + 5 * MINUTE), jobIds)).toEqual([]);
		const resent = messagesFor(await sweepAt(Date.now() + 11 * MINUTE), jobIds);
		expect(resent).toHaveLength(messages.length);
		expect(resent).toEqual(expect.arrayContaining(messages));
	});
});
