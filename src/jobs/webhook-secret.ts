import { base64Encode, base64UrlDecode, base64UrlEncode } from "../auth/crypto";

/**
 * Webhook signing secrets (SPEC §8). Each delivery is signed with its application's secret, so the secret must be
 * kept, not only a hash of it: it is sealed with AES-256-GCM under a key derived (HKDF-SHA-256) from
 * LEARNER_HASH_KEY, the one secret that never changes (learner HMACs depend on it), with the application id as
 * associated data, so a sealed secret copied to another application's row does not open. A database dump alone
 * signs nothing.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SEALED_PREFIX = "v1.";
const IV_BYTES = 12;

const PREFIX = "whsec_";

/**
 * A new signing secret, shown once to the caller of PUT .../webhook, as the Standard Webhooks specification writes
 * one: `whsec_` and the base64 (standard alphabet, padded: 44 characters) of 32 random bytes, which are the HMAC key.
 */
export const newSigningSecret = () => PREFIX + base64Encode(crypto.getRandomValues(new Uint8Array(32)));

/**
 * Whether a secret was issued before deliveries were signed as Standard Webhooks: `whsec_` and 43 base64url
 * characters, whose HMAC key was the whole text. Deliveries under one keep their old header too
 * (Learner-Service-Signature), so a receiver that checks it goes on working until the webhook is set again.
 */
export const isLegacySecret = (secret: string) => /^whsec_[A-Za-z0-9_-]{43}$/.test(secret);

/**
 * The HMAC key of a secret (Standard Webhooks: the bytes the text after `whsec_` encodes). A legacy secret's
 * base64url encodes 32 bytes the same way: its key is those bytes, which a Standard Webhooks library takes as the
 * secret `whsec_` + their standard base64 (docs/jobs-and-webhooks.md shows the conversion).
 */
export function signingKey(secret: string): Uint8Array {
	const encoded = secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret;
	const bytes = base64UrlDecode(encoded.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""));
	// A stored secret is one this service made; this guards against a sealed text that is not one.
	if (!bytes || bytes.length === 0) throw new Error("webhook signing secret is not whsec_ and base64");
	return bytes;
}

// The derived key, per LEARNER_HASH_KEY value (one per deployment): derivation costs more than a seal.
const sealingKeys = new Map<string, Promise<CryptoKey>>();

function sealingKey(learnerHashKey: string): Promise<CryptoKey> {
	let key = sealingKeys.get(learnerHashKey);
	if (!key) {
		key = crypto.subtle
			.importKey("raw", encoder.encode(learnerHashKey), "HKDF", false, ["deriveKey"])
			.then((base) =>
				crypto.subtle.deriveKey(
					{ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: encoder.encode("learner-service webhook signing secret v1") },
					base,
					{ name: "AES-GCM", length: 256 },
					false,
					["encrypt", "decrypt"],
				),
			);
		// A deployment has one such key; a test run a few. Bounded all the same.
		if (sealingKeys.size >= 4) sealingKeys.clear();
		sealingKeys.set(learnerHashKey, key);
	}
	return key;
}

/** Seals an application's signing secret for storage: `v1.` and base64url(iv ‖ ciphertext ‖ tag). */
export async function sealSecret(learnerHashKey: string, appId: string, secret: string): Promise<string> {
	const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
	const sealed = await crypto.subtle.encrypt(
		{ name: "AES-GCM", iv, additionalData: encoder.encode(appId) },
		await sealingKey(learnerHashKey),
		encoder.encode(secret),
	);
	const bytes = new Uint8Array(IV_BYTES + sealed.byteLength);
	bytes.set(iv);
	bytes.set(new Uint8Array(sealed), IV_BYTES);
	return SEALED_PREFIX + base64UrlEncode(bytes);
}

/** Opens a sealed secret; null when it does not open (another application's, or sealed under another key). */
export async function openSecret(learnerHashKey: string, appId: string, sealed: string): Promise<string | null> {
	const bytes = sealed.startsWith(SEALED_PREFIX) ? base64UrlDecode(sealed.slice(SEALED_PREFIX.length)) : null;
	if (!bytes || bytes.length <= IV_BYTES) return null;
	try {
		const opened = await crypto.subtle.decrypt(
			{ name: "AES-GCM", iv: bytes.slice(0, IV_BYTES), additionalData: encoder.encode(appId) },
			await sealingKey(learnerHashKey),
			bytes.slice(IV_BYTES),
		);
		return decoder.decode(opened);
	} catch {
		return null;
	}
}
