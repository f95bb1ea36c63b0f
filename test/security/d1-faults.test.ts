import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { findPlacement } from "../../src/db/applications";
import type { JobMessage } from "../../src/jobs/contract";
import { apiRequest, call, envWith, fetchWithBindings } from "../support/client";
import { fetchConsole, follow, post, session } from "../support/console";
import { expectMessage, getJob, jobIdOf } from "../support/expect";
import { MANAGEMENT, createApp, enrol, realmUser, uniqueValue } from "../support/fixtures";
import { acceptErasure, acceptExport, drain, sentDuring } from "../support/queue";
import { SHARDS, countOf } from "../support/seed";
import { D1_ERRORS, type D1Call, type FaultDecision, failFirst, faultyDatabases } from "../support/faulty-d1";
import { deliveriesDuring, setWebhook } from "../support/webhooks";

// SPEC §11: D1 errors the platform documents as transient are retried where the operation is safe to repeat;
// the client sees 503 with Retry-After (not 500) when the database is overloaded or stays unreachable. Every D1
// binding (the control database and each shard) goes through the same fault decision, so a fault reaches the
// call wherever the Worker makes it.

const tagsPath = (learnerId: string) => `/learner/${encodeURIComponent(learnerId)}/tags`;
const erasurePath = (learnerId: string) => `/learner/${encodeURIComponent(learnerId)}/delete-information`;

/** A decision losing the reply of the first call that `matches`, once D1 has committed it; `lost()` counts the replies lost. */
function loseReplyOnce(matches: (call: D1Call) => boolean) {
	let lost = 0;
	return {
		decide: (call: D1Call): FaultDecision => {
			if (lost > 0 || !matches(call)) return null;
			lost++;
			return { message: D1_ERRORS.networkLost, when: "after" };
		},
		lost: () => lost,
	};
}

/** The audit trail's entries of `action` whose target names `id` (a job, an application). */
const auditEntries = (action: string, id: string) =>
	countOf("SELECT count(*) AS n FROM audit_log WHERE action = ?1 AND instr(target, ?2) > 0", action, id);

describe("a transient D1 error", () => {
	it("is retried on a read: the client gets its answer", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId }, { learnerTags: ["a"] });
		for (const message of [D1_ERRORS.networkLost, D1_ERRORS.reset]) {
			const databases = faultyDatabases(failFirst(2, message, (call) => call.sql.some((sql) => sql.includes("learner_tags"))));
			const response = await fetchWithBindings(apiRequest("GET", tagsPath(learnerId), { auth: app.auth }), databases);
			expect(response.status).toBe(200);
			expect(await response.json()).toEqual({ tags: ["a"] });
		}
	});

	it("is retried on an idempotent write (adding tags): applied once, answered 204", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		const databases = faultyDatabases(failFirst(1, D1_ERRORS.networkLost, (call) => call.sql.some((sql) => sql.includes("INSERT OR IGNORE INTO learner_tags"))));
		const response = await fetchWithBindings(apiRequest("PUT", tagsPath(learnerId), { auth: app.auth, body: { tags: ["b"] } }), databases);
		expect(response.status).toBe(204);
		const read = await fetchWithBindings(apiRequest("GET", tagsPath(learnerId), { auth: app.auth }), {});
		expect(await read.json()).toEqual({ tags: ["b"] });
	});

	it("that outlasts the retries answers 503 with Retry-After, never 500", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		const databases = faultyDatabases(failFirst(100, D1_ERRORS.networkLost, (call) => call.sql.some((sql) => sql.includes("learner_tags"))));
		const response = await fetchWithBindings(apiRequest("GET", tagsPath(learnerId), { auth: app.auth }), databases);
		expect(await expectMessage(response, 503)).toBe(
			"The database did not answer; retry after 1 second (a write that was not acknowledged may or may not have been applied)",
		);
		expect(response.headers.get("Retry-After")).toBe("1");
	});

	it("on a write that is not safe to repeat (a new registration) answers 503, not 500, without retrying", async () => {
		const app = await createApp();
		let attempts = 0;
		const databases = faultyDatabases((call) => {
			if (!call.sql.some((sql) => sql.includes("INSERT INTO registrations"))) return null;
			attempts++;
			return { message: D1_ERRORS.networkLost, when: "after" };
		});
		const body = { courseId: "c", registrationId: uniqueValue("registration"), learner: { id: uniqueValue("learner") } };
		const response = await fetchWithBindings(apiRequest("POST", "/registrations", { auth: app.auth, body }), databases);
		expect(response.status).toBe(503);
		expect(attempts).toBe(1);
	});
});

describe("a D1 reply lost after the write committed", () => {
	it("on a bulk erasure is retried: answered 204 naming the one job recorded, each learner erased by one child", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learners = [uniqueValue("learner"), uniqueValue("learner")];
		for (const learnerId of learners) await enrol(app, { id: learnerId });
		const lose = loseReplyOnce((call) => call.sql.some((sql) => sql.includes("'deleteLearnersData'")));
		const response = await fetchWithBindings(
			apiRequest("POST", `/learners/delete-information?userEmail=${encodeURIComponent(admin)}&suppress=true`, {
				auth: app.auth,
				body: { ids: learners },
			}),
			faultyDatabases(lose.decide),
		);
		expect(lose.lost()).toBe(1);
		expect(response.status).toBe(204);
		const jobId = jobIdOf(response);
		expect(await countOf("SELECT count(*) AS n FROM jobs WHERE app_id = ?1 AND type = 'deleteLearnersData'", app.appId)).toBe(1);
		expect(await countOf("SELECT count(*) AS n FROM jobs WHERE parent_id = ?1", jobId)).toBe(2);
		expect(await countOf("SELECT count(*) AS n FROM job_members WHERE job_id = ?1", jobId)).toBe(1);
		const job = await fetchWithBindings(apiRequest("GET", `/jobs/${jobId}`, { auth: app.auth }), {});
		expect(job.status).toBe(200);
	});

	it("on the audit entry an erasure appends after its shard's write: the trail records the erasure once", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		const lose = loseReplyOnce((call) => call.sql.every((sql) => sql.includes("INSERT INTO audit_log")));
		const { result: response } = await sentDuring(() =>
			fetchWithBindings(apiRequest("POST", `${erasurePath(learnerId)}?userEmail=${encodeURIComponent(admin)}`, { auth: app.auth }), faultyDatabases(lose.decide)),
		);
		expect(lose.lost()).toBe(1);
		expect(response.status).toBe(204);
		expect(await auditEntries("learner.erase", jobIdOf(response))).toBe(1);
	});

	it("on an erasure with an Idempotency-Key: answered as a first request (not replayed), its job sent and audited once", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learners = [uniqueValue("learner"), uniqueValue("learner")];
		for (const learnerId of learners) await enrol(app, { id: learnerId });
		const lose = loseReplyOnce((call) => call.sql.some((sql) => sql.includes("'deleteLearnersData'")));
		const request = apiRequest("POST", `/learners/delete-information?userEmail=${encodeURIComponent(admin)}`, { auth: app.auth, body: { ids: learners } });
		request.headers.set("Idempotency-Key", uniqueValue("key"));
		const { result: response, sent } = await sentDuring(() => fetchWithBindings(request, faultyDatabases(lose.decide)));
		expect(lose.lost()).toBe(1);
		expect(response.status).toBe(204);
		expect(response.headers.get("Idempotent-Replayed")).toBeNull();
		const jobId = jobIdOf(response);
		expect(sent).toEqual([{ body: { type: "deleteLearnersData", jobId } }]);
		expect(await countOf("SELECT count(*) AS n FROM jobs WHERE app_id = ?1 AND type = 'deleteLearnersData'", app.appId)).toBe(1);
		expect(await auditEntries("learners.erase", jobId)).toBe(1);
	});

	it("on removing a webhook: answered 204 (the removal was this request's), and recorded once", async () => {
		const app = await createApp();
		const path = `/appManagement/${app.appId}/webhook`;
		expect((await call("PUT", path, { auth: MANAGEMENT, body: { url: "https://hooks.example.com/lost-reply" } })).status).toBe(200);
		const lose = loseReplyOnce((call) => call.sql.some((sql) => sql.includes("DELETE FROM webhooks")));
		const response = await fetchWithBindings(apiRequest("DELETE", path, { auth: MANAGEMENT }), faultyDatabases(lose.decide));
		expect(lose.lost()).toBe(1);
		expect(response.status).toBe(204);
		expect(await expectMessage(await call("GET", path, { auth: MANAGEMENT }), 404)).toContain("webhook");
		expect(await auditEntries("webhook.delete", app.appId)).toBe(1);
	});

	it("on setting and removing a retention policy: each answered as done, and recorded once", async () => {
		const app = await createApp();
		const path = `/appManagement/applications/${app.appId}/retention`;
		const lostPut = loseReplyOnce((call) => call.sql.some((sql) => sql.includes("INSERT INTO retention_policies")));
		const put = await fetchWithBindings(apiRequest("PUT", path, { auth: MANAGEMENT, body: { learnerInactiveDays: 30 } }), faultyDatabases(lostPut.decide));
		expect(lostPut.lost()).toBe(1);
		expect(put.status).toBe(200);
		expect(await put.json()).toMatchObject({ learnerInactiveDays: 30 });
		expect(await auditEntries("application.retention.set", app.appId)).toBe(1);
		const lostDelete = loseReplyOnce((call) => call.sql.some((sql) => sql.includes("DELETE FROM retention_policies")));
		const removed = await fetchWithBindings(apiRequest("DELETE", path, { auth: MANAGEMENT }), faultyDatabases(lostDelete.decide));
		expect(lostDelete.lost()).toBe(1);
		expect(removed.status).toBe(204);
		expect(await expectMessage(await call("GET", path, { auth: MANAGEMENT }), 404)).toContain("has no retention policy");
		expect(await auditEntries("application.retention.delete", app.appId)).toBe(1);
	});

	it("on lifting a suppression answers 503, not 404, without retrying (a repeat could not tell its own lift from none)", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		const erasure = await sentDuring(() =>
			call("POST", `${erasurePath(learnerId)}?userEmail=${encodeURIComponent(admin)}&suppress=true`, { auth: app.auth }),
		);
		for (const message of erasure.sent) await drain(message.body as JobMessage);
		let attempts = 0;
		const databases = faultyDatabases((call) => {
			if (!call.sql.some((sql) => sql.includes("DELETE FROM suppressions"))) return null;
			attempts++;
			return { message: D1_ERRORS.networkLost, when: "after" };
		});
		const response = await fetchWithBindings(apiRequest("DELETE", `/learner/${encodeURIComponent(learnerId)}/suppression`, { auth: app.auth }), databases);
		expect(response.status).toBe(503);
		expect(attempts).toBe(1);
	});

	it("on a console draft: the form's result page is reached (303), not a 500", async () => {
		const s = await session();
		const app = await createApp();
		const lose = loseReplyOnce((call) => call.sql.some((sql) => sql.includes("INTO console_drafts")));
		const response = await fetchConsole(
			post(`/applications/${app.appId}/allow-delete`, { allowDelete: "false", csrf: s.csrf }, { cookie: s.cookie }),
			faultyDatabases(lose.decide),
		);
		expect(lose.lost()).toBe(1);
		expect(response.status).toBe(303);
		expect(await (await follow(s, response)).text()).toContain("Deletion switched off");
	});

	it("on the claim of a move's step: the step is run and the move completes", async () => {
		const app = await createApp();
		await enrol(app, uniqueValue("learner"));
		const from = (await findPlacement(env.DB, app.appId))?.shard;
		const to = SHARDS.find((shard) => shard.region === "default" && shard.name !== from)?.name ?? "";
		const { result: accepted, sent } = await sentDuring(() => call("POST", `/appManagement/applications/${app.appId}/move`, { auth: MANAGEMENT, body: { shard: to } }));
		expect(accepted.status).toBe(204);
		const lose = loseReplyOnce((call) => call.sql.length === 1 && (call.sql[0] ?? "").includes("UPDATE jobs SET cursor"));
		for (const message of sent) await drain(message.body as JobMessage, { env: envWith(faultyDatabases(lose.decide)) });
		expect(lose.lost()).toBe(1);
		expect((await getJob(MANAGEMENT, jobIdOf(accepted))).status).toBe("completed");
	});

	it("on the claim of an export's chunk: the chunk counts and the export completes", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		const message = await acceptExport(app, learnerId, admin);
		const lose = loseReplyOnce((call) => call.sql.some((sql) => sql.includes("ended_without_document")));
		await drain(message, { env: envWith(faultyDatabases(lose.decide)) });
		expect(lose.lost()).toBe(1);
		expect(await getJob(app.auth, message.jobId)).toMatchObject({ status: "completed", registrationsAffected: 1 });
	});

	/**
	 * A learner job of an application with a webhook, accepted by `accept` and run with the reply of its first call
	 * whose SQL holds `lostReplyOf` lost: it completes, and its end is sent to the webhook once, at once.
	 */
	async function expectEndAnnounced(accept: typeof acceptErasure, lostReplyOf: string) {
		const app = await createApp();
		await setWebhook(app);
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		const message = await accept(app, learnerId, await realmUser("admin"));
		const lose = loseReplyOnce((call) => call.sql.some((sql) => sql.includes(lostReplyOf)));
		const { deliveries } = await deliveriesDuring(() => drain(message, { env: envWith(faultyDatabases(lose.decide)) }));
		expect(lose.lost()).toBe(1);
		expect((await getJob(app.auth, message.jobId)).status).toBe("completed");
		expect(deliveries).toEqual([{ body: { eventId: expect.stringMatching(/^evt_/), jobId: message.jobId } }]);
	}

	it("on the chunk that completes an erasure: its end is sent to the webhook at once", async () => {
		await expectEndAnnounced(acceptErasure, "INSERT OR IGNORE INTO suppressions");
	});

	it("on an export's completion: its end is sent to the webhook at once", async () => {
		await expectEndAnnounced(acceptExport, "SET status = 'completed', completed_at = ?4, learner_id = NULL");
	});
});

describe("an overloaded D1", () => {
	it("answers 503 with Retry-After, and is not retried (a retry adds to the load)", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		for (const message of [D1_ERRORS.overloaded, D1_ERRORS.queuedTooLong]) {
			let attempts = 0;
			const databases = faultyDatabases((call) => {
				if (!call.sql.some((sql) => sql.includes("learner_tags"))) return null;
				attempts++;
				return { message, when: "before" };
			});
			const response = await fetchWithBindings(apiRequest("PUT", tagsPath(learnerId), { auth: app.auth, body: { tags: ["c"] } }), databases);
			expect(await expectMessage(response, 503)).toBe(
				"The database is overloaded; retry after 5 seconds (a write that was not acknowledged may or may not have been applied)",
			);
			expect(response.headers.get("Retry-After")).toBe("5");
			expect(attempts).toBe(1);
		}
	});
});
