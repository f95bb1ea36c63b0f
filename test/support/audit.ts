import { expect } from "vitest";
import { canonicalJson, type Json } from "../../src/receipts";
import { call } from "./client";
import { MANAGEMENT } from "./fixtures";

/**
 * The audit trail as an auditor reads it (SPEC §12): every page of GET /appManagement/audit, the signed head, and
 * the check scripts/verify-audit.mjs makes, here with Web Crypto (inside workerd).
 */

export interface AuditEntry {
	seq: number;
	at: string;
	actor: string;
	action: string;
	target: Record<string, string | number | boolean | string[]>;
	requestId: string;
	prevHash: string;
	hash: string;
}

export interface SignedHead {
	head: { kind: string; version: number; seq: number; hash: string; signedDate: string; keyId: string };
	signature: string;
	algorithm: string;
	keyId: string;
}

/** Every entry, through GET /appManagement/audit and its `more` pages (with `query` on the first page). */
export async function auditTrail(query = ""): Promise<AuditEntry[]> {
	const entries: AuditEntry[] = [];
	let path = `/appManagement/audit${query}`;
	for (;;) {
		const response = await call("GET", path, { auth: MANAGEMENT });
		expect(response.status).toBe(200);
		const page = (await response.json()) as { entries: AuditEntry[]; more?: string };
		entries.push(...page.entries);
		if (!page.more) return entries;
		path = `/appManagement/audit?more=${encodeURIComponent(page.more)}`;
	}
}

export async function auditHead(): Promise<SignedHead> {
	const response = await call("GET", "/appManagement/audit/head", { auth: MANAGEMENT });
	expect(response.status).toBe(200);
	return (await response.json()) as SignedHead;
}

const hex = (bytes: ArrayBuffer) => [...new Uint8Array(bytes)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
const fromBase64Url = (text: string) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (char) => char.charCodeAt(0));

/** SHA-256(prevHash ‖ canonical entry), as docs/privacy.md defines it (Audit trail). */
export async function entryHash(entry: AuditEntry): Promise<string> {
	const { seq, at, actor, action, target, requestId } = entry;
	const text = entry.prevHash + canonicalJson({ seq, at, actor, action, target, requestId } as unknown as Json);
	return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/**
 * The chain from the genesis (or, once older entries were deleted, from a head kept earlier: `from`) up to the signed
 * head: null when it verifies, else why not.
 */
export async function chainProblem(entries: AuditEntry[], signed: SignedHead, from?: SignedHead): Promise<string | null> {
	const jwk = (await (await call("GET", "/.well-known/erasure-receipt-key")).json()) as { kty: string; crv: string; x: string; kid: string };
	const key = await crypto.subtle.importKey("jwk", { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, { name: "Ed25519" }, false, ["verify"]);
	const headBytes = new TextEncoder().encode(canonicalJson(signed.head as unknown as Json));
	if (signed.keyId !== jwk.kid || !(await crypto.subtle.verify("Ed25519", key, fromBase64Url(signed.signature), headBytes))) return "the head's signature does not verify";
	let previous = from?.head.hash ?? "0".repeat(64);
	const start = from?.head.seq ?? 0;
	for (const [index, entry] of entries.entries()) {
		if (entry.seq !== start + index + 1) return `entry ${entry.seq} is at place ${start + index + 1}`;
		if (entry.prevHash !== previous) return `entry ${entry.seq}: prevHash does not continue the chain`;
		if ((await entryHash(entry)) !== entry.hash) return `entry ${entry.seq}: its hash does not match its contents`;
		previous = entry.hash;
	}
	const last = entries.at(-1);
	if ((last?.seq ?? 0) !== signed.head.seq || previous !== signed.head.hash) return "the chain does not end at the signed head";
	return null;
}
