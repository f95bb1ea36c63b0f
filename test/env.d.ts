import type { D1Migration } from "cloudflare:test";

declare global {
	namespace Cloudflare {
		interface Env {
			TEST_CONTROL_MIGRATIONS: D1Migration[];
			TEST_SHARD_MIGRATIONS: D1Migration[];
			TIGHT_RATE_LIMITER: RateLimit;
			TIGHT_AUTH_FAILURES: RateLimit;
		}
		interface GlobalProps {
			mainModule: typeof import("../src/index");
		}
	}
}
