import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { refusalOf } from "../../src/db/app-storage";
import { findPlacement, listApplications, markApplicationDeleted } from "../../src/db/applications";
import { findActiveCredentialById, findActiveCredentialBySecret, insertCredential } from "../../src/db/credentials";
import {
	acceptLearnerErasure,
	acceptLearnerUpdate,
	acceptMove,
	getJob,
	jobHome,
	newJobId,
	recordApplicationDeletion,
} from "../../src/db/jobs";
import { type RealmRole, getRealmUserRole, upsertRealmUser } from "../../src/db/realm-users";
import { LEARNER_TAGS, addTags } from "../../src/db/tags";
import { runJob } from "../../src/jobs/run";
import { shardDatabase } from "../../src/shards";
import { uniqueValue } from "../support/fixtures";
import { DEFAULT_LIMITS, SHARDS, countOf, insertRegistrations, seedApplication, shardOf } from "../support/seed";

// src/db/jobs.ts on its own, apart from the routes: accepting jobs (SPEC §3: updateLearnerInfo,
// deleteAllLearnerData; §4 and §11: application deletion), as the routes and the consumer rely on them. A
// learner's jobs are recorded on its application's shard; realm users live in the control database, read first
// (as the route does) and weighed by the shard. An application's deletion is accepted by the control database
// (markApplicationDeleted), then recorded on its shard (recordApplicationDeletion).

const now = () => new Date().toISOString();

/** An application with one registration naming the learner. */
async function appWithLearner(learnerId: string): Promise<string> {
	const appId = await seedApplication();
	await insertRegistrations(appId, [{ id: `${learnerId}-registration`, courseId: "course", learnerId }]);
	return appId;
}

/** A new application on the same shard as `appId`: only the application id keeps their rows apart. */
async function appBeside(appId: string): Promise<string> {
	const placement = await findPlacement(env.DB, appId);
	if (!placement) throw new Error(`no application ${appId}`);
	return seedApplication({ shard: placement.shard });
}

/** A realm user with that role; its email. */
async function seedRealmUser(role: RealmRole): Promise<string> {
	const email = `${uniqueValue(role)}@example.com`;
	await upsertRealmUser(env.DB, { email, role }, now());
	return email;
}

/** Whether the requester may erase, as the route reads it from the control database: a realm owner or admin. */
async function mayErase(requester: string): Promise<boolean> {
	const role = await getRealmUserRole(env.DB, requester);
	return role === "owner" || role === "admin";
}

/** The application's jobs of that type, in every database of the realm. */
async function jobCount(appId: string, type: string): Promise<number> {
	return countOf("SELECT count(*) AS n FROM jobs WHERE app_id = ?1 AND type = ?2", appId, type);
}

/** An update of the learner's email, as the route hands it over (the learner hash stands for the learner id). */
const update = (appId: string, learnerId: string) => ({
	id: newJobId(appId),
	appId,
	learnerId,
	learnerHash: `hash-of-${learnerId}`,
	payload: { email: "new@example.com" },
	createdAt: now(),
});

/** An erasure of the learner requested by `requestedBy`. */
const erasure = (appId: string, learnerId: string, requestedBy: string) => ({
	id: newJobId(appId),
	appId,
	learnerId,
	learnerHash: `hash-of-${learnerId}`,
	requestedBy,
	createdAt: now(),
});

/** Accepts the erasure on the application's shard, as the route does. */
async function erase(job: ReturnType<typeof erasure>) {
	return acceptLearnerErasure(await shardOf(job.appId), job, DEFAULT_LIMITS, await mayErase(job.requestedBy));
}

describe("acceptLearnerUpdate", () => {
	it("records a queued update of a learner a registration names, holding its payload until it runs", async () => {
		const appId = await appWithLearner("ada");
		const db = await shardOf(appId);
		const job = update(appId, "ada");

		expect(await acceptLearnerUpdate(db, job, DEFAULT_LIMITS)).toEqual({ outcome: "accepted", jobId: job.id });

		const recorded = await getJob(db, appId, job.id);
		expect(recorded).toMatchObject({ id: job.id, appId, type: "updateLearnerInfo", status: "queued", learnerId: "ada", registrationsAffected: 0 });
		expect(JSON.parse(recorded?.payload ?? "null")).toEqual(job.payload);
	});

	it("answers notFound for a learner no registration names, and for another application's, recording nothing", async () => {
		const owner = await appWithLearner("ada");
		const other = await appBeside(owner);
		const db = await shardOf(owner);

		expect(await acceptLearnerUpdate(db, update(owner, "nobody"), DEFAULT_LIMITS)).toEqual({ outcome: "notFound" });
		expect(await acceptLearnerUpdate(db, update(other, "ada"), DEFAULT_LIMITS)).toEqual({ outcome: "notFound" });

		expect(await jobCount(owner, "updateLearnerInfo")).toBe(0);
		expect(await jobCount(other, "updateLearnerInfo")).toBe(0);
	});

	it("answers erasing while an erasure of the learner is pending, recording nothing", async () => {
		const appId = await appWithLearner("ada");
		const pending = await erase(erasure(appId, "ada", await seedRealmUser("admin")));
		expect(pending.outcome).toBe("accepted");

		expect(await acceptLearnerUpdate(await shardOf(appId), update(appId, "ada"), DEFAULT_LIMITS)).toEqual({ outcome: "erasing" });

		expect(await jobCount(appId, "updateLearnerInfo")).toBe(0);
	});
});

describe("acceptLearnerErasure", () => {
	it("records a queued erasure requested by a realm owner or admin, matching the email case-insensitively", async () => {
		for (const role of ["owner", "admin"] as const) {
			const appId = await appWithLearner("ada");
			const requester = (await seedRealmUser(role)).toUpperCase();
			const job = erasure(appId, "ada", requester);

			const accepted = await erase(job);

			expect(accepted).toEqual({
				outcome: "accepted",
				job: expect.objectContaining({ id: job.id, appId, type: "deleteAllLearnerData", status: "queued", requestedBy: requester }),
			});
			expect(await getJob(await shardOf(appId), appId, job.id)).toEqual(accepted.outcome === "accepted" ? accepted.job : null);
		}
	});

	it("answers forbidden to a realm member and to an email that is no realm user's, recording nothing", async () => {
		const appId = await appWithLearner("ada");

		for (const requester of [await seedRealmUser("member"), `${uniqueValue("stranger")}@example.com`]) {
			expect(await erase(erasure(appId, "ada", requester))).toEqual({ outcome: "forbidden" });
		}

		expect(await jobCount(appId, "deleteAllLearnerData")).toBe(0);
	});

	it("answers notFound for an unknown learner whoever asks, so the answer tells nothing of the requester", async () => {
		const appId = await appWithLearner("ada");
		const other = await appBeside(appId);
		await insertRegistrations(other, [{ id: "bob-registration", courseId: "course", learnerId: "bob" }]);
		const requesters = [await seedRealmUser("admin"), await seedRealmUser("owner"), await seedRealmUser("member"), `${uniqueValue("stranger")}@example.com`];

		for (const requester of requesters) {
			expect(await erase(erasure(appId, "nobody", requester))).toEqual({ outcome: "notFound" });
			expect(await erase(erasure(appId, "bob", requester))).toEqual({ outcome: "notFound" });
		}

		expect(await jobCount(appId, "deleteAllLearnerData")).toBe(0);
		expect(await jobCount(other, "deleteAllLearnerData")).toBe(0);
	});

	it("answers a request while an erasure of the learner is pending with that job, recording no other", async () => {
		const appId = await appWithLearner("ada");
		const first = await erase(erasure(appId, "ada", await seedRealmUser("admin")));

		const again = await erase(erasure(appId, "ada", await seedRealmUser("owner")));

		expect(first.outcome).toBe("accepted");
		expect(again).toEqual(first);
		expect(await jobCount(appId, "deleteAllLearnerData")).toBe(1);
	});
});

describe("markApplicationDeleted and recordApplicationDeletion", () => {
	it("mark the application deleted, its credentials going at once, then record a queued job on its shard, which refuses every write from then on", async () => {
		const appId = await appWithLearner("ada");
		const placement = await findPlacement(env.DB, appId);
		const credential = { id: crypto.randomUUID(), appId, name: "main", enabled: true, createdAt: now() };
		expect(await insertCredential(env.DB, credential, "hash-of-the-secret")).toBe(true);
		const at = now();

		expect(await markApplicationDeleted(env.DB, appId, at)).toEqual({
			appId,
			shard: placement?.shard,
			dataRegion: placement?.dataRegion,
			deletedAt: at,
		});
		// The control database's half alone stops the credentials and the listing.
		expect(await findActiveCredentialById(env.DB, credential.id)).toBeNull();
		expect(await findActiveCredentialBySecret(env.DB, appId, "hash-of-the-secret")).toBeNull();
		expect(await countOf("SELECT count(*) AS n FROM credentials WHERE app_id = ?1", appId)).toBe(0);
		expect((await listApplications(env.DB)).map(({ id }) => id)).not.toContain(appId);

		const shard = await shardOf(appId);
		const job = await recordApplicationDeletion(shard, appId, now());

		expect(job).toMatchObject({ appId, type: "deleteApplication", status: "queued" });
		// Its id names the application, whose placement finds the shard.
		expect(jobHome(job?.id ?? "")).toEqual({ appId });
		expect(await getJob(shard, appId, job?.id ?? "")).toEqual(job);
		expect(await jobCount(appId, "deleteApplication")).toBe(1);
		const write = addTags(shard, LEARNER_TAGS, appId, ["ada"], ["late"], DEFAULT_LIMITS);
		expect(refusalOf(await write.then(() => null, (error: unknown) => error))).toBe("application_deleted");
	});

	it("markApplicationDeleted keeps the first deletion time when asked again", async () => {
		const appId = await seedApplication();
		const first = await markApplicationDeleted(env.DB, appId, "2026-01-01T00:00:00.000Z");

		const again = await markApplicationDeleted(env.DB, appId, "2026-01-02T00:00:00.000Z");

		expect(first).toMatchObject({ appId, deletedAt: "2026-01-01T00:00:00.000Z" });
		expect(again).toEqual(first);
	});

	it("markApplicationDeleted answers null for an unknown application, and moving while a move of it is unfinished, changing nothing", async () => {
		expect(await markApplicationDeleted(env.DB, uniqueValue("unknown-app"), now())).toBeNull();

		const appId = await seedApplication();
		const placement = await findPlacement(env.DB, appId);
		const to = SHARDS.find((shard) => shard.region === placement?.dataRegion && shard.name !== placement?.shard);
		if (!placement || !to) throw new Error("no second shard in the application's region");
		const credential = { id: crypto.randomUUID(), appId, name: "main", enabled: true, createdAt: now() };
		expect(await insertCredential(env.DB, credential, "hash-of-the-secret")).toBe(true);
		const move = await acceptMove(env.DB, { id: crypto.randomUUID(), appId, from: placement.shard, to: to.name, payload: "{}", createdAt: now() });
		expect(move).toMatchObject({ appId, type: "moveApplication", status: "queued" });

		expect(await markApplicationDeleted(env.DB, appId, now())).toBe("moving");

		expect(await findPlacement(env.DB, appId)).toEqual(placement);
		expect(await findActiveCredentialById(env.DB, credential.id)).toMatchObject({ id: credential.id, appId });
		expect(await jobCount(appId, "deleteApplication")).toBe(0);
	});

	it("recordApplicationDeletion answers the same job while it is unfinished", async () => {
		const appId = await seedApplication();
		const shard = await shardOf(appId);
		await markApplicationDeleted(env.DB, appId, now());
		const first = await recordApplicationDeletion(shard, appId, now());

		const again = await recordApplicationDeletion(shard, appId, now());

		expect(first).toMatchObject({ appId, type: "deleteApplication", status: "queued" });
		expect(again?.id).toBe(first?.id);
		expect(await jobCount(appId, "deleteApplication")).toBe(1);
	});

	it("recordApplicationDeletion starts again a deletion an earlier version marked failed", async () => {
		const appId = await seedApplication();
		const shard = await shardOf(appId);
		await markApplicationDeleted(env.DB, appId, now());
		const first = await recordApplicationDeletion(shard, appId, now());
		await shard.prepare("UPDATE jobs SET status = 'failed', completed_at = ?2 WHERE id = ?1").bind(first?.id, now()).run();

		const again = await recordApplicationDeletion(shard, appId, now());

		expect(again).toMatchObject({ id: first?.id, status: "queued", completedAt: null });
	});

	it("recordApplicationDeletion answers null for an application the shard does not hold, and once the deletion has completed", async () => {
		const appId = await appWithLearner("ada");
		const placement = await findPlacement(env.DB, appId);
		const shard = await shardOf(appId);
		await markApplicationDeleted(env.DB, appId, now());

		// Another shard does not hold the application: it records nothing there.
		for (const other of SHARDS.filter(({ name }) => name !== placement?.shard)) {
			expect(await recordApplicationDeletion(shardDatabase(env, other.name), appId, now())).toBeNull();
		}
		expect(await jobCount(appId, "deleteApplication")).toBe(0);

		const job = await recordApplicationDeletion(shard, appId, now());
		expect(await runJob(shard, { type: "deleteApplication", jobId: job?.id ?? "" })).toBe("done");
		expect((await getJob(shard, appId, job?.id ?? ""))?.status).toBe("completed");

		expect(await recordApplicationDeletion(shard, appId, now())).toBeNull();
		expect(await recordApplicationDeletion(shard, uniqueValue("unknown-app"), now())).toBeNull();
	});
});

describe("getJob", () => {
	it("answers null for another application's job", async () => {
		const owner = await appWithLearner("ada");
		const other = await appBeside(owner);
		const db = await shardOf(owner);
		const job = update(owner, "ada");
		await acceptLearnerUpdate(db, job, DEFAULT_LIMITS);

		expect(await getJob(db, other, job.id)).toBeNull();
		expect((await getJob(db, owner, job.id))?.id).toBe(job.id);
	});
});
