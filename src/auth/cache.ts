/**
 * An isolate-wide cache (not request state) bounded in entries and in bytes, whose entries expire. Callers key
 * it by canonical values only, so no one can grow it by sending the same thing spelled many ways (SPEC §11).
 * When full, the oldest entry goes first (Maps iterate in insertion order); expired entries are swept at most
 * once per `sweepEveryMs`, so they do not linger while the cache is quiet.
 */
export class BoundedCache<V> {
	private readonly entries = new Map<string, { value: V; expires: number; bytes: number }>();
	private bytes = 0;
	private nextSweep = 0;

	constructor(
		readonly name: string,
		private readonly limits: { maxEntries: number; maxBytes: number; sweepEveryMs?: number },
	) {}

	/** The value and its expiry, while it lasts. */
	entry(key: string, now = Date.now()): { value: V; expires: number } | undefined {
		const entry = this.entries.get(key);
		if (!entry) return undefined;
		if (entry.expires > now) return entry;
		this.delete(key);
		return undefined;
	}

	get(key: string, now = Date.now()): V | undefined {
		return this.entry(key, now)?.value;
	}

	/** Stores a value until `expires`; `bytes` is what it holds beyond its key (strings count 2 bytes a unit). */
	set(key: string, value: V, expires: number, bytes = 0, now = Date.now()): void {
		if (now >= this.nextSweep) this.sweep(now);
		this.delete(key);
		const size = key.length * 2 + bytes + ENTRY_OVERHEAD;
		if (size > this.limits.maxBytes) return;
		while (this.entries.size >= this.limits.maxEntries || this.bytes + size > this.limits.maxBytes) {
			const oldest = this.entries.keys().next().value;
			if (oldest === undefined) break;
			this.delete(oldest);
		}
		this.entries.set(key, { value, expires, bytes: size });
		this.bytes += size;
	}

	delete(key: string): void {
		const entry = this.entries.get(key);
		if (!entry) return;
		this.entries.delete(key);
		this.bytes -= entry.bytes;
	}

	/** Deletes every entry whose value matches. */
	deleteWhere(matches: (value: V) => boolean): void {
		for (const [key, entry] of this.entries) if (matches(entry.value)) this.delete(key);
	}

	clear(): void {
		this.entries.clear();
		this.bytes = 0;
	}

	/** Drops every expired entry. */
	sweep(now = Date.now()): void {
		for (const [key, entry] of this.entries) if (entry.expires <= now) this.delete(key);
		this.nextSweep = now + (this.limits.sweepEveryMs ?? 10_000);
	}

	/** Entries and bytes held now, for the bounds' tests and the operator. */
	stats(): { name: string; entries: number; bytes: number; maxEntries: number; maxBytes: number } {
		return {
			name: this.name,
			entries: this.entries.size,
			bytes: this.bytes,
			maxEntries: this.limits.maxEntries,
			maxBytes: this.limits.maxBytes,
		};
	}
}

/** A rough allowance for the Map entry, its record and the value object's own fields. */
const ENTRY_OVERHEAD = 160;
