import type { Context } from "hono";
import { hmacHex, sha256Hex } from "./auth/crypto";
import { consoleSessionOf } from "./auth/middleware";
import type { Ed25519PrivateJwk } from "./config";
import type { AppEnv } from "./context";
import { type AuditAction, type AuditRecord, type AuditRow, appendAudit, auditHead, sealAuditEntries, unsealedAudit } from "./db/audit";
import type { OutboxRecord } from "./db/audit-outbox";
import type { Db } from "./db/types";
import { nowIso } from "./db/types";
import { type Json, canonicalJson, receiptPublicKey, signCanonical } from "./receipts";

/**
 * The audit trail's hash chain (SPEC §12). Every entry is `{ seq, at, actor, action, target, requestId }`; its hash
 * is SHA-256 (lower-case hex) of the UTF-8 bytes of its predecessor's hash (64 hex characters; GENESIS_HASH before
 * the first entry) followed directly by the entry's canonical JSON (src/receipts.ts canonicalJson). Entries are
 * written by the actions they record (src/db/audit.ts) and sealed — given prevHash and hash, in seq order — here, by
 * whoever reads the trail next and by every sweep. A head is the newest sealed entry's seq and hash, signed with the
 * receipt key: an auditor who keeps heads can prove that nothing up to them was rewritten
 * (scripts/verify-audit.mjs).
 */

/** The hash before the first entry. */
export const GENESIS_HASH = "0".repeat(64);

/** What an entry names: ids and HMACs, never personal data (a learner by its HMAC, a realm user's email by its HMAC). */
export type AuditTarget = { [key: string]: string | number | boolean | string[] };

/**
 * Who acted: a console session (its id), else the realm's management credentials, else the application whose
 * credentials (or token) made the request.
 */
export function actorOf(c: Context<AppEnv>): string {
	const session = consoleSessionOf(c.env);
	if (session) return `console:${session}`;
	const auth = c.get("auth") as AppEnv["Variables"]["auth"] | undefined;
	return auth && !c.var.management ? `application:${auth.appId}` : "management";
}

/** The entry a request appends for `action` on `target`. */
export const auditRecord = (c: Context<AppEnv>, action: AuditAction, target: AuditTarget): AuditRecord => ({
	at: nowIso(),
	actor: actorOf(c),
	action,
	target: canonicalJson(target),
	requestId: c.var.requestId,
});

/**
 * The entry of a console session's own action (signing in or out): the console is not an API request, so the entry
 * gets an id of its own.
 */
export const consoleAuditRecord = (sessionId: string, action: AuditAction, target: AuditTarget): AuditRecord => ({
	at: nowIso(),
	actor: `console:${sessionId}`,
	action,
	target: canonicalJson(target),
	requestId: `console-${crypto.randomUUID()}`,
});

/**
 * Appends entries for actions written elsewhere (a shard), after their own write: docs/privacy.md, "Audit trail". An
 * action written on a shard has put its record in the shard's audit outbox too (src/db/audit-outbox.ts), so an entry
 * this fails to append is appended by the next sweep.
 */
export const appendAfter = (c: Context<AppEnv>, records: AuditRecord[]) => appendAudit(c.env.DB, records);

/**
 * A record from a shard's audit outbox as the trail appends it at `now`: its target as canonical JSON (the shard's SQL
 * wrote it, in its own key order; the trail's dedupe compares the text), its time the later of its own (taken as the
 * action was written) and `now`, so that an entry's time is when it was recorded, never before its action.
 */
export const outboxedRecord = (record: OutboxRecord, now: string): AuditRecord => ({
	at: record.at > now ? record.at : now,
	actor: record.actor,
	action: record.action,
	target: canonicalJson(JSON.parse(record.target) as Json),
	requestId: record.requestId,
});

/**
 * An email as the trail names it (a realm user, an erasure's or export's requester): its HMAC under LEARNER_HASH_KEY,
 * lower-cased first (emails compare case-insensitively), so the same person is recognisable across entries by whoever
 * knows the address, and by no one else.
 */
export const emailHash = (env: Pick<Env, "LEARNER_HASH_KEY">, email: string) => hmacHex(env.LEARNER_HASH_KEY, `realm-user\n${email.toLowerCase()}`);

/** The entry's hashed form: everything but its hashes, as canonical JSON. */
export function canonicalEntry(entry: Pick<AuditRow, "seq" | "at" | "actor" | "action" | "target" | "requestId">): string {
	return canonicalJson({
		seq: entry.seq,
		at: entry.at,
		actor: entry.actor,
		action: entry.action,
		target: JSON.parse(entry.target) as Json,
		requestId: entry.requestId,
	});
}

/** SHA-256(prevHash ‖ canonical entry), lower-case hex. */
export const entryHash = (prevHash: string, entry: Parameters<typeof canonicalEntry>[0]) => sha256Hex(prevHash + canonicalEntry(entry));

/** Entries sealed per round (one read and one write each). */
const SEAL_BATCH = 500;

/**
 * Seals every entry still without a hash, in seq order, at most `rounds` × 500 of them; how many it sealed. Two
 * sealers at once compute the same hashes from the same entries, and each writes only entries still unsealed.
 */
export async function sealAudit(control: Db, rounds = 20): Promise<number> {
	let sealed = 0;
	for (let round = 0; round < rounds; round++) {
		const { prevHash, entries } = await unsealedAudit(control, SEAL_BATCH);
		if (entries.length === 0) break;
		let prev = entries[0]?.seq === 1 ? GENESIS_HASH : prevHash;
		// The entry before the first unsealed one is always sealed (sealing goes in order; pruning keeps the newest).
		if (prev === null) throw new Error(`Audit entry ${entries[0]?.seq} has no sealed predecessor`);
		const hashes: { seq: number; prevHash: string; hash: string }[] = [];
		for (const entry of entries) {
			const hash = await entryHash(prev, entry);
			hashes.push({ seq: entry.seq, prevHash: prev, hash });
			prev = hash;
		}
		await sealAuditEntries(control, hashes);
		sealed += entries.length;
		if (entries.length < SEAL_BATCH) break;
	}
	return sealed;
}

/** The signed head: the newest entry's seq and hash when it was signed (seq 0 and GENESIS_HASH for an empty trail). */
export interface AuditHead {
	kind: "audit-head";
	version: 1;
	seq: number;
	hash: string;
	signedDate: string;
	keyId: string;
}

/** Seals what is unsealed, then signs the head with the receipt key. */
export async function signedAuditHead(control: Db, jwk: Ed25519PrivateJwk): Promise<{ head: AuditHead; signature: string; keyId: string }> {
	await sealAudit(control);
	const latest = await auditHead(control);
	const { kid } = await receiptPublicKey(jwk);
	const head: AuditHead = {
		kind: "audit-head",
		version: 1,
		seq: latest?.seq ?? 0,
		hash: latest?.hash ?? GENESIS_HASH,
		signedDate: nowIso(),
		keyId: kid,
	};
	return { head, signature: await signCanonical(jwk, { ...head }), keyId: kid };
}
