// Startup floor: a bare Hono app with the two routes SPEC §6 holds the service's cold start to, each one D1 call
// running the statements the service runs for it on a warm isolate, written out:
//   - GET /learner/{id}/tags: src/db/tags.ts getTags with LEARNER_TAGS;
//   - PUT /learner/{id}/tags: src/db/tags.ts addTags for one learner (src/http/tag-writes.ts addTagsOr4xx), a
//     batch led by src/db/app-storage.ts writeGuard, then the stored-row count, the tag count upsert, the tags
//     (INSERT OR IGNORE over json_each), the learner's last write (src/db/activity.ts touchLearners, through
//     src/db/tags.ts touchOwners) and the unknown-ids read.
// Started with wrangler.limiter.toml, it also makes the one Rate Limiting call the service makes per request (the
// "floor + limiter" of bench/lib/startup.mjs: locally that call runs Miniflare's simulator, whose first call costs
// the process more than production's limiter would).
// Not imported from there: src/db/tags.ts imports src/limits.ts and the route modules pull in zod and the OpenAPI
// registry, which are the startup cost this floor is here to leave out. bench/lib/startup.mjs checks that a PUT
// here leaves the database as the service's does.
import { Hono } from "hono";

interface FloorEnv {
	DB: D1Database;
	APP_ID: string;
	/** The service's APP_ROW_QUOTA and APP_WRITE_BUDGET (wrangler.toml [vars]), which its writes record. */
	ROW_QUOTA: string;
	WRITE_BUDGET: string;
	/** Bound by wrangler.limiter.toml only. */
	RATE_LIMITER?: { limit(options: { key: string }): Promise<{ success: boolean }> };
}

const GET_LEARNER_TAGS = `SELECT NULL AS tag WHERE EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = ?1 AND r.learner_id = ?2)
	 UNION ALL
	 SELECT t.tag FROM learner_tags t INDEXED BY learner_tags_in_order
	 WHERE t.app_id = ?1 AND t.learner_id = ?2`;

// PUT: ?1 the application, ?2 the learner ids (a JSON array), ?3 the tags (a JSON array).
const ALL_EXIST =
	"NOT EXISTS (SELECT 1 FROM json_each(?2) i WHERE NOT EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = ?1 AND r.learner_id = i.value))";
const NEW_TAGS_OF = (id: string) =>
	`(SELECT count(*) FROM json_each(?3) j WHERE NOT EXISTS (SELECT 1 FROM learner_tags t
	   WHERE t.app_id = ?1 AND t.learner_id = ${id} AND t.tag = j.value))`;

// The write guard: charges the write to this minute's budget; the app_storage triggers refuse it when they must.
const WRITE_GUARD = `UPDATE app_storage SET
	   budget_spent = CASE WHEN budget_minute = ?2 THEN budget_spent + ?3 ELSE ?3 END,
	   budget_minute = ?2, write_budget = ?4, row_quota = ?5
	 WHERE app_id = ?1`;
const COUNT_ROWS = `UPDATE app_storage SET stored_rows = stored_rows + (CASE WHEN ${ALL_EXIST} THEN (SELECT count(*) FROM json_each(?2) i, json_each(?3) j
	   WHERE NOT EXISTS (SELECT 1 FROM learner_tags t
	     WHERE t.app_id = ?1 AND t.learner_id = i.value AND t.tag = j.value)) ELSE 0 END) WHERE app_id = ?1 AND 1`;
const COUNT_TAGS = `INSERT INTO learner_tag_counts (app_id, learner_id, tag_count)
	 SELECT ?1, i.value, ${NEW_TAGS_OF("i.value")} FROM json_each(?2) i WHERE ${ALL_EXIST}
	 ON CONFLICT (app_id, learner_id) DO UPDATE SET tag_count = tag_count + excluded.tag_count`;
const INSERT_TAGS = `INSERT OR IGNORE INTO learner_tags (app_id, learner_id, tag)
	 SELECT ?1, i.value, j.value FROM json_each(?2) i, json_each(?3) j
	 WHERE ${ALL_EXIST} ORDER BY i.key, j.key`;
// The learner's last write (retention), stamped when every learner exists; ?3 is the time.
const TOUCH_LEARNERS = `INSERT INTO learner_activity (app_id, learner_id, last_write_at)
	 SELECT ?1, i.value, ?3 FROM json_each(?2) i
	 WHERE ${ALL_EXIST} AND EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = ?1 AND r.learner_id = i.value)
	 ON CONFLICT (app_id, learner_id) DO UPDATE SET last_write_at = max(last_write_at, excluded.last_write_at)`;
const UNKNOWN_IDS = `SELECT i.value AS id FROM json_each(?2) i
	 WHERE NOT EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = ?1 AND r.learner_id = i.value) ORDER BY i.key`;

const app = new Hono<{ Bindings: FloorEnv }>().basePath("/api/v2");

/** The service's per-request limit, keyed by its application, where the binding is there (no middleware: the bare floor stays bare). */
const limited = async (env: FloorEnv) => env.RATE_LIMITER !== undefined && !(await env.RATE_LIMITER.limit({ key: env.APP_ID })).success;

app.get("/learner/:learnerId/tags", async (c) => {
	if (await limited(c.env)) return c.json({ message: "rate limited" }, 429);
	const { results } = await c.env.DB.prepare(GET_LEARNER_TAGS)
		.bind(c.env.APP_ID, c.req.param("learnerId"))
		.all<{ tag: string | null }>();
	// The first row says whether the learner exists; the rest are its tags.
	if (results[0]?.tag !== null) return c.json({ message: "not found" }, 404);
	return c.json({ tags: results.slice(1).map((row) => row.tag) });
});

app.put("/learner/:learnerId/tags", async (c) => {
	if (await limited(c.env)) return c.json({ message: "rate limited" }, 429);
	const { tags } = await c.req.json<{ tags: string[] }>();
	const appId = c.env.APP_ID;
	const ids = JSON.stringify([c.req.param("learnerId")]);
	const added = [...new Set(tags)];
	const unique = JSON.stringify(added);
	const db = c.env.DB;
	// One D1 call, as the service's: D1's batch is its transaction.
	const results = await db.batch([
		db
			.prepare(WRITE_GUARD)
			.bind(appId, Math.floor(Date.now() / 60_000), Math.max(1, added.length), Number(c.env.WRITE_BUDGET), Number(c.env.ROW_QUOTA)),
		db.prepare(COUNT_ROWS).bind(appId, ids, unique),
		db.prepare(COUNT_TAGS).bind(appId, ids, unique),
		db.prepare(INSERT_TAGS).bind(appId, ids, unique),
		db.prepare(TOUCH_LEARNERS).bind(appId, ids, new Date().toISOString()),
		db.prepare(UNKNOWN_IDS).bind(appId, ids),
	]);
	if (results.at(-1)?.results.length) return c.json({ message: "not found" }, 404);
	return c.body(null, 204);
});

export default app;
