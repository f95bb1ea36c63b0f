/**
 * What the data layer needs from D1: a database or a Sessions API session (`env.DB.withSession()`), which
 * offer the same prepare/batch surface.
 */
export type Db = Pick<D1Database, "prepare" | "batch">;

/** The current time as ISO-8601 UTC, the format every stored date uses. */
export const nowIso = () => new Date().toISOString();

/**
 * Prepares SQL that uses numbered parameters from a shared list, binding exactly as many as its highest
 * `?N` (D1 rejects a statement bound with more or fewer values than that). Lets the statements of one batch
 * share one parameter list.
 */
export function prepareWith(db: Db, sql: string, params: readonly unknown[]): D1PreparedStatement {
	let highest = 0;
	for (const match of sql.matchAll(/\?(\d+)/g)) highest = Math.max(highest, Number(match[1]));
	return db.prepare(sql).bind(...params.slice(0, highest));
}
