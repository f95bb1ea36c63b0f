import * as z from "zod/mini";
import { asClassic } from "../schemas/openapi-meta";
import type { Context } from "hono";
import { hmacHex, sha256Hex } from "../auth/crypto";
import type { AppEnv } from "../context";
import { type IdempotencyClaim, type KeyedBatch, type RecordedKey, type RecordedResponse, findKey, isKeyTaken, keyStatements } from "../db/idempotency";
import { retryTransient } from "../db/retry";
import { type Db, nowIso } from "../db/types";
import { ApiError } from "../errors";
import { learnerHash } from "../jobs/contract";
import { type Json, canonicalJson } from "../receipts";

/**
 * Idempotency-Key on the POSTs that create something or start a job (SPEC §8, as Stripe): a retry with the same
 * key, path and body replays the first response without doing the work again; the same key with another path or
 * body answers 422. Keys are kept 24 hours, per application (the management API's per realm), stored hashed, and
 * written in the same D1 call as the work (src/db/idempotency.ts).
 */

/**
 * The header, as each keyed route declares it. Hono hands header validators lower-cased names, so the document
 * names it in lower case too (header names are case-insensitive: `Idempotency-Key` is the same header).
 */
export const IdempotencyHeaders = asClassic(
	z.object({
		"idempotency-key": z
			.optional(
				z
					.string()
					.check(z.minLength(1, "Idempotency-Key must be 1 to 255 characters"), z.maxLength(255, "Idempotency-Key must be 1 to 255 characters"))
					.openapi({ minLength: 1, maxLength: 255 }),
			)
			.openapi({
				description:
					"Any unique value (a UUID, say), 1–255 characters. A retry with the same key, path and body within 24 hours " +
					"replays the first response (header `Idempotent-Replayed: true`) without doing the work again; the same key " +
					"with another path or body answers 422.",
			}),
	}),
);

/** What a keyed route runs: its work, given the statements that record the key (none without a key). */
export type KeyedWork = (keyed: ((response: RecordedResponse, evidence: string, params: readonly unknown[]) => KeyedBatch) | undefined) => Promise<Response>;

/**
 * Runs a POST's work under the request's Idempotency-Key, if it has one. `db` holds the keys (the application's
 * shard, or the control database for the management API, `scope` ""); `body` is the request's parsed body;
 * `learnerId` names the learner the request is about, if any (an erasure of that learner deletes the key).
 * `consultFirst`: the recorded key is read before the work runs at all (one more D1 read), for work whose checks
 * could answer a retry otherwise than the first request was answered, or that starts more than its own batch.
 */
export async function idempotent(
	c: Context<AppEnv>,
	db: Db,
	scope: string,
	body: unknown,
	learnerId: string | null,
	work: KeyedWork,
	options: { consultFirst?: boolean } = {},
): Promise<Response> {
	const key = c.req.header("Idempotency-Key");
	if (key === undefined) return work(undefined);
	const url = new URL(c.req.url);
	const claim: IdempotencyClaim = {
		scope,
		keyHash: await sha256Hex(key),
		// Keyed, so the stored hash cannot be tested against guesses of a body (which may carry learner details).
		requestHash: await hmacHex(c.env.LEARNER_HASH_KEY, `idempotency\n${c.req.method} ${url.pathname}${url.search}\n${canonicalJson((body ?? null) as Json)}`),
		learnerHash: learnerId === null ? null : await learnerHash(c.env, scope, learnerId),
		now: nowIso(),
	};
	if (options.consultFirst) {
		const recorded = await retryTransient(() => findKey(db, scope, claim.keyHash, claim.now));
		if (recorded) return replay(c, key, claim, recorded);
	}
	let refusal: unknown;
	try {
		return await work((response, evidence, params) => keyStatements(db, claim, response, evidence, params));
	} catch (error) {
		// A refusal found before the work's batch ran (the move done, say) may answer a retry of a request that
		// succeeded: the recorded key decides.
		const refused = error instanceof ApiError && error.status < 500;
		if (!isKeyTaken(error) && !refused) throw error;
		refusal = refused ? error : undefined;
	}
	const recorded = await retryTransient(() => findKey(db, scope, claim.keyHash, nowIso()));
	if (!recorded) {
		if (refusal) throw refusal;
		// Expired between the two reads: nothing to replay, and nothing done.
		throw new ApiError(409, `Idempotency-Key [${key}] was in use a moment ago; send the request again`);
	}
	return replay(c, key, claim, recorded);
}

/** The recorded answer to the same request again, or 422 for another request under the same key. */
function replay(c: Context<AppEnv>, key: string, claim: IdempotencyClaim, recorded: RecordedKey): Response {
	if (recorded.requestHash !== claim.requestHash) {
		throw new ApiError(
			422,
			`Idempotency-Key [${key}] was used with another request (a different path or body); use a new key for a new request`,
		);
	}
	const headers: Record<string, string> = { "Idempotent-Replayed": "true" };
	if (recorded.location !== null) headers.Location = recorded.location;
	if (recorded.body !== null) headers["Content-Type"] = "application/json";
	return recorded.body === null
		? c.body(null, recorded.status as 204, headers)
		: c.body(recorded.body, recorded.status as 200, headers);
}
