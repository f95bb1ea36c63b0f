import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MOVED_TABLES, applyJournal, forgetJournal, prepareMove, readJournal, readRows, writeRows } from "../../src/db/move";
import { shardDatabase } from "../../src/shards";
import { seedApplication, seedRegistrations } from "../support/seed";

/**
 * The statements a move is made of (src/db/move.ts), one by one: what makes a repeated or late step harmless, and
 * what makes the journal catch every change (SPEC §7: no acknowledged write is ever lost).
 */

const REGISTRATIONS = MOVED_TABLES.find((table) => table.table === "registrations") ?? MOVED_TABLES[0];
if (!REGISTRATIONS) throw new Error("registrations is a moved table");

const source = () => shardDatabase(env, "SHARD_1");
const dest = () => shardDatabase(env, "SHARD_2");
const now = () => new Date().toISOString();

const registrationsOn = async (db: D1Database, appId: string) =>
	(
		await db.prepare("SELECT id, learner_email FROM registrations WHERE app_id = ?1 ORDER BY id").bind(appId).all<{
			id: string;
			learner_email: string | null;
		}>()
	).results;

describe("a move's statements", () => {
	it("refuse a step older than one that has written already (fencing token), and repeat a step without duplicating rows", async () => {
		const appId = await seedApplication({ shard: "SHARD_1" });
		await seedRegistrations(appId, "fenced", 3);
		await prepareMove(source(), dest(), appId, 10, now());
		const { rows } = await readRows(source(), appId, REGISTRATIONS, null, 2);
		expect(await writeRows(dest(), appId, 12, REGISTRATIONS, rows)).toBe(true);
		// The same step again (a redelivery): nothing twice.
		expect(await writeRows(dest(), appId, 12, REGISTRATIONS, rows)).toBe(true);
		expect((await registrationsOn(dest(), appId)).map((row) => row.id)).toEqual(["fenced-reg-0", "fenced-reg-1"]);
		// A late delivery of an earlier step writes nothing.
		const { rows: rest } = await readRows(source(), appId, REGISTRATIONS, null, 3);
		expect(await writeRows(dest(), appId, 11, REGISTRATIONS, rest)).toBe(false);
		expect((await registrationsOn(dest(), appId)).map((row) => row.id)).toEqual(["fenced-reg-0", "fenced-reg-1"]);
	});

	it("journal every change while moving, and keep a key that changed again after it was read", async () => {
		const appId = await seedApplication({ shard: "SHARD_1" });
		await seedRegistrations(appId, "journaled", 2);
		await prepareMove(source(), dest(), appId, 20, now());
		const change = (email: string, id: string) =>
			source().prepare("UPDATE registrations SET learner_email = ?3 WHERE app_id = ?1 AND id = ?2").bind(appId, id, email).run();

		await change("first@example.com", "journaled-reg-0");
		const read = await readJournal(source(), appId, 100);
		expect(read.entries).toEqual([{ kind: "registration", key: "journaled-reg-0", version: 1 }]);
		expect(read.rows[0]).toEqual([expect.objectContaining({ id: "journaled-reg-0", learner_email: "first@example.com" })]);

		// Changed again between the read and the replay: the entry must survive the replay of the version read.
		await change("second@example.com", "journaled-reg-0");
		expect(await applyJournal(dest(), appId, 21, read.entries, read.rows)).toBe(true);
		await forgetJournal(source(), appId, read.entries);
		const again = await readJournal(source(), appId, 100);
		expect(again.entries).toEqual([{ kind: "registration", key: "journaled-reg-0", version: 2 }]);
		expect(await applyJournal(dest(), appId, 22, again.entries, again.rows)).toBe(true);
		await forgetJournal(source(), appId, again.entries);
		expect((await readJournal(source(), appId, 100)).entries).toEqual([]);
		expect(await registrationsOn(dest(), appId)).toEqual([{ id: "journaled-reg-0", learner_email: "second@example.com" }]);

		// A row deleted on the source is deleted from the copy by its replay.
		await source().prepare("DELETE FROM registrations WHERE app_id = ?1 AND id = 'journaled-reg-0'").bind(appId).run();
		const deletion = await readJournal(source(), appId, 100);
		expect(await applyJournal(dest(), appId, 23, deletion.entries, deletion.rows)).toBe(true);
		expect(await registrationsOn(dest(), appId)).toEqual([]);
	});

	it("journal nothing for an application that is not moving", async () => {
		const appId = await seedApplication({ shard: "SHARD_1" });
		await seedRegistrations(appId, "still", 2);
		await source().prepare("UPDATE registrations SET learner_email = 'x@example.com' WHERE app_id = ?1").bind(appId).run();
		expect((await readJournal(source(), appId, 100)).entries).toEqual([]);
	});
});
