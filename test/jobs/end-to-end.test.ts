import { describe, expect, it } from "vitest";
import { call } from "../support/client";
import { completedJob, expectMessage, expectNoContent, type JobBody, jobDetails, jobIdOf, waitForJob } from "../support/expect";
import { createApp, enrol, learnerOn, MANAGEMENT, mintToken, realmUser, type TestApp, uniqueValue } from "../support/fixtures";
import { acceptErasure, drain } from "../support/queue";
import { registrationCount, rowsOf, shardOf } from "../support/seed";

// HTTP → queue → D1: the routes send their job messages to the real local queue, and Miniflare delivers them
// to the Worker's own queue handler; the tests poll GET /jobs/{id} until the job has finished.

const updatePath = (learnerId: string) => `/learner/${encodeURIComponent(learnerId)}/updateInfo`;
const erasurePath = (learnerId: string, userEmail?: string) => {
	const query = userEmail === undefined ? "" : `?userEmail=${encodeURIComponent(userEmail)}`;
	return `/learner/${encodeURIComponent(learnerId)}/delete-information${query}`;
};

const FORBIDDEN =
	"The initiating email address does not have sufficient privilege in this application to perform this delete " +
	"operation (a realm owner or admin is required)";

/** Asserts a 204 with an empty body and a job Location naming a job of the application; returns the job id. */
async function accepted(response: Response, appId: string): Promise<string> {
	await expectNoContent(response);
	return jobIdOf(response, appId);
}

/** Rows holding the application's id, per table that has an app_id column. */
async function rowsPerTable(appId: string): Promise<Record<string, number>> {
	return Object.fromEntries(Object.entries(await rowsOf(appId)).map(([table, rows]) => [table, rows.length]));
}

describe("POST /learner/:learnerId/updateInfo", () => {
	it("answers 204 with the job's Location, and the job updates every registration of the learner", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const first = await enrol(app, { id: learnerId, email: "old@example.com", firstName: "Old", lastName: "Name" });
		const second = await enrol(app, { id: learnerId });
		const bystander = await enrol(app, { id: uniqueValue("other"), email: "other@example.com" });

		const jobId = await accepted(
			await call("POST", updatePath(learnerId), {
				auth: app.auth,
				body: { id: learnerId, email: "new@example.com", firstName: "Ada", lastName: "Lovelace" },
			}),
			app.appId,
		);

		await waitForJob(app.auth, jobId);
		await completedJob(app.auth, { type: "updateLearnerInfo", jobId }, { registrationsAffected: 2 });
		const updated = { id: learnerId, email: "new@example.com", firstName: "Ada", lastName: "Lovelace" };
		expect(await learnerOn(app, first)).toEqual(updated);
		expect(await learnerOn(app, second)).toEqual(updated);
		expect((await learnerOn(app, bystander)).email).toBe("other@example.com");
	});

	it("leaves absent and null fields as they are", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const registrationId = await enrol(app, { id: learnerId, email: "kept@example.com", firstName: "Kept", lastName: "Old" });

		const jobId = await accepted(
			await call("POST", updatePath(learnerId), { auth: app.auth, body: { id: learnerId, firstName: null, lastName: "New" } }),
			app.appId,
		);

		expect((await waitForJob(app.auth, jobId)).status).toBe("completed");
		expect(await learnerOn(app, registrationId)).toEqual({
			id: learnerId,
			email: "kept@example.com",
			firstName: "Kept",
			lastName: "New",
		});
	});

	it("leaves every field given as null as it is", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const details = { id: learnerId, email: "still@example.com", firstName: "Still", lastName: "Here" };
		const registrationId = await enrol(app, details);

		const jobId = await accepted(
			await call("POST", updatePath(learnerId), {
				auth: app.auth,
				body: { id: learnerId, email: null, firstName: null, lastName: null },
			}),
			app.appId,
		);

		expect((await waitForJob(app.auth, jobId)).status).toBe("completed");
		expect(await learnerOn(app, registrationId)).toEqual(details);
	});

	it("sets a field empty when given an empty string", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const registrationId = await enrol(app, { id: learnerId, email: "gone@example.com", firstName: "Gone", lastName: "Kept" });

		const jobId = await accepted(
			await call("POST", updatePath(learnerId), { auth: app.auth, body: { id: learnerId, email: "", firstName: "" } }),
			app.appId,
		);

		expect((await waitForJob(app.auth, jobId)).status).toBe("completed");
		expect(await learnerOn(app, registrationId)).toEqual({ id: learnerId, email: "", firstName: "", lastName: "Kept" });
	});

	it("answers 400 when the body's id differs from the path's: renaming is not supported", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const registrationId = await enrol(app, { id: learnerId, email: "same@example.com" });

		const body = { id: "someone-else", email: "x@example.com" };
		const response = await call("POST", updatePath(learnerId), { auth: app.auth, body });

		expect(await expectMessage(response, 400)).toBe(
			"learner.id [someone-else] must equal the learnerId in the path: renaming a learner is not supported",
		);
		expect(await learnerOn(app, registrationId)).toEqual({ id: learnerId, email: "same@example.com" });
	});

	it("answers 400 naming the email when it is not an address", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });

		const body = { id: learnerId, email: "not-an-address" };
		const response = await call("POST", updatePath(learnerId), { auth: app.auth, body });

		expect(await expectMessage(response, 400)).toBe(
			"Invalid request: email must be a valid email address (or empty to clear it)",
		);
	});

	it("answers 404 for an unknown learner", async () => {
		const app = await createApp();

		const body = { id: "nobody", email: "n@example.com" };
		const response = await call("POST", updatePath("nobody"), { auth: app.auth, body });

		expect(await expectMessage(response, 404)).toBe("Learner [nobody] was not found");
	});

	it("answers 409 while an erasure of the learner is pending", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		const erasure = await acceptErasure(app, learnerId, await realmUser("admin"));

		const body = { id: learnerId, email: "late@example.com" };
		const response = await call("POST", updatePath(learnerId), { auth: app.auth, body });

		expect(await expectMessage(response, 409)).toBe(
			`Learner [${learnerId}] is being erased; its details can no longer be updated`,
		);
		await drain(erasure);
		expect(await registrationCount(app.appId, learnerId)).toBe(0);
	});
});

describe("POST /learner/:learnerId/delete-information", () => {
	it("answers 204 with the job's Location, and the job erases the learner's registrations and tags", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const first = await enrol(app, { id: learnerId }, { learnerTags: ["l1", "l2"], registrationTags: ["r1"] });
		const second = await enrol(app, { id: learnerId }, { registrationTags: ["r2", "r3"] });
		const bystander = await enrol(app, { id: uniqueValue("other") }, { learnerTags: ["l1"], registrationTags: ["r1"] });

		const jobId = await accepted(await call("POST", erasurePath(learnerId, await realmUser("owner")), { auth: app.auth }), app.appId);

		await waitForJob(app.auth, jobId);
		await completedJob(app.auth, { type: "deleteAllLearnerData", jobId }, { registrationsAffected: 2, tagsRemoved: 5 });
		expect(await expectMessage(await call("GET", `/learner/${learnerId}/tags`, { auth: app.auth }), 404)).toBe(
			`Learner [${learnerId}] was not found`,
		);
		for (const registrationId of [first, second]) {
			expect(await expectMessage(await call("GET", `/registrations/${registrationId}`, { auth: app.auth }), 404)).toBe(
				`Registration [${registrationId}] was not found`,
			);
		}
		const kept = await call("GET", `/registrations/${bystander}`, { auth: app.auth });
		expect(kept.status).toBe(200);
		expect(((await kept.json()) as { tags: string[] }).tags).toEqual(["r1"]);
	});

	it("answers 400 without userEmail", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });

		const response = await call("POST", erasurePath(learnerId), { auth: app.auth });

		expect(await expectMessage(response, 400)).toBe(
			"Invalid request: userEmail is required: the email of a realm owner or admin requesting the erasure",
		);
		expect(await registrationCount(app.appId, learnerId)).toBe(1);
	});

	it("answers 403 for an email that is no realm user's, and for a member", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });

		for (const userEmail of [`${uniqueValue("stranger")}@example.com`, await realmUser("member")]) {
			const response = await call("POST", erasurePath(learnerId, userEmail), { auth: app.auth });
			expect(await expectMessage(response, 403)).toBe(FORBIDDEN);
		}
		expect(await registrationCount(app.appId, learnerId)).toBe(1);
	});

	it("matches the requester's email to a realm admin case-insensitively", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		const admin = await realmUser("admin");

		const jobId = await accepted(await call("POST", erasurePath(learnerId, admin.toUpperCase()), { auth: app.auth }), app.appId);

		expect((await waitForJob(app.auth, jobId)).status).toBe("completed");
		expect(await registrationCount(app.appId, learnerId)).toBe(0);
	});

	it("answers 404 for an unknown learner", async () => {
		const app = await createApp();

		const response = await call("POST", erasurePath("nobody", await realmUser("owner")), { auth: app.auth });

		expect(await expectMessage(response, 404)).toBe("Learner [nobody] was not found");
	});

	it("answers a second request while the erasure is pending with the same Location", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		const admin = await realmUser("admin");
		// Accepted without being delivered, so the job is certainly still pending when the requests arrive.
		const pending = await acceptErasure(app, learnerId, admin);

		const again = await call("POST", erasurePath(learnerId, admin), { auth: app.auth });
		const andAgain = await call("POST", erasurePath(learnerId, (await realmUser("owner")).toUpperCase()), { auth: app.auth });

		expect(await accepted(again, app.appId)).toBe(pending.jobId);
		expect(await accepted(andAgain, app.appId)).toBe(pending.jobId);
		expect((await waitForJob(app.auth, pending.jobId)).status).toBe("completed");
		expect(await registrationCount(app.appId, learnerId)).toBe(0);
		const { results } = await (await shardOf(app.appId)).prepare("SELECT id FROM jobs WHERE app_id = ?1 AND type = 'deleteAllLearnerData'")
			.bind(app.appId)
			.all<{ id: string }>();
		expect(results).toEqual([{ id: pending.jobId }]);
	});

	it("treats registrations created after the erasure as new data", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId, email: "before@example.com" }, { learnerTags: ["old"] });
		const jobId = await accepted(await call("POST", erasurePath(learnerId, await realmUser("admin")), { auth: app.auth }), app.appId);
		expect((await waitForJob(app.auth, jobId)).status).toBe("completed");

		const fresh = await enrol(app, { id: learnerId, email: "after@example.com" }, { learnerTags: ["new"] });

		expect(await learnerOn(app, fresh)).toEqual({ id: learnerId, email: "after@example.com" });
		const tags = await call("GET", `/learner/${learnerId}/tags`, { auth: app.auth });
		expect(tags.status).toBe(200);
		expect(await tags.json()).toEqual({ tags: ["new"] });
	});
});

describe("GET /jobs/:jobId", () => {
	it("answers 404 naming an unknown job", async () => {
		const app = await createApp();
		// A realm job's shape, and an application's job shape naming this application.
		for (const unknown of [crypto.randomUUID(), `${app.appId}.${crypto.randomUUID()}`]) {
			const response = await call("GET", `/jobs/${unknown}`, { auth: app.auth });

			expect(await expectMessage(response, 404)).toBe(`Job [${unknown}] was not found`);
		}
	});

	it("answers a bearer token with read:learner, and 403 to one without it", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId });
		const body = { id: learnerId, lastName: "X" };
		const jobId = await accepted(await call("POST", updatePath(learnerId), { auth: app.auth, body }), app.appId);
		const job = await waitForJob(app.auth, jobId);

		const reader = await call("GET", `/jobs/${jobId}`, { auth: await mintToken(app, "read:learner") });
		const writer = await call("GET", `/jobs/${jobId}`, { auth: await mintToken(app, "write:learner") });

		expect(reader.status).toBe(200);
		expect(await reader.json()).toEqual(job);
		expect(await expectMessage(writer, 403)).toBe('This operation requires the "read:learner" scope');
	});

	it("lets the management credentials read an application-deletion job", async () => {
		const app = await createApp();
		const jobId = await accepted(await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT }), app.appId);

		const response = await call("GET", `/jobs/${jobId}`, { auth: MANAGEMENT });

		expect(response.status).toBe(200);
		// The queue may already have run it: the status is whatever it is now, and completedDate comes with completion.
		const { status } = (await response.clone().json()) as JobBody;
		expect(await response.json()).toEqual({
			id: jobId,
			type: "deleteApplication",
			status,
			createdDate: expect.any(String),
			...(status === "completed" && { completedDate: expect.any(String) }),
			...jobDetails({ jobId, type: "deleteApplication" }),
			registrationsAffected: 0,
			tagsRemoved: 0,
		});
		expect(["queued", "running", "completed"]).toContain(status);
		await waitForJob(MANAGEMENT, jobId);
		await completedJob(MANAGEMENT, { type: "deleteApplication", jobId }, { registrationsAffected: 0, tagsRemoved: 0 });
	});
});

describe("DELETE /appManagement/applications/:childAppId", () => {
	/** An application with data in every table that holds application data. */
	async function busyApp(): Promise<{ app: TestApp; learnerId: string }> {
		const app = await createApp();
		const credentialsPath = `/appManagement/${app.appId}/credentials`;
		const second = await call("POST", credentialsPath, { auth: MANAGEMENT, body: { name: "second" } });
		expect(second.status).toBe(200);
		const learnerId = uniqueValue("learner");
		await enrol(app, { id: learnerId, email: "a@example.com" }, { learnerTags: ["l1", "l2"], registrationTags: ["r1"] });
		await enrol(app, { id: learnerId }, { registrationTags: ["r2"] });
		await enrol(app, { id: uniqueValue("learner") }, { learnerTags: ["l3"] });
		// A learner erased with suppression by a bulk erasure, so the application holds a suppression and a bulk
		// erasure's list of learners too.
		const suppressed = uniqueValue("suppressed-learner");
		await enrol(app, suppressed);
		const erasure = await call("POST", `/learners/delete-information?userEmail=${encodeURIComponent(await realmUser("admin"))}&suppress=true`, {
			auth: app.auth,
			body: { ids: [suppressed] },
		});
		expect((await waitForJob(app.auth, await accepted(erasure, app.appId))).status).toBe("completed");
		const body = { id: learnerId, firstName: "Ada" };
		// With an Idempotency-Key, so the application holds a stored response too.
		const jobId = await accepted(
			await call("POST", updatePath(learnerId), { auth: app.auth, body, headers: { "Idempotency-Key": uniqueValue("key") } }),
			app.appId,
		);
		expect((await waitForJob(app.auth, jobId)).status).toBe("completed");
		// And a webhook (whose deliveries fail: nothing answers there).
		const webhook = await call("PUT", `/appManagement/${app.appId}/webhook`, { auth: MANAGEMENT, body: { url: "https://hooks.invalid/learner-service" } });
		expect(webhook.status).toBe(200);
		// And a retention policy, long enough to erase nothing meanwhile.
		const retention = await call("PUT", `/appManagement/applications/${app.appId}/retention`, { auth: MANAGEMENT, body: { learnerInactiveDays: 3650 } });
		expect(retention.status).toBe(200);
		return { app, learnerId };
	}

	it("stops the application's credentials at once", async () => {
		const { app } = await busyApp();
		const token = await mintToken(app, "read:learner");

		await accepted(await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT }), app.appId);

		for (const auth of [app.auth, token]) {
			expect(await expectMessage(await call("GET", "/ping", { auth }), 401)).toEqual(expect.any(String));
		}
	});

	it("deletes every row of the application's data in a job, leaving only that job", async () => {
		// Set up side by side: each waits for a job through the local queue.
		const [{ app }, bystander] = await Promise.all([busyApp(), busyApp()]);
		const before = await rowsPerTable(app.appId);
		expect(Object.keys(before)).toContain("registrations");
		// Every table that holds application data has some, so an emptied table shows the job reached it; only the
		// tables that hold an application's rows while it moves between shards (src/db/move.ts) are empty, and
		// must stay so.
		expect(Object.entries(before).filter(([, rows]) => rows === 0).map(([table]) => table).sort()).toEqual([
			"move_journal",
			"moving_apps",
		]);
		const bystanderBefore = await rowsPerTable(bystander.app.appId);

		const jobId = await accepted(await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT }), app.appId);

		await waitForJob(MANAGEMENT, jobId);
		// Its event is being delivered to the webhook, which never answers.
		await completedJob(
			MANAGEMENT,
			{ type: "deleteApplication", jobId },
			{ registrationsAffected: 3, tagsRemoved: 5, notification: expect.objectContaining({ status: "pending" }) },
		);
		// What stays: the job, the row that fences the application off, and its webhook, kept with the deleted
		// application's own row so that the deletion's event can be delivered (nothing of its learners).
		const kept = new Set(["jobs", "app_storage", "webhooks"]);
		const after = await rowsPerTable(app.appId);
		expect(after).toEqual(Object.fromEntries(Object.keys(before).map((table) => [table, kept.has(table) ? 1 : 0])));
		const shard = await shardOf(app.appId);
		const fence = await shard.prepare("SELECT deleted_at, stored_rows FROM app_storage WHERE app_id = ?1")
			.bind(app.appId)
			.first();
		expect(fence).toEqual({ deleted_at: expect.any(String), stored_rows: 0 });
		const left = await shard.prepare("SELECT id FROM jobs WHERE app_id = ?1").bind(app.appId).first<{ id: string }>();
		expect(left).toEqual({ id: jobId });
		expect(await rowsPerTable(bystander.app.appId)).toEqual(bystanderBefore);
		const listed = await call("GET", "/appManagement/applications", { auth: MANAGEMENT });
		expect(listed.status).toBe(200);
		const { applications } = (await listed.json()) as { applications: { id: string }[] };
		expect(applications.map(({ id }) => id)).not.toContain(app.appId);
	});
});
