// Startup floor: a bare Hono app with one route, GET /learner/{id}/tags, running the statement the service runs
// for it (src/db/tags.ts getTags with LEARNER_TAGS, written out). Not imported from there: src/db/tags.ts
// imports src/schemas.ts, and with it zod and the OpenAPI registry, which are the startup cost this floor is
// here to leave out. Only its startup is measured; the route makes the bundle hold what a real handler needs.
import { Hono } from "hono";

interface FloorEnv {
	DB: D1Database;
	APP_ID: string;
}

const GET_LEARNER_TAGS = `SELECT NULL AS tag WHERE EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = ?1 AND r.learner_id = ?2)
	 UNION ALL
	 SELECT t.tag FROM learner_tags t INDEXED BY learner_tags_in_order
	 WHERE t.app_id = ?1 AND t.learner_id = ?2`;

const app = new Hono<{ Bindings: FloorEnv }>().basePath("/api/v2");

app.get("/learner/:learnerId/tags", async (c) => {
	const { results } = await c.env.DB.prepare(GET_LEARNER_TAGS)
		.bind(c.env.APP_ID, c.req.param("learnerId"))
		.all<{ tag: string | null }>();
	// The first row says whether the learner exists; the rest are its tags.
	if (results[0]?.tag !== null) return c.json({ message: "not found" }, 404);
	return c.json({ tags: results.slice(1).map((row) => row.tag) });
});

export default app;
