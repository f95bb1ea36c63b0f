/**
 * The shard databases (SPEC §7): which D1 bindings hold applications' data, in which region, and which take new
 * applications. Listed in wrangler.toml [vars] SHARDS as `BINDING:region[:closed]` separated by spaces, and
 * checked with the rest of the configuration (src/config.ts).
 */

/** Where an application's data may live: `eu` shards are D1 databases created with `--jurisdiction eu`. */
export const DATA_REGIONS = ["default", "eu"] as const;
export type DataRegion = (typeof DATA_REGIONS)[number];

export interface Shard {
	/** The D1 binding's name, which also names the shard in responses and in application placement. */
	name: string;
	region: DataRegion;
	/** False: no new application is placed there (those already there stay, and can be moved away). */
	open: boolean;
}

const ENTRY = /^([A-Z][A-Z0-9_]*):(default|eu)(:closed)?$/;

/** SHARDS as a list; throws (naming the entry, never a secret) when malformed. */
export function parseShards(text: string | undefined): Shard[] {
	const entries = (text ?? "").trim().split(/\s+/).filter(Boolean);
	if (entries.length === 0) throw new Error("SHARDS lists no shard database");
	const shards = entries.map((entry) => {
		const match = ENTRY.exec(entry);
		if (!match?.[1] || !match[2]) {
			throw new Error(`SHARDS entry "${entry}" is not BINDING:region or BINDING:region:closed (region: default or eu)`);
		}
		return { name: match[1], region: match[2] as DataRegion, open: match[3] === undefined };
	});
	const names = new Set(shards.map((shard) => shard.name));
	if (names.size !== shards.length) throw new Error("SHARDS names a binding twice");
	if (names.has("DB")) throw new Error("SHARDS may not name DB, the control database");
	return shards;
}

/** A shard's D1 binding; throws when the Worker has no such D1 binding (a configuration error). */
export function shardDatabase(env: object, name: string): D1Database {
	const binding = (env as Record<string, unknown>)[name];
	if (typeof binding !== "object" || binding === null || typeof (binding as D1Database).prepare !== "function") {
		throw new Error(`SHARDS names ${name}, which is not a D1 binding of this Worker`);
	}
	return binding as D1Database;
}

/**
 * The open shard of `region` holding the fewest applications (`counts`: live applications per shard name); null
 * when the region has no open shard. Ties go to the shard listed first.
 */
export function choosePlacement(shards: readonly Shard[], region: DataRegion, counts: ReadonlyMap<string, number>): Shard | null {
	let best: Shard | null = null;
	for (const shard of shards) {
		if (!shard.open || shard.region !== region) continue;
		if (!best || (counts.get(shard.name) ?? 0) < (counts.get(best.name) ?? 0)) best = shard;
	}
	return best;
}
