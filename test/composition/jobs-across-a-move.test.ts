import { env } from "cloudflare:workers";
import { describe, expect, it, onTestFinished } from "vitest";
import { findPlacement } from "../../src/db/applications";
import type { JobMessage } from "../../src/jobs/contract";
import { MOVE_BOUNDS, runMove } from "../../src/jobs/move";
import { runJob } from "../../src/jobs/run";
import { shardDatabase } from "../../src/shards";
import { call } from "../support/client";
import { getJob, jobIdOf } from "../support/expect";
import { MANAGEMENT, type TestApp, createApp, enrol, learnerOn, putTags, realmUser, uniqueValue } from "../support/fixtures";
import { acceptErasure, acceptUpdate, drain, sentDuring } from "../support/queue";
import { SHARDS } from "../support/seed";

/**
 * Work under way while its application moves between shards (SPEC §7, §11): no acknowledged update or erasure is
 * partly lost whatever its chunk boundaries, and what orders rows (a registration's place among the application's,
 * the learner directory's "newest" details, a `more` cursor) means the same on the new shard.
 */

const placementOf = async (appId: string) => (await findPlacement(env.DB, appId))?.shard ?? "";
const otherDefaultShard = (shard: string) => SHARDS.find((candidate) => candidate.region === "default" && candidate.name !== shard)?.name ?? "";
const phaseOf = async (jobId: string) =>
	(JSON.parse((await env.DB.prepare("SELECT payload FROM jobs WHERE id = ?1").bind(jobId).first<{ payload: string }>())?.payload ?? "{}") as { phase?: string })
		.phase;

/** Accepts a move of the application to the other shard of its region, without running it. */
async function startMove(app: TestApp): Promise<{ jobId: string; from: string; to: string }> {
	const from = await placementOf(app.appId);
	const to = otherDefaultShard(from);
	const { result } = await sentDuring(() => call("POST", `/appManagement/applications/${app.appId}/move`, { auth: MANAGEMENT, body: { shard: to } }));
	expect(result.status).toBe(204);
	return { jobId: jobIdOf(result), from, to };
}

/** Runs the move's steps one at a time until `until` holds (its phase, say), then returns. */
async function moveUntil(jobId: string, until: () => Promise<boolean>): Promise<void> {
	for (let steps = 0; !(await until()); steps++) {
		expect(steps).toBeLessThan(200);
		await runMove(env, env.DB, jobId, 1);
	}
}
const finished = (jobId: string) => async () => (await getJob(MANAGEMENT, jobId)).status !== "running" && (await getJob(MANAGEMENT, jobId)).status !== "queued";

/** One chunk of a job, visiting at most `registrations` registrations, on the shard given. */
const oneChunk = (shard: string, message: JobMessage, registrations: number) =>
	runJob(shardDatabase(env, shard), message, { bounds: { registrations, rows: 5000 }, chunks: 1 });

describe("a job under way while its application moves", () => {
	it("updates every registration of the learner, whichever chunk the move came between", async () => {
		for (const updatedBeforeTheMove of [1, 2, 3, 4]) {
			const app = await createApp();
			const learnerId = uniqueValue("moving-learner");
			const registrations: string[] = [];
			for (let i = 0; i < 5; i++) registrations.push(await enrol(app, { id: learnerId, email: "old@example.com" }));
			const update = await acceptUpdate(app, { id: learnerId, email: "new@example.com" });
			const move = await startMove(app);
			// The move is copying (its journal on) when the update's first chunks run on the shard it leaves.
			await moveUntil(move.jobId, async () => (await phaseOf(move.jobId)) === "copy");
			await oneChunk(move.from, update, updatedBeforeTheMove);
			await moveUntil(move.jobId, finished(move.jobId));
			expect(await getJob(MANAGEMENT, move.jobId)).toMatchObject({ status: "completed" });
			await drain(update);

			// Resumed where it was: every registration counted once.
			expect({ updatedBeforeTheMove, job: await getJob(app.auth, update.jobId) }).toMatchObject({
				updatedBeforeTheMove,
				job: { status: "completed", registrationsAffected: 5 },
			});
			const emails = await Promise.all(registrations.map(async (id) => (await learnerOn(app, id)).email));
			expect({ updatedBeforeTheMove, emails }).toEqual({ updatedBeforeTheMove, emails: registrations.map(() => "new@example.com") });
		}
	});

	it("erases every registration of the learner, whichever chunk the move came between", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("moving-erased");
		for (let i = 0; i < 5; i++) await enrol(app, learnerId, { registrationTags: [`r${i}`] });
		const erasure = await acceptErasure(app, learnerId, await realmUser("admin"));
		const move = await startMove(app);
		await moveUntil(move.jobId, async () => (await phaseOf(move.jobId)) === "copy");
		await oneChunk(move.from, erasure, 2);
		await moveUntil(move.jobId, finished(move.jobId));
		await drain(erasure);
		expect(await getJob(app.auth, erasure.jobId)).toMatchObject({ status: "completed", registrationsAffected: 5, tagsRemoved: 5 });
		expect((await call("GET", `/registrations?learnerId=${encodeURIComponent(learnerId)}`, { auth: app.auth }).then((r) => r.json())) as unknown).toEqual({
			registrations: [],
		});
	});
});

describe("writes while a move copies", () => {
	it("acknowledges a write to a key the move has journaled already (a second registration bringing its learner's tag)", async () => {
		const app = await createApp();
		await enrol(app, uniqueValue("someone"));
		const move = await startMove(app);
		await moveUntil(move.jobId, async () => (await phaseOf(move.jobId)) === "copy");
		const learnerId = uniqueValue("journaled-twice");
		// The first registration journals the learner (its tag and tag count); the second touches the same keys.
		const first = await call("POST", "/registrations", {
			auth: app.auth,
			body: { courseId: "c", registrationId: uniqueValue("first"), learner: { id: learnerId }, learnerTags: ["t"] },
		});
		const second = await call("POST", "/registrations", {
			auth: app.auth,
			body: { courseId: "c", registrationId: uniqueValue("second"), learner: { id: learnerId }, learnerTags: ["t"] },
		});
		expect([first.status, second.status]).toEqual([204, 204]);
		await putTags(app, "learner", learnerId, ["u"]);
		await moveUntil(move.jobId, finished(move.jobId));
		expect(await placementOf(app.appId)).toBe(move.to);
		const listed = (await (await call("GET", `/learners?tags=t`, { auth: app.auth })).json()) as { learners: unknown[] };
		expect(listed.learners).toEqual([{ id: learnerId, tags: ["t", "u"], registrationCount: 2 }]);
	});
});

describe("what orders rows, across a move", () => {
	it("keeps the learner directory's newest details the same when a registration changed while the move ran", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("directory-learner");
		const older = await enrol(app, { id: learnerId, email: "older@example.com" });
		await enrol(app, { id: learnerId, email: "newer@example.com" });
		const shown = async () => {
			const body = (await (await call("GET", "/learners", { auth: app.auth })).json()) as { learners: { id: string; email?: string }[] };
			return body.learners.find((learner) => learner.id === learnerId)?.email;
		};
		// Registrations with equal versions: the newest registration's details are the learner's.
		expect(await shown()).toBe("newer@example.com");
		const move = await startMove(app);
		await moveUntil(move.jobId, async () => (await phaseOf(move.jobId)) === "catchUp");
		// The older registration changes while the move runs (a tag), so it is copied again.
		await putTags(app, "registrations", older, ["late"]);
		await moveUntil(move.jobId, finished(move.jobId));
		expect(await placementOf(app.appId)).toBe(move.to);
		expect(await shown()).toBe("newer@example.com");
	});

	it("keeps registrations created while the move ran in the order they were created, not the order of their ids", async () => {
		const app = await createApp();
		await enrol(app, uniqueValue("before-the-move"));
		const move = await startMove(app);
		await moveUntil(move.jobId, async () => (await phaseOf(move.jobId)) === "catchUp");
		// Three registrations in the same millisecond, their ids in reverse order: only their creation order tells.
		const at = new Date().toISOString();
		const created = ["late-c", "late-b", "late-a"];
		// Replayed one journaled key per step, so the order the keys are taken in is the order they land in.
		const keysPerStep = MOVE_BOUNDS.keysPerStep;
		onTestFinished(() => {
			MOVE_BOUNDS.keysPerStep = keysPerStep;
		});
		MOVE_BOUNDS.keysPerStep = 1;
		for (const id of created) {
			await shardDatabase(env, move.from)
				.prepare(
					`INSERT INTO registrations (app_id, id, course_id, learner_id, xapi_registration_id, created_at, updated_at)
					 VALUES (?1, ?2, 'c', 'late-learner', lower(hex(randomblob(16))), ?3, ?3)`,
				)
				.bind(app.appId, id, at)
				.run();
		}
		await moveUntil(move.jobId, finished(move.jobId));
		expect(await placementOf(app.appId)).toBe(move.to);
		const listed = (await (await call("GET", "/registrations?learnerId=late-learner&orderBy=created_asc", { auth: app.auth })).json()) as { registrations: { id: string }[] };
		expect(listed.registrations.map((registration) => registration.id)).toEqual(created);
	});

	it("places a registration deleted and created again under its id while the move ran after the rest, as the source does", async () => {
		const app = await createApp();
		const from = await placementOf(app.appId);
		const at = new Date().toISOString();
		const insert = (id: string) =>
			shardDatabase(env, from)
				.prepare(
					`INSERT INTO registrations (app_id, id, course_id, learner_id, xapi_registration_id, created_at, updated_at)
					 VALUES (?1, ?2, 'c', 'again-learner', lower(hex(randomblob(16))), ?3, ?3)`,
				)
				.bind(app.appId, id, at)
				.run();
		await insert("again-x");
		await insert("again-y");
		const move = await startMove(app);
		await moveUntil(move.jobId, async () => (await phaseOf(move.jobId)) === "catchUp");
		// Deleted and created again, in the same millisecond as before: a new registration, after the other one.
		await shardDatabase(env, from).prepare("DELETE FROM registrations WHERE app_id = ?1 AND id = 'again-x'").bind(app.appId).run();
		await insert("again-x");
		await moveUntil(move.jobId, finished(move.jobId));
		expect(await placementOf(app.appId)).toBe(move.to);
		const listed = (await (await call("GET", "/registrations?learnerId=again-learner&orderBy=created_asc", { auth: app.auth })).json()) as {
			registrations: { id: string }[];
		};
		expect(listed.registrations.map((registration) => registration.id)).toEqual(["again-y", "again-x"]);
	});

	it("continues a `more` cursor issued before the move where it stopped", async () => {
		const app = await createApp();
		const from = await placementOf(app.appId);
		// 150 registrations created in the same millisecond: only their pk tells them apart.
		const at = new Date().toISOString();
		await shardDatabase(env, from)
			.prepare(
				`INSERT INTO registrations (app_id, id, course_id, learner_id, xapi_registration_id, created_at, updated_at)
				 SELECT ?1, 'same-ms-' || value, 'c', 'l-' || value, lower(hex(randomblob(16))), ?2, ?2 FROM json_each(?3) ORDER BY key`,
			)
			.bind(app.appId, at, JSON.stringify(Array.from({ length: 150 }, (_, i) => String(i).padStart(3, "0"))))
			.run();
		const first = (await (await call("GET", "/registrations", { auth: app.auth })).json()) as { registrations: { id: string }[]; more: string };
		expect(first.registrations).toHaveLength(100);
		const move = await startMove(app);
		await moveUntil(move.jobId, finished(move.jobId));
		expect(await placementOf(app.appId)).toBe(move.to);
		const second = (await (await call("GET", `/registrations?more=${encodeURIComponent(first.more)}`, { auth: app.auth })).json()) as {
			registrations: { id: string }[];
		};
		const seen = [...first.registrations, ...second.registrations].map((registration) => registration.id);
		expect({ listed: seen.length, distinct: new Set(seen).size }).toEqual({ listed: 150, distinct: 150 });
	});
});
