import { describe, expect, it } from "vitest";
import { apiRequest, fetchWithBindings } from "../support/client";
import { expectMessage } from "../support/expect";
import { createApp, enrol, realmUser, uniqueValue } from "../support/fixtures";
import { jobIdOf } from "../support/expect";
import { countOf } from "../support/seed";
import { D1_ERRORS, failFirst, faultyDatabases } from "../support/faulty-d1";

// SPEC §11: D1 errors the platform documents as transient are retried where the operation is safe to repeat;
// the client sees 503 with Retry-After (not 500) when the database is overloaded or stays unreachable. Every D1
// binding (the control database and each shard) goes through the same fault decision, so a fault reaches the
// call wherever the Worker makes it.

const tagsPath = (learnerId: string) => `/learner/${encodeURIComponent(learnerId)}/tags`;

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
		let lost = 0;
		const databases = faultyDatabases((call) => {
			if (lost > 0 || !call.sql.some((sql) => sql.includes("'deleteLearnersData'"))) return null;
			lost++;
			return { message: D1_ERRORS.networkLost, when: "after" };
		});
		const response = await fetchWithBindings(
			apiRequest("POST", `/learners/delete-information?userEmail=${encodeURIComponent(admin)}&suppress=true`, {
				auth: app.auth,
				body: { ids: learners },
			}),
			databases,
		);
		expect(lost).toBe(1);
		expect(response.status).toBe(204);
		const jobId = jobIdOf(response);
		expect(await countOf("SELECT count(*) AS n FROM jobs WHERE app_id = ?1 AND type = 'deleteLearnersData'", app.appId)).toBe(1);
		expect(await countOf("SELECT count(*) AS n FROM jobs WHERE parent_id = ?1", jobId)).toBe(2);
		expect(await countOf("SELECT count(*) AS n FROM job_members WHERE job_id = ?1", jobId)).toBe(1);
		const job = await fetchWithBindings(apiRequest("GET", `/jobs/${jobId}`, { auth: app.auth }), {});
		expect(job.status).toBe(200);
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
