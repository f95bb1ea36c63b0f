// `npm run db:migrate:local|remote [-- extra wrangler args]`: applies each database's migrations to every D1
// database wrangler.toml declares: migrations/control to the control database (DB), migrations/shard to every
// shard (each binding's migrations_dir says which). Adding a shard is declaring it; this applies to it too.
import { spawnSync } from "node:child_process";
import { pathToFileURL } from "node:url";
import { unstable_readConfig } from "wrangler";

/** The D1 bindings wrangler.toml declares, the control database first. */
export function d1Bindings(configPath = "wrangler.toml") {
	const config = unstable_readConfig({ config: configPath });
	return config.d1_databases.map((database) => database.binding).sort((a, b) => (a === "DB" ? -1 : b === "DB" ? 1 : 0));
}

/**
 * Applies migrations to every D1 binding; extra args (e.g. --local --persist-to DIR) go to each wrangler call. With
 * `stdio: "pipe"`, answers each binding's output (`npm run dev` summarises it).
 */
export function migrateAll(args, options = {}) {
	const outputs = [];
	for (const binding of d1Bindings(options.config)) {
		const result = spawnSync("wrangler", ["d1", "migrations", "apply", binding, ...args], {
			stdio: options.stdio ?? "inherit",
			encoding: "utf8",
			// No network here or in many sandboxes: skip wrangler's fetch of the Request.cf object.
			env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: "true", ...options.env },
		});
		if (result.error) throw result.error;
		if (result.status !== 0) {
			const detail = options.stdio === "pipe" ? `\n${result.stdout}\n${result.stderr}` : "";
			throw new Error(`wrangler d1 migrations apply ${binding} failed (${result.status})${detail}`);
		}
		outputs.push({ binding, stdout: result.stdout ?? "", stderr: result.stderr ?? "" });
	}
	return outputs;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
	const args = process.argv.slice(2);
	if (!args.includes("--local") && !args.includes("--remote")) {
		console.error("usage: node scripts/migrate.mjs --local|--remote [wrangler args]");
		process.exit(2);
	}
	try {
		migrateAll(args);
	} catch (error) {
		console.error(error instanceof Error ? error.message : error);
		process.exit(1);
	}
}
