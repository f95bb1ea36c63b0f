import { config } from "../config";
import { findPlacement } from "../db/applications";
import { jobHome } from "../db/jobs";
import { retryTransient } from "../db/retry";
import type { Db } from "../db/types";
import { type DataRegion, shardDatabase } from "../shards";

/**
 * The database holding a job: the control database for a realm job (a move, a realm-wide erasure), else its
 * application's shard, read fresh from the control database each time (a move may have flipped it). Null when the
 * id is not one of ours or its application never existed.
 */
export async function jobDatabase(env: Env, jobId: string): Promise<Db | null> {
	return (await jobPlacement(env, jobId))?.db ?? null;
}

/**
 * The database holding a job, as jobDatabase finds it, and the region of its shard: where an application's data
 * lives now (a realm job's is "default", holding no learner data).
 */
export async function jobPlacement(env: Env, jobId: string): Promise<{ db: Db; region: DataRegion } | null> {
	const home = jobHome(jobId);
	if (home === null) return null;
	if (home === "control") return { db: env.DB, region: "default" };
	const placement = await retryTransient(() => findPlacement(env.DB, home.appId));
	if (!placement) return null;
	const region = config(env).shards.find((shard) => shard.name === placement.shard)?.region ?? placement.dataRegion;
	return { db: shardDatabase(env, placement.shard).withSession("first-primary"), region };
}
