import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { learnerHash, type JobMessage } from "../../src/jobs/contract";
import { call } from "../support/client";
import { expectMessage, jobIdOf } from "../support/expect";
import { MANAGEMENT, type TestApp, createApp, enrol, realmUser, uniqueValue } from "../support/fixtures";
import { JOB_PACE } from "../../src/jobs/run";
import { acceptExport, deliver, drain, sentDuring } from "../support/queue";
import { findAnywhere } from "../support/scan";
import { countOf } from "../support/seed";

/**
 * Suppression (SPEC §9, as Segment's): ?suppress=true on an erasure keeps the learner id's HMAC after completion,
 * and from then on a registration naming that learner in that application answers 409 "learner erased and
 * suppressed"; DELETE /learner/{learnerId}/suppression (admin) lifts it; suppressions are listed as HMACs and
 * dates for the management API. Off by default: SCORM behaviour is unchanged.
 */

const register = (app: TestApp, learnerId: string, registrationId = uniqueValue("reg")) =>
	call("POST", "/registrations", { auth: app.auth, body: { courseId: "course-1", learner: { id: learnerId }, registrationId } });

const registrationsOf = (app: TestApp, learnerId: string) =>
	countOf("SELECT count(*) AS n FROM registrations WHERE app_id = ?1 AND learner_id = ?2", app.appId, learnerId);

/** Runs every job message sent while `work` ran, to completion; answers what `work` answered. */
async function andRun(work: () => Promise<Response>): Promise<Response> {
	const { result, sent } = await sentDuring(work);
	for (const message of sent) await drain(message.body as JobMessage);
	return result;
}

async function suppressionsOf(app: TestApp): Promise<{ learnerHash: string; jobId: string; createdDate: string }[]> {
	const response = await call("GET", `/appManagement/${app.appId}/suppressions`, { auth: MANAGEMENT });
	expect(response.status).toBe(200);
	return ((await response.json()) as { suppressions: { learnerHash: string; jobId: string; createdDate: string }[] }).suppressions;
}

let adminEmail = "";
/** A realm admin, made once for the file. */
const admin = () => adminEmail;
beforeAll(async () => {
	adminEmail = await realmUser("admin");
});

describe("suppression", () => {
	it("is not lifted while the erasure that asked for it is pending (409), and is once it has completed", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("being-erased");
		await enrol(app, learnerId);
		// A queued export of the learner: the erasure cancels it and completes only once its objects are purged, a chunk
		// after the one that took the registrations (and recorded the suppression).
		await acceptExport(app, learnerId, admin());
		const { result: erasure, sent } = await sentDuring(() =>
			call("POST", `/learner/${learnerId}/delete-information?userEmail=${encodeURIComponent(admin())}&suppress=true`, { auth: app.auth }),
		);
		expect(erasure.status).toBe(204);
		const jobId = jobIdOf(erasure);
		const pace = JOB_PACE.chunksPerMessage;
		JOB_PACE.chunksPerMessage = 1;
		try {
			const { sent: next } = await sentDuring(() => deliver(sent.map((message) => message.body)));
			const job = (await (await call("GET", `/jobs/${jobId}`, { auth: app.auth })).json()) as { status: string };
			expect(job.status).toBe("running");
			expect(await expectMessage(await call("DELETE", `/learner/${learnerId}/suppression`, { auth: app.auth }), 409)).toContain("being erased");
			for (const message of next) await drain(message.body as JobMessage);
		} finally {
			JOB_PACE.chunksPerMessage = pace;
		}
		const done = (await (await call("GET", `/jobs/${jobId}`, { auth: app.auth })).json()) as { status: string };
		expect(done.status).toBe("completed");
		expect((await call("DELETE", `/learner/${learnerId}/suppression`, { auth: app.auth })).status).toBe(204);
		expect((await register(app, learnerId)).status).toBe(204);
	});

	it("keeps a suppressed learner from coming back through any write path until it is lifted", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("suppressed");
		await enrol(app, learnerId, { learnerTags: ["t"] });
		const erasure = await andRun(() =>
			call("POST", `/learner/${learnerId}/delete-information?userEmail=${encodeURIComponent(admin)}&suppress=true`, { auth: app.auth }),
		);
		expect(erasure.status).toBe(204);

		// A registration naming the learner: refused, nothing written.
		expect(await expectMessage(await register(app, learnerId), 409)).toContain("learner erased and suppressed");
		expect(await registrationsOf(app, learnerId)).toBe(0);
		// Nor can its tags or details be written: the learner does not exist.
		expect((await call("PUT", "/learner/tags", { auth: app.auth, body: { ids: [learnerId], tags: ["back"] } })).status).toBe(404);
		expect((await call("POST", `/learner/${learnerId}/updateInfo`, { auth: app.auth, body: { id: learnerId, email: "x@example.com" } })).status).toBe(404);
		// Listed for the management API as the HMAC the erasure's job and receipt name, never the id.
		expect(await suppressionsOf(app)).toEqual([
			{ learnerHash: await learnerHash(env, app.appId, learnerId), jobId: jobIdOf(erasure), createdDate: expect.any(String) },
		]);
		expect((await findAnywhere([learnerId])).findings).toEqual([]);

		// Lifted: the learner may be registered again; lifting twice answers 404.
		expect((await call("DELETE", `/learner/${learnerId}/suppression`, { auth: app.auth })).status).toBe(204);
		expect(await expectMessage(await call("DELETE", `/learner/${learnerId}/suppression`, { auth: app.auth }), 404)).toBe(
			`Learner [${learnerId}] is not suppressed`,
		);
		expect((await register(app, learnerId)).status).toBe(204);
		expect(await suppressionsOf(app)).toEqual([]);
	});

	it("is off by default: an erased learner may be registered again, as in SCORM Cloud", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("not-suppressed");
		await enrol(app, learnerId);
		await andRun(() => call("POST", `/learner/${learnerId}/delete-information?userEmail=${encodeURIComponent(admin())}`, { auth: app.auth }));
		expect((await register(app, learnerId)).status).toBe(204);
		expect(await suppressionsOf(app)).toEqual([]);
	});

	it("holds in the application that erased the learner only", async () => {
		const [one, two] = [await createApp(), await createApp()];
		const learnerId = uniqueValue("per-app");
		await enrol(one, learnerId);
		await andRun(() =>
			call("POST", `/learner/${learnerId}/delete-information?userEmail=${encodeURIComponent(admin())}&suppress=true`, { auth: one.auth }),
		);
		expect((await register(one, learnerId)).status).toBe(409);
		expect((await register(two, learnerId)).status).toBe(204);
	});

	it("is asked of bulk and realm-wide erasures the same way", async () => {
		const [one, two] = [await createApp(), await createApp()];
		const [bulkLearner, realmLearner] = [uniqueValue("bulk-suppressed"), uniqueValue("realm-suppressed")];
		await enrol(one, bulkLearner);
		for (const app of [one, two]) await enrol(app, realmLearner);
		await andRun(() =>
			call("POST", `/learners/delete-information?userEmail=${encodeURIComponent(admin())}&suppress=true`, {
				auth: one.auth,
				body: { ids: [bulkLearner] },
			}),
		);
		await andRun(() =>
			call("POST", `/appManagement/learners/${realmLearner}/delete-information?userEmail=${encodeURIComponent(admin())}&suppress=true`, {
				auth: MANAGEMENT,
			}),
		);
		expect((await register(one, bulkLearner)).status).toBe(409);
		for (const app of [one, two]) expect((await register(app, realmLearner)).status).toBe(409);
	});

	it("answers 400 naming suppress when it is not true or false", async () => {
		const app = await createApp();
		await enrol(app, "named");
		const response = await call("POST", `/learner/named/delete-information?userEmail=${encodeURIComponent(admin())}&suppress=yes`, {
			auth: app.auth,
		});
		expect(await expectMessage(response, 400)).toContain("suppress");
	});
});
