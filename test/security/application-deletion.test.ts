import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { requestApplicationDeletion } from "../../src/db/jobs";
import { JobMessageSchema } from "../../src/jobs/contract";
import { call } from "../support/client";
import { completedJob, expectMessage, getJob, jobIdOf } from "../support/expect";
import { createApp, enrol, MANAGEMENT, realmUser, uniqueValue } from "../support/fixtures";
import { acceptApplicationDeletion, callCapturing, deliver, drain } from "../support/queue";

// SPEC §11: a failed application deletion is retried until the data is gone, and nothing is written into an
// application after its deletion was accepted, whatever any isolate's credential cache still believes.

/** Rows of the application's learner data, over every table that holds some. */
async function learnerRows(appId: string): Promise<number> {
	const row = await env.DB.prepare(
		`SELECT (SELECT count(*) FROM registrations WHERE app_id = ?1) + (SELECT count(*) FROM learner_tags WHERE app_id = ?1)
		   + (SELECT count(*) FROM registration_tags WHERE app_id = ?1) + (SELECT count(*) FROM learner_tag_counts WHERE app_id = ?1)
		   AS n`,
	)
		.bind(appId)
		.first<{ n: number }>();
	return row?.n ?? -1;
}

describe("a failed application deletion", () => {
	it("is not given up when its message's retries are spent: asking again runs it until the data is gone", async () => {
		const app = await createApp();
		await enrol(app, { id: uniqueValue("learner"), email: "gone@example.com" }, { learnerTags: ["t"] });
		const message = await acceptApplicationDeletion(app.appId);

		// Every retry failed: the message reaches the dead-letter queue.
		const dead = await deliver([message], { queue: env.JOBS_DEAD_LETTER_QUEUE });
		expect(dead.result.explicitAcks).toEqual(dead.ids);
		const parked = await getJob(MANAGEMENT, message.jobId);
		expect(parked.status).not.toBe("failed");

		const again = await callCapturing("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		expect(again.response.status).toBe(204);
		expect(jobIdOf(again.response)).toBe(message.jobId);
		expect(again.sent).toEqual([{ body: message }]);
		await drain(message);

		// Completed, with no word of the attempts that failed before.
		await completedJob(MANAGEMENT, message, { registrationsAffected: 1, tagsRemoved: 1 });
		expect(await learnerRows(app.appId)).toBe(0);
	});

	it("runs again when asked again, even if an earlier version marked it failed", async () => {
		const app = await createApp();
		await enrol(app, { id: uniqueValue("learner") }, { registrationTags: ["r"] });
		const message = await acceptApplicationDeletion(app.appId);
		await env.DB.prepare("UPDATE jobs SET status = 'failed', error = 'Gave up after repeated failures' WHERE id = ?1")
			.bind(message.jobId)
			.run();

		const again = await callCapturing("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		expect(again.response.status).toBe(204);
		await drain(JobMessageSchema.parse(again.sent[0]?.body));

		expect(await getJob(MANAGEMENT, message.jobId)).toMatchObject({ id: message.jobId, status: "completed" });
		expect(await learnerRows(app.appId)).toBe(0);
	});
});

describe("writes into a deleted application", () => {
	it("are refused once its deletion completed, even through a credential another isolate still trusts", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const registrationId = await enrol(app, { id: learnerId });
		// This isolate now trusts the credential for 30 s.
		expect((await call("GET", "/ping", { auth: app.auth })).status).toBe(200);
		// Another isolate deletes the application; this one is not told.
		const job = await requestApplicationDeletion(env.DB, app.appId, new Date().toISOString());
		expect(job).not.toBeNull();
		await drain({ type: "deleteApplication", jobId: job?.id ?? "" });
		expect(await learnerRows(app.appId)).toBe(0);

		const admin = await realmUser("admin");
		const learner = encodeURIComponent(learnerId);
		const writes: [string, string, unknown?][] = [
			["POST", "/registrations", { courseId: "c", registrationId: uniqueValue("late"), learner: { id: learnerId, email: "late@example.com" } }],
			["PUT", "/learner/tags", { ids: [learnerId], tags: ["late"] }],
			["PUT", `/learner/${learner}/tags`, { tags: ["late"] }],
			["DELETE", `/learner/${learner}/tags`, { tags: ["late"] }],
			["POST", `/learner/${learner}/updateInfo`, { id: learnerId, email: "late@example.com" }],
			["POST", `/learner/${learner}/delete-information?userEmail=${encodeURIComponent(admin)}`],
			["PUT", "/registrations/tags", { ids: [registrationId], tags: ["late"] }],
			["PUT", `/registrations/${encodeURIComponent(registrationId)}/tags`, { tags: ["late"] }],
			["DELETE", `/registrations/${encodeURIComponent(registrationId)}`],
		];
		for (const [method, path, body] of writes) {
			const response = await call(method, path, { auth: app.auth, body: body as Record<string, unknown> | undefined });
			expect(await expectMessage(response, 401), `${method} ${path}`).toBe("Invalid application id or secret key");
		}
		expect(await learnerRows(app.appId)).toBe(0);
		const { n } = (await env.DB.prepare("SELECT count(*) AS n FROM jobs WHERE app_id = ?1").bind(app.appId).first<{ n: number }>()) ?? {};
		expect(n).toBe(1);
	});

	it("are refused from the moment its deletion is accepted, before the job has run", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		expect((await call("GET", "/ping", { auth: app.auth })).status).toBe(200);
		await requestApplicationDeletion(env.DB, app.appId, new Date().toISOString());

		const response = await call("PUT", `/learner/${encodeURIComponent(learnerId)}/tags`, { auth: app.auth, body: { tags: ["late"] } });
		expect(await expectMessage(response, 401)).toBe("Invalid application id or secret key");
		const { n } = (await env.DB.prepare("SELECT count(*) AS n FROM learner_tags WHERE app_id = ?1").bind(app.appId).first<{ n: number }>()) ?? {};
		expect(n).toBe(0);
	});
});
