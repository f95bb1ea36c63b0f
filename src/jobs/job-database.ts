import { findPlacement } from "../db/applications";
import { jobHome } from "../db/jobs";
import { retryTransient } from "../db/retry";
import type { Db } from "../db/types";
import { shardDatabase } from "../shards";

/**
 * The database holding a job: the control database for a realm job (a move, a realm-wide erasure), else its
 * application's shard, read fresh from the control database each time (a move may have flipped it). Null when the
 * id is not one of ours or its application never existed.
 */
export async function jobDatabase(env: Env, jobId: string): Promise<Db | null> {
	const home = jobHome(jobId);
	if (home === null) return null;
	if (home === "control") return env.DB;
	const placement = await retryTransient(() => findPlacement(env.DB, home.appId));
	return placement ? shardDatabase(env, placement.shard).withSession("first-primary") : null;
}
