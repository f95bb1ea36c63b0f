// Starts the service once per run the way a user does (wrangler's dev server on local D1 and Queues, the real
// wrangler.toml), on a fresh temporary persistence directory, and hands its URL to the interop tests.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { unstable_readConfig, unstable_startWorker } from "wrangler";

const ROOT = path.resolve(import.meta.dirname, "../..");
const WRANGLER_BIN = path.join(ROOT, "node_modules/wrangler/bin/wrangler.js");

// Test-only secrets, supplied as bindings so a developer's own .dev.vars never leaks into the run.
const SECRETS = {
	MANAGEMENT_APP_ID: "interop-management",
	MANAGEMENT_SECRET_KEY: "interop-management-secret-0123456789abcdef",
	TOKEN_SIGNING_SECRET: "interop-token-signing-secret-0123456789abcdef",
	LEARNER_HASH_KEY: "interop-learner-hash-key-0123456789abcdef",
	RECEIPT_SIGNING_KEY:
		'{"kty":"OKP","crv":"Ed25519","d":"WvOPAhxaxQMYjdiZen0K7AHOxAK6rBxYNRaU79GMmu8","x":"JsTk-XRm7f_mAaDvpZVKoqDwHyQ1pOxbN1LJIyhvuSs"}',
};

// The webhook test's receiver listens on 127.0.0.1 over plain http: local development, as .dev.vars.example allows
// it (wrangler.toml keeps it off, as deployments must).
const VARS = {
	WEBHOOK_ALLOW_LOCALHOST: "true",
};

declare module "vitest" {
	export interface ProvidedContext {
		/** e.g. http://127.0.0.1:PORT/api/v2 — the client's basePath. */
		basePath: string;
		managementAppId: string;
		managementSecretKey: string;
		/** Where wrangler dev keeps its local state (D1 files, queues, any log store): completeness scans read it. */
		persistDir: string;
	}
}

async function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			const port = typeof address === "object" && address ? address.port : 0;
			server.close(() => resolve(port));
		});
	});
}

export default async function setup(project: TestProject) {
	// No network in CI or this sandbox: skip wrangler's fetch of the Request.cf object. wrangler's local copy of
	// platform logs would hold full URLs (learner ids, ?userEmail=); the service logs for itself.
	process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
	process.env.X_LOCAL_OBSERVABILITY = "false";
	// wrangler's own per-request lines would drown the test report; its warnings and errors still show.
	process.env.WRANGLER_LOG = "warn";

	const persistTo = mkdtempSync(path.join(tmpdir(), "learner-service-interop-"));
	// The same commands `npm run dev` runs (scripts/migrate.mjs), with the same Node that runs this file: the
	// control database and every shard wrangler.toml declares.
	const bindings = unstable_readConfig({ config: path.join(ROOT, "wrangler.toml") }).d1_databases.map((d1: { binding: string }) => d1.binding);
	for (const binding of bindings) {
		const migrated = spawnSync(
			process.execPath,
			[WRANGLER_BIN, "d1", "migrations", "apply", binding, "--local", "--persist-to", persistTo],
			{ cwd: ROOT, encoding: "utf8", env: { ...process.env, CI: "true" } },
		);
		if (migrated.status !== 0) {
			rmSync(persistTo, { recursive: true, force: true });
			throw new Error(`wrangler d1 migrations apply ${binding} failed (${migrated.status}):\n${migrated.stdout}\n${migrated.stderr}`);
		}
	}

	const port = await freePort();
	const worker = await unstable_startWorker({
		config: path.join(ROOT, "wrangler.toml"),
		bindings: {
			...Object.fromEntries(Object.entries(SECRETS).map(([name, value]) => [name, { type: "secret_text", value }])),
			...Object.fromEntries(Object.entries(VARS).map(([name, value]) => [name, { type: "plain_text", value }])),
		},
		dev: {
			server: { hostname: "127.0.0.1", port },
			persist: persistTo,
			inspector: false,
			watch: false,
			liveReload: false,
			// The service's request logs are info lines; its faults (onError's 500s) are errors, and those show.
			structuredLogsHandler: (log: { level: string; message: string }) => {
				if (log.level === "error" || log.level === "warn") process.stderr.write(`[service ${log.level}] ${log.message}\n`);
			},
		},
	});
	await worker.ready;
	const url = await worker.url;

	project.provide("basePath", new URL("/api/v2", url).toString());
	project.provide("managementAppId", SECRETS.MANAGEMENT_APP_ID);
	project.provide("managementSecretKey", SECRETS.MANAGEMENT_SECRET_KEY);
	project.provide("persistDir", persistTo);

	return async () => {
		await worker.dispose();
		rmSync(persistTo, { recursive: true, force: true });
	};
}
