import { retryTransient } from "./retry";
import type { Db } from "./types";

/**
 * The console's drafts and one-time results (migrations/control 0008: console_drafts), in the control database: each
 * row sealed by src/console/drafts.ts under a key only the browser holds, keyed by the SHA-256 of that key's token.
 */

/**
 * Stores a sealed draft until `expiresAt`. A repeat after a lost reply finds its own row: the id is a hash of 32 random
 * bytes (src/console/drafts.ts), never another draft's.
 */
export async function insertDraft(control: Db, draft: { id: string; sealed: string; once: boolean; expiresAt: string }): Promise<void> {
	await retryTransient(() =>
		control
			.prepare("INSERT OR IGNORE INTO console_drafts (id, sealed, once, expires_at) VALUES (?1, ?2, ?3, ?4)")
			.bind(draft.id, draft.sealed, draft.once ? 1 : 0, draft.expiresAt)
			.run(),
	);
}

/**
 * A live draft's sealed content, or null. A one-time draft (or any, with `take`) is deleted in the same statement that
 * reads it: two requests racing for it get it once between them.
 */
export async function readDraft(control: Db, id: string, now: string, take: boolean): Promise<string | null> {
	const row = await retryTransient(() =>
		control
			.prepare(
				take
					? "DELETE FROM console_drafts WHERE id = ?1 AND expires_at > ?2 RETURNING sealed, once"
					: "SELECT sealed, once FROM console_drafts WHERE id = ?1 AND expires_at > ?2",
			)
			.bind(id, now)
			.first<{ sealed: string; once: number }>(),
	);
	if (!row) return null;
	// Read without taking, a one-time draft is taken all the same.
	if (!take && row.once === 1) return readDraft(control, id, now, true);
	return row.sealed;
}

/** Deletes up to `limit` drafts past their expiry; answers how many. */
export async function deleteExpiredDrafts(control: Db, now: string, limit: number): Promise<number> {
	const result = await retryTransient(() =>
		control
			.prepare("DELETE FROM console_drafts WHERE id IN (SELECT id FROM console_drafts WHERE expires_at <= ?1 LIMIT ?2)")
			.bind(now, limit)
			.run(),
	);
	return result.meta.changes;
}
