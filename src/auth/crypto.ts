const encoder = new TextEncoder();

/** Lower-case hex of bytes. */
export function toHex(bytes: ArrayBuffer | Uint8Array): string {
	return [...new Uint8Array(bytes)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

export function base64UrlEncode(bytes: Uint8Array): string {
	let binary = "";
	for (const byte of bytes) binary += String.fromCharCode(byte);
	return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Standard base64 (RFC 4648 §4, with padding). */
export function base64Encode(bytes: Uint8Array | ArrayBuffer): string {
	let binary = "";
	for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
	return btoa(binary);
}

/** Decodes base64url; null when the text is not base64url. */
export function base64UrlDecode(text: string): Uint8Array | null {
	if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
	const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
	return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

/** SHA-256 of a UTF-8 string, as lower-case hex. */
export async function sha256Hex(text: string): Promise<string> {
	return toHex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/** A fresh secret: 32 random bytes, base64url (43 characters). */
export function randomSecret(): string {
	return base64UrlEncode(crypto.getRandomValues(new Uint8Array(32)));
}

/** A random identifier of `length` characters from an unambiguous upper-case alphabet. */
export function randomId(length: number): string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; // 32 symbols: one byte maps without bias via & 31
	return [...crypto.getRandomValues(new Uint8Array(length))].map((byte) => alphabet[byte & 31]).join("");
}

// Imported HMAC keys, one per secret value: importKey is costly enough to matter on the hot path.
const hmacKeys = new Map<string, Promise<CryptoKey>>();

/** The HMAC-SHA-256 key for a secret, imported once per isolate. */
export function hmacKey(secret: string): Promise<CryptoKey> {
	let key = hmacKeys.get(secret);
	if (!key) {
		key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
			"sign",
			"verify",
		]);
		hmacKeys.set(secret, key);
	}
	return key;
}

/** HMAC-SHA-256 of a UTF-8 string, as lower-case hex. */
export async function hmacHex(secret: string, text: string): Promise<string> {
	return toHex(await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(text)));
}

/** Compares two strings in time independent of where they differ (both are hashed first to equal length). */
export async function timingSafeEqualText(a: string, b: string): Promise<boolean> {
	const [hashA, hashB] = await Promise.all([
		crypto.subtle.digest("SHA-256", encoder.encode(a)),
		crypto.subtle.digest("SHA-256", encoder.encode(b)),
	]);
	return crypto.subtle.timingSafeEqual(hashA, hashB);
}
