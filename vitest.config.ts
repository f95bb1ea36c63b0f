import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig(async () => {
	const controlMigrations = await readD1Migrations(path.join(import.meta.dirname, "migrations/control"));
	const shardMigrations = await readD1Migrations(path.join(import.meta.dirname, "migrations/shard"));
	return {
		test: {
			// The conformance reporter prints "conformance: N responses checked, V violations" at the end.
			reporters: ["default", "./test/conformance-reporter.ts", "./test/sim/reporter.ts"],
			projects: [
				{
					plugins: [
						cloudflareTest({
							wrangler: { configPath: "./wrangler.toml" },
							// The suites run src/ itself (wrangler.toml's main is the build's output, dist/).
							main: "./src/index.ts",
							miniflare: {
								bindings: {
									TEST_CONTROL_MIGRATIONS: controlMigrations,
									TEST_SHARD_MIGRATIONS: shardMigrations,
									MANAGEMENT_APP_ID: "test-management",
									MANAGEMENT_SECRET_KEY: "test-management-secret-0123456789abcdef",
									TOKEN_SIGNING_SECRET: "test-token-signing-secret-0123456789abcdef",
									LEARNER_HASH_KEY: "test-learner-hash-key-0123456789abcdef",
									// A test-only Ed25519 key (JWK) for erasure receipts.
									RECEIPT_SIGNING_KEY:
										'{"kty":"OKP","crv":"Ed25519","d":"Dq0u-cHK5FHJmgxn47fgPOAQKdSn8gwKfuDt_ejxpbU","x":"bmUzKqNQ9UsWkahYx3fBd3Zgzx5x_0vvOPNUAxDez9k"}',
									// Request and job-step lines would bury the figures the suites print.
									LOG_LEVEL: "error",
									// wrangler.toml's production setting, whatever a local .dev.vars says (npm run dev writes "true"
									// there): the suites test the destination rule as deployed, and turn it on where they mean to.
									WEBHOOK_ALLOW_LOCALHOST: "false",
									// A moved application's old rows go at once (production keeps them 40 s for isolates whose
									// cached placement is older than the flip): the suites wait for moves to finish.
									MOVE_LINGER_SECONDS: "0",
									// The whole-service simulation's settings (`npm run sim -- --seed S --runs N`, scripts/sim.mjs):
									// workerd sees no process environment, so they come in as bindings.
									SIM_SEED: process.env.SIM_SEED ?? "",
									SIM_RUNS: process.env.SIM_RUNS ?? "",
									SIM_STEPS: process.env.SIM_STEPS ?? "",
									SIM_PATH: process.env.SIM_PATH ?? "",
									SIM_REPLAY: process.env.SIM_REPLAY ?? "",
									SIM_SHRINK: process.env.SIM_SHRINK ?? "",
								},
								ratelimits: {
									// A second, tight limiter so a test can reach 429 without slowing every other test.
									TIGHT_RATE_LIMITER: { namespace_id: "2001", simple: { limit: 3, period: 60 } },
									// Every test request comes from one address, and the suites fail authentication on purpose
									// thousands of times: the failure throttle is tested with tight limiters of its own.
									AUTH_FAILURES_BY_CLIENT: { namespace_id: "1002", simple: { limit: 1_000_000, period: 60 } },
									AUTH_FAILURES_BY_APP: { namespace_id: "1003", simple: { limit: 1_000_000, period: 60 } },
									TIGHT_AUTH_FAILURES: { namespace_id: "2002", simple: { limit: 3, period: 60 } },
								},
							},
						}),
					],
					test: {
						name: "workers",
						include: ["test/**/*.test.ts"],
						exclude: ["test/interop/**"],
						// conformance-setup: every response from call() and fetchWithBindings() (test/support/client.ts) is
						// checked against the OpenAPI document.
						setupFiles: ["./test/apply-migrations.ts", "./test/conformance-setup.ts"],
						// Request logs are printed only for failing tests.
						silent: "passed-only",
					},
				},
				{
					// The official SCORM Cloud client against `wrangler dev` (local D1 and Queues), from Node.
					test: {
						name: "interop",
						environment: "node",
						include: ["test/interop/**/*.test.ts"],
						globalSetup: ["./test/interop/global-setup.ts"],
						// Async jobs go through the local queue (1 s batch timeout, 5 s retry delay).
						testTimeout: 60_000,
						hookTimeout: 120_000,
					},
				},
			],
		},
	};
});
