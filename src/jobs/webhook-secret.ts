import { base64UrlDecode, base64UrlEncode, randomSecret } from "../auth/crypto";

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

/** A new signing secret, shown once to the caller of PUT .../webhook: `whsec_` and 32 random bytes, base64url. */
export const newSigningSecret = () => `whsec_${randomSecret()}`;

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
