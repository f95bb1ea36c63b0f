import { ConfigError } from "../config";
import { type ExportObjects, exportPlan, markExportsPurged } from "../db/exports";
import type { Job } from "../db/jobs";
import type { Db } from "../db/types";

/**
 * Where exports live (SPEC §12): R2, one bucket per data region — EXPORTS for `default` applications, EXPORTS_EU
 * (created in R2's EU jurisdiction) for `eu` ones — so a learner's export stays in its application's region. Every
 * object of an export is under `exports/<jobId>/`: the parts its chunks gather (`part-<n>.json`), then its signed
 * document (`document.json`). Keys hold job ids only, never a learner's id.
 */

export type ExportRegion = "default" | "eu";

const BINDINGS: Record<ExportRegion, "EXPORTS" | "EXPORTS_EU"> = { default: "EXPORTS", eu: "EXPORTS_EU" };

/** The bucket of a region; a missing binding is a misconfiguration (500 naming it, never a silent fallback). */
export function exportBucket(env: Pick<Env, "EXPORTS" | "EXPORTS_EU">, region: ExportRegion): R2Bucket {
	const name = BINDINGS[region];
	const bucket = (env as Record<string, unknown>)[name] as R2Bucket | undefined;
	if (typeof bucket?.put !== "function") throw new ConfigError(`${name} is not an R2 binding of this Worker (wrangler.toml [[r2_buckets]])`);
	return bucket;
}

/** Every export bucket, with its region. */
export const exportBuckets = (env: Pick<Env, "EXPORTS" | "EXPORTS_EU">): [ExportRegion, R2Bucket][] =>
	(Object.keys(BINDINGS) as ExportRegion[]).map((region) => [region, exportBucket(env, region)]);

/** The prefix under which an export's objects are. */
export const exportPrefix = (jobId: string) => `exports/${jobId}/`;
/** The signed document's key. */
export const documentKey = (jobId: string) => `${exportPrefix(jobId)}document.json`;
/** Part `n`'s key (1-based, zero-padded so that keys list in order). */
export const partKey = (jobId: string, n: number) => `${exportPrefix(jobId)}part-${String(n).padStart(8, "0")}.json`;

/** The job id an export object's key names, or null for a key that is no export's. */
export function jobIdOfKey(key: string): string | null {
	const match = /^exports\/([^/]+)\/(?:document|part-\d{8})\.json$/.exec(key);
	return match?.[1] ?? null;
}

/** Every object under a prefix (R2 lists 1000 keys a page). */
export async function listAll(bucket: R2Bucket, prefix: string): Promise<R2Object[]> {
	const objects: R2Object[] = [];
	let cursor: string | undefined;
	do {
		const page = await bucket.list({ prefix, ...(cursor !== undefined && { cursor }) });
		objects.push(...page.objects);
		cursor = page.truncated ? page.cursor : undefined;
	} while (cursor !== undefined);
	return objects;
}

/** Deletes keys, 1000 at a time (R2's most per call). */
export async function deleteKeys(bucket: R2Bucket, keys: string[]): Promise<void> {
	for (let start = 0; start < keys.length; start += 1000) await bucket.delete(keys.slice(start, start + 1000));
}

/** Deletes every object of an export (in its region's bucket, or in both when its region is unknown). */
export async function deleteExportObjects(env: Pick<Env, "EXPORTS" | "EXPORTS_EU">, exported: ExportObjects): Promise<void> {
	const buckets = exported.region === null ? exportBuckets(env).map(([, bucket]) => bucket) : [exportBucket(env, exported.region)];
	for (const bucket of buckets) {
		const objects = await listAll(bucket, exportPrefix(exported.jobId));
		await deleteKeys(
			bucket,
			objects.map((object) => object.key),
		);
	}
}

/**
 * Deletes the objects of these exports, then marks them purged (their jobs stay): an erasure of their learner does
 * this before it completes, the sweeper when their retention has passed. Safe to repeat.
 */
export async function purgeExports(env: Pick<Env, "EXPORTS" | "EXPORTS_EU">, db: Db, exports: ExportObjects[]): Promise<void> {
	for (const exported of exports) await deleteExportObjects(env, exported);
	await markExportsPurged(
		db,
		exports.map((exported) => exported.jobId),
	);
}

/** Pages of keys (1000 each) the sweeper lists per bucket in one sweep, looking for objects no export needs. */
export const LEFTOVER_PAGES_PER_SWEEP = 10;

/**
 * What the sweeper does with an export's objects, from its job where its application now lives: keep them while it
 * runs, keep a completed export's document within its retention (its parts are leftovers: the finishing chunk deletes
 * them), delete everything else — the export cancelled by an erasure, failed, expired, or gone with its application.
 * Objects younger than `youngMs` are left to the next sweep: an attempt may be writing them under a claim about to
 * be recorded.
 */
export async function collectExportLeftovers(
	env: Env,
	nowMs: number,
	options: { retentionMs: number; youngMs: number; jobsOf: (jobIds: string[]) => Promise<Map<string, Job | null>> },
): Promise<number> {
	let deleted = 0;
	for (const [, bucket] of exportBuckets(env)) {
		const byJob = new Map<string, R2Object[]>();
		let cursor: string | undefined;
		for (let page = 0; page < LEFTOVER_PAGES_PER_SWEEP; page++) {
			const listed = await bucket.list({ prefix: "exports/", ...(cursor !== undefined && { cursor }) });
			for (const object of listed.objects) {
				const jobId = jobIdOfKey(object.key);
				if (jobId === null) continue;
				byJob.set(jobId, [...(byJob.get(jobId) ?? []), object]);
			}
			if (!listed.truncated) break;
			cursor = listed.cursor;
		}
		const jobs = await options.jobsOf([...byJob.keys()]);
		for (const [jobId, objects] of byJob) {
			if (objects.some((object) => nowMs - object.uploaded.getTime() < options.youngMs)) continue;
			const job = jobs.get(jobId) ?? null;
			if (job && (job.status === "queued" || job.status === "running")) continue;
			const plan = job ? exportPlan(job) : null;
			const keepsDocument =
				job !== null &&
				plan !== null &&
				job.status === "completed" &&
				job.error === null &&
				!plan.purged &&
				job.completedAt !== null &&
				Date.parse(job.completedAt) + options.retentionMs > nowMs;
			const doomed = objects.filter((object) => !(keepsDocument && object.key === documentKey(jobId))).map((object) => object.key);
			await deleteKeys(bucket, doomed);
			deleted += doomed.length;
		}
	}
	return deleted;
}
