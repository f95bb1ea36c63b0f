import { ApiError } from "../errors";
import { BoundedCache } from "./cache";

/**
 * Failed authentication costs the caller (SPEC §11): every failure is counted per client address and per
 * application it claimed (Workers Rate Limiting bindings AUTH_FAILURES_BY_CLIENT and AUTH_FAILURES_BY_APP, a
 * 60 s window), and once either count is over its limit this isolate answers that address or application 429
 * for the rest of the window without looking anything up. Requests whose credentials the isolate has verified
 * recently are served before this check, so a flood of failures naming an application does not shut out its
 * clients on warm isolates.
 */

/** The window of the AUTH_FAILURES_* bindings (wrangler.toml), which is also the Retry-After. */
export const FAILURE_WINDOW_SECONDS = 60;

// Isolate-wide (not request state): keys over their limit, until their window ends.
const throttled = new BoundedCache<true>("throttled callers", { maxEntries: 10_000, maxBytes: 2 * 1024 * 1024 });

/** Who a failure is counted against. */
export interface FailureKeys {
	/** The client's address (IPv6: its /64 prefix, which one host usually holds whole). */
	client: string;
	/** The application (or "management") the credentials named, when they named one. */
	claimed?: string;
}

/** The address key of a request, from CF-Connecting-IP (absent locally: every local caller shares one key). */
export function clientKey(headers: Headers): string {
	const address = headers.get("CF-Connecting-IP") ?? "unknown";
	if (!address.includes(":")) return `ip:${address}`;
	const groups = address.split(":");
	return `ip6:${groups.slice(0, 4).join(":")}`;
}

/** Keys of `claimed` are bounded, whatever the caller sent. */
const claimedKey = (claimed: string) => `app:${claimed.slice(0, 64)}`;

const tooMany = () =>
	new ApiError(429, `Too many failed authentication attempts; retry after ${FAILURE_WINDOW_SECONDS} seconds`, {
		"Retry-After": String(FAILURE_WINDOW_SECONDS),
	});

const isThrottled = (keys: FailureKeys) =>
	throttled.get(keys.client) !== undefined || (keys.claimed !== undefined && throttled.get(claimedKey(keys.claimed)) !== undefined);

/** Throws 429 if the address or the claimed application is throttled in this isolate (before any lookup). */
export function refuseIfThrottled(keys: FailureKeys): void {
	if (isThrottled(keys)) throw tooMany();
}

/**
 * Counts a failed attempt, and returns the error to answer: `unauthorized` while the counts are within their
 * limits, 429 once either is over (and that key throttled here until the window ends) or already was.
 */
export async function failedAttempt(
	env: Pick<Env, "AUTH_FAILURES_BY_CLIENT" | "AUTH_FAILURES_BY_APP">,
	keys: FailureKeys,
	unauthorized: ApiError,
): Promise<ApiError> {
	if (isThrottled(keys)) return tooMany();
	const counts: [string, RateLimit][] = [[keys.client, env.AUTH_FAILURES_BY_CLIENT]];
	if (keys.claimed !== undefined) counts.push([claimedKey(keys.claimed), env.AUTH_FAILURES_BY_APP]);
	const verdicts = await Promise.all(counts.map(([key, limiter]) => limiter.limit({ key })));
	const until = Date.now() + FAILURE_WINDOW_SECONDS * 1000;
	let over = false;
	verdicts.forEach((verdict, index) => {
		if (verdict.success) return;
		over = true;
		throttled.set(counts[index]?.[0] ?? "", true, until);
	});
	return over ? tooMany() : unauthorized;
}

/** Entries and bytes of the throttle's cache. */
export const throttleCacheStats = () => throttled.stats();
