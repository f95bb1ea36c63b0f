import { env } from "cloudflare:workers";
import { parseShards, shardDatabase } from "../../src/shards";

/** Where a scanned value was found. */
export interface Finding {
	table: string;
	column: string;
	value: string;
}

/**
 * Every cell of every table of every database (the control database and each shard; tables enumerated from
 * sqlite_master, so a table added later is scanned too) that equals or contains one of the needles. SQLite's and
 * D1's internal tables are skipped; so is d1_migrations if D1 does not let it be read. Tables are named
 * `<binding>.<table>`.
 */
export async function findAnywhere(needles: string[]): Promise<{ tables: string[]; findings: Finding[] }> {
	const tables: string[] = [];
	const findings: Finding[] = [];
	for (const name of ["DB", ...parseShards(env.SHARDS).map((shard) => shard.name)]) {
		const found = await findIn(name === "DB" ? env.DB : shardDatabase(env, name), name, needles);
		tables.push(...found.tables);
		findings.push(...found.findings);
	}
	return { tables, findings };
}

async function findIn(db: D1Database, binding: string, needles: string[]): Promise<{ tables: string[]; findings: Finding[] }> {
	const { results } = await db.prepare(
		`SELECT name FROM sqlite_master
		 WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name`,
	).all<{ name: string }>();
	const tables: string[] = [];
	const findings: Finding[] = [];
	for (const { name } of results) {
		let rows: Record<string, unknown>[];
		try {
			// A table name from sqlite_master, quoted as an identifier: no value reaches the SQL text.
			rows = (await db.prepare(`SELECT * FROM "${name.replace(/"/g, '""')}"`).all<Record<string, unknown>>()).results;
		} catch (error) {
			if (name === "d1_migrations") continue;
			throw error;
		}
		tables.push(`${binding}.${name}`);
		for (const row of rows) {
			for (const [column, cell] of Object.entries(row)) {
				const value = cell instanceof ArrayBuffer ? new TextDecoder().decode(cell) : String(cell);
				if (needles.some((needle) => value.includes(needle))) findings.push({ table: `${binding}.${name}`, column, value });
			}
		}
	}
	return { tables, findings };
}
