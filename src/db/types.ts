/**
 * What the data layer needs from D1: a database or a Sessions API session (`env.DB.withSession()`), which
 * offer the same prepare/batch surface.
 */
export type Db = Pick<D1Database, "prepare" | "batch">;

/** The current time as ISO-8601 UTC, the format every stored date uses. */
export const nowIso = () => new Date().toISOString();
