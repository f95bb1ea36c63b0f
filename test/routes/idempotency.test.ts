import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sweep } from "../../src/jobs/sweeper";
import { runMove } from "../../src/jobs/move";
import { call } from "../support/client";
import { expectMessage, getJob, jobIdOf } from "../support/expect";
import { MANAGEMENT, type TestApp, createApp, enrol, learnerOn, realmUser, uniqueValue } from "../support/fixtures";
import { drain, sentDuring } from "../support/queue";
import { findAnywhere } from "../support/scan";
import { SHARDS, countOf, shardOf } from "../support/seed";

/**
 * Idempotency-Key (SPEC §8, as Stripe): a retry with the same key, path and body replays the first response
 * without doing the work again; the same key with another path or body answers 422 naming the key; keys are per
 * application, kept 24 hours, stored hashed; an erasure removes the stored responses that named its learner.
 */

const keyed = (key: string) => ({ "Idempotency-Key": key });
const registrationBody = (registrationId: string, learnerId: string, email?: string) => ({
	courseId: "course-1",
	learner: { id: learnerId, ...(email && { email }) },
	registrationId,
});
const registrationsNamed = (appId: string, registrationId: string) =>
	countOf("SELECT count(*) AS n FROM registrations WHERE app_id = ?1 AND id = ?2", appId, registrationId);
const jobsOf = (appId: string) => countOf("SELECT count(*) AS n FROM jobs WHERE app_id = ?1", appId);
const keysOf = (appId: string) => countOf("SELECT count(*) AS n FROM idempotency_keys WHERE app_id = ?1", appId);

describe("Idempotency-Key", () => {
	it("replays POST /registrations without creating anything again, and says so", async () => {
		const app = await createApp();
		const key = uniqueValue("key");
		const body = registrationBody("reg-once", "learner-once");
		const first = await call("POST", "/registrations", { auth: app.auth, body, headers: keyed(key) });
		expect(first.status).toBe(204);
		expect(first.headers.get("Idempotent-Replayed")).toBeNull();
		// The registration is deleted meanwhile: without the key, a repeat would create it again; with it, nothing happens.
		expect((await call("DELETE", "/registrations/reg-once", { auth: app.auth })).status).toBe(204);
		const retry = await call("POST", "/registrations", { auth: app.auth, body, headers: keyed(key) });
		expect(retry.status).toBe(204);
		expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
		expect(await registrationsNamed(app.appId, "reg-once")).toBe(0);
	});

	it("answers 422 naming the key when it comes back with another body or another path, and does nothing", async () => {
		const app = await createApp();
		const key = uniqueValue("key");
		expect((await call("POST", "/registrations", { auth: app.auth, body: registrationBody("reg-a", "learner-a"), headers: keyed(key) })).status).toBe(204);
		const otherBody = await call("POST", "/registrations", { auth: app.auth, body: registrationBody("reg-b", "learner-a"), headers: keyed(key) });
		expect(await expectMessage(otherBody, 422)).toContain(`[${key}]`);
		expect(await registrationsNamed(app.appId, "reg-b")).toBe(0);
		const otherPath = await call("POST", "/learner/learner-a/updateInfo", {
			auth: app.auth,
			body: { id: "learner-a", email: "a@example.com" },
			headers: keyed(key),
		});
		expect(await expectMessage(otherPath, 422)).toContain(`[${key}]`);
		expect(await jobsOf(app.appId)).toBe(0);
	});

	it("replays an update's Location and queues one job, however often it is retried", async () => {
		const app = await createApp();
		await enrol(app, "updated");
		const key = uniqueValue("key");
		const request = () =>
			sentDuring(() =>
				call("POST", "/learner/updated/updateInfo", { auth: app.auth, body: { id: "updated", email: "u@example.com" }, headers: keyed(key) }),
			);
		const first = await request();
		const again = await request();
		expect(first.result.status).toBe(204);
		expect(again.result.status).toBe(204);
		expect(again.result.headers.get("Location")).toBe(first.result.headers.get("Location"));
		expect(first.sent).toHaveLength(1);
		expect(again.sent).toHaveLength(0);
		expect(await jobsOf(app.appId)).toBe(1);
	});

	it("keeps no key for a request that did nothing: after a 404, the same key does the work once the learner exists", async () => {
		const app = await createApp();
		const key = uniqueValue("key");
		const update = () =>
			call("POST", "/learner/late/updateInfo", { auth: app.auth, body: { id: "late", email: "late@example.com" }, headers: keyed(key) });
		expect((await update()).status).toBe(404);
		expect(await keysOf(app.appId)).toBe(0);
		await enrol(app, "late");
		const { result, sent } = await sentDuring(update);
		expect(result.status).toBe(204);
		expect(result.headers.get("Idempotent-Replayed")).toBeNull();
		expect(sent).toHaveLength(1);
	});

	it("replays an erasure's Location after it completed, and the erasure deletes the responses that named the learner", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const registrationKey = uniqueValue("key");
		expect(
			(await call("POST", "/registrations", { auth: app.auth, body: registrationBody("reg-erased", "erased", "e@example.com"), headers: keyed(registrationKey) }))
				.status,
		).toBe(204);
		expect(await keysOf(app.appId)).toBe(1);
		const key = uniqueValue("key");
		const erase = () =>
			sentDuring(() =>
				call("POST", `/learner/erased/delete-information?userEmail=${encodeURIComponent(admin)}`, { auth: app.auth, headers: keyed(key) }),
			);
		const first = await erase();
		expect(first.result.status).toBe(204);
		const [message] = first.sent;
		await drain(message?.body as never);
		expect((await getJob(app.auth, jobIdOf(first.result, app.appId))).status).toBe("completed");
		// The registration's key named the learner: gone with it. The erasure's own key (a job's Location) stays.
		expect(await keysOf(app.appId)).toBe(1);
		const again = await erase();
		expect(again.result.status).toBe(204);
		expect(again.result.headers.get("Location")).toBe(first.result.headers.get("Location"));
		expect(again.sent).toHaveLength(0);
	});

	it("replays an application's creation with the same body, and a move after it finished", async () => {
		const key = uniqueValue("key");
		const create = () => call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name: "Created once" }, headers: keyed(key) });
		const first = await create();
		const again = await create();
		expect(first.status).toBe(200);
		expect(again.status).toBe(200);
		const created = (await first.json()) as { id: string; shard: string };
		expect(await again.json()).toEqual(created);
		expect(await countOf("SELECT count(*) AS n FROM applications WHERE name = 'Created once'")).toBe(1);

		const to = SHARDS.find((shard) => shard.region === "default" && shard.name !== created.shard)?.name;
		const moveKey = uniqueValue("key");
		const move = () =>
			sentDuring(() =>
				call("POST", `/appManagement/applications/${created.id}/move`, { auth: MANAGEMENT, body: { shard: to }, headers: keyed(moveKey) }),
			);
		const moved = await move();
		expect(moved.result.status).toBe(204);
		const jobId = jobIdOf(moved.result);
		for (let steps = 0; (await getJob(MANAGEMENT, jobId)).status !== "completed"; steps++) {
			await runMove(env, env.DB, jobId, 1);
			expect(steps).toBeLessThan(50);
		}
		// Without the key this would be 409 (already on that shard); the retry gets the first answer.
		const retried = await move();
		expect(retried.result.status).toBe(204);
		expect(retried.result.headers.get("Location")).toBe(moved.result.headers.get("Location"));
		expect(retried.sent).toHaveLength(0);
	});

	it("keeps keys per application: the same key in two applications does two things", async () => {
		const [one, two] = [await createApp(), await createApp()];
		const key = uniqueValue("key");
		for (const app of [one, two]) {
			const response = await call("POST", "/registrations", { auth: app.auth, body: registrationBody("shared-key", "learner"), headers: keyed(key) });
			expect(response.status).toBe(204);
			expect(response.headers.get("Idempotent-Replayed")).toBeNull();
			expect(await registrationsNamed(app.appId, "shared-key")).toBe(1);
		}
	});

	it("stores the key hashed: its value appears in no database", async () => {
		const app = await createApp();
		const key = uniqueValue("secret-looking-key");
		await call("POST", "/registrations", { auth: app.auth, body: registrationBody("reg-hashed", "learner-hashed", "hashed@example.com"), headers: keyed(key) });
		const { findings } = await findAnywhere([key]);
		expect(findings).toEqual([]);
	});

	it("forgets a key after 24 hours: the request then does its work again, and the sweeper deletes it", async () => {
		const app = await createApp();
		const key = uniqueValue("key");
		const body = registrationBody("reg-expiring", "learner-expiring");
		expect((await call("POST", "/registrations", { auth: app.auth, body, headers: keyed(key) })).status).toBe(204);
		expect((await call("DELETE", "/registrations/reg-expiring", { auth: app.auth })).status).toBe(204);
		const shard = await shardOf(app.appId);
		// 24 hours pass.
		await shard.prepare("UPDATE idempotency_keys SET expires_at = ?2 WHERE app_id = ?1").bind(app.appId, new Date(Date.now() - 1000).toISOString()).run();
		const later = await call("POST", "/registrations", { auth: app.auth, body, headers: keyed(key) });
		expect(later.status).toBe(204);
		expect(later.headers.get("Idempotent-Replayed")).toBeNull();
		expect(await registrationsNamed(app.appId, "reg-expiring")).toBe(1);
		// That request recorded the key afresh; once expired, the sweeper deletes it.
		await shard.prepare("UPDATE idempotency_keys SET expires_at = ?2 WHERE app_id = ?1").bind(app.appId, new Date(Date.now() - 1000).toISOString()).run();
		const report = await sweep(env, Date.now());
		expect(report.keysExpired).toBeGreaterThanOrEqual(1);
		expect(await keysOf(app.appId)).toBe(0);
	});

	it("keeps a key 24 hours: an hour later, after a sweep, a retry still replays", async () => {
		const app = await createApp();
		const key = uniqueValue("key");
		const body = registrationBody("reg-kept", "learner-kept");
		const before = Date.now();
		expect((await call("POST", "/registrations", { auth: app.auth, body, headers: keyed(key) })).status).toBe(204);
		const stored = await (await shardOf(app.appId)).prepare("SELECT expires_at FROM idempotency_keys WHERE app_id = ?1").bind(app.appId).first<{ expires_at: string }>();
		const day = 24 * 60 * 60_000;
		expect(Date.parse(stored?.expires_at ?? "")).toBeGreaterThanOrEqual(before + day);
		expect(Date.parse(stored?.expires_at ?? "")).toBeLessThanOrEqual(Date.now() + day);
		await sweep(env, Date.now() + 60 * 60_000);
		const retry = await call("POST", "/registrations", { auth: app.auth, body, headers: keyed(key) });
		expect(retry.status).toBe(204);
		expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
	});

	it("answers 422 to the same key with another query string: another userEmail or suppress is another request", async () => {
		const app = await createApp();
		const [admin, otherAdmin] = [await realmUser("admin"), await realmUser("admin")];
		const learnerId = uniqueValue("query-keyed");
		await enrol(app, learnerId);
		const key = uniqueValue("key");
		const erase = (query: string) => call("POST", `/learner/${learnerId}/delete-information?${query}`, { auth: app.auth, headers: keyed(key) });
		expect((await erase(`userEmail=${encodeURIComponent(admin)}`)).status).toBe(204);
		for (const query of [`userEmail=${encodeURIComponent(otherAdmin)}`, `userEmail=${encodeURIComponent(admin)}&suppress=true`]) {
			expect(await expectMessage(await erase(query), 422)).toContain(`Idempotency-Key [${key}]`);
		}
	});

	it("forgets a keyed update of a learner once the learner is erased: a retry then runs as a new request (404)", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("update-keyed");
		await enrol(app, learnerId);
		const key = uniqueValue("key");
		const update = () =>
			call("POST", `/learner/${learnerId}/updateInfo`, { auth: app.auth, body: { id: learnerId, email: "new@example.com" }, headers: keyed(key) });
		const { result: first, sent } = await sentDuring(update);
		expect(first.status).toBe(204);
		for (const message of sent) await drain(message.body as never);
		const { result: erasure, sent: erasing } = await sentDuring(() =>
			call("POST", `/learner/${learnerId}/delete-information?userEmail=${encodeURIComponent(admin)}`, { auth: app.auth }),
		);
		expect(erasure.status).toBe(204);
		for (const message of erasing) await drain(message.body as never);
		// The stored answer named the learner: it went with them, so the retry is a new request for a learner now gone.
		const retry = await update();
		expect(retry.status).toBe(404);
		expect(retry.headers.get("Idempotent-Replayed")).toBeNull();
	});

	it("answers 400 naming Idempotency-Key when it is empty or longer than 255 characters", async () => {
		const app = await createApp();
		for (const key of ["", "k".repeat(256)]) {
			const response = await call("POST", "/registrations", { auth: app.auth, body: registrationBody("reg-bad-key", "learner"), headers: keyed(key) });
			expect(await expectMessage(response, 400)).toContain("Idempotency-Key");
		}
		expect(await registrationsNamed(app.appId, "reg-bad-key")).toBe(0);
	});

	it("answers concurrent retries of one request the same, having done the work once", async () => {
		const app = await createApp();
		await enrol(app, "raced");
		const key = uniqueValue("key");
		const { result: responses, sent } = await sentDuring(() =>
			Promise.all(
				Array.from({ length: 5 }, () =>
					call("POST", "/learner/raced/updateInfo", { auth: app.auth, body: { id: "raced", firstName: "Ada" }, headers: keyed(key) }),
				),
			),
		);
		expect(responses.map((response) => response.status)).toEqual([204, 204, 204, 204, 204]);
		expect(new Set(responses.map((response) => response.headers.get("Location"))).size).toBe(1);
		expect(sent).toHaveLength(1);
		expect(await jobsOf(app.appId)).toBe(1);
	});
});

/** A keyed POST the property test issues: a registration, or an update of a registration's learner. */
type Post =
	| { kind: "register"; key: string; registrationId: string; learnerId: string; email: string }
	| { kind: "update"; key: string; learnerId: string; email: string };

/** Sends one POST; answers its status. */
async function send(app: TestApp, post: Post): Promise<number> {
	const response =
		post.kind === "register"
			? await call("POST", "/registrations", {
					auth: app.auth,
					body: registrationBody(post.registrationId, post.learnerId, post.email),
					headers: keyed(post.key),
				})
			: await call("POST", `/learner/${post.learnerId}/updateInfo`, {
					auth: app.auth,
					body: { id: post.learnerId, email: post.email },
					headers: keyed(post.key),
				});
	return response.status;
}

/** What the application ends up holding: each registration's learner email after every job ran, and its job count. */
async function finalState(app: TestApp, registrationIds: string[], sent: unknown[]): Promise<{ emails: (string | null)[]; jobs: number }> {
	for (const body of sent) await drain(body as never);
	const emails: (string | null)[] = [];
	for (const id of registrationIds) {
		const response = await call("GET", `/registrations/${id}`, { auth: app.auth });
		emails.push(response.status === 200 ? (((await learnerOn(app, id)) as { email?: string }).email ?? null) : null);
	}
	return { emails, jobs: await jobsOf(app.appId) };
}

describe("Idempotency-Key, as a property", () => {
	it("ends in the same state however keyed POSTs are retried and interleaved as without retries", async () => {
		await fc.assert(
			fc.asyncProperty(
				fc.array(fc.record({ register: fc.boolean(), learner: fc.integer({ min: 0, max: 2 }), email: fc.integer({ min: 0, max: 9 }) }), {
					minLength: 1,
					maxLength: 6,
				}),
				fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 6, maxLength: 6 }),
				fc.array(fc.nat(), { minLength: 12, maxLength: 12 }),
				async (plan, retries, shuffle) => {
					// Each learner's first registration comes first; then the plan's registrations and updates.
					const learners = [0, 1, 2].map((n) => `prop-learner-${n}`);
					const posts: Post[] = learners.map((learnerId, n) => ({
						kind: "register" as const,
						key: uniqueValue("key"),
						registrationId: `prop-reg-${n}`,
						learnerId,
						email: "first@example.com",
					}));
					plan.forEach((step, i) => {
						const learnerId = learners[step.learner] ?? "";
						const email = `e${step.email}@example.com`;
						posts.push(
							step.register
								? { kind: "register", key: uniqueValue("key"), registrationId: `prop-reg-x${i}`, learnerId, email }
								: { kind: "update", key: uniqueValue("key"), learnerId, email },
						);
					});
					const registrationIds = posts.flatMap((post) => (post.kind === "register" ? [post.registrationId] : []));

					// Without retries.
					const plain = await createApp();
					const once = await sentDuring(async () => {
						for (const post of posts) await send(plain, post);
					});
					const expected = await finalState(plain, registrationIds, once.sent.map((message) => message.body));

					// With retries: each POST sent 1–3 times; the repeats are moved later, among the POSTs that follow it
					// (a retry never overtakes the request it repeats), some of them at the same time as others.
					const retried = await createApp();
					const schedule: { post: Post; at: number }[] = [];
					posts.forEach((post, i) => {
						const copies = 1 + (retries[i % retries.length] ?? 0);
						for (let copy = 0; copy < copies; copy++) {
							const delay = copy === 0 ? 0 : 1 + ((shuffle[(i + copy) % shuffle.length] ?? 0) % 3);
							schedule.push({ post, at: i + delay });
						}
					});
					const twice = await sentDuring(async () => {
						const latest = Math.max(...schedule.map((entry) => entry.at));
						for (let at = 0; at <= latest; at++) {
							// Requests due at the same moment go out together.
							const due = schedule.filter((entry) => entry.at === at);
							const statuses = await Promise.all(due.map((entry) => send(retried, entry.post)));
							for (const status of statuses) expect([204, 404]).toContain(status);
						}
					});
					const actual = await finalState(retried, registrationIds, twice.sent.map((message) => message.body));
					expect(actual).toEqual(expected);
				},
			),
			{ numRuns: 12 },
		);
		// Twelve runs of up to 27 requests and their jobs each.
	}, 60_000);
});
