import { type Credential, findActiveCredentialById, findActiveCredentialBySecret } from "../db/credentials";
import type { Db } from "../db/types";
import { sha256Hex } from "./crypto";

/**
 * How long an isolate trusts a credential it has verified. Disabling or deleting a credential evicts it from
 * the isolate that served the change at once, and from every other isolate within this time (SPEC §2: at most
 * 60 s). Only successful lookups are cached, so a new or re-enabled credential works immediately.
 */
export const CREDENTIAL_CACHE_TTL_MS = 30_000;
const MAX_ENTRIES = 10_000;

interface Entry {
	credential: Credential;
	expires: number;
}

// Isolate-wide caches (not request state): keyed by app id + secret hash, by credential id for tokens, and by
// the raw Basic header. The last spares a warm request the base64 decode and the SHA-256 of its secret; it
// holds the header (so the secret) in isolate memory for at most the TTL, as the requests carrying it do.
const bySecret = new Map<string, Entry>();
const byId = new Map<string, Entry>();
const byHeader = new Map<string, Entry>();

function cached(map: Map<string, Entry>, key: string, now: number): Credential | null {
	const entry = map.get(key);
	if (!entry) return null;
	if (entry.expires > now) return entry.credential;
	map.delete(key);
	return null;
}

function remember(map: Map<string, Entry>, key: string, credential: Credential, now: number): void {
	if (map.size >= MAX_ENTRIES) {
		// Maps iterate in insertion order: drop the oldest entry.
		const oldest = map.keys().next().value;
		if (oldest !== undefined) map.delete(oldest);
	}
	map.set(key, { credential, expires: now + CREDENTIAL_CACHE_TTL_MS });
}

/** The enabled credential matching Basic `appId:secret`, or null. Wrong id and wrong secret look the same. */
export async function authenticateSecret(db: Db, appId: string, secret: string): Promise<Credential | null> {
	const secretHash = await sha256Hex(secret);
	const key = `${appId}\u0000${secretHash}`;
	const now = Date.now();
	const hit = cached(bySecret, key, now);
	if (hit) return hit;
	const credential = await findActiveCredentialBySecret(db, appId, secretHash);
	if (credential) remember(bySecret, key, credential, now);
	return credential;
}

/**
 * The credential a Basic header authenticated within the TTL, or null. Hits skip parsing and hashing; misses
 * (unknown, expired or forgotten) go through authenticateSecret and are remembered with rememberBasicHeader.
 */
export function cachedBasicHeader(header: string): Credential | null {
	return cached(byHeader, header, Date.now());
}

/** Remembers that a Basic header authenticated this credential (never called for a failed one). */
export function rememberBasicHeader(header: string, credential: Credential): void {
	remember(byHeader, header, credential, Date.now());
}

/** The credential that minted a token, if it is still enabled, or null. */
export async function authenticateCredentialId(db: Db, credentialId: string): Promise<Credential | null> {
	const now = Date.now();
	const hit = cached(byId, credentialId, now);
	if (hit) return hit;
	const credential = await findActiveCredentialById(db, credentialId);
	if (credential) remember(byId, credentialId, credential, now);
	return credential;
}

/** Forgets cached credentials matching the predicate, in this isolate, at once. */
function forget(matches: (credential: Credential) => boolean): void {
	for (const map of [bySecret, byId, byHeader]) {
		for (const [key, entry] of map) if (matches(entry.credential)) map.delete(key);
	}
}

/** Forgets one credential (after it is disabled, renamed or deleted). */
export const forgetCredential = (credentialId: string) => forget((credential) => credential.id === credentialId);

/** Forgets every credential of an application (after the application is deleted). */
export const forgetApplication = (appId: string) => forget((credential) => credential.appId === appId);
