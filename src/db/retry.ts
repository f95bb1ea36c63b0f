/**
 * D1's documented errors (developers.cloudflare.com/d1/observability/debug-d1): some are transient — the
 * database restarted or the network dropped — and a retry usually succeeds; others say the database is
 * overloaded, where a retry adds to the load. Only calls that are safe to repeat are retried here (reads, and
 * writes that are idempotent by construction: set union, removal, cursor-claimed job steps); the rest reach the
 * client as 503 with Retry-After.
 */

const TRANSIENT = [
	"reset because its code was updated",
	"Internal error while starting up D1 DB storage caused object to be reset",
	"Network connection lost",
	"Internal error in D1 DB storage caused object to be reset",
	"Cannot resolve D1 DB due to transient issue on remote node",
	"Can't read from request stream because client disconnected",
];

const OVERLOADED = [
	"D1 DB is overloaded",
	"D1 DB storage operation exceeded timeout which caused object to be reset",
	"D1 DB's isolate exceeded its memory limit and was reset",
	"D1 DB exceeded its CPU time limit and was reset",
];

/** What kind of D1 trouble an error reports, if any. */
export function d1Trouble(error: unknown): "transient" | "overloaded" | null {
	if (!(error instanceof Error)) return null;
	if (OVERLOADED.some((text) => error.message.includes(text))) return "overloaded";
	if (TRANSIENT.some((text) => error.message.includes(text))) return "transient";
	return null;
}

const ATTEMPTS = 3;
const BASE_DELAY_MS = 40;

/**
 * Runs a D1 call that is safe to repeat, retrying it after a transient error with exponential backoff and
 * full jitter (up to 3 attempts, under ~200 ms of waiting). Any other error, and the last one, is thrown.
 */
export async function retryTransient<T>(call: () => Promise<T>): Promise<T> {
	for (let attempt = 1; ; attempt++) {
		try {
			return await call();
		} catch (error) {
			if (attempt >= ATTEMPTS || d1Trouble(error) !== "transient") throw error;
			await new Promise((resolve) => setTimeout(resolve, Math.random() * BASE_DELAY_MS * 2 ** attempt));
		}
	}
}
