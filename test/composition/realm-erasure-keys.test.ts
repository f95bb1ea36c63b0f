import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { JobMessage } from "../../src/jobs/contract";
import { runMove } from "../../src/jobs/move";
import { apiRequest, call, fetchWithBindings } from "../support/client";
import { faultyD1 } from "../support/faulty-d1";
import { everyD1Binding } from "../support/d1-bindings";
import { expectMessage, getJob, jobIdOf } from "../support/expect";
import { MANAGEMENT, appOnShard, enrol, realmUser, tagsOf, uniqueValue } from "../support/fixtures";
import { drain, sentDuring } from "../support/queue";
import { SHARDS } from "../support/seed";

/**
 * Realm-wide erasure with an Idempotency-Key (SPEC §8, §9): the key is consulted before anything else, so a retry
 * replays the first answer whenever it comes, and the key reused for another learner is refused before that
 * learner's erasures start.
 */

const realmPath = (learnerId: string, email: string) =>
	`/appManagement/learners/${encodeURIComponent(learnerId)}/delete-information?userEmail=${encodeURIComponent(email)}`;

describe("POST /appManagement/learners/{learnerId}/delete-information with an Idempotency-Key", () => {
	it("replays its first answer when retried after the erasure completed", async () => {
		const admin = await realmUser("admin");
		const app = await appOnShard(SHARDS[0]?.name ?? "");
		const learnerId = uniqueValue("realm-keyed");
		await enrol(app, learnerId);
		const key = uniqueValue("key");
		const { result: first, sent } = await sentDuring(() => call("POST", realmPath(learnerId, admin), { auth: MANAGEMENT, headers: { "Idempotency-Key": key } }));
		expect(first.status).toBe(204);
		for (const message of sent) await drain(message.body as JobMessage);
		expect((await getJob(MANAGEMENT, jobIdOf(first))).status).toBe("completed");

		const { result: retry, sent: again } = await sentDuring(() =>
			call("POST", realmPath(learnerId, admin), { auth: MANAGEMENT, headers: { "Idempotency-Key": key } }),
		);
		expect({ status: retry.status, location: retry.headers.get("Location"), replayed: retry.headers.get("Idempotent-Replayed") }).toEqual({
			status: 204,
			location: first.headers.get("Location"),
			replayed: "true",
		});
		expect(again).toEqual([]);
	});

	it("answers a retry from its key alone: one D1 call, no shard asked, before looking for the learner anywhere", async () => {
		const admin = await realmUser("admin");
		const app = await appOnShard(SHARDS[0]?.name ?? "");
		const learnerId = uniqueValue("realm-keyed-retry");
		await enrol(app, learnerId);
		const key = uniqueValue("key");
		const first = await call("POST", realmPath(learnerId, admin), { auth: MANAGEMENT, headers: { "Idempotency-Key": key } });
		expect(first.status).toBe(204);

		const calls: string[] = [];
		const bindings = everyD1Binding((database) => {
			const name = database === env.DB ? "DB" : (SHARDS.find((shard) => env[shard.name as keyof Env] === database)?.name ?? "a shard");
			return faultyD1(() => {
				calls.push(name);
				return null;
			}, database);
		});
		const request = apiRequest("POST", realmPath(learnerId, admin), { auth: MANAGEMENT });
		request.headers.set("Idempotency-Key", key);
		const retry = await fetchWithBindings(request, bindings);
		expect({ status: retry.status, location: retry.headers.get("Location"), replayed: retry.headers.get("Idempotent-Replayed") }).toEqual({
			status: 204,
			location: first.headers.get("Location"),
			replayed: "true",
		});
		expect(calls).toEqual(["DB"]);
	});

	it("refuses the same key for another learner with 422 before erasing anything of that learner", async () => {
		const admin = await realmUser("admin");
		const app = await appOnShard(SHARDS[1]?.name ?? "");
		const [first, other] = [uniqueValue("realm-first"), uniqueValue("realm-other")];
		await enrol(app, first);
		await enrol(app, other, { learnerTags: ["kept"] });
		const key = uniqueValue("key");
		const { result: accepted, sent } = await sentDuring(() => call("POST", realmPath(first, admin), { auth: MANAGEMENT, headers: { "Idempotency-Key": key } }));
		expect(accepted.status).toBe(204);
		for (const message of sent) await drain(message.body as JobMessage);

		const { result: reused, sent: started } = await sentDuring(() =>
			call("POST", realmPath(other, admin), { auth: MANAGEMENT, headers: { "Idempotency-Key": key } }),
		);
		expect(await expectMessage(reused, 422)).toContain(`Idempotency-Key [${key}]`);
		// Nothing of the other learner's erasure started: whatever was sent is run, and the learner is as it was.
		for (const message of started) await drain(message.body as JobMessage);
		expect(await tagsOf(app, "learner", other)).toEqual(["kept"]);
		expect(started).toEqual([]);
	});

	it("frees an application's keys that named the learner once its part is erased: the key then starts a new request", async () => {
		const admin = await realmUser("admin");
		const app = await appOnShard(SHARDS[0]?.name ?? "");
		const [erased, other] = [uniqueValue("realm-keyed-erased"), uniqueValue("realm-keyed-other")];
		await enrol(app, other);
		const key = uniqueValue("key");
		const registered = await call("POST", "/registrations", {
			auth: app.auth,
			body: { courseId: "course-1", registrationId: uniqueValue("registration"), learner: { id: erased } },
			headers: { "Idempotency-Key": key },
		});
		expect(registered.status).toBe(204);
		const { result: accepted, sent } = await sentDuring(() => call("POST", realmPath(erased, admin), { auth: MANAGEMENT }));
		expect(accepted.status).toBe(204);
		for (const message of sent) await drain(message.body as JobMessage);
		expect((await getJob(MANAGEMENT, jobIdOf(accepted))).status).toBe("completed");

		// The registration's stored answer named the erased learner, so it went with them: the same key on another
		// request is that request's, not a 422 for reuse.
		const reused = await call("POST", `/learners/delete-information?userEmail=${encodeURIComponent(admin)}`, {
			auth: app.auth,
			body: { ids: [other] },
			headers: { "Idempotency-Key": key },
		});
		expect(reused.status).toBe(204);
		expect(reused.headers.get("Location")).toMatch(/\/jobs\//);
	});
});

describe("POST /appManagement/learners/{learnerId}/delete-information while an application holding the learner moves", () => {
	it("accepts the erasure as one realm job, which asks the moving application once it has landed", async () => {
		const admin = await realmUser("admin");
		const [still, moving] = [await appOnShard(SHARDS[0]?.name ?? ""), await appOnShard(SHARDS[1]?.name ?? "")];
		const learnerId = uniqueValue("realm-while-moving");
		for (const app of [still, moving]) await enrol(app, learnerId, { learnerTags: ["t"] });
		// The second application is frozen: its move has copied everything and is about to flip.
		const { result: accepted } = await sentDuring(() =>
			call("POST", `/appManagement/applications/${moving.appId}/move`, { auth: MANAGEMENT, body: { shard: SHARDS[0]?.name } }),
		);
		const moveId = jobIdOf(accepted);
		const phase = async () =>
			(JSON.parse((await env.DB.prepare("SELECT payload FROM jobs WHERE id = ?1").bind(moveId).first<{ payload: string }>())?.payload ?? "{}") as { phase?: string })
				.phase;
		for (let steps = 0; (await phase()) !== "verify"; steps++) {
			expect(steps).toBeLessThan(100);
			await runMove(env, env.DB, moveId, 1);
		}

		const { result, sent } = await sentDuring(() => call("POST", realmPath(learnerId, admin), { auth: MANAGEMENT }));
		expect(result.status).toBe(204);
		const realmId = jobIdOf(result);
		for (let steps = 0; (await getJob(MANAGEMENT, moveId)).status === "running"; steps++) {
			expect(steps).toBeLessThan(100);
			await runMove(env, env.DB, moveId, 1);
		}
		for (const message of sent) await drain(message.body as JobMessage);
		expect(await getJob(MANAGEMENT, realmId)).toMatchObject({ status: "completed", registrationsAffected: 2, tagsRemoved: 2 });
		for (const app of [still, moving]) expect((await call("GET", `/learner/${encodeURIComponent(learnerId)}/tags`, { auth: app.auth })).status).toBe(404);
	});
});
