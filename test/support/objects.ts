import { env } from "cloudflare:workers";

/**
 * The export buckets (R2), read straight: what an erasure must leave no trace of, and what the sweeper deletes.
 */

/** Every object key in both export buckets (the default region's and the EU's), with its bucket's binding. */
export async function objectKeys(prefix = "exports/"): Promise<string[]> {
	const keys: string[] = [];
	for (const [name, bucket] of [["EXPORTS", env.EXPORTS], ["EXPORTS_EU", env.EXPORTS_EU]] as const) {
		let cursor: string | undefined;
		do {
			const page = await bucket.list({ prefix, ...(cursor !== undefined && { cursor }) });
			keys.push(...page.objects.map((object) => `${name}:${object.key}`));
			cursor = page.truncated ? page.cursor : undefined;
		} while (cursor !== undefined);
	}
	return keys.sort();
}

/** The keys of every object, in either bucket, whose bytes contain one of the needles. */
export async function objectsNaming(needles: string[]): Promise<string[]> {
	const found: string[] = [];
	for (const [name, bucket] of [["EXPORTS", env.EXPORTS], ["EXPORTS_EU", env.EXPORTS_EU]] as const) {
		let cursor: string | undefined;
		do {
			const page = await bucket.list({ ...(cursor !== undefined && { cursor }) });
			for (const object of page.objects) {
				const text = (await (await bucket.get(object.key))?.text()) ?? "";
				if (needles.some((needle) => text.includes(needle) || text.includes(JSON.stringify(needle).slice(1, -1)))) found.push(`${name}:${object.key}`);
			}
			cursor = page.truncated ? page.cursor : undefined;
		} while (cursor !== undefined);
	}
	return found;
}
