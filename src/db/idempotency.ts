import { NOT_MOVING } from "./app-storage";
import { type Db, prepareWith } from "./types";

/**
 * Idempotency-Key (SPEC §8), as statements around the batch that does a POST's work (migrations:
 * idempotency_keys). Before the work, the batch forgets the key if it has expired and records it with the
 * response; a live key already recorded makes that INSERT fail on its primary key, which aborts the whole batch
 * before any work, and the route replays the recorded response (or answers 422 for another request under the same
 * key) — unless the batch repeats, after a lost reply, the attempt that recorded it (KeyedBatch.repeat). After the
 * work, the key is dropped again unless the work's own evidence holds (the registration, the job it created), so a
 * request that did nothing (404, 409) leaves no key. The key costs no D1 call of its own, and
 * there is no moment at which a key is "in flight": a concurrent retry waits for the first one's transaction, then
 * replays it.
 */

/** How long a key is kept. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60_000;

/** A key as the batch records it. */
export interface IdempotencyClaim {
	/** The application the key belongs to ("" for the management API's keys, which are the realm's). */
	scope: string;
	/** SHA-256 (hex) of the Idempotency-Key header. */
	keyHash: string;
	/** Keyed hash of the method, path (with query) and body: a retry must match it. */
	requestHash: string;
	/** For a request naming a learner, its HMAC (jobs.learner_hash): an erasure of the learner deletes the key. */
	learnerHash: string | null;
	now: string;
}

/**
 * The response recorded under a key. `location` may be SQL (`{ sql }`) evaluated after the work, over the
 * evidence's parameters (?3 onwards), when only the work knows it (the pending job an erasure answers with).
 */
export interface RecordedResponse {
	status: number;
	location: string | { sql: string } | null;
	body: string | null;
}

/** Statements to run before and after a batch's work. */
export interface KeyedBatch {
	before: D1PreparedStatement[];
	after: D1PreparedStatement[];
	/**
	 * `before` for a repeat of the batch after a lost reply (retryTransient; every keyed batch retried so is safe to
	 * repeat): the key its first attempt recorded lets the work run again, so the route answers (and sends its job,
	 * and audits it) as that attempt would have; a key another request recorded still aborts the batch.
	 */
	repeat: D1PreparedStatement[];
	/** Attempts batchWith has made with these statements. */
	attempts: number;
}

/**
 * The statements that make a batch idempotent under `claim`. `evidence` is SQL over ?3 onwards
 * (`evidenceParams`; ?1 and ?2 are the key's scope and hash) that holds once the work was done.
 */
export function keyStatements(
	db: Db,
	claim: IdempotencyClaim,
	response: RecordedResponse,
	evidence: string,
	evidenceParams: readonly unknown[],
): KeyedBatch {
	const expiresAt = new Date(Date.parse(claim.now) + IDEMPOTENCY_TTL_MS).toISOString();
	const key = [claim.scope, claim.keyHash];
	const location = typeof response.location === "string" ? response.location : null;
	const after = [
		prepareWith(db, `DELETE FROM idempotency_keys WHERE app_id = ?1 AND key_hash = ?2 AND NOT (${evidence})`, [...key, ...evidenceParams]),
	];
	if (typeof response.location === "object" && response.location !== null) {
		after.unshift(
			prepareWith(
				db,
				`UPDATE idempotency_keys SET location = ${response.location.sql} WHERE app_id = ?1 AND key_hash = ?2`,
				[...key, ...evidenceParams],
			),
		);
	}
	const forget = db.prepare("DELETE FROM idempotency_keys WHERE app_id = ?1 AND key_hash = ?2 AND expires_at <= ?3").bind(...key, claim.now);
	const record = (when: string) =>
		db
			.prepare(
				`INSERT INTO idempotency_keys (app_id, key_hash, request_hash, status, location, body, learner_hash, created_at, expires_at)
				 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE ${when}`,
			)
			.bind(...key, claim.requestHash, response.status, location, response.body, claim.learnerHash, claim.now, expiresAt);
	// This claim's own key (its request and time): recorded by the attempt whose reply was lost.
	const own = "EXISTS (SELECT 1 FROM idempotency_keys WHERE app_id = ?1 AND key_hash = ?2 AND request_hash = ?3 AND created_at = ?8)";
	return { before: [forget, record("1")], repeat: [forget, record(`NOT ${own}`)], after, attempts: 0 };
}

/** Runs `work` between a keyed batch's statements (none without a key), answering the work's results only. */
export async function batchWith(db: Db, work: D1PreparedStatement[], keyed?: KeyedBatch): Promise<D1Result[]> {
	if (!keyed) return db.batch(work);
	const before = keyed.attempts++ === 0 ? keyed.before : keyed.repeat;
	const results = await db.batch([...before, ...work, ...keyed.after]);
	return results.slice(before.length, before.length + work.length);
}

/** Whether a batch failed because a live key was recorded already (by the request this one repeats, or another). */
export function isKeyTaken(error: unknown): boolean {
	return error instanceof Error && error.message.includes("UNIQUE constraint failed: idempotency_keys.app_id, idempotency_keys.key_hash");
}

/** A recorded key: the request it answered and the response. */
export interface RecordedKey {
	requestHash: string;
	status: number;
	location: string | null;
	body: string | null;
}

/** The live key recorded under `keyHash`, or null (none, or expired). */
export async function findKey(db: Db, scope: string, keyHash: string, now: string): Promise<RecordedKey | null> {
	const row = await db
		.prepare("SELECT request_hash, status, location, body FROM idempotency_keys WHERE app_id = ?1 AND key_hash = ?2 AND expires_at > ?3")
		.bind(scope, keyHash, now)
		.first<{ request_hash: string; status: number; location: string | null; body: string | null }>();
	return row ? { requestHash: row.request_hash, status: row.status, location: row.location, body: row.body } : null;
}

/** Deletes up to `limit` expired keys (the sweeper); how many went. */
export async function deleteExpiredKeys(db: Db, now: string, limit: number): Promise<number> {
	const result = await db
		.prepare(
			`DELETE FROM idempotency_keys WHERE (app_id, key_hash) IN
			   (SELECT app_id, key_hash FROM idempotency_keys WHERE expires_at <= ?1 AND ${NOT_MOVING("idempotency_keys.app_id")} LIMIT ?2)`,
		)
		.bind(now, limit)
		.run();
	return result.meta.changes;
}
