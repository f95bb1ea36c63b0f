import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { refusalOf } from "../../src/db/app-storage";
import { findActiveCredentialById, insertCredential } from "../../src/db/credentials";
import { acceptLearnerErasure, acceptLearnerUpdate, getJob, requestApplicationDeletion } from "../../src/db/jobs";
import { type RealmRole, upsertRealmUser } from "../../src/db/realm-users";
import { LEARNER_TAGS, addTags } from "../../src/db/tags";
import { runJob } from "../../src/jobs/run";
import { uniqueValue } from "../support/fixtures";
import { DEFAULT_LIMITS, insertRegistrations, seedApplication } from "../support/seed";

// src/db/jobs.ts on its own, apart from the routes: accepting jobs (SPEC §3: updateLearnerInfo,
// deleteAllLearnerData; §4 and §11: application deletion), as the routes and the consumer rely on them.

const now = () => new Date().toISOString();

/** An application with one registration naming the learner. */
async function appWithLearner(learnerId: string): Promise<string> {
	const appId = await seedApplication();
	await insertRegistrations(appId, [{ id: `${learnerId}-registration`, courseId: "course", learnerId }]);
	return appId;
}

/** A realm user with that role; its email. */
async function seedRealmUser(role: RealmRole): Promise<string> {
	const email = `${uniqueValue(role)}@example.com`;
	await upsertRealmUser(env.DB, { email, role }, now());
	return email;
}

/** The application's jobs, by type. */
async function jobCount(appId: string, type: string): Promise<number> {
	const row = await env.DB.prepare("SELECT count(*) AS n FROM jobs WHERE app_id = ?1 AND type = ?2").bind(appId, type).first<{ n: number }>();
	return row?.n ?? -1;
}

/** An update of the learner's email, as the route hands it over (the learner hash stands for the learner id). */
const update = (appId: string, learnerId: string) => ({
	id: crypto.randomUUID(),
	appId,
	learnerId,
	learnerHash: `hash-of-${learnerId}`,
	payload: { email: "new@example.com" },
	createdAt: now(),
});

/** An erasure of the learner requested by `requestedBy`. */
const erasure = (appId: string, learnerId: string, requestedBy: string) => ({
	id: crypto.randomUUID(),
	appId,
	learnerId,
	learnerHash: `hash-of-${learnerId}`,
	requestedBy,
	createdAt: now(),
});

describe("acceptLearnerUpdate", () => {
	it("records a queued update of a learner a registration names, holding its payload until it runs", async () => {
		const appId = await appWithLearner("ada");
		const job = update(appId, "ada");

		expect(await acceptLearnerUpdate(env.DB, job, DEFAULT_LIMITS)).toEqual({ outcome: "accepted", jobId: job.id });

		const recorded = await getJob(env.DB, appId, job.id);
		expect(recorded).toMatchObject({ id: job.id, appId, type: "updateLearnerInfo", status: "queued", learnerId: "ada", registrationsAffected: 0 });
		expect(JSON.parse(recorded?.payload ?? "null")).toEqual(job.payload);
	});

	it("answers notFound for a learner no registration names, and for another application's, recording nothing", async () => {
		const owner = await appWithLearner("ada");
		const other = await seedApplication();

		expect(await acceptLearnerUpdate(env.DB, update(owner, "nobody"), DEFAULT_LIMITS)).toEqual({ outcome: "notFound" });
		expect(await acceptLearnerUpdate(env.DB, update(other, "ada"), DEFAULT_LIMITS)).toEqual({ outcome: "notFound" });

		expect(await jobCount(owner, "updateLearnerInfo")).toBe(0);
		expect(await jobCount(other, "updateLearnerInfo")).toBe(0);
	});

	it("answers erasing while an erasure of the learner is pending, recording nothing", async () => {
		const appId = await appWithLearner("ada");
		const pending = await acceptLearnerErasure(env.DB, erasure(appId, "ada", await seedRealmUser("admin")), DEFAULT_LIMITS);
		expect(pending.outcome).toBe("accepted");

		expect(await acceptLearnerUpdate(env.DB, update(appId, "ada"), DEFAULT_LIMITS)).toEqual({ outcome: "erasing" });

		expect(await jobCount(appId, "updateLearnerInfo")).toBe(0);
	});
});

describe("acceptLearnerErasure", () => {
	it("records a queued erasure requested by a realm owner or admin, matching the email case-insensitively", async () => {
		for (const role of ["owner", "admin"] as const) {
			const appId = await appWithLearner("ada");
			const requester = (await seedRealmUser(role)).toUpperCase();
			const job = erasure(appId, "ada", requester);

			const accepted = await acceptLearnerErasure(env.DB, job, DEFAULT_LIMITS);

			expect(accepted).toEqual({
				outcome: "accepted",
				job: expect.objectContaining({ id: job.id, appId, type: "deleteAllLearnerData", status: "queued", requestedBy: requester }),
			});
			expect(await getJob(env.DB, appId, job.id)).toEqual(accepted.outcome === "accepted" ? accepted.job : null);
		}
	});

	it("answers forbidden to a realm member and to an email that is no realm user's, recording nothing", async () => {
		const appId = await appWithLearner("ada");

		for (const requester of [await seedRealmUser("member"), `${uniqueValue("stranger")}@example.com`]) {
			expect(await acceptLearnerErasure(env.DB, erasure(appId, "ada", requester), DEFAULT_LIMITS)).toEqual({ outcome: "forbidden" });
		}

		expect(await jobCount(appId, "deleteAllLearnerData")).toBe(0);
	});

	it("answers notFound for an unknown learner whoever asks, so the answer tells nothing of the requester", async () => {
		const appId = await appWithLearner("ada");
		const other = await appWithLearner("bob");
		const requesters = [await seedRealmUser("admin"), await seedRealmUser("owner"), await seedRealmUser("member"), `${uniqueValue("stranger")}@example.com`];

		for (const requester of requesters) {
			expect(await acceptLearnerErasure(env.DB, erasure(appId, "nobody", requester), DEFAULT_LIMITS)).toEqual({ outcome: "notFound" });
			expect(await acceptLearnerErasure(env.DB, erasure(appId, "bob", requester), DEFAULT_LIMITS)).toEqual({ outcome: "notFound" });
		}

		expect(await jobCount(appId, "deleteAllLearnerData")).toBe(0);
		expect(await jobCount(other, "deleteAllLearnerData")).toBe(0);
	});

	it("answers a request while an erasure of the learner is pending with that job, recording no other", async () => {
		const appId = await appWithLearner("ada");
		const first = await acceptLearnerErasure(env.DB, erasure(appId, "ada", await seedRealmUser("admin")), DEFAULT_LIMITS);

		const again = await acceptLearnerErasure(env.DB, erasure(appId, "ada", await seedRealmUser("owner")), DEFAULT_LIMITS);

		expect(first.outcome).toBe("accepted");
		expect(again).toEqual(first);
		expect(await jobCount(appId, "deleteAllLearnerData")).toBe(1);
	});
});

describe("requestApplicationDeletion", () => {
	it("records a queued deletion job, and from then on refuses every write and every credential of the application", async () => {
		const appId = await appWithLearner("ada");
		const credential = { id: crypto.randomUUID(), appId, name: "main", enabled: true, createdAt: now() };
		expect(await insertCredential(env.DB, credential, "hash-of-the-secret")).toBe(true);

		const job = await requestApplicationDeletion(env.DB, appId, now());

		expect(job).toMatchObject({ appId, type: "deleteApplication", status: "queued" });
		expect(await getJob(env.DB, appId, job?.id ?? "")).toEqual(job);
		expect(await findActiveCredentialById(env.DB, credential.id)).toBeNull();
		const write = addTags(env.DB, LEARNER_TAGS, appId, ["ada"], ["late"], DEFAULT_LIMITS);
		expect(refusalOf(await write.then(() => null, (error: unknown) => error))).toBe("application_deleted");
	});

	it("answers the same job while it is unfinished", async () => {
		const appId = await seedApplication();
		const first = await requestApplicationDeletion(env.DB, appId, now());

		const again = await requestApplicationDeletion(env.DB, appId, now());

		expect(again?.id).toBe(first?.id);
		expect(await jobCount(appId, "deleteApplication")).toBe(1);
	});

	it("starts again a deletion an earlier version marked failed", async () => {
		const appId = await seedApplication();
		const first = await requestApplicationDeletion(env.DB, appId, now());
		await env.DB.prepare("UPDATE jobs SET status = 'failed', completed_at = ?2 WHERE id = ?1").bind(first?.id, now()).run();

		const again = await requestApplicationDeletion(env.DB, appId, now());

		expect(again).toMatchObject({ id: first?.id, status: "queued", completedAt: null });
	});

	it("answers null for an unknown application, and once the deletion has completed", async () => {
		const appId = await appWithLearner("ada");
		const job = await requestApplicationDeletion(env.DB, appId, now());
		expect(await runJob(env.DB, { type: "deleteApplication", jobId: job?.id ?? "" })).toBe("done");
		expect((await getJob(env.DB, appId, job?.id ?? ""))?.status).toBe("completed");

		expect(await requestApplicationDeletion(env.DB, appId, now())).toBeNull();
		expect(await requestApplicationDeletion(env.DB, uniqueValue("unknown-app"), now())).toBeNull();
	});
});

describe("getJob", () => {
	it("answers null for another application's job", async () => {
		const owner = await appWithLearner("ada");
		const other = await seedApplication();
		const job = update(owner, "ada");
		await acceptLearnerUpdate(env.DB, job, DEFAULT_LIMITS);

		expect(await getJob(env.DB, other, job.id)).toBeNull();
		expect((await getJob(env.DB, owner, job.id))?.id).toBe(job.id);
	});
});
