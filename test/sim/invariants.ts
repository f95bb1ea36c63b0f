import { env } from "cloudflare:workers";
import { shardDatabase } from "../../src/shards";
import { type SignedHead, auditHead, auditTrail, chainProblem } from "../support/audit";
import { call } from "../support/client";
import { MANAGEMENT } from "../support/fixtures";
import { type Sim, observe } from "./commands";
import { type AppModel, LEARNER_FIELDS, type RegistrationModel } from "./model";
import { checkOneErasurePerLearner, databases } from "./world";

/**
 * What must hold of the whole service (SPEC §11, "Features hold together"), checked against the model: after every
 * step (cheap checks) and once the run has settled — every message delivered, the sweeper run until no job is
 * left unfinished.
 */

export class Violation extends Error {
	override readonly name = "Violation";
}

const fail = (what: string): never => {
	throw new Violation(what);
};

/** Lets the run settle: deliveries without faults and sweeps, until no job is unfinished and nothing is queued. */
export async function settle(sim: Sim): Promise<void> {
	for (let round = 0; round < 40; round++) {
		// Bounded: a job that keeps asking to be looked at again (a realm erasure following its children, a job
		// waiting out a move) hands over to the next round's sweep.
		for (let delivered = 0; sim.world.queue.length > 0 && delivered < 400; delivered++) {
			await sim.world.deliver(0, { fault: null, duplicate: false });
			await observe(sim);
		}
		const appIds = sim.model.apps.map((app) => app.appId);
		const unfinished = await sim.world.unfinishedJobs(appIds);
		if (unfinished.length === 0 && [...sim.model.jobs.values()].every((job) => job.status !== "pending")) return;
		await sim.world.sweep(11 * (round + 2));
		await observe(sim);
	}
	const left = await sim.world.unfinishedJobs(sim.model.apps.map((app) => app.appId));
	fail(`jobs still unfinished after the sweeper settled: ${JSON.stringify(left)}`);
}

/**
 * A careful client asks again for what failed: each erasure whose job failed is requested again (with the same
 * suppression), and the run settles again.
 */
export async function retryFailedErasures(sim: Sim): Promise<void> {
	let asked = false;
	for (const app of sim.model.liveApps()) {
		const uncertainLearners = new Set([...app.uncertainRegistrations].map((id) => app.registrations.get(id)?.learner).filter((id) => id !== undefined));
		for (const learner of uncertainLearners) {
			const path = `/learner/${encodeURIComponent(learner)}/delete-information?userEmail=${encodeURIComponent(sim.admin)}`;
			const answer = await sim.world.request("POST", path, { auth: app.auth });
			app.jobRequests++;
			if (answer.status === 404) {
				for (const registration of sim.model.registrationsOf(app, learner)) app.registrations.delete(registration.id);
				app.learnerTags.delete(learner);
			} else if (answer.status === 204) {
				sim.model.beginErasure(app.index, learner, false);
				const id = (answer.location ?? "").slice("/api/v2/jobs/".length);
				sim.model.jobs.set(id, {
					id,
					kind: "erasure",
					app: app.index,
					status: "pending",
					pairs: [{ app: app.index, learner }],
					counted: { registrations: 0, tags: 0, learners: new Set() },
				});
				asked = true;
			} else {
				fail(`asking again to erase a learner answered ${answer.status}`);
			}
			for (const registration of sim.model.registrationsOf(app, learner)) app.uncertainRegistrations.delete(registration.id);
		}
	}
	if (asked) await settle(sim);
	// Learners whose erasure failed and left nothing behind are simply gone.
	for (const app of sim.model.liveApps()) app.uncertainRegistrations.clear();
}

interface RegistrationBody {
	id: string;
	course: { id: string };
	learner: { id: string; email?: string; firstName?: string; lastName?: string };
	tags: string[];
}

/** Every registration of the application, through GET /registrations and its `more` pages. */
async function listRegistrations(app: AppModel): Promise<RegistrationBody[]> {
	const found: RegistrationBody[] = [];
	let more: string | undefined;
	do {
		const response = await call("GET", `/registrations${more ? `?more=${encodeURIComponent(more)}` : ""}`, { auth: app.auth });
		if (response.status !== 200) fail(`GET /registrations answered ${response.status}`);
		const body = (await response.json()) as { registrations: RegistrationBody[]; more?: string };
		found.push(...body.registrations);
		more = body.more;
	} while (more);
	return found;
}

const detailsOf = (registration: RegistrationModel) => {
	const learner: Record<string, string> = { id: registration.learner };
	for (const name of LEARNER_FIELDS) {
		const value = registration[name].value;
		if (value !== null) learner[name] = value;
	}
	return learner;
};

/** The learner directory's view of a learner: its current details (newest version of each field, newest registration among equals). */
function directoryEntry(app: AppModel, learner: string, registrations: RegistrationModel[]) {
	const entry: Record<string, unknown> = { id: learner };
	for (const name of LEARNER_FIELDS) {
		let best: RegistrationModel | undefined;
		for (const registration of registrations) {
			if (registration[name].value === null) continue;
			if (!best || registration[name].version >= best[name].version) best = registration;
		}
		if (best) entry[name] = best[name].value;
	}
	entry.tags = app.learnerTags.get(learner) ?? [];
	entry.registrationCount = registrations.length;
	return entry;
}

/** Every learner of the application, through GET /learners and its `more` pages. */
async function listLearners(app: AppModel): Promise<Record<string, unknown>[]> {
	const found: Record<string, unknown>[] = [];
	let more: string | undefined;
	do {
		const response = await call("GET", `/learners${more ? `?more=${encodeURIComponent(more)}` : ""}`, { auth: app.auth });
		if (response.status !== 200) fail(`GET /learners answered ${response.status}`);
		const body = (await response.json()) as { learners: Record<string, unknown>[]; more?: string };
		found.push(...body.learners);
		more = body.more;
	} while (more);
	return found;
}

/** The application's data as the API shows it equals the model's, learner by learner and registration by registration. */
async function checkData(sim: Sim, app: AppModel): Promise<void> {
	const shown = await listRegistrations(app);
	const byId = new Map(shown.map((registration) => [registration.id, registration]));
	if (byId.size !== shown.length) fail(`app ${app.index}: GET /registrations listed a registration twice`);
	for (const registration of app.registrations.values()) {
		const found = byId.get(registration.id);
		if (!found) fail(`app ${app.index}: registration [${registration.id}] acknowledged but not listed`);
		const expected = { id: registration.id, course: registration.course, learner: detailsOf(registration), tags: registration.tags };
		const actual = { id: found?.id, course: found?.course.id, learner: found?.learner, tags: found?.tags };
		if (app.uncertainDetails.has(registration.learner)) {
			expected.learner = { id: registration.learner };
			actual.learner = { id: found?.learner.id ?? "" };
		}
		if (JSON.stringify(actual) !== JSON.stringify(expected)) {
			fail(`app ${app.index}: registration [${registration.id}] is ${JSON.stringify(actual)}, the model says ${JSON.stringify(expected)}`);
		}
	}
	for (const registration of shown) {
		if (!app.registrations.has(registration.id)) fail(`app ${app.index}: registration [${registration.id}] listed but deleted or never acknowledged`);
	}
	const learners = new Set([...app.registrations.values()].map((registration) => registration.learner));
	for (const learner of learners) {
		const response = await call("GET", `/learner/${encodeURIComponent(learner)}/tags`, { auth: app.auth });
		const body = await response.json();
		const expected = { tags: app.learnerTags.get(learner) ?? [] };
		if (response.status !== 200 || JSON.stringify(body) !== JSON.stringify(expected)) {
			fail(`app ${app.index}: learner [${learner}] tags answered ${response.status} ${JSON.stringify(body)}, the model says ${JSON.stringify(expected)}`);
		}
	}
	// The directory: every learner once, in id order, with its current details, tags and registration count.
	const directory = await listLearners(app);
	const expected = [...learners]
		.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
		.map((learner) => directoryEntry(app, learner, [...app.registrations.values()].filter((registration) => registration.learner === learner)));
	const comparable = (entries: Record<string, unknown>[]) =>
		entries.map((entry) =>
			app.uncertainDetails.has(String(entry.id))
				? { id: entry.id, tags: entry.tags, registrationCount: entry.registrationCount }
				: entry,
		);
	if (JSON.stringify(comparable(directory)) !== JSON.stringify(comparable(expected))) {
		fail(`app ${app.index}: GET /learners shows ${JSON.stringify(directory)}, the model says ${JSON.stringify(expected)}`);
	}
	for (const learner of app.suppressed) {
		const response = await call("POST", "/registrations", {
			auth: app.auth,
			body: { courseId: "suppressed", registrationId: `probe.${sim.world.run}.${crypto.randomUUID()}`, learner: { id: learner } },
		});
		if (response.status !== 409) fail(`app ${app.index}: learner [${learner}] was erased with suppression, yet a registration naming it answered ${response.status}`);
	}
}

/**
 * The application's stored-row count (its quota's) equals the rows it holds, and its registration and learner
 * counters (what usage reports) its registrations and the learners they name.
 */
async function checkStoredRows(app: AppModel): Promise<void> {
	const db = shardDatabase(env, app.shard);
	const row = await db
		.prepare(
			`SELECT s.stored_rows AS counted, (SELECT count(*) FROM registrations WHERE app_id = ?1)
			   + (SELECT count(*) FROM learner_tags WHERE app_id = ?1) + (SELECT count(*) FROM registration_tags WHERE app_id = ?1) AS actual,
			   s.registrations AS registrations, (SELECT count(*) FROM registrations WHERE app_id = ?1) AS actualRegistrations,
			   s.learners AS learners, (SELECT count(DISTINCT learner_id) FROM registrations WHERE app_id = ?1) AS actualLearners
			 FROM app_storage s WHERE s.app_id = ?1`,
		)
		.bind(app.appId)
		.first<{ counted: number; actual: number; registrations: number; actualRegistrations: number; learners: number; actualLearners: number }>();
	if (row?.counted !== row?.actual) fail(`app ${app.index}: stored rows counted ${row?.counted}, holds ${row?.actual}`);
	if (row?.registrations !== row?.actualRegistrations) {
		fail(`app ${app.index}: registrations counted ${row?.registrations}, holds ${row?.actualRegistrations}`);
	}
	if (row?.learners !== row?.actualLearners) fail(`app ${app.index}: learners counted ${row?.learners}, holds ${row?.actualLearners}`);
}

/**
 * Nothing naming an erased learner (its id, email or names) is left in any table of any database, in the rows of its
 * application (or realm rows, app_id ""); tables are read from sqlite_master, so a new table is scanned too.
 */
async function checkErasedEverywhere(sim: Sim): Promise<void> {
	for (const app of sim.model.apps) {
		const erased = sim.model.erased.get(app.index);
		if (!erased || erased.size === 0) continue;
		const needles = [...erased.values()].flatMap((values) => [...values]);
		for (const [binding, db] of databases().map((db, i) => [i === 0 ? "DB" : `shard ${i}`, db] as const)) {
			const { results: tables } = await db
				.prepare(
					`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'
					   AND name <> 'd1_migrations'`,
				)
				.all<{ name: string }>();
			for (const { name } of tables) {
				const { results: columns } = await db.prepare(`SELECT name FROM pragma_table_info(?1)`).bind(name).all<{ name: string }>();
				if (!columns.some((column) => column.name === "app_id")) continue;
				const { results: rows } = await db
					.prepare(`SELECT * FROM "${name}" WHERE app_id IN (?1, '')`)
					.bind(app.appId)
					.all<Record<string, unknown>>();
				const found = rows.find((row) =>
					Object.values(row).some((cell) => {
						const text = cell instanceof ArrayBuffer ? new TextDecoder().decode(cell) : String(cell);
						return needles.some((needle) => text === needle || text.includes(JSON.stringify(needle)));
					}),
				);
				if (found) fail(`app ${app.index}: an erased learner is still named in ${binding}.${name}: ${JSON.stringify(found)}`);
			}
		}
		if (app.deleted) continue;
		for (const learner of erased.keys()) {
			const response = await call("GET", `/learner/${encodeURIComponent(learner)}/tags`, { auth: app.auth });
			if (response.status !== 404) fail(`app ${app.index}: erased learner [${learner}] answered ${response.status}`);
		}
	}
}

/** canonical JSON as docs/privacy.md defines it for receipts: no whitespace, object keys sorted at every depth. */
function canonical(value: unknown): string {
	if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
	if (value !== null && typeof value === "object") {
		const entries = Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`);
		return `{${entries.join(",")}}`;
	}
	return JSON.stringify(value);
}

const fromBase64Url = (text: string) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

/** Every completed erasure's receipt verifies with the published key, and counts what the model saw go. */
async function checkReceipts(sim: Sim): Promise<number> {
	const keyResponse = await call("GET", "/.well-known/erasure-receipt-key");
	const jwk = (await keyResponse.json()) as JsonWebKey;
	const key = await crypto.subtle.importKey("jwk", { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, { name: "Ed25519" }, false, ["verify"]);
	let verified = 0;
	for (const job of sim.model.jobs.values()) {
		if (job.status !== "completed" || (job.kind !== "erasure" && job.kind !== "bulk" && job.kind !== "realm")) continue;
		const app = job.app === null ? null : sim.model.apps[job.app];
		if (app?.deleted || job.pairs.some((pair) => sim.model.apps[pair.app]?.deleted)) continue;
		const response = await call("GET", `/jobs/${job.id}/receipt`, { auth: app ? app.auth : MANAGEMENT });
		if (response.status !== 200) fail(`the receipt of completed erasure ${job.id} answered ${response.status}`);
		const signed = (await response.json()) as { receipt: Record<string, unknown>; signature: string };
		const valid = await crypto.subtle.verify("Ed25519", key, fromBase64Url(signed.signature), new TextEncoder().encode(canonical(signed.receipt)));
		if (!valid) fail(`the receipt of erasure ${job.id} does not verify`);
		verified++;
		if (job.counted.learners.size !== job.pairs.length) continue;
		const counts = { registrationsDeleted: signed.receipt.registrationsDeleted, tagsRemoved: signed.receipt.tagsRemoved };
		const expected = { registrationsDeleted: job.counted.registrations, tagsRemoved: job.counted.tags };
		if (JSON.stringify(counts) !== JSON.stringify(expected)) {
			fail(`the receipt of ${job.kind} ${job.id} states ${JSON.stringify(counts)}; what went was ${JSON.stringify(expected)}`);
		}
	}
	return verified;
}

/**
 * Every export's fate (SPEC §12): gone (404) once its learner's erasure completed or its application was deleted, else
 * still there; and no object in R2 under an application's exports names a learner erased there. A last sweep runs
 * first, as it would within minutes: it deletes what an attempt cut off mid-way left.
 */
async function checkExports(sim: Sim): Promise<void> {
	await sim.world.sweep(sim.world.clockLead / 60_000 + 15);
	for (const job of sim.model.jobs.values()) {
		if (job.kind !== "export" || job.status !== "completed" || !job.exported || job.exported.uncertain) continue;
		const app = job.app === null ? undefined : sim.model.apps[job.app];
		// A realm-wide export (no application of its own) is whole or not at all: gone with any of its applications'.
		if (job.app === null ? job.pairs.some((pair) => sim.model.apps[pair.app]?.deleted) : !app || app.deleted) continue;
		const response = await call("GET", `/jobs/${job.id}/export`, { auth: app?.auth ?? MANAGEMENT });
		await response.body?.cancel();
		const expected = job.exported.gone ? 404 : 200;
		if (response.status !== expected) fail(`export ${job.id} answered ${response.status}, expected ${expected} (${job.exported.gone ? "its learner was erased" : "kept"})`);
	}
	for (const app of sim.model.apps) {
		const erased = sim.model.erased.get(app.index);
		if (!erased || erased.size === 0) continue;
		const needles = [...erased.values()].flatMap((values) => [...values]);
		for (const bucket of [env.EXPORTS, env.EXPORTS_EU]) {
			const { objects } = await bucket.list({ prefix: `exports/${app.appId}.` });
			for (const object of objects) {
				const text = (await (await bucket.get(object.key))?.text()) ?? "";
				const named = needles.find((needle) => text.includes(JSON.stringify(needle)));
				if (named !== undefined) fail(`app ${app.index}: export object ${object.key} still names erased ${JSON.stringify(named)}`);
			}
		}
	}
}

/** The last signed head checkAudit verified, as an auditor keeps heads. */
let keptHead: SignedHead | undefined;

/**
 * The audit trail verifies from its first entry to its signed head (SPEC §12). The sweeper prunes entries past
 * AUDIT_RETENTION_DAYS, which an earlier run's retention check (its sweeper years ahead) reaches: a trail that no
 * longer starts at entry 1 is verified from its first kept entry on, and where that entry follows the head kept from
 * the run before, it must continue that head's hash.
 */
async function checkAudit(sim: Sim): Promise<void> {
	const entries = await auditTrail();
	const head = await auditHead();
	const first = entries[0];
	let from: SignedHead | undefined;
	if (first && first.seq > 1) {
		if (keptHead && keptHead.head.seq === first.seq - 1 && keptHead.head.hash !== first.prevHash) {
			fail(`the audit trail does not continue the head kept before: entry ${first.seq} names another previous hash`);
		}
		from = { ...head, head: { ...head.head, seq: first.seq - 1, hash: first.prevHash } };
	}
	const problem = await chainProblem(entries, head, from);
	if (problem) fail(`the audit trail does not verify: ${problem}`);
	keptHead = head;
	// Every action an answer accepted has its own entry, naming its ids (one entry stands for one action).
	const unmatched = [...entries];
	for (const expected of sim.model.audited) {
		const index = unmatched.findIndex(
			(entry) =>
				entry.action === expected.action &&
				Object.entries(expected.target).every(([name, value]) => (entry.target as Record<string, unknown>)[name] === value),
		);
		if (index < 0) fail(`no audit entry ${expected.action} ${JSON.stringify(expected.target)}, which ${expected.command} was answered for`);
		unmatched.splice(index, 1);
	}
}

const DAY_MINUTES = 24 * 60;
/** A setting the test configuration may leave unset (then its documented default). */
const setting = (name: string, fallback: number) => Number((env as unknown as Record<string, string | undefined>)[name] ?? fallback);

/**
 * Job rows have a lifetime (docs/jobs-and-webhooks.md, "Retention of job rows"), since the quota does not count them. Once the run is
 * settled and checked: a sweep JOB_RETENTION_DAYS + 1 days on deletes every finished update, move and export (GET
 * /jobs/{id} answers 404) and keeps every completed erasure's receipt; one RECEIPT_RETENTION_DAYS + 1 days on
 * leaves no job row of a live application in any database, no realm job of the run, and no Idempotency-Key of a
 * live application (they live 24 hours). Last of the run's checks: it moves the sweeper's clock years ahead.
 */
async function checkRetention(sim: Sim): Promise<void> {
	const jobDays = setting("JOB_RETENTION_DAYS", 30);
	const receiptDays = setting("RECEIPT_RETENTION_DAYS", 1095);
	// Retention policies (retain) would erase, years on, every learner the run left: turned off first, as this
	// check is about the rows the run's requests made.
	for (const app of sim.model.liveApps()) {
		const response = await call("DELETE", `/appManagement/applications/${app.appId}/retention`, { auth: MANAGEMENT });
		if (response.status !== 204 && response.status !== 404) fail(`turning off app ${app.index}'s retention policy answered ${response.status}`);
	}
	await sim.world.sweep((jobDays + 1) * DAY_MINUTES);
	for (const job of sim.model.jobs.values()) {
		if (job.status === "pending" || job.kind === "deleteApp") continue;
		const app = job.app === null ? null : sim.model.apps[job.app];
		if (app?.deleted || job.pairs.some((pair) => sim.model.apps[pair.app]?.deleted)) continue;
		const auth = app && job.kind !== "move" ? app.auth : MANAGEMENT;
		if (job.kind === "update" || job.kind === "move" || job.kind === "export") {
			const response = await call("GET", `/jobs/${job.id}`, { auth });
			if (response.status !== 404) {
				fail(`${job.kind} ${job.id} finished, yet GET /jobs/{id} answered ${response.status} ${jobDays + 1} days later (JOB_RETENTION_DAYS is ${jobDays})`);
			}
		} else if (job.status === "completed") {
			const response = await call("GET", `/jobs/${job.id}/receipt`, { auth });
			if (response.status !== 200) {
				fail(`the receipt of ${job.kind} ${job.id} answered ${response.status} ${jobDays + 1} days after it completed (RECEIPT_RETENTION_DAYS is ${receiptDays})`);
			}
		}
	}
	await sim.world.sweep((receiptDays + 1) * DAY_MINUTES);
	const live = JSON.stringify(sim.model.liveApps().map((app) => app.appId));
	for (const [binding, db] of databases().map((db, i) => [i === 0 ? "DB" : `shard ${i}`, db] as const)) {
		const jobs = await db
			.prepare(
				`SELECT id, type, status FROM jobs WHERE app_id IN (SELECT value FROM json_each(?1))
				    OR (app_id = '' AND created_at >= ?2) LIMIT 3`,
			)
			.bind(live, sim.world.startedAt)
			.all<{ id: string; type: string; status: string }>();
		if (jobs.results.length > 0) {
			fail(`${binding} still holds job rows ${receiptDays + 1} days after they finished (RECEIPT_RETENTION_DAYS is ${receiptDays}): ${JSON.stringify(jobs.results)}`);
		}
		const keys = await db
			.prepare("SELECT count(*) AS n FROM idempotency_keys WHERE app_id IN (SELECT value FROM json_each(?1))")
			.bind(live)
			.first<{ n: number }>();
		if ((keys?.n ?? 0) > 0) fail(`${binding} still holds ${keys?.n} Idempotency-Keys of live applications years after they expired`);
	}
}

/** Everything that must hold once the run has settled. */
export async function checkSettled(sim: Sim): Promise<void> {
	const duplicate = await checkOneErasurePerLearner(sim.model.apps.map((app) => app.appId));
	if (duplicate) fail(duplicate);
	for (const app of sim.model.liveApps()) {
		const placement = await sim.world.placement(app.appId);
		if (placement?.shard !== app.shard) fail(`app ${app.index} is on ${placement?.shard}, the model says ${app.shard}`);
		await checkData(sim, app);
		await checkStoredRows(app);
	}
	await checkErasedEverywhere(sim);
	await checkReceipts(sim);
	await checkExports(sim);
	await checkAudit(sim);
	for (const app of sim.model.apps.filter((app) => app.deleted)) {
		const response = await call("GET", "/ping", { auth: app.auth });
		if (response.status !== 401) fail(`app ${app.index} was deleted, yet its credential answered ${response.status}`);
	}
	await checkRetention(sim);
}
