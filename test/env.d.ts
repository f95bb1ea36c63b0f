import type { D1Migration } from "cloudflare:test";

declare global {
	namespace Cloudflare {
		interface Env {
			TEST_CONTROL_MIGRATIONS: D1Migration[];
			TEST_SHARD_MIGRATIONS: D1Migration[];
			TIGHT_RATE_LIMITER: RateLimit;
			TIGHT_AUTH_FAILURES: RateLimit;
			/** The simulation's seed, runs, commands per run and replay path (test/sim); empty: its defaults. */
			SIM_SEED: string;
			SIM_RUNS: string;
			SIM_STEPS: string;
			SIM_PATH: string;
			SIM_REPLAY: string;
			SIM_SHRINK: string;
		}
		interface GlobalProps {
			mainModule: typeof import("../src/index");
		}
	}
}
