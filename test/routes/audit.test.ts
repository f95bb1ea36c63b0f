import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { emailHash } from "../../src/audit";
import { findPlacement } from "../../src/db/applications";
import { learnerHash } from "../../src/jobs/contract";
import { type AuditEntry, auditHead, auditTrail, chainProblem } from "../support/audit";
import { BASE, call, fetchWithBindings } from "../support/client";
import { expectMessage, jobIdOf } from "../support/expect";
import { D1_ERRORS, faultyD1 } from "../support/faulty-d1";
import { createApp, enrol, MANAGEMENT, realmUser, uniqueValue } from "../support/fixtures";
import { acceptErasure, acceptExport, drain, sentDuring } from "../support/queue";
import { SHARDS, shardOf } from "../support/seed";
import { sweep } from "../../src/jobs/sweeper";
import type { JobMessage } from "../../src/jobs/contract";

/**
 * The audit trail (SPEC §12): every management and privacy action appends an entry to one hash chain per realm, in
 * the control database; GET /appManagement/audit pages it, GET /appManagement/audit/head signs its newest hash.
 */

/** The entries appended while `work` ran. */
async function appendedDuring(work: () => Promise<unknown>): Promise<AuditEntry[]> {
	const before = (await auditHead()).head.seq;
	await work();
	return (await auditTrail()).filter((entry) => entry.seq > before);
}

const summary = (entries: AuditEntry[]) => entries.map((entry) => [entry.actor, entry.action, entry.target]);

describe("the audit trail", () => {
	it("records each management action with its target ids, the management credentials as actor", async () => {
		const email = `${uniqueValue("Auditor")}@Example.com`;
		let appId = "";
		let credentialId = "";
		let moveId = "";
		const entries = await appendedDuring(async () => {
			const created = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name: "audited" } });
			appId = ((await created.json()) as { id: string }).id;
			const credential = await call("POST", `/appManagement/${appId}/credentials`, { auth: MANAGEMENT, body: { name: "c" } });
			credentialId = ((await credential.json()) as { id: string }).id;
			await call("PUT", `/appManagement/${appId}/credentials/${credentialId}`, { auth: MANAGEMENT, body: { active: false } });
			await call("DELETE", `/appManagement/${appId}/credentials/${credentialId}`, { auth: MANAGEMENT });
			await call("PUT", `/appManagement/applications/${appId}`, { auth: MANAGEMENT, body: { name: "renamed", allowDelete: false } });
			// A deletion refused while allowDelete is false appends nothing.
			expect((await call("DELETE", `/appManagement/applications/${appId}`, { auth: MANAGEMENT })).status).toBe(409);
			await call("PUT", `/appManagement/applications/${appId}`, { auth: MANAGEMENT, body: { allowDelete: true } });
			await call("PUT", `/appManagement/users/${encodeURIComponent(email)}`, { auth: MANAGEMENT, body: { role: "admin" } });
			await call("DELETE", `/appManagement/users/${encodeURIComponent(email)}`, { auth: MANAGEMENT });
			await call("PUT", `/appManagement/${appId}/webhook`, { auth: MANAGEMENT, body: { url: "https://hooks.invalid/audit" } });
			await call("DELETE", `/appManagement/${appId}/webhook`, { auth: MANAGEMENT });
			await call("PUT", `/appManagement/applications/${appId}/retention`, { auth: MANAGEMENT, body: { learnerInactiveDays: 90 } });
			await call("DELETE", `/appManagement/applications/${appId}/retention`, { auth: MANAGEMENT });
			const from = (await findPlacement(env.DB, appId))?.shard;
			const to = SHARDS.find((shard) => shard.region === "default" && shard.name !== from)?.name ?? "";
			const { result: move, sent } = await sentDuring(() => call("POST", `/appManagement/applications/${appId}/move`, { auth: MANAGEMENT, body: { shard: to } }));
			moveId = jobIdOf(move);
			for (const message of sent) await drain(message.body as JobMessage);
			await call("DELETE", `/appManagement/applications/${appId}`, { auth: MANAGEMENT });
			// Refused actions append nothing: an unknown credential, an unknown realm user, a repeated deletion, an update
			// of an application being deleted.
			await call("DELETE", `/appManagement/${appId}/credentials/${credentialId}`, { auth: MANAGEMENT });
			await call("PUT", `/appManagement/applications/${appId}`, { auth: MANAGEMENT, body: { allowDelete: false } });
			await call("DELETE", `/appManagement/users/${encodeURIComponent(email)}`, { auth: MANAGEMENT });
			await call("DELETE", `/appManagement/applications/${appId}`, { auth: MANAGEMENT });
		});
		const user = await emailHash(env, email);
		const placement = await findPlacement(env.DB, appId);
		expect(summary(entries)).toEqual([
			["management", "application.create", { applicationId: appId, dataRegion: "default", shard: expect.any(String) }],
			["management", "credential.create", { applicationId: appId, credentialId, active: true }],
			["management", "credential.update", { applicationId: appId, credentialId, changed: ["active"], active: false }],
			["management", "credential.delete", { applicationId: appId, credentialId }],
			["management", "application.update", { applicationId: appId, changed: ["name", "allowDelete"], allowDelete: false }],
			["management", "application.update", { applicationId: appId, changed: ["allowDelete"], allowDelete: true }],
			["management", "realmUser.put", { user, role: "admin" }],
			["management", "realmUser.delete", { user }],
			["management", "webhook.set", { applicationId: appId }],
			["management", "webhook.delete", { applicationId: appId }],
			["management", "application.retention.set", { applicationId: appId, learnerInactiveDays: 90 }],
			["management", "application.retention.delete", { applicationId: appId }],
			["management", "application.move", { applicationId: appId, jobId: moveId, from: expect.any(String), to: placement?.shard }],
			["management", "application.delete", { applicationId: appId }],
		]);
		// No personal data: the realm user's email only as its HMAC, in any spelling.
		expect(JSON.stringify(entries).toLowerCase()).not.toContain(email.toLowerCase());
		expect(entries.every((entry) => entry.requestId.length > 0)).toBe(true);
	});

	it("records each privacy action after its shard's write, the application as actor, learners only by HMAC", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const learnerId = uniqueValue("audited-learner");
		await enrol(app, learnerId);
		const hash = await learnerHash(env, app.appId, learnerId);
		let exportId = "";
		let erasureId = "";
		const entries = await appendedDuring(async () => {
			const exported = await acceptExport(app, learnerId, admin);
			exportId = exported.jobId;
			await drain(exported);
			expect((await call("GET", `/jobs/${exportId}/export`, { auth: app.auth })).status).toBe(200);
			const erasure = await acceptErasure(app, learnerId, admin);
			erasureId = erasure.jobId;
			await drain(erasure);
			await call("POST", `/learner/${learnerId}/delete-information?userEmail=${encodeURIComponent(admin)}&suppress=true`, { auth: app.auth });
		});
		const requester = await emailHash(env, admin);
		expect(summary(entries)).toEqual([
			[`application:${app.appId}`, "learner.export", { applicationId: app.appId, learnerHash: hash, jobId: exportId, requester }],
			[`application:${app.appId}`, "export.download", { applicationId: app.appId, jobId: exportId }],
			[`application:${app.appId}`, "learner.erase", { applicationId: app.appId, learnerHash: hash, jobId: erasureId, requester, suppress: false }],
		]);
		expect(JSON.stringify(entries)).not.toContain(learnerId);
		expect(JSON.stringify(entries)).not.toContain(admin);
	});

	it("records bulk and realm-wide erasures, realm-wide exports and suppression lifts", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		const [bulk, everywhere, suppressed] = [uniqueValue("bulk"), uniqueValue("everywhere"), uniqueValue("suppressed")];
		for (const learnerId of [bulk, everywhere, suppressed]) await enrol(app, learnerId);
		const requester = await emailHash(env, admin);
		const realmHash = await learnerHash(env, "", everywhere);
		const jobs: string[] = [];
		const entries = await appendedDuring(async () => {
			const run = async (method: string, path: string, auth: string, body?: Record<string, unknown>) => {
				const { result, sent } = await sentDuring(() => call(method, path, { auth, ...(body && { body }) }));
				expect(result.status).toBe(204);
				if (result.headers.get("Location")) jobs.push(jobIdOf(result));
				for (const message of sent) await drain(message.body as JobMessage);
			};
			await run("POST", `/learners/delete-information?userEmail=${encodeURIComponent(admin)}`, app.auth, { ids: [bulk] });
			await run("POST", `/appManagement/learners/${everywhere}/export?userEmail=${encodeURIComponent(admin)}`, MANAGEMENT);
			await run("POST", `/appManagement/learners/${everywhere}/delete-information?userEmail=${encodeURIComponent(admin)}`, MANAGEMENT);
			await run("POST", `/learner/${suppressed}/delete-information?userEmail=${encodeURIComponent(admin)}&suppress=true`, app.auth);
			await run("DELETE", `/learner/${suppressed}/suppression`, app.auth);
		});
		expect(summary(entries)).toEqual([
			[`application:${app.appId}`, "learners.erase", { applicationId: app.appId, jobId: jobs[0], learners: 1, requester, suppress: false }],
			["management", "learner.exportEverywhere", { jobId: jobs[1], learnerHash: realmHash, requester, applications: [app.appId] }],
			// The realm-wide export's own child export is its job's, not a request's: no entry of its own.
			["management", "learner.eraseEverywhere", { jobId: jobs[2], learnerHash: realmHash, requester, suppress: false, applications: [app.appId] }],
			[`application:${app.appId}`, "learner.erase", { applicationId: app.appId, learnerHash: await learnerHash(env, app.appId, suppressed), jobId: jobs[3], requester, suppress: true }],
			[`application:${app.appId}`, "learner.suppression.lift", { applicationId: app.appId, learnerHash: await learnerHash(env, app.appId, suppressed) }],
		]);
	});

	it("hashes every entry into one chain from the genesis, which the signed head closes", async () => {
		await realmUser("owner");
		const entries = await auditTrail();
		expect(entries.length).toBeGreaterThan(0);
		expect(await chainProblem(entries, await auditHead())).toBeNull();
	});

	it("never forks: actions at the same moment take consecutive places", async () => {
		const before = (await auditHead()).head.seq;
		await Promise.all(Array.from({ length: 20 }, () => realmUser("member")));
		const entries = await auditTrail();
		expect(entries.filter((entry) => entry.seq > before).map((entry) => entry.seq)).toEqual(Array.from({ length: 20 }, (_, i) => before + i + 1));
		expect(new Set(entries.map((entry) => entry.prevHash)).size).toBe(entries.length);
		expect(await chainProblem(entries, await auditHead())).toBeNull();
	});

	it("detects an entry edited in the database: its hash no longer matches, and the service refuses such an edit itself", async () => {
		await realmUser("admin");
		const entries = await auditTrail();
		const head = await auditHead();
		const victim = entries[Math.floor(entries.length / 2)] as AuditEntry;
		// The service's own guard: a sealed entry cannot be updated.
		await expect(env.DB.prepare("UPDATE audit_log SET actor = 'someone-else' WHERE seq = ?1").bind(victim.seq).run()).rejects.toThrow(/audit_entry_sealed/);
		// An insider with the database in hand drops the guard and rewrites the entry.
		await env.DB.prepare("DROP TRIGGER audit_log_sealed_entries_stay").run();
		try {
			await env.DB.prepare("UPDATE audit_log SET actor = 'someone-else' WHERE seq = ?1").bind(victim.seq).run();
			expect(await chainProblem(await auditTrail(), head)).toBe(`entry ${victim.seq}: its hash does not match its contents`);
			// Rewriting the hashes from there on too is caught by the head kept from before.
			await env.DB.prepare("UPDATE audit_log SET hash = NULL, prev_hash = NULL WHERE seq >= ?1").bind(victim.seq).run();
			const rewritten = await auditTrail();
			expect(await chainProblem(rewritten, await auditHead())).toBeNull();
			expect(rewritten.find((entry) => entry.seq === head.head.seq)?.hash).not.toBe(head.head.hash);
		} finally {
			await env.DB.prepare("UPDATE audit_log SET actor = ?2 WHERE seq = ?1").bind(victim.seq, victim.actor).run();
			await env.DB.prepare("UPDATE audit_log SET hash = NULL, prev_hash = NULL WHERE seq >= ?1").bind(victim.seq).run();
			await env.DB.prepare(
				`CREATE TRIGGER audit_log_sealed_entries_stay BEFORE UPDATE ON audit_log
				 WHEN OLD.hash IS NOT NULL OR NEW.seq IS NOT OLD.seq OR NEW.at IS NOT OLD.at OR NEW.actor IS NOT OLD.actor
				   OR NEW.action IS NOT OLD.action OR NEW.target IS NOT OLD.target OR NEW.request_id IS NOT OLD.request_id
				 BEGIN SELECT RAISE(ABORT, 'audit_entry_sealed'); END`,
			).run();
		}
		expect(await chainProblem(await auditTrail(), await auditHead())).toBeNull();
	});

	it("pages with a signed more that carries the filters, and filters by action and since", async () => {
		for (let i = 0; i < 105; i++) await realmUser("member");
		const all = await auditTrail();
		const first = (await (await call("GET", "/appManagement/audit", { auth: MANAGEMENT })).json()) as { entries: AuditEntry[]; more?: string };
		expect(first.entries).toHaveLength(100);
		expect(first.entries.map((entry) => entry.seq)).toEqual(all.slice(0, 100).map((entry) => entry.seq));
		expect(await expectMessage(await call("GET", `/appManagement/audit?more=${first.more?.slice(1)}`, { auth: MANAGEMENT }), 400)).toBe(
			"more is not a paging token issued by this API for this application",
		);
		const puts = await auditTrail("?action=realmUser.put");
		expect(puts.length).toBeGreaterThan(100);
		expect(puts.every((entry) => entry.action === "realmUser.put")).toBe(true);
		const since = all[all.length - 3]?.at ?? "";
		const recent = await auditTrail(`?since=${encodeURIComponent(since)}`);
		expect(recent.map((entry) => entry.seq)).toEqual(all.filter((entry) => entry.at >= since).map((entry) => entry.seq));
		expect(await expectMessage(await call("GET", "/appManagement/audit?action=nothing.happened", { auth: MANAGEMENT }), 400)).toMatch(/^Invalid request: action must be one of/);
	});

	it("is sealed by the sweeper", async () => {
		await realmUser("member");
		const unsealed = await env.DB.prepare("SELECT count(*) AS n FROM audit_log WHERE hash IS NULL").first<{ n: number }>();
		expect(unsealed?.n).toBeGreaterThan(0);
		await worker.scheduled(createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" }), env);
		expect((await env.DB.prepare("SELECT count(*) AS n FROM audit_log WHERE hash IS NULL").first<{ n: number }>())?.n).toBe(0);
	});

	// Last in this file: the entries before a kept head are deleted here.
	it("deletes entries past AUDIT_RETENTION_DAYS (1095, its real value), and the rest verifies from a head kept before", async () => {
		await realmUser("member");
		const kept = await auditHead();
		await realmUser("member");
		const sweepAt = async (days: number) =>
			worker.scheduled(createScheduledController({ scheduledTime: new Date(Date.now() + days * 24 * 60 * 60_000), cron: "*/5 * * * *" }), env);
		const before = await auditTrail();
		await sweepAt(1094);
		expect(await auditTrail()).toEqual(before);
		// Every entry is older than the retention: all go but the newest, the link the next entry's seal starts from.
		await sweepAt(1096);
		const after = await auditTrail();
		expect(after.map((entry) => entry.seq)).toEqual([before.at(-1)?.seq]);
		await realmUser("member");
		const rest = await auditTrail();
		expect(rest).toHaveLength(2);
		// The auditor's head kept before the deletion anchors what is left; without it, the chain cannot start there.
		expect(kept.head.seq).toBe((rest[0]?.seq ?? 0) - 1);
		expect(await chainProblem(rest, await auditHead(), kept)).toBeNull();
		expect(await chainProblem(rest, await auditHead())).toBe(`entry ${rest[0]?.seq} is at place 1`);
	});
});

/** A control database whose next audit append fails with D1's "overloaded" error (which nothing retries). */
function auditAppendFailingOnce(): D1Database {
	let left = 1;
	return faultyD1((d1Call) => {
		if (left === 0 || !d1Call.sql.some((sql) => sql.includes("INSERT INTO audit_log"))) return null;
		left--;
		return { message: D1_ERRORS.overloaded, when: "before" };
	});
}

/** `method path` as the application, with headers (and a JSON body), through `bindings`. */
function request(method: string, path: string, auth: string, headers: Record<string, string>, body?: unknown): Request {
	const sent = new Headers({ Authorization: auth, ...headers });
	if (body !== undefined) sent.set("Content-Type", "application/json");
	return new Request(`${BASE}${path}`, { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body) });
}

/** A sweep now, its job messages dropped (the jobs stay as they are). */
const sweepNow = () => sentDuring(() => sweep(env, Date.now())).then(({ result }) => result);

const entriesOf = async (action: string, match: (target: AuditEntry["target"]) => boolean) =>
	(await auditTrail(`?action=${action}`)).filter((entry) => match(entry.target));

describe("an action written on a shard whose audit append failed", () => {
	// Each is answered 503 after the shard recorded it; the retry with the same Idempotency-Key replays the recorded
	// answer without doing (or auditing) anything: the shard's audit outbox holds the record, and the sweep appends it.
	const keyed = [
		{ name: "an erasure", action: "learner.erase", path: (learner: string, email: string) => `/learner/${learner}/delete-information?userEmail=${encodeURIComponent(email)}` },
		{ name: "a bulk erasure", action: "learners.erase", path: (_: string, email: string) => `/learners/delete-information?userEmail=${encodeURIComponent(email)}`, bulk: true },
		{ name: "an export", action: "learner.export", path: (learner: string, email: string) => `/learner/${learner}/export?userEmail=${encodeURIComponent(email)}` },
	];
	for (const { name, action, path, bulk } of keyed) {
		it(`records ${name} retried with its Idempotency-Key at the next sweep, once, with the first request's id`, async () => {
			const app = await createApp();
			const learnerId = uniqueValue("unrecorded");
			await enrol(app, learnerId);
			const admin = await realmUser("admin");
			const headers = { "Idempotency-Key": uniqueValue("key") };
			const body = bulk ? { ids: [learnerId] } : undefined;
			const { result: first } = await sentDuring(() => fetchWithBindings(request("POST", path(learnerId, admin), app.auth, headers, body), { DB: auditAppendFailingOnce() }));
			expect(first.status).toBe(503);
			const { result: retry } = await sentDuring(() => fetchWithBindings(request("POST", path(learnerId, admin), app.auth, headers, body), {}));
			expect([retry.status, retry.headers.get("Idempotent-Replayed")]).toEqual([204, "true"]);
			const jobId = jobIdOf(retry);
			expect(await entriesOf(action, (target) => target.jobId === jobId)).toEqual([]);
			const swept = new Date().toISOString();
			const report = await sweepNow();
			await sweepNow();
			const recorded = await entriesOf(action, (target) => target.jobId === jobId);
			expect(recorded.map((entry) => [entry.actor, entry.requestId])).toEqual([[`application:${app.appId}`, first.headers.get("X-Request-Id")]]);
			expect(recorded[0]?.target).toMatchObject({ applicationId: app.appId, requester: await emailHash(env, admin) });
			// Its time is when it was recorded (by the sweep), never before the action.
			expect((recorded[0]?.at ?? "") >= swept).toBe(true);
			expect(report.failedDatabases).toEqual([]);
		});
	}

	it("records a suppression lift whose append failed at the next sweep, though asking again finds nothing to lift", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("lifted");
		await enrol(app, learnerId);
		const admin = await realmUser("admin");
		const { result: erased, sent } = await sentDuring(() =>
			call("POST", `/learner/${learnerId}/delete-information?userEmail=${encodeURIComponent(admin)}&suppress=true`, { auth: app.auth }),
		);
		expect(erased.status).toBe(204);
		for (const message of sent) await drain(message.body as JobMessage);
		const path = `/learner/${learnerId}/suppression`;
		const first = await fetchWithBindings(request("DELETE", path, app.auth, {}), { DB: auditAppendFailingOnce() });
		expect(first.status).toBe(503);
		expect(await expectMessage(await call("DELETE", path, { auth: app.auth }), 404)).toBe(`Learner [${learnerId}] is not suppressed`);
		const hash = await learnerHash(env, app.appId, learnerId);
		await sweepNow();
		await sweepNow();
		const recorded = await entriesOf("learner.suppression.lift", (target) => target.learnerHash === hash);
		expect(recorded.map((entry) => [entry.actor, entry.requestId, entry.target])).toEqual([
			[`application:${app.appId}`, first.headers.get("X-Request-Id"), { applicationId: app.appId, learnerHash: hash }],
		]);
	});

	it("records an action once when both its request and the sweep append it, and empties the outbox", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("twice");
		await enrol(app, learnerId);
		const erasure = await acceptErasure(app, learnerId, await realmUser("admin"));
		const before = await entriesOf("learner.erase", (target) => target.jobId === erasure.jobId);
		expect(before).toHaveLength(1);
		const shard = await shardOf(app.appId);
		const outboxed = async () => (await shard.prepare("SELECT count(*) AS n FROM audit_outbox WHERE target LIKE ?1").bind(`%${erasure.jobId}%`).first<{ n: number }>())?.n;
		expect(await outboxed()).toBe(1);
		await sweepNow();
		expect(await entriesOf("learner.erase", (target) => target.jobId === erasure.jobId)).toEqual(before);
		expect(await outboxed()).toBe(0);
	});

	it("records each request that joins a pending erasure as its own entry naming the same job; a refused one leaves none", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("joined");
		await enrol(app, learnerId);
		const [admin, member] = [await realmUser("admin"), await realmUser("member")];
		const erase = (email: string) => call("POST", `/learner/${learnerId}/delete-information?userEmail=${encodeURIComponent(email)}`, { auth: app.auth });
		const { result: answers } = await sentDuring(async () => [await erase(admin), await erase(admin), await erase(member)]);
		expect(answers.map((answer) => answer.status)).toEqual([204, 204, 403]);
		const jobId = jobIdOf(answers[0] as Response);
		expect(jobIdOf(answers[1] as Response)).toBe(jobId);
		await sweepNow();
		const recorded = await entriesOf("learner.erase", (target) => target.applicationId === app.appId);
		expect(recorded.map((entry) => [entry.target.jobId, entry.requestId])).toEqual(
			answers.slice(0, 2).map((answer) => [jobId, answer.headers.get("X-Request-Id")]),
		);
	});

	it("counts a failure to append the outboxes against the control database, and appends them at the sweep after", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("control-down");
		await enrol(app, learnerId);
		const admin = await realmUser("admin");
		const first = await fetchWithBindings(request("POST", `/learner/${learnerId}/export?userEmail=${encodeURIComponent(admin)}`, app.auth, {}), {
			DB: auditAppendFailingOnce(),
		});
		expect(first.status).toBe(503);
		const failing = faultyD1((d1Call) => (d1Call.sql.some((sql) => sql.includes("INSERT INTO audit_log")) ? { message: D1_ERRORS.overloaded, when: "before" } : null));
		const { result: report } = await sentDuring(() => sweep({ ...env, DB: failing }, Date.now()));
		expect(report.failedDatabases).toEqual(["DB"]);
		const hash = await learnerHash(env, app.appId, learnerId);
		expect(await entriesOf("learner.export", (target) => target.learnerHash === hash)).toEqual([]);
		await sweepNow();
		expect((await entriesOf("learner.export", (target) => target.learnerHash === hash)).map((entry) => entry.requestId)).toEqual([first.headers.get("X-Request-Id")]);
	});
});
