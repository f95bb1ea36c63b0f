// `npm run dev [-- wrangler dev args]`: local secrets, local D1 migrations (control and every shard), then `wrangler dev`.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { migrateAll } from "./migrate.mjs";

if (!existsSync(".dev.vars")) {
	copyFileSync(".dev.vars.example", ".dev.vars");
	console.log("Created .dev.vars from .dev.vars.example (local-only secrets).");
}

const run = (args, extraEnv = {}) => {
	const result = spawnSync("wrangler", args, { stdio: "inherit", env: { ...process.env, ...extraEnv } });
	if (result.error) throw result.error;
	return result.status ?? 1;
};

// No network here or in many sandboxes: skip wrangler's fetch of the Request.cf object.
const quiet = { CLOUDFLARE_CF_FETCH_ENABLED: "false" };
// The control database and every shard, each with its kind's migrations (scripts/migrate.mjs).
try {
	migrateAll(["--local"]);
} catch (error) {
	console.error(error instanceof Error ? error.message : error);
	process.exit(1);
}

// wrangler dev keeps its own copy of platform logs and traces (with full URLs: learner ids, ?userEmail=)
// under .wrangler/state/v3/observability/; this service logs for itself, without personal data.
process.exit(run(["dev", ...process.argv.slice(2)], { ...quiet, X_LOCAL_OBSERVABILITY: "false" }));
