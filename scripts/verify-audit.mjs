#!/usr/bin/env node
// Verifies a downloaded audit trail (SPEC §12) against signed heads, offline, with Node's crypto only:
//
//   node scripts/verify-audit.mjs chain.json head.json key.json [older-head.json ...] [--retention-days N]
//
//   chain.json  every page of GET /api/v2/appManagement/audit, as { "entries": [...] } (or the array itself)
//   head.json   GET /api/v2/appManagement/audit/head, fetched after the chain
//   key.json    GET /api/v2/.well-known/erasure-receipt-key (the receipt key's public half, a JWK)
//   older-head  heads kept from earlier: each in the chain must be there at its seq with its hash
//   N           the service's AUDIT_RETENTION_DAYS (default 1095)
//
// Checks that every head is signed by the key (Ed25519 over the head's canonical JSON); that the entries are
// consecutive (seq n + 1 after n); that each entry's prevHash is the hash of the entry before it (64 zeros before
// entry 1); that each hash is SHA-256 of prevHash followed by the entry's canonical JSON; and that the chain reaches
// the head. A chain that starts after entry 1 (older entries deleted past AUDIT_RETENTION_DAYS) must start with an
// entry recorded at least N days before the head was signed: the service keeps the newest entry past the retention,
// and times never decrease along the chain, so everything deleted before it was older still. A kept head just before
// the first entry must be the hash the first entry continues. Prints "valid: …" and exits 0, or "INVALID: …" and
// exits 1.
import { createHash, createPublicKey, verify } from "node:crypto";
import { readFileSync } from "node:fs";

const GENESIS = "0".repeat(64);
const DAY_MS = 24 * 60 * 60 * 1000;

/** The canonical form: no whitespace, every object's keys sorted at every depth (as the service signs). */
export const canonical = (v) =>
	Array.isArray(v)
		? `[${v.map(canonical).join(",")}]`
		: v !== null && typeof v === "object"
			? `{${Object.keys(v)
					.sort()
					.map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
					.join(",")}}`
			: JSON.stringify(v);

/** An entry's hash: SHA-256 (hex) of its prevHash followed by its canonical JSON (its fields but the two hashes). */
export function entryHash(entry) {
	const { seq, at, actor, action, target, requestId } = entry;
	return createHash("sha256")
		.update(entry.prevHash + canonical({ seq, at, actor, action, target, requestId }))
		.digest("hex");
}

/** Whether `signed` ({ head, signature, keyId }) is signed by the public JWK. */
function signedBy(signed, jwk) {
	const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: "jwk" });
	return signed.keyId === jwk.kid && signed.head.keyId === jwk.kid && verify(null, Buffer.from(canonical(signed.head)), key, Buffer.from(signed.signature, "base64url"));
}

/**
 * Verifies entries against the latest head and any older heads; answers { valid, reason?, entries, head, from }
 * (`from`: the first entry, when the chain starts after entry 1).
 */
export function verifyChain(entries, latest, jwk, older = [], { retentionDays = 1095 } = {}) {
	const heads = [latest, ...older];
	for (const signed of heads) if (!signedBy(signed, jwk)) return { valid: false, reason: `head ${signed.head?.seq} is not signed by key ${jwk.kid}` };
	const bySeq = new Map(entries.map((entry) => [entry.seq, entry]));
	const first = entries[0];
	if (first?.seq === 1 && first.prevHash !== GENESIS) return { valid: false, reason: "entry 1: prevHash is not the genesis hash" };
	if (first && first.seq > 1) {
		// Where the chain starts after entry 1: at an entry past the retention, continuing any head kept just before it.
		const recorded = Date.parse(first.at);
		const signedAt = Date.parse(latest.head.signedDate);
		if (!(recorded <= signedAt - retentionDays * DAY_MS)) {
			return {
				valid: false,
				reason: `the chain starts at entry ${first.seq}, recorded ${first.at}, less than ${retentionDays} days before the head was signed (${latest.head.signedDate}): entries before it were deleted early`,
			};
		}
		const before = heads.find((signed) => signed.head.seq === first.seq - 1);
		if (before && before.head.hash !== first.prevHash) return { valid: false, reason: `entry ${first.seq}: prevHash is not the hash of the head you kept for entry ${first.seq - 1}` };
	}
	let previous = null;
	for (const entry of entries) {
		if (previous && entry.seq !== previous.seq + 1) return { valid: false, reason: `entry ${entry.seq} follows entry ${previous.seq}: entries are missing` };
		if (previous && entry.prevHash !== previous.hash) return { valid: false, reason: `entry ${entry.seq}: prevHash is not the hash of entry ${previous.seq}` };
		if (entryHash(entry) !== entry.hash) return { valid: false, reason: `entry ${entry.seq}: its hash does not match its contents (it was changed)` };
		previous = entry;
	}
	for (const signed of heads) {
		const { seq, hash } = signed.head;
		if (seq === 0) {
			if (hash !== GENESIS) return { valid: false, reason: "an empty trail's head must name the genesis hash" };
			continue;
		}
		// A head kept before the chain's first entry names an entry deleted past the retention (checked above).
		if (first && seq < first.seq) continue;
		const entry = bySeq.get(seq);
		if (!entry) return { valid: false, reason: `head ${seq} is not in the chain` };
		if (entry.hash !== hash) return { valid: false, reason: `head ${seq} names another hash than the chain's entry ${seq}: the chain was rewritten` };
	}
	if (latest.head.seq !== (previous?.seq ?? 0)) return { valid: false, reason: `the chain ends at entry ${previous?.seq ?? 0}, the head names entry ${latest.head.seq}` };
	return { valid: true, entries: entries.length, head: latest.head.seq, from: first && first.seq > 1 ? first : undefined };
}

// Run as a script (not when imported).
if (import.meta.url === `file://${process.argv[1]}`) {
	const args = process.argv.slice(2);
	const option = args.indexOf("--retention-days");
	const retentionDays = option < 0 ? 1095 : Number(args.splice(option, 2)[1]);
	const [chainFile, headFile, keyFile, ...olderFiles] = args;
	if (!chainFile || !headFile || !keyFile || !(retentionDays > 0)) {
		console.error("usage: node scripts/verify-audit.mjs chain.json head.json key.json [older-head.json ...] [--retention-days N]");
		process.exit(2);
	}
	const read = (file) => JSON.parse(readFileSync(file, "utf8"));
	const chain = read(chainFile);
	const entries = Array.isArray(chain) ? chain : chain.entries;
	const result = verifyChain(entries, read(headFile), read(keyFile), olderFiles.map(read), { retentionDays });
	if (result.valid) {
		const start = result.from ? ` from entry ${result.from.seq} (the entries before it were deleted: recorded at or before ${result.from.at})` : "";
		console.log(`valid: ${result.entries} entries${start}, head at entry ${result.head}`);
	} else {
		console.log(`INVALID: ${result.reason}`);
		process.exit(1);
	}
}
