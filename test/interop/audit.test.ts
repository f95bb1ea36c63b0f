import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, describe, expect, inject, it } from "vitest";
import { basePath, basicAuthorization, putRealmUser, unique } from "./helpers";

/**
 * SPEC §12's audit trail against `wrangler dev`: every management and privacy action, and the console's sign-in and
 * sign-out, appends an entry; the chain downloaded page by page verifies against the signed head with the script
 * docs/privacy.md shows (scripts/verify-audit.mjs, run here with Node as an auditor would); an entry edited in the
 * database file afterwards makes the same script fail.
 */

const ROOT = path.resolve(import.meta.dirname, "../..");
const management = () => basicAuthorization(inject("managementAppId"), inject("managementSecretKey"));
const scratch = mkdtempSync(path.join(tmpdir(), "audit-interop-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function api(method: string, pathname: string, authorization: string, body?: unknown): Promise<Response> {
	return fetch(`${basePath()}${pathname}`, {
		method,
		headers: { Authorization: authorization, ...(body !== undefined && { "Content-Type": "application/json" }) },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
}

async function ok(response: Promise<Response>, status: number): Promise<Response> {
	const answered = await response;
	expect(answered.status, await answered.clone().text()).toBe(status);
	return answered;
}

async function finished(location: string): Promise<void> {
	const deadline = Date.now() + 45_000;
	for (;;) {
		const job = (await (await fetch(new URL(location, basePath()), { headers: { Authorization: management() } })).json()) as { status: string };
		if (job.status === "completed" || job.status === "failed") return;
		if (Date.now() > deadline) throw new Error(`${location} did not finish`);
		await new Promise((resolve) => setTimeout(resolve, 250));
	}
}

/** The console, as a browser's forms use it: signs in, signs out. */
async function consoleSignInAndOut(): Promise<void> {
	const origin = new URL(basePath()).origin;
	const headers = { "Content-Type": "application/x-www-form-urlencoded", Origin: origin, "Sec-Fetch-Site": "same-origin" };
	const signIn = await fetch(`${origin}/console/sign-in`, {
		method: "POST",
		headers,
		body: new URLSearchParams({ appId: inject("managementAppId"), secretKey: inject("managementSecretKey") }),
		redirect: "manual",
	});
	expect(signIn.status).toBe(303);
	const cookie = (signIn.headers.get("Set-Cookie") ?? "").split(";")[0] ?? "";
	const page = await (await fetch(`${origin}/console/audit`, { headers: { Cookie: cookie } })).text();
	expect(page).toContain("Audit trail");
	const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(page)?.[1] ?? "";
	const signOut = await fetch(`${origin}/console/sign-out`, { method: "POST", headers: { ...headers, Cookie: cookie }, body: new URLSearchParams({ csrf }), redirect: "manual" });
	expect(signOut.status).toBe(303);
}

/** Every entry, page by page, as the verification script reads them. */
async function downloadChain(): Promise<{ entries: { seq: number; action: string }[] }> {
	const entries: { seq: number; action: string }[] = [];
	let more: string | undefined;
	do {
		const page = (await (await ok(api("GET", `/appManagement/audit${more ? `?more=${encodeURIComponent(more)}` : ""}`, management()), 200)).json()) as {
			entries: { seq: number; action: string }[];
			more?: string;
		};
		entries.push(...page.entries);
		more = page.more;
	} while (more);
	return { entries };
}

/** Runs the script docs/privacy.md shows on files written from the API's answers. */
function verifyScript(chain: unknown, head: unknown, key: unknown): { status: number | null; stdout: string } {
	const files = ["chain.json", "head.json", "key.json"].map((name) => path.join(scratch, name));
	[chain, head, key].forEach((value, i) => writeFileSync(files[i] ?? "", JSON.stringify(value)));
	const run = spawnSync(process.execPath, [path.join(ROOT, "scripts/verify-audit.mjs"), ...files], { encoding: "utf8" });
	return { status: run.status, stdout: run.stdout.trim() };
}

/** The control database's local file: the one holding the audit trail. */
function controlDatabaseFile(): string {
	const files = (function walk(dir: string): string[] {
		return readdirSync(dir).flatMap((name) => {
			const file = path.join(dir, name);
			return statSync(file).isDirectory() ? walk(file) : [file];
		});
	})(inject("persistDir")).filter((file) => file.endsWith(".sqlite") && file.includes(`${path.sep}d1${path.sep}`));
	const found = files.find((file) => {
		const db = new DatabaseSync(file, { readOnly: true });
		try {
			return db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'audit_log'").get() !== undefined;
		} finally {
			db.close();
		}
	});
	if (!found) throw new Error("no local database holds audit_log");
	return found;
}

describe("the audit trail against wrangler dev", () => {
	it("records every management and privacy action, verifies with the script docs/privacy.md shows, and fails it once an entry is edited", async () => {
		const admin = `${unique("dpo")}@example.com`;
		await putRealmUser(admin, "admin");
		// Applications, credentials, realm users, webhooks, retention, a move.
		const app = (await (await ok(api("POST", "/appManagement/applications", management(), { name: unique("audited") }), 200)).json()) as { id: string; shard: string };
		const credential = (await (await ok(api("POST", `/appManagement/${app.id}/credentials`, management(), { name: "c" }), 200)).json()) as {
			id: string;
			credential: string;
		};
		const auth = basicAuthorization(app.id, credential.credential);
		const spare = (await (await ok(api("POST", `/appManagement/${app.id}/credentials`, management(), { name: "spare" }), 200)).json()) as { id: string };
		await ok(api("PUT", `/appManagement/${app.id}/credentials/${spare.id}`, management(), { name: "renamed" }), 204);
		await ok(api("DELETE", `/appManagement/${app.id}/credentials/${spare.id}`, management()), 204);
		const member = `${unique("member")}@example.com`;
		await ok(api("PUT", `/appManagement/users/${encodeURIComponent(member)}`, management(), { role: "member" }), 204);
		await ok(api("DELETE", `/appManagement/users/${encodeURIComponent(member)}`, management()), 204);
		await ok(api("PUT", `/appManagement/${app.id}/webhook`, management(), { url: "http://127.0.0.1:9/audit" }), 200);
		await ok(api("POST", `/appManagement/${app.id}/webhook/test`, management()), 200);
		await ok(api("DELETE", `/appManagement/${app.id}/webhook`, management()), 204);
		await ok(api("PUT", `/appManagement/applications/${app.id}/retention`, management(), { learnerInactiveDays: 365 }), 200);
		await ok(api("DELETE", `/appManagement/applications/${app.id}/retention`, management()), 204);
		const target = app.shard === "SHARD_1" ? "SHARD_2" : "SHARD_1";
		const move = await ok(api("POST", `/appManagement/applications/${app.id}/move`, management(), { shard: target }), 204);
		await finished(move.headers.get("Location") ?? "");
		// Learners: exports and their download, erasures of each kind, a suppression lifted.
		const learners = Array.from({ length: 4 }, () => unique("audited-learner"));
		for (const learnerId of learners) {
			await ok(api("POST", "/registrations", auth, { courseId: "audit", registrationId: unique("audit-registration"), learner: { id: learnerId } }), 204);
		}
		const exported = await ok(api("POST", `/learner/${learners[0]}/export?userEmail=${encodeURIComponent(admin)}`, auth), 204);
		await finished(exported.headers.get("Location") ?? "");
		await ok(api("GET", `${exported.headers.get("Location")?.replace("/api/v2", "")}/export`, auth), 200);
		const realmExport = await ok(api("POST", `/appManagement/learners/${learners[1]}/export?userEmail=${encodeURIComponent(admin)}`, management()), 204);
		await finished(realmExport.headers.get("Location") ?? "");
		const erasures = [
			await ok(api("POST", `/learner/${learners[0]}/delete-information?userEmail=${encodeURIComponent(admin)}&suppress=true`, auth), 204),
			await ok(api("POST", `/learners/delete-information?userEmail=${encodeURIComponent(admin)}`, auth, { ids: [learners[2]] }), 204),
			await ok(api("POST", `/appManagement/learners/${learners[1]}/delete-information?userEmail=${encodeURIComponent(admin)}`, management()), 204),
		];
		for (const erasure of erasures) await finished(erasure.headers.get("Location") ?? "");
		await ok(api("DELETE", `/learner/${learners[0]}/suppression`, auth), 204);
		await consoleSignInAndOut();
		const doomed = (await (await ok(api("POST", "/appManagement/applications", management(), { name: unique("doomed") }), 200)).json()) as { id: string };
		await ok(api("PUT", `/appManagement/applications/${doomed.id}`, management(), { allowDelete: true }), 204);
		await ok(api("DELETE", `/appManagement/applications/${doomed.id}`, management()), 204);

		const chain = await downloadChain();
		const head = await (await ok(api("GET", "/appManagement/audit/head", management()), 200)).json();
		const key = await (await fetch(`${basePath()}/.well-known/erasure-receipt-key`)).json();
		expect(new Set(chain.entries.map((entry) => entry.action))).toEqual(
			new Set([
				"application.create",
				"application.update",
				"application.delete",
				"application.move",
				"application.retention.set",
				"application.retention.delete",
				"credential.create",
				"credential.update",
				"credential.delete",
				"realmUser.put",
				"realmUser.delete",
				"webhook.set",
				"webhook.delete",
				"webhook.test",
				"learner.erase",
				"learners.erase",
				"learner.eraseEverywhere",
				"learner.suppression.lift",
				"learner.export",
				"learner.exportEverywhere",
				"export.download",
				"console.signIn",
				"console.signOut",
			]),
		);
		// No personal data: no learner id, no email in any entry.
		const text = JSON.stringify(chain);
		for (const value of [...learners, admin, member]) expect(text).not.toContain(value);

		const verified = verifyScript(chain, head, key);
		expect(verified).toEqual({ status: 0, stdout: `valid: ${chain.entries.length} entries, head at entry ${chain.entries.length}` });

		// An insider edits one stored entry in the database file (dropping the service's guard first).
		const victim = chain.entries[Math.floor(chain.entries.length / 2)]?.seq ?? 1;
		const db = new DatabaseSync(controlDatabaseFile());
		try {
			db.exec("DROP TRIGGER audit_log_sealed_entries_stay");
			db.prepare("UPDATE audit_log SET target = ?1 WHERE seq = ?2").run(JSON.stringify({ applicationId: "FORGED" }), victim);
		} finally {
			db.close();
		}
		const tampered = await downloadChain();
		expect(verifyScript(tampered, head, key)).toEqual({ status: 1, stdout: `INVALID: entry ${victim}: its hash does not match its contents (it was changed)` });
	});
});
