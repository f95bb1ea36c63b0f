import { env } from "cloudflare:workers";
import type { WriteLimits } from "../../src/db/app-storage";
import { countApplicationsByShard, findPlacement, insertApplication } from "../../src/db/applications";
import { type DataRegion, choosePlacement, parseShards, shardDatabase } from "../../src/shards";
import { randomId } from "../../src/auth/crypto";

/**
 * Straight to D1, past the API: rows seeded in bulk (one HTTP call per registration would take seconds, or
 * minutes), and rows counted or read back where the API does not show them.
 */

/** The limits a write into a seeded application is given: the defaults docs/api.md publishes (Limits). */
export const DEFAULT_LIMITS: WriteLimits = { rowQuota: 5_000_000, writeBudget: 300_000 };

/** The shards wrangler.toml lists (three in tests: SHARD_1 and SHARD_2 in the default region, SHARD_EU_1 in eu). */
export const SHARDS = parseShards(env.SHARDS);

/** The control database and every shard: where "anywhere in the realm" looks. */
export const allDatabases = (): D1Database[] => [env.DB, ...SHARDS.map((shard) => shardDatabase(env, shard.name))];

/** The shard database holding the application's data (its placement, read from the control database). */
export async function shardOf(appId: string): Promise<D1Database> {
	const placement = await findPlacement(env.DB, appId);
	if (!placement) throw new Error(`no application ${appId}`);
	return shardDatabase(env, placement.shard);
}

/**
 * A new application, made by src/db itself (placed as the API places one, with the storage row its writes are
 * checked against on its shard); its id. `shard` places it on that shard instead.
 */
export async function seedApplication(options: { region?: DataRegion; shard?: string } = {}): Promise<string> {
	// Shaped like the API's ids (10 characters), so its job ids (`<appId>.<uuid>`) are as long as real ones.
	const appId = randomId(10);
	const region = options.region ?? SHARDS.find((shard) => shard.name === options.shard)?.region ?? "default";
	const shard = options.shard ?? choosePlacement(SHARDS, region, await countApplicationsByShard(env.DB))?.name;
	if (!shard) throw new Error(`no open shard in ${region}`);
	await insertApplication(env.DB, shardDatabase(env, shard), {
		id: appId,
		name: appId,
		dataRegion: region,
		shard,
		createdAt: new Date().toISOString(),
		updatedAt: new Date().toISOString(),
		allowDelete: true,
	});
	return appId;
}

/** A registration row for insertRegistrations: ids only (learner details stay unset). */
export interface SeedRegistration {
	id: string;
	courseId: string;
	learnerId: string;
}

/** Inserts registrations in one statement (json_each), in array order. */
export async function insertRegistrations(appId: string, rows: SeedRegistration[]): Promise<void> {
	await (await shardOf(appId)).prepare(
		`INSERT INTO registrations (app_id, id, course_id, learner_id, xapi_registration_id, created_at, updated_at)
		 SELECT ?1, value ->> '$.id', value ->> '$.courseId', value ->> '$.learnerId', lower(hex(randomblob(16))), ?3, ?3
		 FROM json_each(?2) ORDER BY key`,
	)
		.bind(appId, JSON.stringify(rows), new Date().toISOString())
		.run();
}

/**
 * Inserts `count` registrations: `${prefix}-reg-${i}` of learner `${prefix}-learner-${i}` on course
 * `${prefix}-course`. Returns the learner ids, in order.
 */
export async function seedRegistrations(appId: string, prefix: string, count: number): Promise<string[]> {
	const learnerIds = Array.from({ length: count }, (_, i) => `${prefix}-learner-${i}`);
	await insertRegistrations(
		appId,
		learnerIds.map((learnerId, i) => ({ id: `${prefix}-reg-${i}`, courseId: `${prefix}-course`, learnerId })),
	);
	return learnerIds;
}

/**
 * Gives every learner every tag (in array order), with the tag counts kept beside them, in one D1 call. The
 * learners must exist (seedRegistrations): the API never holds tags of a learner that does not.
 */
export async function tagLearners(appId: string, learnerIds: string[], tags: string[]): Promise<void> {
	const [learners, tagList] = [JSON.stringify(learnerIds), JSON.stringify(tags)];
	const db = await shardOf(appId);
	await db.batch([
		db.prepare(
			`INSERT OR IGNORE INTO learner_tags (app_id, learner_id, tag)
			 SELECT ?1, l.value, t.value FROM json_each(?2) l, json_each(?3) t ORDER BY l.key, t.key`,
		).bind(appId, learners, tagList),
		db.prepare(
			`INSERT INTO learner_tag_counts (app_id, learner_id, tag_count)
			 SELECT ?1, l.value, (SELECT count(*) FROM learner_tags t WHERE t.app_id = ?1 AND t.learner_id = l.value) FROM json_each(?2) l
			 WHERE true ON CONFLICT (app_id, learner_id) DO UPDATE SET tag_count = excluded.tag_count`,
		).bind(appId, learners),
	]);
}

/**
 * Gives the learner `count` registrations (`<learnerId>-registration-<n>`), each with one registration tag
 * (`<label>-tag`), in one D1 call.
 */
export async function seedLearnerRegistrations(appId: string, learnerId: string, count: number, label: string): Promise<void> {
	const now = new Date().toISOString();
	const db = await shardOf(appId);
	await db.batch([
		db.prepare(
			`INSERT INTO registrations (app_id, id, course_id, learner_id, learner_email, learner_first_name, learner_last_name,
			   xapi_registration_id, tag_count, created_at, updated_at)
			 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?3)
			 SELECT ?1, ?2 || '-registration-' || i, 'course-' || ?5, ?2, 'before@example.com', 'Before', 'Before',
			   lower(hex(randomblob(16))), 1, ?4, ?4
			 FROM n`,
		).bind(appId, learnerId, count, now, label),
		db.prepare(
			`INSERT INTO registration_tags (app_id, registration_id, tag)
			 SELECT app_id, id, ?3 || '-tag' FROM registrations WHERE app_id = ?1 AND learner_id = ?2 ORDER BY pk`,
		).bind(appId, learnerId, label),
	]);
}

/** Backdates a registration: sets its creation and last-update times, which since/until bound. */
export async function setRegistrationDates(appId: string, registrationId: string, dates: { createdAt: string; updatedAt: string }) {
	await (await shardOf(appId)).prepare("UPDATE registrations SET created_at = ?3, updated_at = ?4 WHERE app_id = ?1 AND id = ?2")
		.bind(appId, registrationId, dates.createdAt, dates.updatedAt)
		.run();
}

/**
 * What a counting statement (`SELECT count(*) AS n …`) answers across the realm, bound to `params`: the sum over
 * the control database and every shard that has the tables it reads (an application's rows are on one of them);
 * -1 if no database answers a row.
 */
export async function countOf(sql: string, ...params: unknown[]): Promise<number> {
	let total = -1;
	for (const db of allDatabases()) {
		let row: { n: number } | null;
		try {
			row = await db.prepare(sql).bind(...params).first<{ n: number }>();
		} catch (error) {
			if (error instanceof Error && /no such (table|column)/.test(error.message)) continue;
			throw error;
		}
		if (row) total = Math.max(total, 0) + row.n;
	}
	return total;
}

/** How many registrations of the application name the learner. */
export async function registrationCount(appId: string, learnerId: string): Promise<number> {
	const row = await (await shardOf(appId)).prepare("SELECT count(*) AS n FROM registrations WHERE app_id = ?1 AND learner_id = ?2")
		.bind(appId, learnerId)
		.first<{ n: number }>();
	return row?.n ?? 0;
}

/**
 * Every row holding the application's id anywhere in the realm (the control database and every shard), per table
 * with an app_id column (found from sqlite_master, so a table added later is read too), each table's rows in a
 * fixed order (some tables have no rowid to sort by). A table that exists in several databases lists the rows of
 * all of them.
 */
export async function rowsOf(appId: string): Promise<Record<string, Record<string, unknown>[]>> {
	const rows: Record<string, Record<string, unknown>[]> = {};
	for (const db of allDatabases()) {
		const { results: tables } = await db
			.prepare(
				`SELECT m.name FROM sqlite_master m
				 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '\\_cf\\_%' ESCAPE '\\'
				   AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) c WHERE c.name = 'app_id') ORDER BY m.name`,
			)
			.all<{ name: string }>();
		for (const { name } of tables) {
			// A table name from sqlite_master, quoted as an identifier: no value reaches the SQL text.
			const { results } = await db.prepare(`SELECT * FROM "${name.replace(/"/g, '""')}" WHERE app_id = ?1`).bind(appId).all<Record<string, unknown>>();
			rows[name] = [...(rows[name] ?? []), ...results];
		}
	}
	for (const name of Object.keys(rows)) {
		rows[name] = (rows[name] ?? [])
			.map((row) => [JSON.stringify(row), row] as const)
			.sort(([a], [b]) => (a < b ? -1 : 1))
			.map(([, row]) => row);
	}
	return rows;
}
