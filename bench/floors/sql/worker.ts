// Floor 2: D1 and the runtime, nothing else. Runs exactly the statement GET /learner/{id}/tags runs on a warm
// isolate (src/db/tags.ts getTags, imported so the SQL cannot drift), with no framework, auth, validation,
// session or logging: the most any implementation of that route could do per second here.
//
// The same file is floor 3 (../sql-platform/wrangler.toml), which adds what SPEC §5 makes every request pay
// whatever the code: a Rate Limiting call and the D1 Sessions API.
import { LEARNER_TAGS, getTags } from "../../../src/db/tags";

interface FloorEnv {
	DB: D1Database;
	APP_ID: string;
	/** Present in floor 3 only, which also reads through a D1 session. */
	RATE_LIMITER?: RateLimit;
}

const PATH = /^\/api\/v2\/learner\/([^/]+)\/tags$/;

export default {
	async fetch(request, env) {
		const match = PATH.exec(new URL(request.url).pathname);
		if (!match?.[1]) return new Response(null, { status: 404 });
		const limiter = env.RATE_LIMITER;
		if (limiter && !(await limiter.limit({ key: env.APP_ID })).success) return new Response(null, { status: 429 });
		const db = limiter ? env.DB.withSession("first-unconstrained") : env.DB;
		const tags = await getTags(db, LEARNER_TAGS, env.APP_ID, decodeURIComponent(match[1]));
		if (!tags) return Response.json({ message: "not found" }, { status: 404 });
		return Response.json({ tags });
	},
} satisfies ExportedHandler<FloorEnv>;
