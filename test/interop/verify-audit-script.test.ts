import { spawnSync } from "node:child_process";
import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { canonical } from "./helpers";

/**
 * scripts/verify-audit.mjs on trails built here as docs/privacy-audit.md defines them (hash = SHA-256 of the previous
 * hash followed by the entry's canonical JSON; heads signed with Ed25519 over their canonical JSON), with a key of
 * its own: what the auditor's script accepts and refuses once entries were deleted past AUDIT_RETENTION_DAYS.
 */

const ROOT = path.resolve(import.meta.dirname, "../..");
const scratch = mkdtempSync(path.join(tmpdir(), "verify-audit-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const DAY_MS = 24 * 60 * 60 * 1000;
const GENESIS = "0".repeat(64);

type Value = string | number | boolean | null | Value[] | { [key: string]: Value };

const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const jwk = { ...publicKey.export({ format: "jwk" }), kid: "test-key" };

interface Entry {
	seq: number;
	at: string;
	actor: string;
	action: string;
	target: { [key: string]: Value };
	requestId: string;
	prevHash: string;
	hash: string;
}

/** A whole trail from entry 1, one entry per time given (times never decrease). */
function trail(times: number[]): Entry[] {
	const entries: Entry[] = [];
	let prevHash = GENESIS;
	for (const [index, time] of times.entries()) {
		const fields = { seq: index + 1, at: new Date(time).toISOString(), actor: "management", action: "realmUser.put", target: { role: "member", user: `u${index}` }, requestId: `r${index}` };
		const hash = createHash("sha256").update(prevHash + canonical(fields)).digest("hex");
		entries.push({ ...fields, prevHash, hash });
		prevHash = hash;
	}
	return entries;
}

/** The signed head naming `entry` (or the genesis), signed at `signedAt`. */
function head(entry: Entry | undefined, signedAt: number) {
	const body = { kind: "audit-head", version: 1, seq: entry?.seq ?? 0, hash: entry?.hash ?? GENESIS, signedDate: new Date(signedAt).toISOString(), keyId: jwk.kid };
	return { head: body, signature: sign(null, Buffer.from(canonical(body)), privateKey).toString("base64url"), algorithm: "Ed25519", keyId: jwk.kid };
}

let files = 0;
/** Runs the script on the chain, the latest head and older heads; its exit code and output. */
function verify(chain: Entry[], latest: ReturnType<typeof head>, older: ReturnType<typeof head>[] = [], extra: string[] = []) {
	const write = (value: unknown) => {
		const file = path.join(scratch, `${++files}.json`);
		writeFileSync(file, JSON.stringify(value));
		return file;
	};
	const args = [write({ entries: chain }), write(latest), write(jwk), ...older.map(write), ...extra];
	const run = spawnSync(process.execPath, [path.join(ROOT, "scripts/verify-audit.mjs"), ...args], { encoding: "utf8" });
	return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}

const now = Date.now();
// Twelve entries a day apart, the oldest 1 100 days ago: entries 1 to 6 are past the default retention (1 095 days).
const whole = trail(Array.from({ length: 12 }, (_, index) => now - (1100 - index) * DAY_MS));

describe("scripts/verify-audit.mjs, entries deleted past AUDIT_RETENTION_DAYS", () => {
	it("accepts a whole chain from the genesis", () => {
		expect(verify(whole, head(whole.at(-1), now))).toEqual({ status: 0, output: "valid: 12 entries, head at entry 12" });
	});

	it("accepts a chain that starts at an entry past the retention, whichever heads were kept before it, and says so", () => {
		const rest = whole.slice(5);
		const keptBefore = head(whole[1], now - 1098 * DAY_MS);
		const keptJustBefore = head(whole[4], now - 1096 * DAY_MS);
		const keptInside = head(whole[8], now - 1091 * DAY_MS);
		expect(verify(rest, head(whole.at(-1), now), [keptBefore, keptJustBefore, keptInside])).toEqual({
			status: 0,
			output: `valid: 7 entries from entry 6 (the entries before it were deleted: recorded at or before ${whole[5]?.at}), head at entry 12`,
		});
	});

	it("refuses a chain whose first entry is within the retention: entries were deleted early", () => {
		const rest = whole.slice(7);
		const result = verify(rest, head(whole.at(-1), now));
		expect(result.status).toBe(1);
		expect(result.output).toBe(
			`INVALID: the chain starts at entry 8, recorded ${whole[7]?.at}, less than 1095 days before the head was signed (${new Date(now).toISOString()}): entries before it were deleted early`,
		);
	});

	it("measures the retention with --retention-days, as the deployment sets AUDIT_RETENTION_DAYS", () => {
		const rest = whole.slice(7);
		expect(verify(rest, head(whole.at(-1), now), [], ["--retention-days", "1000"]).status).toBe(0);
		expect(verify(rest, head(whole.at(-1), now), [], ["--retention-days", "1100"]).status).toBe(1);
		expect(verify(rest, head(whole.at(-1), now), [], ["--retention-days", "none"]).status).toBe(2);
	});

	it("refuses a chain that does not continue the head kept just before its first entry", () => {
		const other = trail(Array.from({ length: 12 }, (_, index) => now - (1100 - index) * DAY_MS + 1));
		const rest = whole.slice(5);
		const result = verify(rest, head(whole.at(-1), now), [head(other[4], now - 1096 * DAY_MS)]);
		expect(result).toEqual({ status: 1, output: "INVALID: entry 6: prevHash is not the hash of the head you kept for entry 5" });
	});

	it("refuses a chain from entry 1 that does not start at the genesis, and a head kept inside the chain that it no longer matches", () => {
		const forged = [{ ...whole[0], prevHash: "f".repeat(64) } as Entry, ...whole.slice(1)];
		expect(verify(forged, head(whole.at(-1), now))).toEqual({ status: 1, output: "INVALID: entry 1: prevHash is not the genesis hash" });
		const other = trail(Array.from({ length: 12 }, (_, index) => now - (1100 - index) * DAY_MS + 1));
		expect(verify(whole.slice(5), head(whole.at(-1), now), [head(other[8], now - 1091 * DAY_MS)])).toEqual({
			status: 1,
			output: "INVALID: head 9 names another hash than the chain's entry 9: the chain was rewritten",
		});
	});
});
