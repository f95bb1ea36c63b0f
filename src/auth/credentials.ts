import { type Credential, findActiveCredentialById, findActiveCredentialBySecret } from "../db/credentials";
import { retryTransient } from "../db/retry";
import type { Db } from "../db/types";
import { BoundedCache } from "./cache";
import { sha256Hex } from "./crypto";

/**
 * How long an isolate trusts a credential it has verified, counted from the moment it read the credential from
 * the primary database: disabling or deleting a credential is refused by every isolate within this time of the
 * change (SPEC §2: at most 60 s), and at once by the isolate that served it. A hit never extends an entry's
 * life, whichever cache it is found in.
 */
export const CREDENTIAL_CACHE_TTL_MS = 30_000;

/**
 * How long a refused credential is remembered, so that repeating a wrong secret or a revoked token does not
 * cost a D1 query each time. A credential enabled elsewhere may be refused here for this long; the isolate that
 * served the change forgets its refusals at once.
 */
export const REFUSAL_TTL_MS = 5_000;

// Isolate-wide caches (not request state), bounded in entries and bytes, keyed by canonical values only: by
// application id + secret hash, by credential id for tokens, and by the Basic header, which spares a warm
// request the base64 decode and the SHA-256 of its secret. Only a header in its one canonical spelling
// ("Basic " + the standard base64 of its bytes) is a key: padded or re-cased variants are verified the long way.
const LIMITS = { maxEntries: 10_000, maxBytes: 4 * 1024 * 1024 };
const bySecret = new BoundedCache<Credential>("credentials by secret", LIMITS);
const byId = new BoundedCache<Credential>("credentials by id", LIMITS);
const byHeader = new BoundedCache<Credential>("credentials by Basic header", LIMITS);
const refused = new BoundedCache<true>("refused credentials", { maxEntries: 10_000, maxBytes: 2 * 1024 * 1024 });

/** A credential and until when this isolate may trust it. */
export interface Verified {
	credential: Credential;
	expires: number;
}

const credentialBytes = (credential: Credential) =>
	(credential.id.length + credential.appId.length + credential.name.length + credential.createdAt.length + credential.shard.length) * 2;

function remember(cache: BoundedCache<Credential>, key: string, credential: Credential, expires: number): void {
	cache.set(key, credential, expires, credentialBytes(credential));
}

/**
 * Looks a credential up (on a miss, from `primary`, which must not be a replica: a replica's lag would add to
 * the revocation time), remembering a success for the TTL and a refusal briefly.
 */
async function lookUp(
	cache: BoundedCache<Credential>,
	key: string,
	find: () => Promise<Credential | null>,
): Promise<Verified | null> {
	const now = Date.now();
	const hit = cache.entry(key, now);
	if (hit) return { credential: hit.value, expires: hit.expires };
	if (refused.get(key, now)) return null;
	const credential = await retryTransient(find);
	if (!credential) {
		refused.set(key, true, now + REFUSAL_TTL_MS, 0, now);
		return null;
	}
	const expires = now + CREDENTIAL_CACHE_TTL_MS;
	remember(cache, key, credential, expires);
	return { credential, expires };
}

/** The enabled credential matching Basic `appId:secret`, or null. Wrong id and wrong secret look the same. */
export async function authenticateSecret(primary: Db, appId: string, secret: string): Promise<Verified | null> {
	const secretHash = await sha256Hex(secret);
	return lookUp(bySecret, `${appId}\u0000${secretHash}`, () => findActiveCredentialBySecret(primary, appId, secretHash));
}

/** The credential that minted a token, if it is still enabled, or null. */
export function authenticateCredentialId(primary: Db, credentialId: string): Promise<Verified | null> {
	return lookUp(byId, credentialId, () => findActiveCredentialById(primary, credentialId));
}

/**
 * The credential a canonical Basic header authenticated, while its verification lasts, or null. Hits skip
 * parsing and hashing; misses go through authenticateSecret and are remembered with rememberBasicHeader.
 */
export function cachedBasicHeader(header: string): Credential | null {
	return byHeader.get(header) ?? null;
}

/** Remembers that a canonical Basic header authenticated this credential, until the verification expires. */
export function rememberBasicHeader(header: string, verified: Verified): void {
	remember(byHeader, header, verified.credential, verified.expires);
}

/** Forgets cached credentials matching the predicate, and every remembered refusal, in this isolate, at once. */
function forget(matches: (credential: Credential) => boolean): void {
	for (const cache of [bySecret, byId, byHeader]) cache.deleteWhere(matches);
	refused.clear();
}

/** Forgets one credential (after it is created, enabled, disabled, renamed or deleted). */
export const forgetCredential = (credentialId: string) => forget((credential) => credential.id === credentialId);

/** Forgets every credential of an application (after the application is deleted). */
export const forgetApplication = (appId: string) => forget((credential) => credential.appId === appId);

/** Entries and bytes of this module's caches. */
export const credentialCacheStats = () => [bySecret, byId, byHeader, refused].map((cache) => cache.stats());
