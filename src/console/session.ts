import { BoundedCache } from "../auth/cache";
import { base64UrlDecode, base64UrlEncode, hmacHex, timingSafeEqualText } from "../auth/crypto";
import type { AuditRecord } from "../db/audit";
import { isSignedOut, recordSignOut } from "../db/console-sign-outs";
import type { Db } from "../db/types";

/**
 * The console's session: a cookie holding `<payload>.<signature>`, where the payload is base64url JSON
 * `{ sid, iat, exp }` and the signature its HMAC-SHA-256 under a key derived from TOKEN_SIGNING_SECRET with a
 * label of its own (a bearer token can never pass for a session, nor a session for a token). Nothing is stored at
 * sign-in: the signature is the proof. Signing out expires the cookie in the browser and records the session id in
 * the control database (src/db/console-sign-outs.ts) until the cookie would have expired anyway, so a copied cookie
 * is refused by every isolate from then on; this isolate also remembers it, and asks no more.
 */

export const SESSION_COOKIE = "console_session";

/** How long a session lasts from sign-in: short, because the management credentials open everything. */
export const SESSION_SECONDS = 30 * 60;

/** The label the session key is derived under (HMAC of the token secret), distinct from every other use. */
const SESSION_KEY_LABEL = "learner-service console session key v1";

export interface Session {
	/** A random id: what the CSRF token is bound to and what signing out ends. */
	sid: string;
	/** Issued and expiry times, unix seconds. */
	iat: number;
	exp: number;
}

// Isolate-wide (not request state): session ids signed out here, until their cookie would have expired.
const ended = new BoundedCache<true>("ended console sessions", { maxEntries: 10_000, maxBytes: 1024 * 1024 });

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The session key: a secret of its own, derived from the token signing secret. */
const sessionKey = (tokenSecret: string) => hmacHex(tokenSecret, SESSION_KEY_LABEL);

/** A new session's cookie value, valid for SESSION_SECONDS from `now` (unix seconds). */
export async function issueSession(tokenSecret: string, now: number): Promise<{ value: string; session: Session }> {
	const session: Session = { sid: crypto.randomUUID(), iat: now, exp: now + SESSION_SECONDS };
	const payload = base64UrlEncode(encoder.encode(JSON.stringify(session)));
	const signature = await hmacHex(await sessionKey(tokenSecret), `session.${payload}`);
	return { value: `${payload}.${signature}`, session };
}

/**
 * The session a cookie value proves, or null: forged, altered, expired, signed out (asked of `control` once the
 * signature holds), or not a session at all.
 */
export async function readSession(tokenSecret: string, control: Db, value: string | undefined, now: number): Promise<Session | null> {
	const [payload, signature, extra] = (value ?? "").split(".");
	if (!payload || !signature || extra !== undefined) return null;
	const expected = await hmacHex(await sessionKey(tokenSecret), `session.${payload}`);
	if (!(await timingSafeEqualText(signature, expected))) return null;
	const bytes = base64UrlDecode(payload);
	if (!bytes) return null;
	let session: Partial<Session>;
	try {
		session = JSON.parse(decoder.decode(bytes)) as Partial<Session>;
	} catch {
		return null;
	}
	const { sid, iat, exp } = session;
	if (typeof sid !== "string" || typeof iat !== "number" || typeof exp !== "number") return null;
	if (exp <= now || iat > now + 60 || ended.get(sid) !== undefined) return null;
	if (await isSignedOut(control, sid)) {
		ended.set(sid, true, exp * 1000, sid.length * 2);
		return null;
	}
	return { sid, iat, exp };
}

/** Ends a session everywhere: recorded in the control database (the browser's cookie is expired by the response). */
export async function endSession(control: Db, session: Session, audit?: AuditRecord): Promise<void> {
	await recordSignOut(control, session.sid, new Date(session.exp * 1000).toISOString(), audit);
	ended.set(session.sid, true, session.exp * 1000, session.sid.length * 2);
}

/** The CSRF token of a session's forms: an HMAC of its id, so it is worthless without the cookie it belongs to. */
export async function csrfToken(tokenSecret: string, session: Session): Promise<string> {
	return hmacHex(await sessionKey(tokenSecret), `csrf.${session.sid}`);
}

/** Whether a form's token is the session's, compared in constant time. */
export async function validCsrfToken(tokenSecret: string, session: Session, token: string | undefined): Promise<boolean> {
	return timingSafeEqualText(token ?? "", await csrfToken(tokenSecret, session));
}

/** The Set-Cookie attributes of the session cookie (Path=/console: the API never sees it). */
export function sessionCookie(value: string, maxAge: number): string {
	return `${SESSION_COOKIE}=${value}; Max-Age=${maxAge}; Path=/console; HttpOnly; Secure; SameSite=Strict`;
}
