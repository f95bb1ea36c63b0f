// `npm run dev [-- wrangler dev args]`: local secrets, local D1 migrations (control and every shard), then `wrangler dev`.
// Wrangler prints a table of every migration of every database (hundreds of lines on a fresh clone): each database's
// is summarised in one line instead. Once the server is ready, the addresses worth opening are printed.
import { spawn } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { migrateAll } from "./migrate.mjs";

if (!existsSync(".dev.vars")) {
	copyFileSync(".dev.vars.example", ".dev.vars");
	console.log("Created .dev.vars from .dev.vars.example (local-only secrets).");
}

/** One line for what wrangler did to a database: the migrations it applied, or that none was due. */
export function migrationSummary(binding, output) {
	const names = [...new Set([...output.matchAll(/│\s*(\d{4}_[\w.-]+\.sql)\s*│/g)].map((match) => match[1]))];
	if (names.length === 0) return `${binding}: up to date`;
	const range = names.length === 1 ? names[0] : `${names[0]} … ${names.at(-1)}`;
	return `${binding}: applied ${names.length} migration${names.length === 1 ? "" : "s"} (${range})`;
}

// No network here or in many sandboxes: skip wrangler's fetch of the Request.cf object.
const quiet = { CLOUDFLARE_CF_FETCH_ENABLED: "false" };
// The control database and every shard, each with its kind's migrations (scripts/migrate.mjs).
try {
	console.log("Applying local D1 migrations…");
	for (const { binding, stdout } of migrateAll(["--local"], { stdio: "pipe" })) console.log(`  ${migrationSummary(binding, stdout)}`);
} catch (error) {
	// A failure prints wrangler's whole output: that is when it matters.
	console.error(error instanceof Error ? error.message : error);
	process.exit(1);
}

// wrangler dev keeps its own copy of platform logs and traces (with full URLs: learner ids, ?userEmail=)
// under .wrangler/state/v3/observability/; this service logs for itself, without personal data.
const child = spawn("wrangler", ["dev", ...process.argv.slice(2)], {
	stdio: ["inherit", "pipe", "pipe"],
	env: { ...process.env, ...quiet, X_LOCAL_OBSERVABILITY: "false" },
});

// Wrangler's own output passes through; its "Ready on <url>" line is followed by the addresses to open.
let announced = false;
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");
const watch = (stream, into) =>
	stream.on("data", (chunk) => {
		into.write(chunk);
		const ready = /Ready on (https?:\/\/\S+)/.exec(chunk.toString().replace(ANSI, ""));
		if (ready?.[1] && !announced) {
			announced = true;
			const base = ready[1].replace(/\/$/, "");
			console.log(
				[
					"",
					"Learner Service is running:",
					`  front door    ${base}/`,
					`  console       ${base}/console   (sign in with MANAGEMENT_APP_ID and MANAGEMENT_SECRET_KEY from .dev.vars)`,
					`  API docs      ${base}/api/v2/docs`,
					`  OpenAPI       ${base}/api/v2/openapi.json`,
					`  API base      ${base}/api/v2`,
					"",
				].join("\n"),
			);
		}
	});
watch(child.stdout, process.stdout);
watch(child.stderr, process.stderr);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("error", (error) => {
	console.error(error.message);
	process.exit(1);
});
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
