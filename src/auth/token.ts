import { BoundedCache } from "./cache";
import { base64UrlDecode, base64UrlEncode, hmacKey } from "./crypto";
import { SCOPES, type Scope } from "./scopes";

/** What a token asserts. Names follow JWT registered claims where one exists. */
export interface TokenClaims {
	/** Application id. */
	app: string;
	/** Id of the credential that minted the token: the token dies with it. */
	cid: string;
	scope: Scope[];
	iat: number;
	exp: number;
}

/** Tokens are accepted up to this many seconds past `exp` and before `iat`, for clocks that disagree. */
export const CLOCK_SKEW_SECONDS = 60;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HEADER = base64UrlEncode(encoder.encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));

const encodeJson = (value: unknown) => base64UrlEncode(encoder.encode(JSON.stringify(value)));

function decodeJson(part: string): unknown {
	const bytes = base64UrlDecode(part);
	if (!bytes) return null;
	try {
		return JSON.parse(decoder.decode(bytes));
	} catch {
		return null;
	}
}

/** Signs claims as a compact JWT (HS256). */
export async function signToken(claims: TokenClaims, secret: string): Promise<string> {
	const signingInput = `${HEADER}.${encodeJson(claims)}`;
	const signature = await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(signingInput));
	return `${signingInput}.${base64UrlEncode(new Uint8Array(signature))}`;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
	typeof value === "object" && value !== null && !Array.isArray(value);

/** Whether `nowSeconds` lies between iat and exp, give or take the allowed clock skew. */
const inTime = ({ iat, exp }: Pick<TokenClaims, "iat" | "exp">, nowSeconds: number) =>
	nowSeconds <= exp + CLOCK_SKEW_SECONDS && iat <= nowSeconds + CLOCK_SKEW_SECONDS;

/**
 * Verifies a compact JWT and returns its claims, or null for any token that is malformed, not HS256, badly
 * signed, expired, not yet valid or missing a claim. The algorithm is pinned: the header must say HS256, so
 * `alg: none` and RS/HS confusion are refused before any signature check.
 */
export async function verifyToken(token: string, secret: string, nowSeconds: number): Promise<TokenClaims | null> {
	const parts = token.split(".");
	if (parts.length !== 3) return null;
	const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
	const header = decodeJson(headerPart);
	if (!isRecord(header) || header.alg !== "HS256") return null;
	const signature = base64UrlDecode(signaturePart);
	if (!signature) return null;
	const valid = await crypto.subtle.verify(
		"HMAC",
		await hmacKey(secret),
		signature,
		encoder.encode(`${headerPart}.${payloadPart}`),
	);
	if (!valid) return null;
	const claims = decodeJson(payloadPart);
	if (!isRecord(claims)) return null;
	const { app, cid, scope, iat, exp } = claims;
	if (typeof app !== "string" || typeof cid !== "string") return null;
	if (!Array.isArray(scope) || !scope.every((entry) => typeof entry === "string")) return null;
	if (typeof iat !== "number" || typeof exp !== "number") return null;
	if (!inTime({ iat, exp }, nowSeconds)) return null;
	const scopes = scope.filter((entry): entry is Scope => (SCOPES as readonly string[]).includes(entry));
	return { app, cid, scope: scopes, iat, exp };
}

/**
 * How long an isolate remembers a signature it has checked. Only the signature check and decoding are skipped:
 * expiry is checked on every use, and revocation is the credential cache's (the token dies with its credential).
 */
const VERIFIED_TTL_MS = 30_000;
// Isolate-wide (not request state): token → the secret it verified under and its claims. Bounded in entries
// and bytes; a token is its own canonical form (any other spelling fails the signature check and is not kept).
const verified = new BoundedCache<{ secret: string; claims: TokenClaims }>("verified tokens", {
	maxEntries: 10_000,
	maxBytes: 8 * 1024 * 1024,
});

/**
 * verifyToken for the request path: a client reuses its token for many requests, so a token verified in the
 * last 30 s (under the same secret) is not decoded and HMAC-checked again.
 */
export async function verifyTokenCached(token: string, secret: string, nowSeconds: number): Promise<TokenClaims | null> {
	const hit = verified.get(token);
	if (hit && hit.secret === secret) return inTime(hit.claims, nowSeconds) ? hit.claims : null;
	const claims = await verifyToken(token, secret, nowSeconds);
	if (claims) verified.set(token, { secret, claims }, Date.now() + VERIFIED_TTL_MS, JSON.stringify(claims).length * 2);
	return claims;
}

/** Entries and bytes of the verified-token cache. */
export const tokenCacheStats = () => verified.stats();
