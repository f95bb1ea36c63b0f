import { base64UrlEncode } from "./auth/crypto";
import { ConfigError, type Ed25519PrivateJwk } from "./config";
import type { Job } from "./db/jobs";

/**
 * Signed erasure receipts (SPEC §9): a completed erasure's facts, without the learner's id, signed with the
 * service's Ed25519 key (RECEIPT_SIGNING_KEY) so that anyone holding the published public key can check them
 * offline. The signature covers the UTF-8 bytes of the receipt's canonical JSON (canonicalJson below).
 */

/** An erasure receipt: what was erased, in which application, for whom and when; never the learner's id. */
export interface ErasureReceipt {
	kind: "erasure-receipt";
	version: 1;
	jobId: string;
	applicationId: string;
	/** The job's HMAC-SHA-256 of `<appId>\n<learnerId>` (keyed by LEARNER_HASH_KEY): who, to whoever knows the id. */
	learnerHash: string | null;
	/** A bulk erasure's: each of its learners' HMAC (learnerHash is then null); a realm-wide one's, each application's. */
	learnerHashes?: string[];
	/** For each of learnerHashes, the erasure job that erased it (another request's, when this one joined it). */
	erasureJobIds?: string[];
	/** A single learner's erasure: whether it left the learner suppressed. */
	suppressed?: boolean;
	/** The userEmail the erasure was requested with. */
	requestedBy: string | null;
	requestedDate: string;
	completedDate: string;
	registrationsDeleted: number;
	tagsRemoved: number;
	/** The signing key's id (its RFC 7638 thumbprint): which published key verifies the receipt. */
	keyId: string;
}

/** The public half of the signing key, as published at /.well-known/erasure-receipt-key. */
export interface ReceiptPublicJwk {
	kty: "OKP";
	crv: "Ed25519";
	x: string;
	kid: string;
	alg: "EdDSA";
	use: "sig";
}

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/**
 * The canonical form a receipt is signed in: JSON.stringify's text with no whitespace, and every object's keys
 * sorted by UTF-16 code units (JavaScript's default sort) at every depth; arrays keep their order.
 */
export function canonicalJson(value: Json): string {
	if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
	if (value !== null && typeof value === "object") {
		const keys = Object.keys(value).sort();
		return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key] as Json)}`).join(",")}}`;
	}
	return JSON.stringify(value);
}

const encoder = new TextEncoder();

interface SigningKey {
	privateKey: CryptoKey;
	publicJwk: ReceiptPublicJwk;
}

/** RFC 7638: base64url SHA-256 of the required members ({"crv","kty","x"} for OKP) in canonical JSON. */
async function thumbprint(x: string): Promise<string> {
	const digest = await crypto.subtle.digest("SHA-256", encoder.encode(canonicalJson({ crv: "Ed25519", kty: "OKP", x })));
	return base64UrlEncode(new Uint8Array(digest));
}

async function importSigningKey(jwk: Ed25519PrivateJwk): Promise<SigningKey> {
	const unusable = () => new ConfigError("RECEIPT_SIGNING_KEY is not a usable Ed25519 key: its x is not the public half of its d");
	let privateKey: CryptoKey;
	let publicKey: CryptoKey;
	try {
		privateKey = await crypto.subtle.importKey("jwk", jwk, { name: "Ed25519" }, false, ["sign"]);
		publicKey = await crypto.subtle.importKey("jwk", { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, { name: "Ed25519" }, false, ["verify"]);
	} catch {
		throw unusable();
	}
	// A key whose halves do not match would sign receipts nobody can verify: refuse it as a misconfiguration.
	const probe = encoder.encode("erasure-receipt key check");
	const signature = await crypto.subtle.sign("Ed25519", privateKey, probe);
	if (!(await crypto.subtle.verify("Ed25519", publicKey, signature, probe))) throw unusable();
	return { privateKey, publicJwk: { kty: "OKP", crv: "Ed25519", x: jwk.x, kid: await thumbprint(jwk.x), alg: "EdDSA", use: "sig" } };
}

// Imported keys, one per secret value (not request state): importing and checking a key costs two signatures.
const signingKeys = new Map<string, Promise<SigningKey>>();

function signingKey(jwk: Ed25519PrivateJwk): Promise<SigningKey> {
	const id = `${jwk.x}.${jwk.d}`;
	let key = signingKeys.get(id);
	if (!key) {
		key = importSigningKey(jwk);
		signingKeys.set(id, key);
	}
	return key;
}

/** The published public key; throws ConfigError when RECEIPT_SIGNING_KEY's halves do not match. */
export async function receiptPublicKey(jwk: Ed25519PrivateJwk): Promise<ReceiptPublicJwk> {
	return (await signingKey(jwk)).publicJwk;
}

/** A completed erasure's receipt and its base64url Ed25519 signature over canonicalJson(receipt). */
export async function signErasureReceipt(
	jwk: Ed25519PrivateJwk,
	job: Job & { completedAt: string },
	parts: Pick<ErasureReceipt, "learnerHashes" | "erasureJobIds" | "suppressed"> = {},
): Promise<{ receipt: ErasureReceipt; signature: string; keyId: string }> {
	const { privateKey, publicJwk } = await signingKey(jwk);
	const receipt: ErasureReceipt = {
		kind: "erasure-receipt",
		version: 1,
		jobId: job.id,
		applicationId: job.appId,
		learnerHash: job.learnerHash,
		...(parts.learnerHashes !== undefined && { learnerHashes: parts.learnerHashes }),
		...(parts.erasureJobIds !== undefined && { erasureJobIds: parts.erasureJobIds }),
		...(parts.suppressed !== undefined && { suppressed: parts.suppressed }),
		requestedBy: job.requestedBy,
		requestedDate: job.createdAt,
		completedDate: job.completedAt,
		registrationsDeleted: job.registrationsAffected,
		tagsRemoved: job.tagsRemoved,
		keyId: publicJwk.kid,
	};
	const signature = await crypto.subtle.sign("Ed25519", privateKey, encoder.encode(canonicalJson({ ...receipt })));
	return { receipt, signature: base64UrlEncode(new Uint8Array(signature)), keyId: publicJwk.kid };
}

/**
 * Signs any signed document of the service with the receipt key (an export, an audit head): the base64url Ed25519
 * signature over the UTF-8 bytes of `value`'s canonical JSON, verified as receipts are. `value` names the key's id
 * itself (build it with receiptPublicKey's kid).
 */
export async function signCanonical(jwk: Ed25519PrivateJwk, value: Json): Promise<string> {
	const { privateKey } = await signingKey(jwk);
	return base64UrlEncode(new Uint8Array(await crypto.subtle.sign("Ed25519", privateKey, encoder.encode(canonicalJson(value)))));
}
