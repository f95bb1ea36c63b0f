// Write floors for `npm run bench`: PUT /learner/{id}/tags with no framework, auth, validation or logging —
// only what SPEC §5 makes every request pay (one Rate Limiting call, a D1 session) and the route's SQL, imported
// from src/db so it cannot drift. Two variants (wrangler.toml, checked.wrangler.toml):
//   - without tenant checks: the tag counts, the tags and the unknown-ids read, as before the write guard;
//   - with them: the same batch as the service, led by the write guard (liveness fence, write budget) and
//     with the stored-row count (quota), so the service's PUT is compared with a floor doing the same work,
//     and the two floors together give what the checks cost.
import { writeGuard } from "../../../src/db/app-storage";
import { LEARNER_TAGS, addTagsStatements } from "../../../src/db/tags";

interface FloorEnv {
	DB: D1Database;
	APP_ID: string;
	RATE_LIMITER: RateLimit;
	/** "on" in the checked variant. */
	TENANT_CHECKS: string;
}

const PATH = /^\/api\/v2\/learner\/([^/]+)\/tags$/;
// High enough that no run reaches them (the bench raises the service's budget the same way): the checks run, the
// limits never bite.
const LIMITS = { rowQuota: 1_000_000_000, writeBudget: 1_000_000_000 };

export default {
	async fetch(request, env) {
		const match = PATH.exec(new URL(request.url).pathname);
		if (request.method !== "PUT" || !match?.[1]) return new Response(null, { status: 404 });
		if (!(await env.RATE_LIMITER.limit({ key: env.APP_ID })).success) return new Response(null, { status: 429 });
		const { tags } = await request.json<{ tags: string[] }>();
		const learnerId = decodeURIComponent(match[1]);
		const db = env.DB.withSession("first-primary");
		const checked = env.TENANT_CHECKS === "on";
		// addTagsStatements leads with the stored-row count; the unchecked floor leaves it out.
		const [countRows, ...writes] = addTagsStatements(db, LEARNER_TAGS, env.APP_ID, [learnerId], tags);
		const statements = checked
			? [writeGuard(db, env.APP_ID, tags.length, LIMITS), ...(countRows ? [countRows] : []), ...writes]
			: writes;
		const results = await db.batch([
			...statements,
			db
				.prepare("SELECT 1 AS found FROM registrations WHERE app_id = ?1 AND learner_id = ?2 LIMIT 1")
				.bind(env.APP_ID, learnerId),
		]);
		if (!results.at(-1)?.results.length) return Response.json({ message: "not found" }, { status: 404 });
		return new Response(null, { status: 204 });
	},
} satisfies ExportedHandler<FloorEnv>;
