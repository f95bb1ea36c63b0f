import { env } from "cloudflare:workers";
import { parseShards, shardDatabase } from "../../src/shards";

/**
 * Stand-in D1 bindings for the Worker (fetchWithBindings, a queue env): the seam through which tests record or
 * fail D1 calls on the control database and every shard.
 */

/** What a stand-in changes of a database or session: its prepare and batch. */
export interface D1Calls {
	prepare(sql: string): D1PreparedStatement;
	batch(statements: D1PreparedStatement[]): Promise<D1Result[]>;
}

/**
 * A binding over `database` whose calls — on the binding and on each of its Sessions API sessions — go through
 * what `over` makes of the database or the session. The Worker uses nothing else of a D1 binding.
 */
export function d1Binding(database: D1Database, over: (db: D1Database | D1DatabaseSession) => D1Calls): D1Database {
	const calls = (db: D1Database | D1DatabaseSession) => {
		const made = over(db);
		return {
			prepare: (sql: string) => made.prepare(sql),
			batch: (statements: D1PreparedStatement[]) => made.batch(statements),
		};
	};
	return {
		...calls(database),
		withSession: (constraint?: D1SessionConstraint) => {
			const session = database.withSession(constraint);
			return { ...calls(session), getBookmark: () => session.getBookmark() };
		},
	} as unknown as D1Database;
}

/**
 * The Worker's D1 bindings — the control database (`DB`, unless `control` is false) and every shard wrangler.toml
 * lists — each what `wrap` makes of the real one.
 */
export function everyD1Binding(wrap: (database: D1Database) => D1Database, options: { control?: boolean } = {}): Record<string, D1Database> {
	const bindings: Record<string, D1Database> = options.control === false ? {} : { DB: wrap(env.DB) };
	for (const shard of parseShards(env.SHARDS)) bindings[shard.name] = wrap(shardDatabase(env, shard.name));
	return bindings;
}
