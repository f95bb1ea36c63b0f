import { afterEach, describe, expect, it, vi } from "vitest";
import { apiRequest, fetchWithBindings } from "../support/client";
import { expectMessage } from "../support/expect";
import { appOnShard, createApp, range, type TestApp, uniqueValue } from "../support/fixtures";
import { SHARDS, seedRegistrations, shardOf } from "../support/seed";

// SPEC §7 and §11: one application cannot fill the shared database (a quota on stored rows) nor hold its
// writer (writes spend a per-minute budget weighed by the rows they may touch). Applications share a shard
// database with others: the limits hold per application, on its shard and across shards alike.

type Limits = { APP_ROW_QUOTA?: string; APP_WRITE_BUDGET?: string };

/** A request under the given limits (the service reads them from its configuration on every request). */
const send = (limits: Limits, app: TestApp, method: string, path: string, body?: unknown) =>
	fetchWithBindings(apiRequest(method, path, { auth: app.auth, body }), limits as Partial<Env>);

/** Rows the application stores: registrations and both kinds of tags, counted in D1. */
async function storedRows(appId: string): Promise<number> {
	const row = await (await shardOf(appId)).prepare(
		`SELECT (SELECT count(*) FROM registrations WHERE app_id = ?1) + (SELECT count(*) FROM learner_tags WHERE app_id = ?1)
		   + (SELECT count(*) FROM registration_tags WHERE app_id = ?1) AS n`,
	)
		.bind(appId)
		.first<{ n: number }>();
	return row?.n ?? -1;
}

/** The default region's shards: an application on the first shares it with its neighbour; the second is another database. */
const [HOME = "", ELSEWHERE = ""] = SHARDS.filter((shard) => shard.region === "default").map((shard) => shard.name);
if (!HOME || !ELSEWHERE) throw new Error("the test configuration needs two shards in the default region");

const registration = (learnerId: string, extra: Record<string, unknown> = {}) => ({
	courseId: "course",
	registrationId: uniqueValue("registration"),
	learner: { id: learnerId },
	...extra,
});

describe("the storage quota", () => {
	const limits = { APP_ROW_QUOTA: "6" };

	it("answers 403 naming the quota when a write would store more rows than it allows, and writes nothing", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		// 1 registration + 2 learner tags + 2 registration tags = 5 rows.
		const created = await send(limits, app, "POST", "/registrations", registration(learnerId, { learnerTags: ["a", "b"], registrationTags: ["c", "d"] }));
		expect(created.status).toBe(204);
		expect(await storedRows(app.appId)).toBe(5);

		// One more row fits; two do not.
		const over = await send(limits, app, "PUT", `/learner/${learnerId}/tags`, { tags: ["e", "f"] });
		expect(await expectMessage(over, 403)).toBe(
			`Storage quota exceeded for application ${app.appId}: it may hold 6 rows (registrations, learner tags and registration tags); delete some or ask the operator to raise APP_ROW_QUOTA`,
		);
		expect(await storedRows(app.appId)).toBe(5);
		expect((await send(limits, app, "PUT", `/learner/${learnerId}/tags`, { tags: ["e"] })).status).toBe(204);
		expect(await storedRows(app.appId)).toBe(6);

		const another = await send(limits, app, "POST", "/registrations", registration(uniqueValue("learner")));
		expect(await expectMessage(another, 403)).toMatch(/^Storage quota exceeded/);
		expect(await storedRows(app.appId)).toBe(6);
	});

	it("counts tags already present as nothing new, and lets rows be removed even over a quota lowered since", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		expect((await send({}, app, "POST", "/registrations", registration(learnerId, { learnerTags: ["a", "b", "c"] }))).status).toBe(204);
		const lowered = { APP_ROW_QUOTA: "2" };

		// Re-adding a present tag stores no row: it is not refused.
		expect((await send(lowered, app, "PUT", `/learner/${learnerId}/tags`, { tags: ["a"] })).status).toBe(204);
		expect((await send(lowered, app, "PUT", `/learner/${learnerId}/tags`, { tags: ["d"] })).status).toBe(403);
		expect((await send(lowered, app, "DELETE", `/learner/${learnerId}/tags`, { tags: ["a", "b"] })).status).toBe(204);
		expect(await storedRows(app.appId)).toBe(2);
		expect((await send(lowered, app, "PUT", `/learner/${learnerId}/tags`, { tags: ["d"] })).status).toBe(403);
	});

	it("gives the rows of removed tags back to the quota", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("learner");
		const body = registration(learnerId, { learnerTags: ["a", "b"], registrationTags: ["c", "d"] });
		expect((await send(limits, app, "POST", "/registrations", body)).status).toBe(204);
		expect((await send(limits, app, "DELETE", `/learner/${learnerId}/tags`, { tags: ["a", "b"] })).status).toBe(204);
		expect(await storedRows(app.appId)).toBe(3);

		// 3 rows held, 3 more fit a quota of 6.
		expect((await send(limits, app, "PUT", `/learner/${learnerId}/tags`, { tags: ["e", "f", "g"] })).status).toBe(204);
		expect(await storedRows(app.appId)).toBe(6);
	});

	it("is per application: one at its quota stops neither another on its shard nor one on another shard", async () => {
		const full = await appOnShard(HOME);
		const neighbour = await appOnShard(HOME);
		const other = await appOnShard(ELSEWHERE);
		const tight = { APP_ROW_QUOTA: "1" };
		expect((await send(tight, full, "POST", "/registrations", registration(uniqueValue("learner")))).status).toBe(204);
		expect((await send(tight, full, "POST", "/registrations", registration(uniqueValue("learner")))).status).toBe(403);
		expect((await send(tight, neighbour, "POST", "/registrations", registration(uniqueValue("learner")))).status).toBe(204);
		expect((await send(tight, other, "POST", "/registrations", registration(uniqueValue("learner")))).status).toBe(204);
		expect([await storedRows(full.appId), await storedRows(neighbour.appId), await storedRows(other.appId)]).toEqual([1, 1, 1]);
	});
});

describe("the write budget", () => {
	const limits = { APP_WRITE_BUDGET: "100000" };

	/** Pins the clock 20 s into a minute, so every write of a test falls in one budget minute. */
	function pinClock(): void {
		vi.useFakeTimers({ toFake: ["Date"] });
		vi.setSystemTime((Math.floor(Date.now() / 60_000) + 1) * 60_000 + 20_000);
	}

	afterEach(() => {
		vi.useRealTimers();
	});

	it("charges a batch its ids x tags: a full batch spends a minute's budget, after which writes answer 429", async () => {
		const app = await createApp();
		const ids = await seedRegistrations(app.appId, "budget", 1000);
		pinClock();

		// 1000 x 99 + 10 x 100 = 100 000: exactly the budget.
		expect((await send(limits, app, "PUT", "/learner/tags", { ids, tags: range(99, "cohort-") })).status).toBe(204);
		expect((await send(limits, app, "PUT", "/learner/tags", { ids: ids.slice(0, 10), tags: range(100, "small-") })).status).toBe(204);
		const refused = await send(limits, app, "PUT", `/learner/${ids[0]}/tags`, { tags: ["one-more"] });

		expect(await expectMessage(refused, 429)).toBe(
			`Write budget exceeded for application ${app.appId}: its writes may touch 100000 rows per minute (a batch costs ids x tags); retry after 40 seconds`,
		);
		expect(refused.headers.get("Retry-After")).toBe("40");
		const { n } = (await (await shardOf(app.appId)).prepare("SELECT count(*) AS n FROM learner_tags WHERE app_id = ?1 AND tag = 'one-more'")
			.bind(app.appId)
			.first<{ n: number }>()) ?? { n: -1 };
		expect(n).toBe(0);

		// The next minute brings a fresh budget.
		vi.setSystemTime(Date.now() + 41_000);
		expect((await send(limits, app, "PUT", `/learner/${ids[0]}/tags`, { tags: ["one-more"] })).status).toBe(204);
	}, 60_000);

	it("is per application: the writes of another application, on its shard or another, go on", async () => {
		const busy = await appOnShard(HOME);
		const neighbour = await appOnShard(HOME);
		const other = await appOnShard(ELSEWHERE);
		const ids = await seedRegistrations(busy.appId, "busy", 1000);
		pinClock();
		expect((await send(limits, busy, "PUT", "/learner/tags", { ids, tags: range(100, "t-") })).status).toBe(204);
		expect((await send(limits, busy, "PUT", `/learner/${ids[0]}/tags`, { tags: ["x"] })).status).toBe(429);
		expect((await send(limits, neighbour, "POST", "/registrations", registration(uniqueValue("learner")))).status).toBe(204);
		expect((await send(limits, other, "POST", "/registrations", registration(uniqueValue("learner")))).status).toBe(204);
	}, 60_000);
});
