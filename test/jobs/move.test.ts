import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { findPlacement } from "../../src/db/applications";
import { MOVED_TABLES } from "../../src/db/move";
import { runMove } from "../../src/jobs/move";
import { shardDatabase } from "../../src/shards";
import { apiRequest, call, fetchWithBindings } from "../support/client";
import { getJob, jobIdOf } from "../support/expect";
import { MANAGEMENT, type TestApp, createApp, enrol, learnerOn, realmUser, tagsOf } from "../support/fixtures";
import { acceptUpdate, drain, sentDuring } from "../support/queue";
import { SHARDS, seedRegistrations, tagLearners } from "../support/seed";

/**
 * Moving an application between shards (SPEC §7): the copy runs while the application keeps working; a write
 * during the final flip is refused with 503 + Retry-After (never lost, never half-written); every acknowledged
 * write is found on the new shard, and nothing of the application is left on the old one.
 */

const placementOf = async (appId: string) => (await findPlacement(env.DB, appId))?.shard ?? "";
/** The other shard of the default region: a move that needs no region change. */
const otherDefaultShard = (shard: string) => SHARDS.find((candidate) => candidate.region === "default" && candidate.name !== shard)?.name ?? "";

const requestMove = (appId: string, body: Record<string, unknown>) =>
	call("POST", `/appManagement/applications/${appId}/move`, { auth: MANAGEMENT, body });

/** The application's rows in each moved table of a shard, and whether it is still journaled there. */
async function rowsOn(shard: string, appId: string): Promise<Record<string, number>> {
	const db = shardDatabase(env, shard);
	const counts: Record<string, number> = {};
	for (const table of [...MOVED_TABLES.map((moved) => moved.table), "moving_apps", "move_journal"]) {
		const row = await db.prepare(`SELECT count(*) AS n FROM ${table} WHERE app_id = ?1`).bind(appId).first<{ n: number }>();
		counts[table] = row?.n ?? -1;
	}
	return counts;
}

const registrationOn = async (shard: string, appId: string, registrationId: string) =>
	shardDatabase(env, shard)
		.prepare("SELECT learner_id, learner_email FROM registrations WHERE app_id = ?1 AND id = ?2")
		.bind(appId, registrationId)
		.first<{ learner_id: string; learner_email: string | null }>();

/** One write a racing client made, and what it must have left behind if it was acknowledged. */
type Write =
	| { kind: "tag"; learnerId: string; tag: string }
	| { kind: "create"; registrationId: string; learnerId: string }
	| { kind: "delete"; registrationId: string };

describe("moving an application between shards", () => {
	it("keeps every acknowledged write made while the move runs, refuses writes only while it flips, and leaves nothing behind", async () => {
		const app = await createApp();
		const from = await placementOf(app.appId);
		const to = otherDefaultShard(from);
		// More rows than one copy step takes (1000), so the copy runs over several steps with writers between them.
		const learners = await seedRegistrations(app.appId, "seeded", 2500);
		await tagLearners(app.appId, learners.slice(0, 600), ["cohort-a", "cohort-b"]);

		// The move's message is kept off the queue: this test runs its steps itself, with writers racing each one.
		const { result: accepted, sent } = await sentDuring(() => requestMove(app.appId, { shard: to }));
		expect(accepted.status).toBe(204);
		const jobId = jobIdOf(accepted);
		expect(sent).toEqual([{ body: { type: "moveApplication", jobId } }]);

		const acknowledged: Write[] = [];
		let refused = 0;
		let serial = 0;
		const write = async (step: number): Promise<void> => {
			const n = serial++;
			const kind = n % 3;
			const planned: Write =
				kind === 0
					? { kind: "tag", learnerId: learners[(n * 7) % learners.length] ?? "", tag: `raced-${step}-${n}` }
					: kind === 1
						? { kind: "create", registrationId: `raced-registration-${n}`, learnerId: `raced-learner-${n}` }
						: { kind: "delete", registrationId: `seeded-reg-${n}` };
			const response =
				planned.kind === "tag"
					? await call("PUT", `/learner/${planned.learnerId}/tags`, { auth: app.auth, body: { tags: [planned.tag] } })
					: planned.kind === "create"
						? await call("POST", "/registrations", {
								auth: app.auth,
								body: { courseId: "course-1", learner: { id: planned.learnerId }, registrationId: planned.registrationId },
							})
						: await call("DELETE", `/registrations/${planned.registrationId}`, { auth: app.auth });
			if (response.status === 503) {
				// Refused while the placement flips: told when to retry, and nothing written (checked below).
				expect(Number(response.headers.get("Retry-After"))).toBeGreaterThan(0);
				refused++;
				return;
			}
			expect(response.status).toBe(204);
			acknowledged.push(planned);
		};

		let steps = 0;
		for (;;) {
			const [outcome] = await Promise.all([runMove(env, env.DB, jobId, 1), write(steps), write(steps), write(steps)]);
			steps++;
			expect(steps).toBeLessThan(200);
			const job = await getJob(MANAGEMENT, jobId);
			if (job.status === "completed" || job.status === "failed") break;
			expect(outcome).not.toBe("done");
		}
		const job = await getJob(MANAGEMENT, jobId);
		expect(job).toMatchObject({ id: jobId, type: "moveApplication", status: "completed", registrationsAffected: expect.any(Number) });
		// Writers were refused during the flip, and only then: most of the writes went through.
		expect(refused).toBeGreaterThan(0);
		expect(acknowledged.length).toBeGreaterThan(refused);

		expect(await placementOf(app.appId)).toBe(to);
		const listed = await call("GET", "/appManagement/applications", { auth: MANAGEMENT });
		const { applications } = (await listed.json()) as { applications: { id: string; shard: string; dataRegion: string }[] };
		expect(applications.find((listedApp) => listedApp.id === app.appId)).toMatchObject({ shard: to, dataRegion: "default" });

		// Every acknowledged write is on the new shard, and the API reads it from there.
		for (const done of acknowledged) {
			if (done.kind === "tag") {
				const tags = await shardDatabase(env, to)
					.prepare("SELECT tag FROM learner_tags WHERE app_id = ?1 AND learner_id = ?2")
					.bind(app.appId, done.learnerId)
					.all<{ tag: string }>();
				expect(tags.results.map((row) => row.tag)).toContain(done.tag);
				expect(await tagsOf(app, "learner", done.learnerId)).toContain(done.tag);
			} else if (done.kind === "create") {
				expect(await registrationOn(to, app.appId, done.registrationId)).toMatchObject({ learner_id: done.learnerId });
			} else {
				expect(await registrationOn(to, app.appId, done.registrationId)).toBeNull();
				expect((await call("GET", `/registrations/${done.registrationId}`, { auth: app.auth })).status).toBe(404);
			}
		}
		const created = acknowledged.filter((done) => done.kind === "create").length;
		const deleted = acknowledged.filter((done) => done.kind === "delete").length;
		const onNew = await rowsOn(to, app.appId);
		expect(onNew.registrations).toBe(2500 + created - deleted);
		// Tagged learners: the 600 seeded, less those whose only registration a racing client deleted.
		expect(onNew.learner_tag_counts).toBeGreaterThanOrEqual(600 - deleted);

		// Nothing of the application is left on the old shard, not even the journal.
		expect(Object.values(await rowsOn(from, app.appId)).every((count) => count === 0)).toBe(true);
		// Its storage row there stays, frozen: a write from an isolate that still believes the old placement is refused.
		const storage = await shardDatabase(env, from)
			.prepare("SELECT frozen_at, stored_rows FROM app_storage WHERE app_id = ?1")
			.bind(app.appId)
			.first<{ frozen_at: string | null; stored_rows: number }>();
		expect(storage?.frozen_at).not.toBeNull();
		expect(storage?.stored_rows).toBe(0);

		// And the application goes on working on its new shard.
		const after = await call("PUT", `/learner/${learners[0]}/tags`, { auth: app.auth, body: { tags: ["after-the-move"] } });
		expect(after.status).toBe(204);
		expect(await tagsOf(app, "learner", learners[0] ?? "")).toContain("after-the-move");
	});

	it("runs a job accepted before the move on the new shard, in order with what the move copied", async () => {
		const app = await createApp();
		const from = await placementOf(app.appId);
		const to = otherDefaultShard(from);
		const registrationId = await enrol(app, { id: "mover", email: "before@example.com" });
		const update = await acceptUpdate(app, { id: "mover", email: "after@example.com" });

		const { result: accepted } = await sentDuring(() => requestMove(app.appId, { shard: to }));
		expect(accepted.status).toBe(204);
		const jobId = jobIdOf(accepted);
		for (let steps = 0; (await getJob(MANAGEMENT, jobId)).status === "running" || steps === 0; steps++) {
			await runMove(env, env.DB, jobId, 1);
			expect(steps).toBeLessThan(50);
		}
		expect((await getJob(MANAGEMENT, jobId)).status).toBe("completed");

		// The update's message reaches the consumer after the move: it finds the job on the application's new shard.
		await drain(update);
		expect(await getJob(app.auth, update.jobId)).toMatchObject({ status: "completed", registrationsAffected: 1 });
		expect(await learnerOn(app, registrationId)).toMatchObject({ email: "after@example.com" });
		expect(await registrationOn(to, app.appId, registrationId)).toMatchObject({ learner_email: "after@example.com" });
		// A job created after the move goes on with the clock the application brought along.
		const erasure = await call("POST", `/learner/mover/delete-information?userEmail=${encodeURIComponent(await realmUser("admin"))}`, {
			auth: app.auth,
		});
		expect(erasure.status).toBe(204);
		expect(jobIdOf(erasure, app.appId)).toBeTruthy();
	});

	it("shows management the application's jobs on its new shard once the move flips, though it read them before", async () => {
		const app = await createApp();
		const from = await placementOf(app.appId);
		const to = otherDefaultShard(from);
		await enrol(app, { id: "mover", email: "before@example.com" });
		const update = await acceptUpdate(app, { id: "mover", email: "after@example.com" });
		const listed = async () =>
			(await (await call("GET", `/appManagement/jobs?appId=${app.appId}`, { auth: MANAGEMENT })).json()) as {
				jobs: { id: string; status: string }[];
			};
		// Management reads the application's jobs where it is now (its placement is remembered from here on).
		expect((await getJob(MANAGEMENT, update.jobId)).status).toBe("queued");
		expect((await listed()).jobs.find((job) => job.id === update.jobId)?.status).toBe("queued");

		const { result: accepted } = await sentDuring(() => requestMove(app.appId, { shard: to }));
		const moveId = jobIdOf(accepted);
		for (let steps = 0; (await placementOf(app.appId)) === from; steps++) {
			await runMove(env, env.DB, moveId, 1);
			expect(steps).toBeLessThan(50);
		}
		// The update runs on the new shard after the flip; the old shard keeps its copy as it was until the move ends.
		await drain(update);
		expect(await getJob(app.auth, update.jobId)).toMatchObject({ status: "completed", registrationsAffected: 1 });
		expect(await getJob(MANAGEMENT, update.jobId)).toMatchObject({ status: "completed", registrationsAffected: 1 });
		expect((await listed()).jobs.find((job) => job.id === update.jobId)?.status).toBe("completed");
	});

	it("fails a move whose copy does not count up, deleting the copy and leaving the application where and as it was", async () => {
		const app = await createApp();
		const from = await placementOf(app.appId);
		const to = otherDefaultShard(from);
		await seedRegistrations(app.appId, "counted", 30);
		const { result: accepted } = await sentDuring(() => requestMove(app.appId, { shard: to }));
		const jobId = jobIdOf(accepted);
		const phaseOf = async () =>
			JSON.parse((await env.DB.prepare("SELECT payload FROM jobs WHERE id = ?1").bind(jobId).first<{ payload: string }>())?.payload ?? "{}")
				.phase as string;
		for (let steps = 0; (await phaseOf()) !== "verify"; steps++) {
			await runMove(env, env.DB, jobId, 1);
			expect(steps).toBeLessThan(50);
		}
		// A row the source never had appears in the copy (a corrupted copy, however it came about).
		await shardDatabase(env, to)
			.prepare(
				`INSERT INTO registrations (app_id, id, course_id, learner_id, xapi_registration_id, created_at, updated_at)
				 VALUES (?1, 'stray', 'course', 'stray-learner', 'x', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`,
			)
			.bind(app.appId)
			.run();
		for (let steps = 0; !["completed", "failed"].includes((await getJob(MANAGEMENT, jobId)).status); steps++) {
			await runMove(env, env.DB, jobId, 1);
			expect(steps).toBeLessThan(50);
		}
		const job = await getJob(MANAGEMENT, jobId);
		expect(job.status).toBe("failed");
		expect(job.message).toContain("registrations");
		expect(await placementOf(app.appId)).toBe(from);
		expect(Object.values(await rowsOn(to, app.appId)).every((count) => count === 0)).toBe(true);
		expect((await rowsOn(from, app.appId)).registrations).toBe(30);
		expect((await rowsOn(from, app.appId)).moving_apps).toBe(0);
		// The source takes writes again.
		expect((await call("PUT", "/learner/counted-learner-0/tags", { auth: app.auth, body: { tags: ["still-here"] } })).status).toBe(204);
	});

	it("brings the application's job clock along: an update accepted after the move still applies", async () => {
		const app = await createApp();
		const from = await placementOf(app.appId);
		const to = otherDefaultShard(from);
		// The source's clock far ahead of the destination's: the learner's fields are stamped with it.
		await shardDatabase(env, from).prepare("UPDATE job_clock SET seq = seq + 1000000 WHERE id = 1").run();
		const registrationId = await enrol(app, { id: "clocked", email: "old@example.com" });
		const { result: accepted } = await sentDuring(() => requestMove(app.appId, { shard: to }));
		const jobId = jobIdOf(accepted);
		for (let steps = 0; (await getJob(MANAGEMENT, jobId)).status !== "completed"; steps++) {
			await runMove(env, env.DB, jobId, 1);
			expect(steps).toBeLessThan(50);
		}
		await drain(await acceptUpdate(app, { id: "clocked", email: "new@example.com" }));
		expect(await learnerOn(app, registrationId)).toMatchObject({ email: "new@example.com" });
	});

	it("refuses what a move cannot do, naming why, and changes nothing", async () => {
		const app = await createApp();
		const from = await placementOf(app.appId);
		const eu = SHARDS.find((shard) => shard.region === "eu")?.name ?? "";

		const unknown = await requestMove(app.appId, { shard: "SHARD_NOWHERE" });
		expect(unknown.status).toBe(400);
		expect(((await unknown.json()) as { message: string }).message).toContain("SHARD_NOWHERE");

		const same = await requestMove(app.appId, { shard: from });
		expect(same.status).toBe(409);

		const regionChange = await requestMove(app.appId, { shard: eu });
		expect(regionChange.status).toBe(400);
		expect(((await regionChange.json()) as { message: string }).message).toContain("allowRegionChange");

		const missing = await requestMove("NOSUCHAPP0", { shard: eu, allowRegionChange: true });
		expect(missing.status).toBe(404);

		const malformed = await requestMove(app.appId, { shard: 7 });
		expect(malformed.status).toBe(400);
		expect(((await malformed.json()) as { message: string }).message).toContain("shard");

		// A shard closed to new applications (SHARDS, `:closed`) takes no moves either.
		const target = SHARDS.find((shard) => shard.region === "default" && shard.name !== from)?.name ?? "";
		const closed = SHARDS.map((shard) => `${shard.name}:${shard.region}${shard.name === target ? ":closed" : ""}`).join(" ");
		const { result: toClosed, sent } = await sentDuring(() =>
			fetchWithBindings(apiRequest("POST", `/appManagement/applications/${app.appId}/move`, { auth: MANAGEMENT, body: { shard: target } }), {
				SHARDS: closed as Env["SHARDS"],
			}),
		);
		expect(toClosed.status).toBe(409);
		expect(((await toClosed.json()) as { message: string }).message).toContain(`[${target}] is closed`);
		expect(sent).toEqual([]);

		expect(await placementOf(app.appId)).toBe(from);
	});

	it("moves into the EU region when asked explicitly, and answers for a move under way instead of starting another", async () => {
		const app: TestApp = await createApp();
		await enrol(app, "eu-bound");
		const eu = SHARDS.find((shard) => shard.region === "eu")?.name ?? "";
		const { result: first } = await sentDuring(() => requestMove(app.appId, { shard: eu, allowRegionChange: true }));
		expect(first.status).toBe(204);
		const { result: again } = await sentDuring(() => requestMove(app.appId, { shard: eu, allowRegionChange: true }));
		expect(again.status).toBe(204);
		expect(again.headers.get("Location")).toBe(first.headers.get("Location"));
		// An application being moved cannot be deleted until the move ends.
		const deletion = await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		expect(deletion.status).toBe(409);

		const jobId = jobIdOf(first);
		for (let steps = 0; (await getJob(MANAGEMENT, jobId)).status !== "completed"; steps++) {
			await runMove(env, env.DB, jobId, 1);
			expect(steps).toBeLessThan(50);
		}
		expect(await findPlacement(env.DB, app.appId)).toMatchObject({ shard: eu, dataRegion: "eu" });
		expect((await call("GET", "/learner/eu-bound/tags", { auth: app.auth })).status).toBe(200);
	});
});
