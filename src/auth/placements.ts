import { findPlacement } from "../db/applications";
import { retryTransient } from "../db/retry";
import { BoundedCache } from "./cache";
import { CREDENTIAL_CACHE_TTL_MS } from "./credentials";

/**
 * Applications' shards, for requests that name an application without its credential (the management API's
 * GET /jobs/{jobId} and job lists): cached in the isolate for as long as a credential (placement travels with a
 * credential everywhere else), so a warm lookup costs no D1 call. A move's flip forgets the entry in the isolate
 * that flips, and a write refused because the application is moving forgets it in the isolate that tried; another
 * isolate may read the shard the application left until its entry expires, which the move keeps readable for
 * longer than that (src/jobs/move.ts, lingerMs), as the rows were when it froze them.
 */
const placements = new BoundedCache<string>("placements", { maxEntries: 10_000, maxBytes: 1024 * 1024 });

/** The shard holding the application's data (deleted or not), or null when there never was such an application. */
export async function placementOf(control: D1Database, appId: string): Promise<string | null> {
	const now = Date.now();
	const cached = placements.get(appId, now);
	if (cached) return cached;
	const placement = await retryTransient(() => findPlacement(control, appId));
	if (!placement) return null;
	placements.set(appId, placement.shard, now + CREDENTIAL_CACHE_TTL_MS, (appId.length + placement.shard.length) * 2, now);
	return placement.shard;
}

/** Forgets the application's shard in this isolate (its move flipped, or it refused a write while moving). */
export const forgetPlacement = (appId: string) => placements.delete(appId);
