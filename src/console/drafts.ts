import { base64UrlDecode, base64UrlEncode, sha256Hex } from "../auth/crypto";
import { insertDraft, readDraft } from "../db/console-drafts";
import type { Db } from "../db/types";
import type { Session } from "./session";

/**
 * What a console POST hands the page it redirects to (Post/Redirect/Get, SPEC §10): a result to show once, a refused
 * form's input with the reasons beside its fields, an action awaiting its confirmation. Kept in the control database
 * (src/db/console-drafts.ts) for minutes, sealed with AES-GCM under a key derived from a random token that goes only
 * into the redirect's URL (`?r=`), and bound to the session (its id is the additional data): the stored row is
 * unreadable without the token, and the token is useless without the session's cookie. A draft may name a learner or
 * hold a credential's secret: neither is ever stored readable, and a one-time draft is deleted as it is read.
 */

/** How long a draft lives: long enough to read a confirmation page, short enough that nothing lingers. */
export const DRAFT_SECONDS = 10 * 60;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The token's two derived values: the row's id (stored) and the sealing key (never stored). */
async function derive(token: string): Promise<{ id: string; key: CryptoKey }> {
	const id = await sha256Hex(`console draft id\n${token}`);
	const material = await crypto.subtle.digest("SHA-256", encoder.encode(`console draft key\n${token}`));
	const key = await crypto.subtle.importKey("raw", material, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
	return { id, key };
}

/** Seals `content` for the session; answers the token the redirect carries. */
export async function saveDraft(control: Db, session: Session, content: unknown, options: { once: boolean; nowMs?: number }): Promise<string> {
	const token = base64UrlEncode(crypto.getRandomValues(new Uint8Array(32)));
	const { id, key } = await derive(token);
	const iv = crypto.getRandomValues(new Uint8Array(12));
	const sealed = await crypto.subtle.encrypt(
		{ name: "AES-GCM", iv, additionalData: encoder.encode(session.sid) },
		key,
		encoder.encode(JSON.stringify(content)),
	);
	const nowMs = options.nowMs ?? Date.now();
	await insertDraft(control, {
		id,
		sealed: `${base64UrlEncode(iv)}.${base64UrlEncode(new Uint8Array(sealed))}`,
		once: options.once,
		expiresAt: new Date(nowMs + DRAFT_SECONDS * 1000).toISOString(),
	});
	return token;
}

/**
 * The draft a token names, opened for the session: null when it is unknown, expired, already taken (a one-time
 * result read before), or another session's. `take` deletes it as it is read (a confirmation carried out once).
 */
export async function openDraft<T>(control: Db, session: Session, token: string, options: { take: boolean; nowMs?: number }): Promise<T | null> {
	if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return null;
	const { id, key } = await derive(token);
	const sealed = await readDraft(control, id, new Date(options.nowMs ?? Date.now()).toISOString(), options.take);
	const [iv, data] = (sealed ?? "").split(".").map(base64UrlDecode);
	if (!iv || !data) return null;
	try {
		const opened = await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(session.sid) }, key, data);
		return JSON.parse(decoder.decode(opened)) as T;
	} catch {
		// Another session's draft: its additional data differs.
		return null;
	}
}
