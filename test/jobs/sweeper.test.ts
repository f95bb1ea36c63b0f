import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { markApplicationDeleted } from "../../src/db/applications";
import worker from "../../src/index";
import { type JobMessage, JobMessageSchema } from "../../src/jobs/contract";
import { type SweepReport, sweep } from "../../src/jobs/sweeper";
import { shardDatabase } from "../../src/shards";
import { apiRequest, envWith, fetchWithBindings } from "../support/client";
import { getJob, jobIdOf, logsOf } from "../support/expect";
import { D1_ERRORS, faultyD1, faultyDatabases } from "../support/faulty-d1";
import { appOnShard, createApp, enrol, learnerOn, realmUser, type TestApp, uniqueValue } from "../support/fixtures";
import { acceptUpdate, drain, sentDuring, type SentMessage, withSendsFailing } from "../support/queue";
import { SHARDS, shardOf } from "../support/seed";
import { deliveriesDuring, setWebhook } from "../support/webhooks";

// SPEC §11: a job never stays queued or running forever. The sweeper runs on a Cron Trigger (wrangler.toml,
// every 5 minutes) and sends again the message of any job nobody attended to for 10 minutes.

const MINUTE = 60_000;

afterEach(() => {
	vi.restoreAllMocks();
});

/** Runs the Worker's scheduled handler as the Cron Trigger would at `time`, capturing what it sends. */
async function sweepAt(time: number): Promise<SentMessage[]> {
	const controller = createScheduledController({ scheduledTime: new Date(time), cron: "*/5 * * * *" });
	const { sent } = await sentDuring(() => worker.scheduled(controller, env));
	return sent;
}

/** Calls a route whose job message cannot be sent. */
const callWithLostSend = (method: string, path: string, app: TestApp, body?: unknown) =>
	withSendsFailing(() => fetchWithBindings(apiRequest(method, path, { auth: app.auth, body }), {}));

/** The application's deletion jobs on its shard. */
async function deletionJobsOf(appId: string): Promise<{ id: string; status: string }[]> {
	const { results } = await (await shardOf(appId))
		.prepare("SELECT id, status FROM jobs WHERE app_id = ?1 AND type = 'deleteApplication'")
		.bind(appId)
		.all<{ id: string; status: string }>();
	return results;
}

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

	it("is a bulk erasure's: the bulk job alone is sent again, never its learners' erasures, which it runs itself", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learners = [uniqueValue("bulk-swept"), uniqueValue("bulk-swept")];
		for (const learnerId of learners) await enrol(app, { id: learnerId });
		const accepted = await callWithLostSend("POST", `/learners/delete-information?userEmail=${encodeURIComponent(admin)}`, app, { ids: learners });
		expect(accepted.status).toBe(204);
		const bulk = jobIdOf(accepted, app.appId);
		const children = (
			await (await shardOf(app.appId)).prepare("SELECT id FROM jobs WHERE parent_id = ?1").bind(bulk).all<{ id: string }>()
		).results.map((row) => row.id);
		expect(children).toHaveLength(2);

		const sent = await sweepAt(Date.now() + 11 * MINUTE);
		expect(messagesFor(sent, [bulk, ...children])).toEqual([{ type: "deleteLearnersData", jobId: bulk }]);
		await drain({ type: "deleteLearnersData", jobId: bulk });
		expect((await getJob(app.auth, bulk)).status).toBe("completed");
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

// SPEC §11: one failing database never stops work on the others. Each database is swept on its own; one that fails
// is logged by its binding name and listed in the report, and the sweep goes on.
describe("a sweep while one shard fails every call", () => {
	/** The Worker's env with these databases (binding names) failing every call, as an unavailable D1 does. */
	const withFailing = (...bindings: string[]) =>
		envWith(
			Object.fromEntries(
				bindings.map((binding) => [
					binding,
					faultyD1(() => ({ message: D1_ERRORS.networkLost, when: "before" }), binding === "DB" ? env.DB : shardDatabase(env, binding)),
				]),
			),
		);

	/** Sweeps now with `sweepEnv`, keeping the job messages and webhook deliveries it sends and its log lines. */
	async function sweepNow(sweepEnv: Env) {
		let sent: SentMessage[] = [];
		let report: SweepReport | undefined;
		const { deliveries, result: lines } = await deliveriesDuring(() =>
			logsOf(async () => {
				({ result: report, sent } = await sentDuring(() => sweep(sweepEnv, Date.now())));
			}),
		);
		if (!report) throw new Error("the sweep answered no report");
		return { report, sent, deliveries, lines };
	}

	/** An update accepted on that shard whose message was lost 11 minutes ago: stale. */
	async function staleUpdateOn(shard: string): Promise<JobMessage> {
		const app = await appOnShard(shard);
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		const message = await acceptUpdate(app, { id: learnerId, lastName: "Swept" });
		await (await shardOf(app.appId))
			.prepare("UPDATE jobs SET touched_at = ?2 WHERE id = ?1")
			.bind(message.jobId, new Date(Date.now() - 11 * MINUTE).toISOString())
			.run();
		return message;
	}

	it("still sends again a stale job on the other shards, and reports and logs the failed shard by its binding only", async () => {
		const lost = await staleUpdateOn("SHARD_1");
		const onShard2 = await staleUpdateOn("SHARD_2");
		const onEu = await staleUpdateOn("SHARD_EU_1");

		const { report, sent, lines } = await sweepNow(withFailing("SHARD_1"));

		expect(messagesFor(sent, [lost.jobId, onShard2.jobId, onEu.jobId])).toEqual(expect.arrayContaining([onShard2, onEu]));
		expect(messagesFor(sent, [lost.jobId])).toEqual([]);
		expect(report.failedDatabases).toEqual(["SHARD_1"]);
		expect(lines).toContainEqual({
			level: "error",
			msg: "sweep: database failed",
			database: "SHARD_1",
			step: "jobs",
			error: "Error",
			detail: D1_ERRORS.networkLost,
		});
		expect(JSON.stringify(lines)).not.toContain("learner-");
		// Back the next time: the job it holds is sent again then.
		const healthy = await sweepNow(env);
		expect(messagesFor(healthy.sent, [lost.jobId])).toEqual([lost]);
		expect(healthy.report.failedDatabases).toEqual([]);
	});

	it("still starts the delivery of an event nobody looked at on another shard", async () => {
		const app = await appOnShard("SHARD_EU_1");
		await setWebhook(app);
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		const update = await acceptUpdate(app, { id: learnerId, lastName: "Ended" });
		await deliveriesDuring(() => drain(update));
		// As if the consumer died before looking at the event.
		await (await shardOf(app.appId))
			.prepare("UPDATE jobs SET notify_status = 'new', notify_due_at = ?2 WHERE id = ?1")
			.bind(update.jobId, new Date(Date.now() - 2 * MINUTE).toISOString())
			.run();

		const { report, deliveries } = await sweepNow(withFailing("SHARD_1"));

		expect(deliveries.filter((delivery) => delivery.body.jobId === update.jobId)).toEqual([
			{ body: { eventId: expect.stringMatching(/^evt_[0-9a-f]{32}$/), jobId: update.jobId } },
		]);
		expect(report.eventsDispatched).toBeGreaterThanOrEqual(1);
		expect(report.failedDatabases).toEqual(["SHARD_1"]);
	});

	it("still finishes the application deletions no shard recorded on the other shards, and the failed shard's once it is back", async () => {
		// Both requests failed between the control database and the shard; the one on the failing shard comes first.
		const stuck = await appOnShard("SHARD_1");
		const other = await appOnShard("SHARD_2");
		await markApplicationDeleted(env.DB, stuck.appId, new Date(Date.now() - 12 * MINUTE).toISOString());
		await markApplicationDeleted(env.DB, other.appId, new Date(Date.now() - 11 * MINUTE).toISOString());

		const { report, sent } = await sweepNow(withFailing("SHARD_1"));

		const [recorded] = await deletionJobsOf(other.appId);
		expect(recorded?.status).toBe("queued");
		expect(messagesFor(sent, [recorded?.id ?? ""])).toEqual([{ type: "deleteApplication", jobId: recorded?.id }]);
		expect(report.deletionsRecorded).toBe(1);
		expect(report.failedDatabases).toEqual(["SHARD_1"]);
		expect(await deletionJobsOf(stuck.appId)).toEqual([]);

		const healthy = await sweepNow(env);
		expect(healthy.report.deletionsRecorded).toBe(1);
		expect(await deletionJobsOf(stuck.appId)).toEqual([{ id: expect.stringMatching(new RegExp(`^${stuck.appId}\\.`)), status: "queued" }]);
	});

	it("still deletes console sign-outs past their expiry", async () => {
		const sessionId = uniqueValue("session");
		await env.DB.prepare("INSERT INTO console_sign_outs (session_id, expires_at) VALUES (?1, ?2)")
			.bind(sessionId, new Date(Date.now() - MINUTE).toISOString())
			.run();

		const { report } = await sweepNow(withFailing("SHARD_1"));

		expect(await env.DB.prepare("SELECT 1 FROM console_sign_outs WHERE session_id = ?1").bind(sessionId).first()).toBeNull();
		expect(report.signOutsExpired).toBeGreaterThanOrEqual(1);
		expect(report.failedDatabases).toEqual(["SHARD_1"]);
	});
});

describe("a sweep while the control database fails every call", () => {
	it("still sends again the shards' stale jobs, and reports DB", async () => {
		const app = await appOnShard("SHARD_2");
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		const message = await acceptUpdate(app, { id: learnerId, lastName: "Swept" });
		const failing = envWith({ DB: faultyD1(() => ({ message: D1_ERRORS.overloaded, when: "before" })) });

		const { result: report, sent } = await sentDuring(() => sweep(failing, Date.now() + 11 * MINUTE));

		expect(messagesFor(sent, [message.jobId])).toEqual([message]);
		expect(report.failedDatabases).toContain("DB");
	});
});

describe("a sweep while every database fails", () => {
	it("throws once each database has been tried and logged, so that the Cron Trigger records the run as failed", async () => {
		const lines = await logsOf(async () => {
			await expect(sweep(envWith(faultyDatabases(() => ({ message: D1_ERRORS.overloaded, when: "before" }))), Date.now())).rejects.toThrow(
				"Sweep failed on every database: DB, SHARD_1, SHARD_2, SHARD_EU_1",
			);
		});
		const failed = lines.filter((line) => line.msg === "sweep: database failed" && line.step === "jobs").map((line) => line.database);
		expect(failed).toEqual(["DB", "SHARD_1", "SHARD_2", "SHARD_EU_1"]);
	});
});
