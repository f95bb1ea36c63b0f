import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type WriteLimits, countRows, fenceAppStorage, refusalOf, secondsLeftInMinute, writeGuard } from "../../src/db/app-storage";
import { findPlacement, insertApplication } from "../../src/db/applications";
import { seedApplication, shardOf } from "../support/seed";

// src/db/app-storage.ts on its own, apart from the routes: the checks every write batch starts with (SPEC §11:
// nothing is written into an application after its deletion was accepted; docs/api.md, Limits: the storage quota and
// the per-minute write budget), each refusing the whole batch. They run on the application's shard (app_storage).

/** 20 s into some minute. */
const MINUTE_START = 60_000 * 29_000_000;
const AT = MINUTE_START + 20_000;

/** A write batch as the data layer makes one: the guard first, then its statements. */
async function write(appId: string, limits: WriteLimits, options: { cost?: number; rows?: number; nowMs?: number } = {}) {
	const { cost = 1, rows = 0, nowMs = AT } = options;
	const db = await shardOf(appId);
	return db.batch([writeGuard(db, appId, cost, limits, nowMs), db.prepare(countRows("?2")).bind(appId, rows)]);
}

/** The refusal a write met, or null when it went through. */
const refusalMet = (batch: Promise<unknown>) =>
	batch.then(
		() => null,
		(error: unknown) => refusalOf(error),
	);

async function storedRows(appId: string): Promise<number> {
	const row = await (await shardOf(appId)).prepare("SELECT stored_rows FROM app_storage WHERE app_id = ?1").bind(appId).first<{ stored_rows: number }>();
	return row?.stored_rows ?? -1;
}

const ROOMY: WriteLimits = { rowQuota: 1000, writeBudget: 1000 };

describe("writeGuard", () => {
	it("lets a write into a live application through", async () => {
		const appId = await seedApplication();

		expect(await refusalMet(write(appId, ROOMY, { rows: 3 }))).toBeNull();

		expect(await storedRows(appId)).toBe(3);
	});

	it("refuses every write once the application is fenced off (application_deleted), writing nothing", async () => {
		const appId = await seedApplication();
		const db = await shardOf(appId);
		await db.batch([fenceAppStorage(db, appId, new Date().toISOString())]);

		expect(await refusalMet(write(appId, ROOMY, { rows: 1 }))).toBe("application_deleted");
		expect(await refusalMet(write(appId, ROOMY, { rows: -1 }))).toBe("application_deleted");

		expect(await storedRows(appId)).toBe(0);
	});

	it("spends the budget of the current minute: exactly the budget goes through, past it is refused (write_budget_exceeded)", async () => {
		const appId = await seedApplication();
		const limits = { rowQuota: 1000, writeBudget: 100 };

		expect(await refusalMet(write(appId, limits, { cost: 60 }))).toBeNull();
		expect(await refusalMet(write(appId, limits, { cost: 40, rows: 1 }))).toBeNull();
		expect(await refusalMet(write(appId, limits, { cost: 1, rows: 1 }))).toBe("write_budget_exceeded");

		expect(await storedRows(appId)).toBe(1);
	});

	it("charges a write at least 1, however little it claims to cost", async () => {
		const appId = await seedApplication();
		const limits = { rowQuota: 1000, writeBudget: 1 };

		expect(await refusalMet(write(appId, limits, { cost: 0 }))).toBeNull();
		expect(await refusalMet(write(appId, limits, { cost: 0 }))).toBe("write_budget_exceeded");
	});

	it("gives each minute a fresh budget", async () => {
		const appId = await seedApplication();
		const limits = { rowQuota: 1000, writeBudget: 100 };
		await write(appId, limits, { cost: 100 });

		expect(await refusalMet(write(appId, limits, { cost: 1, nowMs: AT + 39_000 }))).toBe("write_budget_exceeded");
		expect(await refusalMet(write(appId, limits, { cost: 100, nowMs: AT + 40_000 }))).toBeNull();
	});

	it("keeps each application's budget apart", async () => {
		const busy = await seedApplication();
		// On the same shard: only the application id keeps the two budgets apart.
		const other = await seedApplication({ shard: (await findPlacement(env.DB, busy))?.shard ?? "" });
		const limits = { rowQuota: 1000, writeBudget: 10 };
		await write(busy, limits, { cost: 10 });

		expect(await refusalMet(write(busy, limits))).toBe("write_budget_exceeded");
		expect(await refusalMet(write(other, limits))).toBeNull();
	});
});

describe("countRows", () => {
	it("refuses growth past the quota (row_quota_exceeded), whole: exactly the quota fits", async () => {
		const appId = await seedApplication();
		const limits = { rowQuota: 6, writeBudget: 1000 };

		expect(await refusalMet(write(appId, limits, { rows: 5 }))).toBeNull();
		expect(await refusalMet(write(appId, limits, { rows: 2 }))).toBe("row_quota_exceeded");
		expect(await storedRows(appId)).toBe(5);
		expect(await refusalMet(write(appId, limits, { rows: 1 }))).toBeNull();

		expect(await storedRows(appId)).toBe(6);
	});

	it("lets rows be removed even over a quota lowered since, and counts them back to the quota", async () => {
		const appId = await seedApplication();
		await write(appId, ROOMY, { rows: 3 });
		const lowered = { rowQuota: 1, writeBudget: 1000 };

		expect(await refusalMet(write(appId, lowered, { rows: -1 }))).toBeNull();
		expect(await refusalMet(write(appId, lowered, { rows: 1 }))).toBe("row_quota_exceeded");

		expect(await storedRows(appId)).toBe(2);
	});
});

describe("refusalOf", () => {
	it("answers null for any other error and for what is not an error", async () => {
		const appId = await seedApplication();
		const placement = await findPlacement(env.DB, appId);
		if (!placement) throw new Error(`no application ${appId}`);
		const now = new Date().toISOString();
		const again = { id: appId, name: "again", dataRegion: placement.dataRegion, shard: placement.shard, createdAt: now, updatedAt: now, allowDelete: true };
		const duplicate = await insertApplication(env.DB, await shardOf(appId), again).then(
			() => expect.fail("a second application with the same id was stored"),
			(error: unknown) => error,
		);

		expect(refusalOf(duplicate)).toBeNull();
		expect(refusalOf("application_deleted:")).toBeNull();
		expect(refusalOf(undefined)).toBeNull();
	});
});

describe("secondsLeftInMinute", () => {
	it("answers the seconds left in the budget's minute, which a refused write is told to wait", () => {
		expect(secondsLeftInMinute(AT)).toBe(40);
		expect(secondsLeftInMinute(MINUTE_START)).toBe(60);
	});
});
