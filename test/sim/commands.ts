import { env } from "cloudflare:workers";
import { type Json, canonicalJson } from "../../src/receipts";
import fc from "fast-check";
import { learnerHash } from "../../src/jobs/contract";
import { childJobId } from "../../src/jobs/realm-erasure";
import { RETENTION_APPLICATIONS_PER_SWEEP } from "../../src/jobs/retention";
import { shardDatabase } from "../../src/shards";
import { type ConsoleSession, draftOf, fetchConsole, outcomeOf, post, session } from "../support/console";
import { MANAGEMENT } from "../support/fixtures";
import {
	type AppModel,
	type AuditExpectation,
	type JobModel,
	type KeyRecord,
	LEARNER_FIELDS,
	type LearnerFieldName,
	type Model,
	type Region,
	newRegistration,
	pairKey,
	union,
} from "./model";
import { type Answer, type Fault, type World, checkOneErasurePerLearner, createApplication, describeFault, jobRowsOf, messageOf } from "./world";

/**
 * The simulation's commands (fast-check model-based commands): each is a plain description drawn by fast-check —
 * indexes into the run's pools of applications, learners, registrations and tags, and a fault it may carry — that
 * checks its precondition on the model, runs against the Worker, compares the answer with what the model allows,
 * and updates the model. Its toString() is one line of a shrunk failing sequence.
 */

/** What the commands share: the model, the real service, the realm users, and this run's pools. */
export interface Sim {
	model: Model;
	world: World;
	admin: string;
	member: string;
	learners: string[];
	registrationIds: string[];
	tags: string[];
	/** Registrations made by registerMany get ids from this counter. */
	serial: number;
	/** Applications a run may hold (its three first ones included). */
	maxApps: number;
	/** Shards by region, for moves. */
	shards: { name: string; region: Region }[];
	/** The operator console's session, once a console command has signed in. */
	console?: ConsoleSession;
	/** APP_ROW_QUOTA as the test configuration sets it. */
	configuredRowQuota: number;
}

/** Learner ids of run `run`: ids that differ only by spaces, case, NFC/NFD, and characters a path must carry. */
export const learnerPool = (run: number) => [
	`ann.${run}`,
	`ann.${run} `,
	` ann.${run}`,
	`Ann.${run}`,
	`b\u00e9.${run}`,
	`be\u0301.${run}`,
	`cy/${run}%`,
	`dee ${run}?#`,
];

export const registrationPool = (run: number) =>
	Array.from({ length: 10 }, (_, k) => (k % 3 === 2 ? `reg${k - 1}.${run} ` : `reg${k}.${run}`));

export const TAG_POOL = ["t1", " t1", "t1 ", "T1", "t\u00e9", "te\u0301", "a b", "z"];

type Outcome = (answer: Answer) => boolean;

class SimError extends Error {}

/** Fails the run with what happened and what the model allowed. */
function violation(command: string, answer: Answer, expected: string): never {
	throw new SimError(
		`${command}: answered ${answer.status}${answer.retried ? " (retried after a fault)" : ""} ${JSON.stringify(answer.body)}, expected ${expected}`,
	);
}

function check(command: string, answer: Answer, allowed: Record<string, Outcome>): string {
	for (const [name, outcome] of Object.entries(allowed)) if (outcome(answer)) return name;
	return violation(command, answer, Object.keys(allowed).join(" or "));
}

const status = (code: number): Outcome => (answer) => answer.status === code;
/** A write refused while its application's move flips (503, nothing written): allowed while a move is under way. */
const frozen = (app: AppModel): Outcome => (answer) =>
	app.moving !== null && answer.status === 503 && /moving between shards/.test(messageOf(answer));

const enc = encodeURIComponent;
const jobIdOf = (answer: Answer) => (answer.location ?? "").slice("/api/v2/jobs/".length);

/** The canonical identity of a request, for Idempotency-Key's "same request". */
const requestIdentity = (method: string, path: string, body: unknown) => `${method} ${path} ${JSON.stringify(body ?? null)}`;

/**
 * An Idempotency-Key's expected effect: the recorded answer replayed for the same request, 422 for another; null
 * when the key is new (the request runs).
 */
function keyedOutcome(record: KeyRecord | undefined, identity: string): Record<string, Outcome> | null {
	if (!record) return null;
	if (record.request === identity) {
		return { replayed: (answer) => answer.status === record.status && answer.location === record.location };
	}
	return { "422 (key used for another request)": status(422) };
}

/**
 * Checks the answer to a request sent under a key the model knows. A key recorded for a request that named a
 * learner whose erasure is pending may be gone already (the erasure's end deletes the keys of the requests that
 * named its learner): an answer that is not the key's then shows that the erasure completed (the model catches up)
 * and that the request ran as a new one. True when the answer was the key's.
 */
function keyAnswered(sim: Sim, app: AppModel, key: string, keyed: Record<string, Outcome>, answer: Answer, command: string): boolean {
	const learner = app.keys.get(key)?.learner ?? null;
	const allowed = { ...keyed, frozen: frozen(app) };
	if (learner === null || !sim.model.pendingErasure(app.index, learner) || Object.values(allowed).some((outcome) => outcome(answer))) {
		check(command, answer, allowed);
		return true;
	}
	sim.model.finishErasure(app, learner, "completed");
	return false;
}

/** Base of every command: precondition, run, one-line description. */
abstract class Step implements fc.AsyncCommand<Sim, World, false> {
	abstract check(sim: Readonly<Sim>): boolean;
	abstract exec(sim: Sim): Promise<void>;
	abstract describe(): string;
	async run(sim: Sim): Promise<void> {
		sim.world.tally.steps++;
		await this.exec(sim);
		const duplicate = await checkOneErasurePerLearner(sim.model.apps.map((app) => app.appId));
		if (duplicate) throw new SimError(`after ${this.describe()}: ${duplicate}`);
		const excess = await checkJobRows(sim);
		if (excess) throw new SimError(`after ${this.describe()}: ${excess}`);
	}
	toString(): string {
		return this.describe();
	}
}

/**
 * Job rows are outside the row quota, so they have a bound of their own (docs/jobs-and-webhooks.md, "Retention of job rows"): a request
 * adds at most one job row, and an erasure one more for each learner whose erasure it begins — repeated erasures of
 * learners already being erased add one row each, never one per learner. Nothing within a run is old enough to be
 * pruned, so every row counts. Checked after every step: the rows each live application holds against what its
 * requests may have added.
 */
export async function checkJobRows(sim: Readonly<Sim>): Promise<string | null> {
	const live = sim.model.liveApps();
	const rows = await jobRowsOf(live.map((app) => app.appId));
	for (const app of live) {
		const held = rows.get(app.appId) ?? 0;
		const bound = app.jobRequests + app.erasuresBegun;
		if (held > bound) {
			return `app ${app.index} holds ${held} job rows, past its bound of ${bound}: ${app.jobRequests} requests that may start a job (one row each) and ${app.erasuresBegun} learner erasures they began (one row each; a repeat joins the pending erasure)`;
		}
	}
	return null;
}

/** A request that may start a job in `app` was sent (twice when the careful client sent it again after a fault). */
const jobRequested = (app: AppModel, answer: Answer) => {
	app.jobRequests += answer.retried ? 2 : 1;
};

/**
 * The row quota (docs/api.md, "Tenant limits"): a write that would take the application's stored rows past APP_ROW_QUOTA
 * is refused whole with 403; one that adds no row never is. `added`: the rows the write adds if it succeeds. The
 * 403 is allowed when the rows the model may hold leave no room for them.
 */
function quotaRefusal(sim: Readonly<Sim>, app: AppModel, added: number): Record<string, Outcome> {
	if (added <= 0 || sim.model.storedRows(app).most + added <= sim.model.rowQuota) return {};
	return { "403 (row quota)": (answer) => answer.status === 403 && /quota/i.test(messageOf(answer)) };
}

/** A write that succeeded must have fitted: the rows the application surely holds, plus its own, within the quota. */
function withinQuota(sim: Readonly<Sim>, app: AppModel, added: number, rowsBefore: number, command: string, answer: Answer): void {
	if (added > 0 && rowsBefore + added > sim.model.rowQuota) {
		violation(command, answer, `403: at least ${rowsBefore} rows stored, ${added} more are past the row quota of ${sim.model.rowQuota}`);
	}
}

const appOf = (sim: Readonly<Sim>, index: number) => sim.model.live(index % Math.max(1, sim.model.apps.length));
const learnerOf = (sim: Readonly<Sim>, index: number) => sim.learners[index % sim.learners.length] as string;
const tagsOf = (sim: Readonly<Sim>, indexes: number[]) => [...new Set(indexes.map((i) => sim.tags[i % sim.tags.length] as string))];
/** Details of one learner: each value names its learner, so a scan for an erased learner's details finds only its own. */
const fieldsOf = (sim: Readonly<Sim>, learner: number, values: Partial<Record<LearnerFieldName, number>>) => {
	const fields: Partial<Record<LearnerFieldName, string>> = {};
	const owner = `${learner % sim.learners.length}.${sim.world.run}`;
	for (const name of LEARNER_FIELDS) {
		const value = values[name];
		if (value !== undefined) fields[name] = name === "email" ? `e${value}.${owner}@example.com` : `${name}-${value}-${owner}`;
	}
	return fields;
};

/**
 * The learner a command names: with `known`, one the application holds (if it holds any), so that the command meets
 * data more often than a random draw from the pool would; else any of the pool.
 */
const learnerIn = (sim: Readonly<Sim>, app: AppModel, index: number, known: boolean) => {
	const held = [...new Set([...app.registrations.values()].map((registration) => registration.learner))];
	return known && held.length > 0 ? (held[index % held.length] as string) : learnerOf(sim, index);
};

/** A learner the simulation may still write registrations for: no erasure of it pending anywhere. */
const registrable = (sim: Readonly<Sim>, learner: string) => !sim.model.erasing(learner);

// ---------------------------------------------------------------------------------------------------------------
// Registrations

class Register extends Step {
	constructor(
		readonly app: number,
		readonly learner: number,
		readonly registration: number,
		readonly course: number,
		readonly details: Partial<Record<LearnerFieldName, number>>,
		readonly learnerTags: number[],
		readonly registrationTags: number[],
		readonly key: string | null,
		readonly fault: Fault | null,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app)) && registrable(sim, learnerOf(sim, this.learner));
	describe = () =>
		`register(app ${this.app}, learner ${this.learner}, registration ${this.registration}, details ${JSON.stringify(this.details)}, tags ${this.learnerTags}/${this.registrationTags}${this.key ? `, key ${this.key}` : ""}) ${describeFault(this.fault)}`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const learner = learnerOf(sim, this.learner);
		const id = sim.registrationIds[this.registration % sim.registrationIds.length] as string;
		const fields = fieldsOf(sim, this.learner, this.details);
		const learnerTags = tagsOf(sim, this.learnerTags);
		const registrationTags = tagsOf(sim, this.registrationTags);
		const body = {
			courseId: `course-${this.course}`,
			registrationId: id,
			learner: { id: learner, ...fields },
			...(learnerTags.length > 0 && { learnerTags }),
			...(registrationTags.length > 0 && { registrationTags }),
		};
		const existing = app.registrations.get(id);
		// A registration whose learner is being erased may be gone already: its fate is the erasure's.
		if (existing && sim.model.pendingErasure(app.index, existing.learner)) return;
		if (existing && app.uncertainRegistrations.has(id)) return;
		const identity = requestIdentity("POST", "/registrations", body);
		const keyed = this.key === null ? null : keyedOutcome(app.keys.get(this.key), identity);
		// A new registration adds itself, its tags and the learner tags it does not have yet; another adds nothing.
		const added = existing ? 0 : 1 + registrationTags.length + learnerTags.filter((tag) => !(app.learnerTags.get(learner) ?? []).includes(tag)).length;
		const overQuota = quotaRefusal(sim, app, added);
		const rowsBefore = sim.model.storedRows(app).least;
		const answer = await sim.world.request("POST", "/registrations", { auth: app.auth, body, key: this.key ?? undefined, fault: this.fault });
		const command = this.describe();
		if (keyed && keyAnswered(sim, app, this.key as string, keyed, answer, command)) return;
		const pendingUpdate = [...sim.model.jobs.values()].some(
			(job) => job.kind === "update" && job.status === "pending" && job.app === app.index && job.update?.learner === learner,
		);
		const identical =
			existing !== undefined &&
			existing.learner === learner &&
			existing.course === body.courseId &&
			LEARNER_FIELDS.every((name) => existing[name].value === (fields[name] ?? null)) &&
			existing.tags.length === registrationTags.length &&
			registrationTags.every((tag) => existing.tags.includes(tag)) &&
			learnerTags.every((tag) => (app.learnerTags.get(learner) ?? []).includes(tag)) &&
			!app.uncertainDetails.has(learner);
		let allowed: Record<string, Outcome>;
		if (app.suppressed.has(learner)) allowed = { "409 (suppressed)": status(409) };
		else if (!existing) allowed = { "204 (created)": status(204) };
		else if (identical && !pendingUpdate) allowed = { "204 (the same registration again)": status(204) };
		else if (identical || pendingUpdate || app.uncertainDetails.has(learner)) allowed = { "204 or 400": (a) => a.status === 204 || a.status === 400 };
		else allowed = { "400 (already exists)": status(400) };
		const outcome = check(command, answer, { ...allowed, ...overQuota, frozen: frozen(app) });
		if (answer.status === 204) withinQuota(sim, app, added, rowsBefore, command, answer);
		if (outcome === "frozen" || answer.status !== 204 || existing) {
			if (answer.status === 204 && this.key !== null) app.keys.set(this.key, { request: identity, status: 204, location: null, learner });
			return;
		}
		sim.model.registered(app, newRegistration(sim.model, id, learner, body.courseId, fields, registrationTags), learnerTags);
		if (this.key !== null) app.keys.set(this.key, { request: identity, status: 204, location: null, learner });
	}
}

/** Many registrations of one learner at once, so that its jobs take several chunks and messages. */
class RegisterMany extends Step {
	constructor(
		readonly app: number,
		readonly learner: number,
		readonly count: number,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app)) && registrable(sim, learnerOf(sim, this.learner));
	describe = () => `registerMany(app ${this.app}, learner ${this.learner}, ${this.count})`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const learner = learnerOf(sim, this.learner);
		for (let i = 0; i < this.count; i++) {
			const id = `many${++sim.serial}.${sim.world.run}`;
			const overQuota = quotaRefusal(sim, app, 1);
			const rowsBefore = sim.model.storedRows(app).least;
			const answer = await sim.world.request("POST", "/registrations", { auth: app.auth, body: { courseId: "many", registrationId: id, learner: { id: learner } } });
			const outcome = check(this.describe(), answer, {
				...(app.suppressed.has(learner) ? { "409 (suppressed)": status(409) } : { "204 (created)": status(204) }),
				...overQuota,
				frozen: frozen(app),
			});
			if (outcome !== "204 (created)") return;
			withinQuota(sim, app, 1, rowsBefore, this.describe(), answer);
			sim.model.registered(app, newRegistration(sim.model, id, learner, "many", {}, []), []);
		}
	}
}

class DeleteRegistration extends Step {
	constructor(
		readonly app: number,
		readonly registration: number,
		readonly fault: Fault | null,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app));
	describe = () => `deleteRegistration(app ${this.app}, registration ${this.registration}) ${describeFault(this.fault)}`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const id = sim.registrationIds[this.registration % sim.registrationIds.length] as string;
		const existing = app.registrations.get(id);
		const answer = await sim.world.request("DELETE", `/registrations/${enc(id)}`, { auth: app.auth, fault: this.fault });
		const erasing = existing && sim.model.pendingErasure(app.index, existing.learner);
		const uncertain = app.uncertainRegistrations.has(id);
		const allowed: Record<string, Outcome> = !existing
			? { "404": status(404) }
			: erasing || uncertain || answer.retried
				? { "204 or 404": (a) => a.status === 204 || a.status === 404 }
				: { "204": status(204) };
		const outcome = check(this.describe(), answer, { ...allowed, frozen: frozen(app) });
		if (outcome === "frozen" || !existing) return;
		app.uncertainRegistrations.delete(id);
		if (answer.status === 404 && erasing && !answer.retried) sim.model.registrationErased(app, id);
		else sim.model.registrationDeleted(app, id);
	}
}

class RegistrationTags extends Step {
	constructor(
		readonly app: number,
		readonly registration: number,
		readonly tags: number[],
		readonly remove: boolean,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app)) && this.tags.length > 0;
	describe = () => `${this.remove ? "deleteRegistrationTags" : "putRegistrationTags"}(app ${this.app}, registration ${this.registration}, tags ${this.tags})`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const id = sim.registrationIds[this.registration % sim.registrationIds.length] as string;
		const tags = tagsOf(sim, this.tags);
		const existing = app.registrations.get(id);
		const added = this.remove || !existing ? 0 : tags.filter((tag) => !existing.tags.includes(tag)).length;
		const overQuota = quotaRefusal(sim, app, added);
		const rowsBefore = sim.model.storedRows(app).least;
		const answer = await sim.world.request(this.remove ? "DELETE" : "PUT", `/registrations/${enc(id)}/tags`, { auth: app.auth, body: { tags } });
		const erasing = existing && sim.model.pendingErasure(app.index, existing.learner);
		const allowed: Record<string, Outcome> = !existing
			? { "404": status(404) }
			: erasing || app.uncertainRegistrations.has(id)
				? { "204 or 404": (a) => a.status === 204 || a.status === 404 }
				: { "204": status(204) };
		const outcome = check(this.describe(), answer, { ...allowed, ...overQuota, frozen: frozen(app) });
		if (answer.status === 204) withinQuota(sim, app, added, rowsBefore, this.describe(), answer);
		if (outcome === "403 (row quota)") return;
		if (outcome === "frozen" || !existing) return;
		if (answer.status === 404) {
			if (erasing) sim.model.registrationErased(app, id);
			else app.registrations.delete(id);
			app.uncertainRegistrations.delete(id);
			return;
		}
		app.uncertainRegistrations.delete(id);
		existing.tags = this.remove ? existing.tags.filter((tag) => !tags.includes(tag)) : union(existing.tags, tags);
	}
}

// ---------------------------------------------------------------------------------------------------------------
// Learner tags

/**
 * What an erasure request's answer says of a learner with a pending erasure: a request joins a pending erasure, so 404
 * where the model still holds registrations of it means the erasure has completed (the model catches up); any other
 * answer means it has not.
 */
function revealErasure(sim: Sim, app: AppModel, learner: string, answer: Answer): boolean {
	if (answer.status !== 404 || !sim.model.pendingErasure(app.index, learner)) return false;
	sim.model.finishErasure(app, learner, "completed");
	return true;
}

/**
 * What any other answer about a learner with a pending erasure says: 404 where the model still holds registrations of
 * it means the erasure has deleted them, not that it has completed (it completes, taking the learner's own tags, once
 * the learner's exports' objects are gone: its job's status tells when).
 */
function revealRegistrationsErased(sim: Sim, app: AppModel, learner: string, answer: Answer): boolean {
	if (answer.status !== 404 || !sim.model.pendingErasure(app.index, learner) || !sim.model.exists(app, learner)) return false;
	for (const registration of sim.model.registrationsOf(app, learner)) sim.model.registrationErased(app, registration.id);
	return true;
}

class LearnerTags extends Step {
	constructor(
		readonly app: number,
		readonly learner: number,
		readonly tags: number[],
		readonly remove: boolean,
		readonly fault: Fault | null,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app)) && this.tags.length > 0;
	describe = () =>
		`${this.remove ? "deleteLearnerTags" : "putLearnerTags"}(app ${this.app}, learner ${this.learner}, tags ${this.tags}) ${describeFault(this.fault)}`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const learner = learnerOf(sim, this.learner);
		const tags = tagsOf(sim, this.tags);
		const added = this.remove || !sim.model.exists(app, learner) ? 0 : tags.filter((tag) => !(app.learnerTags.get(learner) ?? []).includes(tag)).length;
		const overQuota = quotaRefusal(sim, app, added);
		const rowsBefore = sim.model.storedRows(app).least;
		const answer = await sim.world.request(this.remove ? "DELETE" : "PUT", `/learner/${enc(learner)}/tags`, { auth: app.auth, body: { tags }, fault: this.fault });
		const exists = sim.model.exists(app, learner);
		const erasing = sim.model.pendingErasure(app.index, learner);
		const allowed: Record<string, Outcome> = !exists
			? { "404": status(404) }
			: erasing
				? { "204 or 404 (erased meanwhile)": (a) => a.status === 204 || a.status === 404 }
				: { "204": status(204) };
		const outcome = check(this.describe(), answer, { ...allowed, ...overQuota, frozen: frozen(app) });
		if (answer.status === 204) withinQuota(sim, app, added, rowsBefore, this.describe(), answer);
		if (outcome === "frozen" || revealRegistrationsErased(sim, app, learner, answer) || answer.status !== 204) return;
		const current = app.learnerTags.get(learner) ?? [];
		app.learnerTags.set(learner, this.remove ? current.filter((tag) => !tags.includes(tag)) : union(current, tags));
	}
}

class BatchTags extends Step {
	constructor(
		readonly app: number,
		readonly learners: number[],
		readonly tags: number[],
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app)) && this.learners.length > 0 && this.tags.length > 0;
	describe = () => `putLearnerTagsBatch(app ${this.app}, learners ${this.learners}, tags ${this.tags})`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const ids = [...new Set(this.learners.map((i) => learnerOf(sim, i)))];
		const tags = tagsOf(sim, this.tags);
		const added = ids.reduce((sum, id) => sum + tags.filter((tag) => !(app.learnerTags.get(id) ?? []).includes(tag)).length, 0);
		const overQuota = quotaRefusal(sim, app, added);
		const rowsBefore = sim.model.storedRows(app).least;
		const answer = await sim.world.request("PUT", "/learner/tags", { auth: app.auth, body: { ids, tags } });
		const unknown = ids.filter((id) => !sim.model.exists(app, id));
		const maybeGone = ids.filter((id) => sim.model.exists(app, id) && sim.model.pendingErasure(app.index, id));
		const allowed: Record<string, Outcome> =
			unknown.length > 0
				? { "404 listing the unknown ids": status(404) }
				: maybeGone.length > 0
					? { "204 or 404": (a) => a.status === 204 || a.status === 404 }
					: { "204": status(204) };
		const outcome = check(this.describe(), answer, { ...allowed, ...overQuota, frozen: frozen(app) });
		if (answer.status === 204) withinQuota(sim, app, added, rowsBefore, this.describe(), answer);
		if (outcome === "frozen" || outcome === "403 (row quota)") return;
		if (answer.status === 404) {
			// The message lists the unknown ids: the model's, and pending erasures that completed meanwhile.
			const listed = [...messageOf(answer).matchAll(/\[([^\]]*)\]/g)].map((match) => match[1]);
			for (const id of unknown) if (!listed.includes(id)) violation(this.describe(), answer, `a 404 listing [${id}]`);
			for (const id of listed) {
				if (id !== undefined && maybeGone.includes(id)) revealRegistrationsErased(sim, app, id, answer);
				else if (id !== undefined && !unknown.includes(id)) violation(this.describe(), answer, `no 404 for [${id}], which exists`);
			}
			return;
		}
		for (const id of ids) app.learnerTags.set(id, union(app.learnerTags.get(id) ?? [], tags));
	}
}

// ---------------------------------------------------------------------------------------------------------------
// Learner details

class UpdateInfo extends Step {
	constructor(
		readonly app: number,
		readonly learner: number,
		readonly details: Partial<Record<LearnerFieldName, number>>,
		readonly key: string | null,
		readonly fault: Fault | null,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app)) && Object.keys(this.details).length > 0;
	describe = () =>
		`updateInfo(app ${this.app}, learner ${this.learner}, ${JSON.stringify(this.details)}${this.key ? `, key ${this.key}` : ""}) ${describeFault(this.fault)}`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const learner = learnerOf(sim, this.learner);
		const fields = fieldsOf(sim, this.learner, this.details);
		const body = { id: learner, ...fields };
		const path = `/learner/${enc(learner)}/updateInfo`;
		const identity = requestIdentity("POST", path, body);
		const keyed = this.key === null ? null : keyedOutcome(app.keys.get(this.key), identity);
		const answer = await sim.world.request("POST", path, { auth: app.auth, body, key: this.key ?? undefined, fault: this.fault });
		jobRequested(app, answer);
		if (keyed && keyAnswered(sim, app, this.key as string, keyed, answer, this.describe())) return;
		const exists = sim.model.exists(app, learner);
		const erasing = sim.model.pendingErasure(app.index, learner);
		// An erasure seen to have taken the learner's registrations (a 404 elsewhere) may still be finishing (its
		// exports' objects being deleted): until its job is seen completed, the learner is being erased.
		const finishing = [...sim.model.jobs.values()].some(
			(job) =>
				(job.kind === "erasure" || job.kind === "bulk" || job.kind === "realm") &&
				job.status === "pending" &&
				job.pairs.some((pair) => pair.app === app.index && pair.learner === learner),
		);
		const accepted = { "204 + Location": (a: Answer) => a.status === 204 && a.location !== null };
		const allowed: Record<string, Outcome> = erasing
			? { "409 (being erased) or 404": (a) => a.status === 409 || a.status === 404, ...(erasing.unasked && exists && accepted) }
			: exists
				? accepted
				: finishing
					? { "404, or 409 (its erasure finishing)": (a) => a.status === 404 || a.status === 409 }
					: { "404": status(404) };
		const outcome = check(this.describe(), answer, { ...allowed, frozen: frozen(app) });
		if (outcome === "frozen" || revealRegistrationsErased(sim, app, learner, answer) || answer.status !== 204) return;
		const id = jobIdOf(answer);
		sim.model.jobs.set(id, {
			id,
			kind: "update",
			app: app.index,
			status: "pending",
			pairs: [{ app: app.index, learner }],
			update: { learner, fields, seq: ++sim.model.clock },
			counted: { registrations: 0, tags: 0, learners: new Set() },
		});
		if (this.key !== null) app.keys.set(this.key, { request: identity, status: 204, location: answer.location, learner });
	}
}

// ---------------------------------------------------------------------------------------------------------------
// Erasures

const erasureQuery = (email: string, suppress: boolean) => `?userEmail=${enc(email)}${suppress ? "&suppress=true" : ""}`;

/** Records an accepted erasure request in the model: the job it was answered with covers these pairs. */
/** The action an accepted erasure's audit entry names, by kind (docs/privacy.md, "Audit trail"). */
const ERASURE_ACTIONS = { erasure: "learner.erase", bulk: "learners.erase", realm: "learner.eraseEverywhere" } as const;

/**
 * The answer promises an entry in the audit trail (SPEC §12), naming `action` and the target's ids. An answer that
 * replays an earlier one (an Idempotency-Key's) promises the same entry as that one, once: when the first answer was
 * lost to a fault, the action it did is still recorded (from the shard's audit outbox, by the sweeps that settle the
 * run).
 */
function audited(sim: Sim, answer: Answer, command: string, action: string, target: AuditExpectation["target"]): void {
	const same = (expected: AuditExpectation) =>
		expected.action === action && expected.target.applicationId === target.applicationId && expected.target.jobId === target.jobId;
	if (answer.replayed && sim.model.audited.some(same)) return;
	sim.model.audited.push({ action, target, command });
}

function acceptedErasure(
	sim: Sim,
	answer: Answer,
	kind: "erasure" | "bulk" | "realm",
	app: number | null,
	pairs: { app: number; learner: string }[],
	suppress: boolean,
	command: string,
) {
	const id = jobIdOf(answer);
	const applicationId = app === null ? undefined : sim.model.apps[app]?.appId;
	audited(sim, answer, command, ERASURE_ACTIONS[kind], applicationId === undefined ? { jobId: id } : { applicationId, jobId: id });
	for (const pair of pairs) sim.model.beginErasure(pair.app, pair.learner, suppress);
	const known = sim.model.jobs.get(id);
	if (known) {
		for (const pair of pairs) if (!known.pairs.some((p) => p.app === pair.app && p.learner === pair.learner)) known.pairs.push(pair);
		return;
	}
	const job: JobModel = { id, kind, app, status: "pending", pairs, counted: { registrations: 0, tags: 0, learners: new Set() } };
	sim.model.jobs.set(id, job);
}

class Erase extends Step {
	constructor(
		readonly app: number,
		readonly learner: number,
		readonly suppress: boolean,
		readonly privileged: boolean,
		readonly key: string | null,
		readonly fault: Fault | null,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app));
	describe = () =>
		`erase(app ${this.app}, learner ${this.learner}${this.suppress ? ", suppress" : ""}${this.privileged ? "" : ", as a member"}${this.key ? `, key ${this.key}` : ""}) ${describeFault(this.fault)}`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const learner = learnerOf(sim, this.learner);
		const path = `/learner/${enc(learner)}/delete-information${erasureQuery(this.privileged ? sim.admin : sim.member, this.suppress)}`;
		const identity = requestIdentity("POST", path, null);
		const keyed = this.key === null ? null : keyedOutcome(app.keys.get(this.key), identity);
		const answer = await sim.world.request("POST", path, { auth: app.auth, key: this.key ?? undefined, fault: this.fault });
		jobRequested(app, answer);
		if (keyed && keyAnswered(sim, app, this.key as string, keyed, answer, this.describe())) return;
		const exists = sim.model.exists(app, learner);
		const erasing = sim.model.pendingErasure(app.index, learner);
		const found: Record<string, Outcome> = this.privileged ? { "204 + Location": (a) => a.status === 204 && a.location !== null } : { "403": status(403) };
		const allowed: Record<string, Outcome> = erasing
			? { ...found, "404 (erased meanwhile)": status(404) }
			: exists
				? found
				: { "404": status(404) };
		const outcome = check(this.describe(), answer, { ...allowed, frozen: frozen(app) });
		if (outcome === "frozen" || revealErasure(sim, app, learner, answer) || answer.status !== 204) return;
		acceptedErasure(sim, answer, "erasure", app.index, [{ app: app.index, learner }], this.suppress, this.describe());
		if (this.key !== null) app.keys.set(this.key, { request: identity, status: 204, location: answer.location, learner: null });
	}
}

class BulkErase extends Step {
	constructor(
		readonly app: number,
		readonly learners: number[],
		readonly suppress: boolean,
		readonly key: string | null,
		readonly fault: Fault | null,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app)) && this.learners.length > 0;
	describe = () =>
		`bulkErase(app ${this.app}, learners ${this.learners}${this.suppress ? ", suppress" : ""}${this.key ? `, key ${this.key}` : ""}) ${describeFault(this.fault)}`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const ids = [...new Set(this.learners.map((i) => learnerOf(sim, i)))];
		const path = `/learners/delete-information${erasureQuery(sim.admin, this.suppress)}`;
		const body = { ids };
		const identity = requestIdentity("POST", path, body);
		const keyed = this.key === null ? null : keyedOutcome(app.keys.get(this.key), identity);
		const answer = await sim.world.request("POST", path, { auth: app.auth, body, key: this.key ?? undefined, fault: this.fault });
		jobRequested(app, answer);
		if (keyed && keyAnswered(sim, app, this.key as string, keyed, answer, this.describe())) return;
		// A learner whose erasure is pending is known, registrations or not: the bulk joins its erasure (as the single
		// route does), unless that erasure has completed meanwhile.
		const unknown = ids.filter((id) => !sim.model.exists(app, id) && !sim.model.pendingErasure(app.index, id));
		const maybeGone = ids.filter((id) => sim.model.pendingErasure(app.index, id));
		const allowed: Record<string, Outcome> =
			unknown.length > 0
				? { "404 listing the unknown ids": status(404) }
				: maybeGone.length > 0
					? { "204 or 404": (a) => (a.status === 204 && a.location !== null) || a.status === 404 }
					: { "204 + Location": (a) => a.status === 204 && a.location !== null };
		const outcome = check(this.describe(), answer, { ...allowed, frozen: frozen(app) });
		if (outcome === "frozen") return;
		if (answer.status === 404) {
			const listed = [...messageOf(answer).matchAll(/\[([^\]]*)\]/g)].map((match) => match[1]);
			for (const id of listed) if (id !== undefined && maybeGone.includes(id)) sim.model.finishErasure(app, id, "completed");
			return;
		}
		acceptedErasure(sim, answer, "bulk", app.index, ids.map((learner) => ({ app: app.index, learner })), this.suppress, this.describe());
		if (this.key !== null) app.keys.set(this.key, { request: identity, status: 204, location: answer.location, learner: null });
	}
}

class RealmErase extends Step {
	constructor(
		readonly learner: number,
		readonly suppress: boolean,
		readonly privileged: boolean,
		readonly key: string | null,
		readonly fault: Fault | null,
	) {
		super();
	}
	check = () => true;
	describe = () =>
		`realmErase(learner ${this.learner}${this.suppress ? ", suppress" : ""}${this.privileged ? "" : ", as a member"}${this.key ? `, key ${this.key}` : ""}) ${describeFault(this.fault)}`;
	async exec(sim: Sim) {
		const learner = learnerOf(sim, this.learner);
		const path = `/appManagement/learners/${enc(learner)}/delete-information${erasureQuery(this.privileged ? sim.admin : sim.member, this.suppress)}`;
		const identity = requestIdentity("POST", path, null);
		// Keys of the management API are the realm's: shared by every run, so each run's keys carry its number.
		const key = this.key === null ? undefined : `${this.key}.${sim.world.run}`;
		const keyed = key === undefined ? null : keyedOutcome(sim.model.realmKeys.get(key), identity);
		// Which applications hold the learner is decided when the request is accepted: first what has finished since.
		await settleErasuresOf(sim, learner);
		const answer = await sim.world.request("POST", path, { auth: MANAGEMENT, key, fault: this.fault });
		for (const app of sim.model.liveApps()) jobRequested(app, answer);
		if (keyed) {
			check(this.describe(), answer, keyed);
			return;
		}
		const apps = sim.model.liveApps();
		// An application where the learner's erasure is pending holds it for an erasure, registrations or not (the
		// realm-wide erasure joins that erasure), as it does for a single erasure.
		const holders = apps.filter((app) => sim.model.exists(app, learner) || sim.model.pendingErasure(app.index, learner));
		const certain = holders.filter((app) => !sim.model.pendingErasure(app.index, learner));
		const found: Record<string, Outcome> = this.privileged ? { "204 + Location": (a) => a.status === 204 && a.location !== null } : { "403": status(403) };
		const allowed: Record<string, Outcome> =
			holders.length === 0 ? { "404": status(404) } : certain.length === 0 ? { ...found, "404 (erased meanwhile)": status(404) } : found;
		const outcome = check(this.describe(), answer, allowed);
		if (answer.status === 404) {
			for (const app of holders) sim.model.finishErasure(app, learner, "completed");
			return;
		}
		if (outcome === "403" || answer.status !== 204) return;
		acceptedErasure(sim, answer, "realm", null, holders.map((app) => ({ app: app.index, learner })), this.suppress, this.describe());
		for (const app of certain) {
			const erasure = sim.model.pendingErasure(app.index, learner);
			const latest = await latestErasureOnShard(sim, app, learner);
			if (erasure && (latest === null || latest.status === "completed" || latest.status === "failed")) erasure.unasked = { before: latest?.id ?? null };
		}
		if (key !== undefined) sim.model.realmKeys.set(key, { request: identity, status: 204, location: answer.location, learner: null });
	}
}

class LiftSuppression extends Step {
	constructor(
		readonly app: number,
		readonly learner: number,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app));
	describe = () => `liftSuppression(app ${this.app}, learner ${this.learner})`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const learner = learnerOf(sim, this.learner);
		const answer = await sim.world.request("DELETE", `/learner/${enc(learner)}/suppression`, { auth: app.auth });
		const pending = sim.model.pendingErasure(app.index, learner);
		const allowed: Record<string, Outcome> = app.suppressed.has(learner)
			? { "204": status(204) }
			: pending?.suppress
				? { "204 or 404 (the erasure completed meanwhile)": (a) => a.status === 204 || a.status === 404 }
				: { "404 (not suppressed)": status(404) };
		// While an erasure of the learner is pending on the shard, the suppression is not lifted (409), whatever an
		// earlier erasure left: the pending one may have asked for it too.
		if (pending && !pending.unasked) allowed["409 (its erasure is pending)"] = status(409);
		const outcome = check(this.describe(), answer, { ...allowed, frozen: frozen(app) });
		if (outcome === "frozen" || answer.status === 409) return;
		if (answer.status === 204 && pending && !pending.unasked) {
			// Lifted only with no erasure pending: the erasure completed (it suppressed the learner), and the
			// suppression is now lifted.
			sim.model.finishErasure(app, learner, "completed");
		}
		if (answer.status === 204) {
			app.suppressed.delete(learner);
			audited(sim, answer, this.describe(), "learner.suppression.lift", { applicationId: app.appId });
		}
	}
}

// ---------------------------------------------------------------------------------------------------------------
// Privacy beyond erasure (SPEC §12): exports and retention

/** Delivers the messages of one job, and only those, until none is left (the rest of the queue waits). */
async function runAlone(sim: Sim, jobId: string): Promise<void> {
	for (let round = 0; round < 500; round++) {
		const index = sim.world.queue.findIndex((message) => (message.body as { jobId?: string }).jobId === jobId);
		if (index < 0) return;
		await sim.world.deliver(index, { fault: null, duplicate: false });
	}
}

interface ExportedDocument {
	learnerId: string;
	learner: Record<string, unknown>;
	registrations: { id: string; courseId: string; learner: Record<string, unknown>; tags: string[] }[];
	jobs: { id: string }[];
}

/** The learner as the model holds it, in an export document's terms. */
function expectedExport(sim: Sim, app: AppModel, learner: string) {
	const registrations = sim.model.registrationsOf(app, learner);
	const current: Record<string, string> = {};
	const versions: Record<string, number> = {};
	for (const registration of registrations) {
		for (const name of LEARNER_FIELDS) {
			const field = registration[name];
			if (field.value === null || field.version < (versions[name] ?? -1)) continue;
			versions[name] = field.version;
			current[name] = field.value;
		}
	}
	return {
		learner: { id: learner, ...current, tags: app.learnerTags.get(learner) ?? [], registrationCount: registrations.length, suppressed: app.suppressed.has(learner) },
		registrations: registrations.map((registration) => {
			const details: Record<string, string> = { id: registration.learner };
			for (const name of LEARNER_FIELDS) if (registration[name].value !== null) details[name] = registration[name].value as string;
			return { id: registration.id, courseId: registration.course, learner: details, tags: registration.tags };
		}),
	};
}

/**
 * A subject-access export. Run alone to its end (`alone`), when nothing pending can change the learner meanwhile, its
 * document must hold exactly what the model holds; left in the queue, it interleaves with everything else, and only
 * its fate is checked (gone once the learner is erased: ./invariants.ts).
 */
class Export extends Step {
	constructor(
		readonly app: number,
		readonly learner: number,
		readonly known: boolean,
		readonly privileged: boolean,
		readonly alone: boolean,
		readonly fault: Fault | null,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app));
	describe = () =>
		`export(app ${this.app}, ${this.known ? "held learner" : "learner"} ${this.learner}${this.privileged ? "" : ", as a member"}${this.alone ? ", run alone" : ""}) ${describeFault(this.fault)}`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const learner = learnerIn(sim, app, this.learner, this.known);
		const path = `/learner/${enc(learner)}/export?userEmail=${enc(this.privileged ? sim.admin : sim.member)}`;
		const answer = await sim.world.request("POST", path, { auth: app.auth, fault: this.fault });
		jobRequested(app, answer);
		const exists = sim.model.exists(app, learner);
		const erasing = sim.model.pendingErasure(app.index, learner);
		const accepted: Outcome = (a) => a.status === 204 && a.location !== null;
		const allowed: Record<string, Outcome> = erasing
			? {
					[this.privileged ? "409 (being erased) or 404" : "403 or 404"]: (a) => a.status === (this.privileged ? 409 : 403) || a.status === 404,
					...(erasing.unasked && exists && this.privileged && { "204 + Location (its erasure not asked yet)": accepted }),
				}
			: !exists
				? { "404": status(404) }
				: this.privileged
					? { "204 + Location": accepted }
					: { "403": status(403) };
		const outcome = check(this.describe(), answer, { ...allowed, frozen: frozen(app) });
		if (outcome === "frozen" || revealRegistrationsErased(sim, app, learner, answer) || answer.status !== 204) return;
		const id = jobIdOf(answer);
		audited(sim, answer, this.describe(), "learner.export", { applicationId: app.appId, jobId: id });
		// A request while one is pending is answered with that one, which may have gathered the learner earlier.
		const joined = sim.model.jobs.get(id)?.status === "pending";
		if (!sim.model.jobs.has(id)) {
			sim.model.jobs.set(id, {
				id,
				kind: "export",
				app: app.index,
				status: "pending",
				pairs: [{ app: app.index, learner }],
				counted: { registrations: 0, tags: 0, learners: new Set() },
				exported: { gone: false, uncertain: false },
			});
		}
		const updating = [...sim.model.jobs.values()].some(
			(job) => job.kind === "update" && job.status === "pending" && job.app === app.index && job.update?.learner === learner,
		);
		const uncertain = app.uncertainDetails.has(learner) || sim.model.registrationsOf(app, learner).some((registration) => app.uncertainRegistrations.has(registration.id));
		if (!this.alone || joined || updating || uncertain || app.moving !== null || erasing) return;
		// Its message may have been lost (loseNextSend): the sweeper sends it again once it is stale.
		for (let attempt = 0; attempt < 3 && sim.model.jobs.get(id)?.status !== "completed"; attempt++) {
			if (attempt > 0) await sim.world.sweep(sim.world.clockLead / 60_000 + 11);
			await runAlone(sim, id);
			await observe(sim);
		}
		if (sim.model.jobs.get(id)?.status !== "completed") violation(this.describe(), answer, `export ${id} to complete when run alone`);
		const fetched = await sim.world.request("GET", `/jobs/${id}/export`, { auth: app.auth });
		const document = (fetched.body as { document?: ExportedDocument } | null)?.document;
		if (fetched.status !== 200 || !document) violation(this.describe(), fetched, "200 and the export's document");
		audited(sim, fetched, this.describe(), "export.download", { applicationId: app.appId, jobId: id });
		const expected = expectedExport(sim, app, learner);
		const actual = {
			learner: document?.learner,
			registrations: document?.registrations.map(({ id: registration, courseId, learner: details, tags }) => ({ id: registration, courseId, learner: details, tags })),
		};
		// Compared as canonical JSON: the order of an object's keys means nothing; the order of arrays does.
		if (canonicalJson(actual as unknown as Json) !== canonicalJson(expected as unknown as Json)) {
			throw new SimError(`${this.describe()}: the export holds ${JSON.stringify(actual)}, the model says ${JSON.stringify(expected)}`);
		}
		const named = new Set(document?.jobs.map((job) => job.id));
		for (const job of sim.model.jobs.values()) {
			const namesLearner = (job.kind === "update" || job.kind === "erasure" || job.kind === "export") && job.pairs.some((pair) => pair.app === app.index && pair.learner === learner);
			if (namesLearner && job.app === app.index && !named.has(job.id)) {
				throw new SimError(`${this.describe()}: the export does not list job ${job.id} (${job.kind}), which named the learner`);
			}
		}
	}
}

/**
 * A realm-wide subject-access export (SPEC §12): one realm job asking every application that holds the learner for an
 * export of its own. Run alone to its end, when nothing pending can change the learner in any of them, its document
 * must hold one application document per holder, each exactly what the model holds there; left in the queue, only
 * its fate is checked (whole or not at all: gone once the learner is erased in any of its applications).
 */
class RealmExport extends Step {
	constructor(
		readonly learner: number,
		readonly privileged: boolean,
		readonly alone: boolean,
		readonly fault: Fault | null,
	) {
		super();
	}
	check = () => true;
	describe = () =>
		`realmExport(learner ${this.learner}${this.privileged ? "" : ", as a member"}${this.alone ? ", run alone" : ""}) ${describeFault(this.fault)}`;
	async exec(sim: Sim) {
		const learner = learnerOf(sim, this.learner);
		const path = `/appManagement/learners/${enc(learner)}/export?userEmail=${enc(this.privileged ? sim.admin : sim.member)}`;
		const answer = await sim.world.request("POST", path, { auth: MANAGEMENT, fault: this.fault });
		for (const app of sim.model.liveApps()) jobRequested(app, answer);
		const holders = sim.model.liveApps().filter((app) => sim.model.exists(app, learner));
		// Where the learner is being erased it may be gone already (then not a holder) or not yet.
		const certain = holders.filter((app) => !sim.model.pendingErasure(app.index, learner));
		const accepted: Record<string, Outcome> = { "204 + Location": (a) => a.status === 204 && a.location !== null };
		// Where the learner's erasure is pending (asked there: a realm-wide one may not have asked yet) the realm's
		// export, whole or not at all, cannot be made: 409.
		const found: Record<string, Outcome> = !this.privileged
			? { "403": status(403) }
			: certain.length < holders.length
				? { ...accepted, "409 (being erased)": status(409) }
				: accepted;
		const allowed: Record<string, Outcome> =
			holders.length === 0 ? { "404": status(404) } : certain.length === 0 ? { ...found, "404 (erased meanwhile)": status(404) } : found;
		check(this.describe(), answer, allowed);
		if (answer.status !== 204) return;
		const id = jobIdOf(answer);
		audited(sim, answer, this.describe(), "learner.exportEverywhere", { jobId: id });
		// Which applications its document holds is known once it has run alone: until then it names none, and its fate
		// is not checked.
		const job: JobModel = {
			id,
			kind: "export",
			app: null,
			status: "pending",
			pairs: [],
			counted: { registrations: 0, tags: 0, learners: new Set() },
			exported: { gone: false, uncertain: true },
		};
		sim.model.jobs.set(id, job);
		const busy = (app: AppModel) =>
			app.moving !== null ||
			app.uncertainDetails.has(learner) ||
			sim.model.registrationsOf(app, learner).some((registration) => app.uncertainRegistrations.has(registration.id)) ||
			[...sim.model.jobs.values()].some(
				(other) =>
					other.status === "pending" &&
					other.id !== id &&
					(other.kind === "update" || other.kind === "export") &&
					(other.app === app.index || other.pairs.some((pair) => pair.app === app.index)) &&
					(other.update?.learner === learner || other.pairs.some((pair) => pair.learner === learner)),
			);
		// Another realm-wide export still pending may have asked the same applications already: this one's would join
		// what that one gathered.
		const otherRealmExport = [...sim.model.jobs.values()].some((other) => other.kind === "export" && other.app === null && other.status === "pending" && other.id !== id);
		if (!this.alone || holders.length !== certain.length || otherRealmExport || holders.some(busy)) return;
		// The realm job and its applications' exports (ids fixed by the realm job's), and nothing else, until it ends.
		const children = new Set(await Promise.all(holders.map((app) => childJobId(id, app.appId, "realm-export"))));
		const ours = (body: unknown) => {
			const jobId = (body as { jobId?: string }).jobId ?? "";
			return jobId === id || children.has(jobId);
		};
		for (let round = 0; round < 200 && sim.model.jobs.get(id)?.status === "pending"; round++) {
			const child = sim.world.queue.findIndex((message) => ours(message.body) && (message.body as { jobId?: string }).jobId !== id);
			const index = child >= 0 ? child : sim.world.queue.findIndex((message) => ours(message.body));
			// A child's message may have been lost (loseNextSend) while the realm job waits for it: every other round
			// without one, the sweeper (minutes on) sends it again.
			if (index < 0 || (child < 0 && round % 2 === 1)) await sim.world.sweep(sim.world.clockLead / 60_000 + 11);
			else await sim.world.deliver(index, { fault: null, duplicate: false });
			await observe(sim);
		}
		if (sim.model.jobs.get(id)?.status !== "completed") violation(this.describe(), answer, `realm export ${id} to complete when run alone`);
		const fetched = await sim.world.request("GET", `/jobs/${id}/export`, { auth: MANAGEMENT });
		const document = (fetched.body as { document?: { kind: string; applications: (ExportedDocument & { applicationId: string })[] } } | null)?.document;
		if (fetched.status !== 200 || document?.kind !== "learner-export-realm") violation(this.describe(), fetched, "200 and the realm's export document");
		audited(sim, fetched, this.describe(), "export.download", { jobId: id });
		const actual = Object.fromEntries(
			(document?.applications ?? []).map((part) => [
				part.applicationId,
				{
					learner: part.learner,
					registrations: part.registrations.map(({ id: registration, courseId, learner: details, tags }) => ({ id: registration, courseId, learner: details, tags })),
				},
			]),
		);
		const expected = Object.fromEntries(holders.map((app) => [app.appId, expectedExport(sim, app, learner)]));
		// Compared as canonical JSON, as a single export's: the order of an object's keys means nothing, at any depth.
		const canonical = (value: Record<string, unknown>) => canonicalJson(value as unknown as Json);
		if (canonical(actual) !== canonical(expected)) {
			throw new SimError(`${this.describe()}: the realm's export holds ${canonical(actual)}, the model says ${canonical(expected)}`);
		}
		job.pairs = holders.map((app) => ({ app: app.index, learner }));
		job.exported = { gone: false, uncertain: false };
	}
}

/**
 * A retention policy at work: the application's policy is set to one day, the learner's last write made two days old
 * (as if nothing had been written to it since), and a sweep runs. The learner, if it exists and is not being erased,
 * must get an erasure of its own, requested by the policy; any other learner none (their writes are recent). Its last
 * write is then put back to now, so that no later sweep finds it inactive.
 */
class Retain extends Step {
	constructor(
		readonly app: number,
		readonly learner: number,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app));
	describe = () => `retain(app ${this.app}, held learner ${this.learner}: inactive for 2 days, policy 1 day)`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const learner = learnerIn(sim, app, this.learner, true);
		const policy = await sim.world.request("PUT", `/appManagement/applications/${app.appId}/retention`, { auth: MANAGEMENT, body: { learnerInactiveDays: 1 } });
		check(this.describe(), policy, { "200": status(200) });
		audited(sim, policy, this.describe(), "application.retention.set", { applicationId: app.appId });
		const placement = await sim.world.placement(app.appId);
		const shard = shardDatabase(env, placement?.shard ?? app.shard);
		const stamp = (ms: number) =>
			shard
				.prepare("UPDATE learner_activity SET last_write_at = ?3 WHERE app_id = ?1 AND learner_id = ?2")
				.bind(app.appId, learner, new Date(ms).toISOString())
				.run();
		await stamp(Date.now() - 2 * 24 * 60 * 60_000);
		const known = new Set(sim.model.jobs.keys());
		// A sweep enforces RETENTION_APPLICATIONS_PER_SWEEP policies, taken in turn: with more in the realm (a shrinking
		// search's runs leave theirs), this application's comes within ceil(n / that) sweeps, 5 minutes apart.
		const policies = await env.DB.prepare(
			"SELECT count(*) AS n FROM retention_policies p JOIN applications a ON a.id = p.app_id WHERE a.deleted_at IS NULL",
		).first<{ n: number }>();
		const sweeps = Math.max(1, Math.ceil((policies?.n ?? 0) / RETENTION_APPLICATIONS_PER_SWEEP));
		let found: { id: string; learner: string }[] = [];
		for (let sweep = 0; sweep < sweeps && found.length === 0; sweep++) {
			await sim.world.sweep(sweep === 0 ? 0 : sim.world.clockLead / 60_000 + 5);
			found = await retentionErasures(sim, app, known);
		}
		await stamp(Date.now());
		const certain = sim.model.exists(app, learner) && !sim.model.pendingErasure(app.index, learner) && app.moving === null
			&& !sim.model.registrationsOf(app, learner).some((registration) => app.uncertainRegistrations.has(registration.id));
		const others = found.filter((entry) => entry.learner !== learner);
		if (others.length > 0) throw new SimError(`${this.describe()}: the policy erased learners written to within a day: ${JSON.stringify(others)}`);
		if (certain && found.length !== 1) throw new SimError(`${this.describe()}: the policy started ${found.length} erasures of the inactive learner, not 1`);
		for (const entry of found) {
			// Its actor is the policy: the sweep that started the erasure appended the entry.
			sim.model.audited.push({ action: "learner.erase", target: { applicationId: app.appId, jobId: entry.id }, command: this.describe() });
			sim.model.beginErasure(app.index, learner, false);
			sim.model.jobs.set(entry.id, {
				id: entry.id,
				kind: "erasure",
				app: app.index,
				status: "pending",
				pairs: [{ app: app.index, learner }],
				counted: { registrations: 0, tags: 0, learners: new Set() },
			});
		}
		await observe(sim);
	}
}

/** The erasures the retention policy started in the application that the model does not know yet, with their learner. */
async function retentionErasures(sim: Sim, app: AppModel, known: Set<string>): Promise<{ id: string; learner: string }[]> {
	const placement = await sim.world.placement(app.appId);
	const { results } = await shardDatabase(env, placement?.shard ?? app.shard)
		.prepare("SELECT id, learner_hash FROM jobs WHERE app_id = ?1 AND requested_by = 'retention-policy'")
		.bind(app.appId)
		.all<{ id: string; learner_hash: string }>();
	const hashes = new Map(await Promise.all(sim.learners.map(async (learner) => [await learnerHash(env, app.appId, learner), learner] as const)));
	return results.filter((row) => !known.has(row.id)).map((row) => ({ id: row.id, learner: hashes.get(row.learner_hash) ?? `(unknown hash ${row.learner_hash})` }));
}

// ---------------------------------------------------------------------------------------------------------------
// Applications

class CreateApp extends Step {
	constructor(readonly region: Region) {
		super();
	}
	check = (sim: Readonly<Sim>) => sim.model.apps.length < sim.maxApps;
	describe = () => `createApp(${this.region})`;
	async exec(sim: Sim) {
		const created = await createApplication(this.region, `sim-${sim.world.run}-${sim.model.apps.length}`);
		sim.model.apps.push(newApp(sim.model.apps.length, created, this.region));
		for (const action of ["application.create", "credential.create"]) sim.model.audited.push({ action, target: { applicationId: created.appId }, command: this.describe() });
	}
}

export function newApp(index: number, created: { appId: string; auth: string; shard: string }, region: Region): AppModel {
	return {
		index,
		appId: created.appId,
		auth: created.auth,
		region,
		shard: created.shard,
		deleted: false,
		allowDelete: true,
		moving: null,
		jobRequests: 0,
		erasuresBegun: 0,
		registrations: new Map(),
		learnerTags: new Map(),
		suppressed: new Set(),
		keys: new Map(),
		uncertainDetails: new Set(),
		uncertainRegistrations: new Set(),
	};
}

class DeleteApp extends Step {
	constructor(readonly app: number) {
		super();
	}
	// One application at least stays, or the run has nothing left to do.
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app)) && sim.model.liveApps().length > 1;
	describe = () => `deleteApp(app ${this.app})`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const answer = await sim.world.request("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		const outcome = check(
			this.describe(),
			answer,
			app.allowDelete
				? { "204": status(204), ...(app.moving !== null && { "409 (a move is unfinished)": status(409) }) }
				: { "409 (allowDelete is false)": status(409) },
		);
		if (outcome !== "204") return;
		audited(sim, answer, this.describe(), "application.delete", { applicationId: app.appId });
		sim.model.deleteApp(app);
		sim.model.jobs.set(jobIdOf(answer), {
			id: jobIdOf(answer),
			kind: "deleteApp",
			app: null,
			status: "pending",
			pairs: [],
			counted: { registrations: 0, tags: 0, learners: new Set() },
		});
	}
}

/** PUT /appManagement/applications/{id} { allowDelete }: guards the application against deletion, or lifts the guard. */
class GuardApp extends Step {
	constructor(
		readonly app: number,
		readonly allowDelete: boolean,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app));
	describe = () => `guardApp(app ${this.app}, allowDelete ${this.allowDelete})`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const answer = await sim.world.request("PUT", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT, body: { allowDelete: this.allowDelete } });
		check(this.describe(), answer, { "204": status(204) });
		audited(sim, answer, this.describe(), "application.update", { applicationId: app.appId });
		app.allowDelete = this.allowDelete;
	}
}

class Move extends Step {
	constructor(
		readonly app: number,
		readonly shard: number,
		readonly key: string | null,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app));
	describe = () => `move(app ${this.app}, shard +${this.shard}${this.key ? `, key ${this.key}` : ""})`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		// The target counts on from the application's shard (+0 the next one, one past the last its own), not from the
		// list: where an application is created depends on the applications before it, so a replayed run, which starts
		// on fresher databases, moves it the same way.
		const from = sim.shards.findIndex((shard) => shard.name === app.shard);
		const target = sim.shards[(from + 1 + this.shard) % sim.shards.length] as { name: string; region: Region };
		const body = { shard: target.name, allowRegionChange: true };
		const path = `/appManagement/applications/${app.appId}/move`;
		const identity = requestIdentity("POST", path, body);
		const key = this.key === null ? undefined : `${this.key}.${sim.world.run}`;
		const keyed = key === undefined ? null : keyedOutcome(sim.model.realmKeys.get(key), identity);
		const answer = await sim.world.request("POST", path, { auth: MANAGEMENT, body, key });
		if (keyed) {
			check(this.describe(), answer, keyed);
			return;
		}
		let allowed: Record<string, Outcome>;
		// Once the move under way has flipped the placement (its source's rows still to delete), the application is
		// on the target already.
		const there = (a: Answer) => a.status === 409 && /already/.test(messageOf(a)) && !/being moved/.test(messageOf(a));
		if (app.moving !== null) {
			allowed =
				app.moving === target.name
					? { "204 (the move under way)": status(204), "409 (flipped: there already)": there }
					: { "409 (moving elsewhere)": status(409) };
		} else if (app.shard === target.name) allowed = { "409 (already there)": status(409) };
		else allowed = { "204 + Location": (a) => a.status === 204 && a.location !== null };
		check(this.describe(), answer, allowed);
		if (answer.status !== 204) return;
		const id = jobIdOf(answer);
		if (!sim.model.jobs.has(id)) {
			// A request answered with the move already under way changed nothing: that move's entry stands for it.
			audited(sim, answer, this.describe(), "application.move", { applicationId: app.appId, jobId: id });
			sim.model.jobs.set(id, {
				id,
				kind: "move",
				app: app.index,
				status: "pending",
				pairs: [],
				target: target.name,
				counted: { registrations: 0, tags: 0, learners: new Set() },
			});
		}
		app.moving = target.name;
		if (key !== undefined) sim.model.realmKeys.set(key, { request: identity, status: 204, location: answer.location, learner: null });
	}
}

// ---------------------------------------------------------------------------------------------------------------
// Reads

class ReadLearner extends Step {
	constructor(
		readonly app: number,
		readonly learner: number,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app));
	describe = () => `readLearnerTags(app ${this.app}, learner ${this.learner})`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const learner = learnerOf(sim, this.learner);
		const answer = await sim.world.request("GET", `/learner/${enc(learner)}/tags`, { auth: app.auth });
		const exists = sim.model.exists(app, learner);
		const expected = { tags: app.learnerTags.get(learner) ?? [] };
		const same = (a: Answer) => a.status === 200 && JSON.stringify(a.body) === JSON.stringify(expected);
		const allowed: Record<string, Outcome> = !exists
			? { "404": status(404) }
			: sim.model.pendingErasure(app.index, learner)
				? { [`200 ${JSON.stringify(expected)} or 404`]: (a) => same(a) || a.status === 404 }
				: { [`200 ${JSON.stringify(expected)}`]: same };
		check(this.describe(), answer, allowed);
		revealRegistrationsErased(sim, app, learner, answer);
	}
}

// ---------------------------------------------------------------------------------------------------------------
// The operator console, through its own forms: ids and tags go to the API exactly as typed

/** The run's console session, signed in on first use. */
async function consoleSession(sim: Sim): Promise<ConsoleSession> {
	sim.console ??= await session();
	return sim.console;
}

/**
 * A console POST as the model judges it: what the API would have answered (the status of the refusal the console
 * shows, or 303 with the job it started), reading the page the console redirected to.
 */
async function consoleAnswer(sim: Sim, response: Response): Promise<Answer> {
	const outcome = await outcomeOf(await consoleSession(sim), response);
	return { status: outcome.status, body: null, location: outcome.location, replayed: false, retried: false };
}

/**
 * The console's erasure of one learner (SPEC §10: safe by construction): its form is reviewed (the console reads the
 * learner's registrations through the API and shows what will be erased), then confirmed, and only then asked of the
 * API. A learner the review does not find is refused there (404); anything the API refuses at the confirmation
 * (erased meanwhile, a move's freeze) comes back to the form with the API's status.
 */

/** Posts a console form in the run's session, under the run's settings (the console's API calls run with them). */
async function submitForm(sim: Sim, path: string, fields: Record<string, string>): Promise<Response> {
	const s = await consoleSession(sim);
	return fetchConsole(post(path, { ...fields, csrf: s.csrf }, { cookie: s.cookie }), sim.world.bindings());
}

class ConsoleErase extends Step {
	constructor(
		readonly app: number,
		readonly learner: number,
		readonly suppress: boolean,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app));
	describe = () => `console.erase(app ${this.app}, learner ${this.learner}${this.suppress ? ", suppress" : ""})`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const learner = learnerOf(sim, this.learner);
		const reviewed = await submitForm(sim, "/erasures/learner", {
			appId: app.appId,
			learnerId: learner,
			userEmail: sim.admin,
			...(this.suppress && { suppress: "true" }),
		});
		sim.world.tally.requests++;
		const confirming = (reviewed.headers.get("Location") ?? "").startsWith("/console/confirm?");
		const response = confirming ? await submitForm(sim, "/confirm", { r: draftOf(reviewed), confirm: "true" }) : reviewed;
		const answer = await consoleAnswer(sim, response);
		jobRequested(app, answer);
		const exists = sim.model.exists(app, learner);
		const started = (a: Answer) => a.status === 303 && a.location !== null;
		const allowed: Record<string, Outcome> = sim.model.pendingErasure(app.index, learner)
			? { "303 to the job": started, "404 (its registrations erased meanwhile)": status(404) }
			: exists
				? { "303 to the job": started }
				: { "404": status(404) };
		const outcome = check(this.describe(), answer, { ...allowed, frozen: (a) => app.moving !== null && a.status === 503 });
		// The console opens the learner before erasing it: its 404 says the registrations are gone, not that the erasure
		// completed (it may be waiting on the learner's exports).
		if (outcome === "frozen" || revealRegistrationsErased(sim, app, learner, answer) || answer.status !== 303) return;
		acceptedErasure(sim, answer, "erasure", app.index, [{ app: app.index, learner }], this.suppress, this.describe());
	}
}

class ConsoleTags extends Step {
	constructor(
		readonly app: number,
		readonly learner: number,
		readonly tags: number[],
		readonly remove: boolean,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app)) && this.tags.length > 0;
	describe = () => `console.${this.remove ? "removeTags" : "addTags"}(app ${this.app}, learner ${this.learner}, tags ${this.tags})`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const learner = learnerOf(sim, this.learner);
		const tags = tagsOf(sim, this.tags);
		const path = `/applications/${app.appId}/learners/${enc(learner)}/${this.remove ? "tags/delete" : "tags"}`;
		const added = this.remove || !sim.model.exists(app, learner) ? 0 : tags.filter((tag) => !(app.learnerTags.get(learner) ?? []).includes(tag)).length;
		const overQuota = quotaRefusal(sim, app, added);
		const rowsBefore = sim.model.storedRows(app).least;
		const response = await submitForm(sim, path, { tags: tags.join(",") });
		sim.world.tally.requests++;
		// 303 to the learner's page: done (200, its notice says so), or refused (the API's status beside the field).
		const answer = await consoleAnswer(sim, response);
		const done = (a: Answer) => a.status === 200;
		const exists = sim.model.exists(app, learner);
		const allowed: Record<string, Outcome> = !exists
			? { "404": status(404) }
			: sim.model.pendingErasure(app.index, learner)
				? { "done or 404": (a) => done(a) || a.status === 404 }
				: { done };
		// The console answers the API's refusal as its page's status; its text is the page's, not checked here.
		const refused: Record<string, Outcome> = Object.keys(overQuota).length > 0 ? { "403 (row quota)": status(403) } : {};
		const outcome = check(this.describe(), answer, { ...allowed, ...refused, frozen: (a) => app.moving !== null && a.status === 503 });
		if (done(answer)) withinQuota(sim, app, added, rowsBefore, this.describe(), answer);
		if (outcome === "frozen" || revealRegistrationsErased(sim, app, learner, answer) || !done(answer)) return;
		const current = app.learnerTags.get(learner) ?? [];
		app.learnerTags.set(learner, this.remove ? current.filter((tag) => !tags.includes(tag)) : union(current, tags));
	}
}

/**
 * The job lists (SPEC §10): every page of an application's GET /jobs, and of its GET /appManagement/jobs?appId=
 * (its moves too). Each finished job the model knows of the application appears once, with the status the model
 * saw; the list is newest first and names no other application. A single erasure that joined one of a bulk erasure's
 * own (the learner's erasure already pending) is that bulk's child, which lists leave out.
 */
class ListJobs extends Step {
	constructor(readonly app: number) {
		super();
	}
	check = (sim: Readonly<Sim>) => Boolean(appOf(sim, this.app));
	describe = () => `listJobs(app ${this.app})`;
	async exec(sim: Sim) {
		const app = appOf(sim, this.app) as AppModel;
		const everyPage = async (path: string, auth: string) => {
			const listed: { id: string; status: string; createdDate: string; applicationId?: string }[] = [];
			for (let next: string | null = path; next !== null; ) {
				const answer = await sim.world.request("GET", next, { auth });
				if (answer.status !== 200) violation(this.describe(), answer, `200 for GET ${next}`);
				const page = answer.body as { jobs: typeof listed; more?: string };
				listed.push(...page.jobs);
				next = page.more ? `${path.split("?")[0]}?more=${enc(page.more)}` : null;
			}
			return listed;
		};
		const own = await everyPage("/jobs", app.auth);
		const realm = await everyPage(`/appManagement/jobs?appId=${enc(app.appId)}`, MANAGEMENT);
		for (const [name, listed] of [
			["GET /jobs", own],
			["GET /appManagement/jobs", realm],
		] as const) {
			const ids = listed.map((job) => job.id);
			if (new Set(ids).size !== ids.length) throw new SimError(`${this.describe()}: ${name} lists a job twice`);
			if (listed.some((job) => job.applicationId !== app.appId)) throw new SimError(`${this.describe()}: ${name} lists another application's job`);
			for (let i = 1; i < listed.length; i++) {
				if ((listed[i - 1]?.createdDate ?? "") < (listed[i]?.createdDate ?? "")) throw new SimError(`${this.describe()}: ${name} is not newest first`);
			}
		}
		const bulkLearners = new Set(
			[...sim.model.jobs.values()].filter((job) => job.kind === "bulk" && job.app === app.index).flatMap((job) => job.pairs.map((pair) => pair.learner)),
		);
		for (const job of sim.model.jobs.values()) {
			if (job.status === "pending" || job.app !== app.index) continue;
			const lists: [string, typeof own][] =
				job.kind === "move" ? [["GET /appManagement/jobs", realm]] : job.kind === "deleteApp" || job.kind === "realm" ? [] : [["GET /jobs", own], ["GET /appManagement/jobs", realm]];
			for (const [name, listed] of lists) {
				const found = listed.find((entry) => entry.id === job.id);
				if (!found) {
					const bulkChild = job.kind === "erasure" && job.pairs.some((pair) => bulkLearners.has(pair.learner));
					if (!bulkChild) throw new SimError(`${this.describe()}: ${name} does not list ${job.kind} job ${job.id}, ${job.status}`);
					continue;
				}
				if (found.status !== job.status) throw new SimError(`${this.describe()}: ${name} lists job ${job.id} as ${found.status}; it ${job.status}`);
			}
		}
	}
}

// ---------------------------------------------------------------------------------------------------------------
// The queue, the sweeper, and time

class Deliver extends Step {
	constructor(
		readonly index: number,
		readonly duplicate: boolean,
		readonly fault: Fault | null,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => sim.world.queue.length > 0;
	describe = () => `deliver(message ${this.index}${this.duplicate ? ", twice" : ""}) ${describeFault(this.fault)}`;
	async exec(sim: Sim) {
		const index = this.index % sim.world.queue.length;
		await sim.world.deliver(index, { fault: this.fault, duplicate: false });
		if (this.duplicate && sim.world.queue.length > 0) await sim.world.deliver(index % sim.world.queue.length, { fault: null, duplicate: true });
		await observe(sim);
	}
}

/** What a queued message's body names: its job's type. */
const typeOf = (body: unknown) => (typeof body === "object" && body !== null && "type" in body ? String((body as { type: unknown }).type) : "");

/**
 * The queue runs one kind of message while the others wait: up to `count` deliveries, each of the oldest queued
 * message of the job type (a move's steps running ahead of an update's chunks, say, or the other way round).
 */
class DeliverKind extends Step {
	constructor(
		readonly type: string,
		readonly count: number,
		readonly fault: Fault | null,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => sim.world.queue.some((message) => typeOf(message.body) === this.type);
	describe = () => `deliverKind(${this.type}, ${this.count}) ${describeFault(this.fault)}`;
	async exec(sim: Sim) {
		for (let i = 0; i < this.count; i++) {
			const index = sim.world.queue.findIndex((message) => typeOf(message.body) === this.type);
			if (index < 0) break;
			await sim.world.deliver(index, { fault: i === 0 ? this.fault : null, duplicate: false });
			await observe(sim);
		}
	}
}

class Drop extends Step {
	constructor(readonly index: number) {
		super();
	}
	check = (sim: Readonly<Sim>) => sim.world.queue.length > 0;
	describe = () => `loseMessage(${this.index})`;
	async exec(sim: Sim) {
		sim.world.drop(this.index % sim.world.queue.length);
	}
}

class LoseSend extends Step {
	check = () => true;
	describe = () => "loseNextSend()";
	async exec(sim: Sim) {
		sim.world.loseNextSend = true;
	}
}

/**
 * The operator sets APP_ROW_QUOTA: to the rows application `app` holds now plus `headroom` (so that it is at or
 * near its quota, and others may be past it: a quota lowered since), or back to the configured one (`headroom`
 * null). Every later request, delivery and sweep runs with it.
 */
class SetRowQuota extends Step {
	constructor(
		readonly app: number,
		readonly headroom: number | null,
	) {
		super();
	}
	check = (sim: Readonly<Sim>) => this.headroom === null || Boolean(appOf(sim, this.app));
	describe = () => (this.headroom === null ? "setRowQuota(configured)" : `setRowQuota(app ${this.app} + ${this.headroom})`);
	async exec(sim: Sim) {
		if (this.headroom === null) {
			delete sim.world.settings.APP_ROW_QUOTA;
			sim.model.rowQuota = sim.configuredRowQuota;
			return;
		}
		const app = appOf(sim, this.app) as AppModel;
		const quota = Math.max(1, sim.model.storedRows(app).most + this.headroom);
		sim.world.settings.APP_ROW_QUOTA = String(quota);
		sim.model.rowQuota = quota;
	}
}

class Sweep extends Step {
	constructor(
		readonly minutes: number,
		readonly fault: Fault | null,
	) {
		super();
	}
	check = () => true;
	describe = () => `sweep(+${this.minutes} min) ${describeFault(this.fault)}`;
	async exec(sim: Sim) {
		await sim.world.sweep(this.minutes, this.fault);
		await observe(sim);
	}
}

/** The newest erasure of the learner on the application's shard, finished or not. */
async function latestErasureOnShard(sim: Sim, app: AppModel, learner: string): Promise<{ id: string; status: string } | null> {
	const placement = await sim.world.placement(app.appId);
	return shardDatabase(env, placement?.shard ?? app.shard)
		.prepare("SELECT id, status FROM jobs WHERE app_id = ?1 AND learner_hash = ?2 AND type = 'deleteAllLearnerData' ORDER BY seq DESC LIMIT 1")
		.bind(app.appId, await learnerHash(env, app.appId, learner))
		.first<{ id: string; status: string }>();
}

/**
 * The learner's erasures the model holds pending, seen finished where the service has finished them. The model follows
 * a bulk erasure as one job: which of its learners the chunks delivered so far have erased is the service's to decide.
 * A realm-wide erasure asks the applications that hold the learner when it is accepted, and one whose erasure of the
 * learner has completed no longer does: its receipt counts only the others.
 */
async function settleErasuresOf(sim: Sim, learner: string): Promise<void> {
	for (const app of sim.model.liveApps()) {
		const erasure = sim.model.pendingErasure(app.index, learner);
		if (!erasure) continue;
		const latest = await latestErasureOnShard(sim, app, learner);
		// An erasure finished before a realm-wide one that has not asked the application yet is not that one's.
		if (latest === null || latest.id === erasure.unasked?.before) continue;
		if (latest.status === "completed" || latest.status === "failed") sim.model.finishErasure(app, learner, latest.status);
	}
}

/**
 * Reads the status of every job the model waits on and applies the ends: an update applies, an erasure's learners
 * are gone (suppressed if promised), a move lands its application on its target.
 */
export async function observe(sim: Sim): Promise<void> {
	const pending = [...sim.model.jobs.values()].filter((job) => job.status === "pending");
	const statuses = await sim.world.jobStatuses(pending.map((job) => job.id));
	for (const job of pending) {
		const found = statuses.get(job.id);
		// A job deleted with its application: its application's data went whole.
		if (found === undefined) {
			if (job.kind !== "deleteApp" && job.pairs.every((pair) => sim.model.apps[pair.app]?.deleted) && (job.app === null || sim.model.apps[job.app]?.deleted)) {
				job.status = "completed";
			}
			continue;
		}
		if (found !== "completed" && found !== "failed") continue;
		job.status = found;
		switch (job.kind) {
			case "update": {
				const app = job.app === null ? undefined : sim.model.live(job.app);
				if (found === "completed") sim.model.applyUpdate(job);
				else if (app && job.update) app.uncertainDetails.add(job.update.learner);
				break;
			}
			case "erasure":
			case "bulk":
			case "realm":
				for (const pair of job.pairs) {
					const app = sim.model.live(pair.app);
					// A pair this job has counted was seen erased already (its child finished before the job did): an
					// erasure of the learner pending now was asked after that, for registrations made since, and is not this job's.
					if (app && !job.counted.learners.has(pairKey(pair.app, pair.learner))) sim.model.finishErasure(app, pair.learner, found);
				}
				break;
			case "move": {
				const app = job.app === null ? undefined : sim.model.apps[job.app];
				if (app && found === "completed" && job.target) app.shard = job.target;
				if (app) app.moving = null;
				break;
			}
			case "deleteApp":
			case "export":
				break;
		}
	}
}

// ---------------------------------------------------------------------------------------------------------------
// Arbitraries

/** One command in ten meets a D1 fault. */
const faultArb: fc.Arbitrary<Fault | null> = fc.oneof(
	{ weight: 9, arbitrary: fc.constant(null) },
	{ weight: 1, arbitrary: fc.record({ nth: fc.nat(4), message: fc.nat(3), after: fc.boolean() }) },
);
/** Most erasures are asked by a realm admin; now and then by a member, who must be refused. */
const privilegedArb = fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) });
const keyArb = fc.option(fc.constantFrom("k1", "k2", "k3"), { freq: 2 });
/**
 * Applications and learners, the first ones drawn more often: work on one learner overlaps with other work on it
 * (an update of many registrations meeting a move of its application, erasures joining each other) in most runs.
 */
const app = fc.oneof({ weight: 2, arbitrary: fc.nat(5) }, { weight: 1, arbitrary: fc.constant(0) });
const learner = fc.oneof({ weight: 2, arbitrary: fc.nat(7) }, { weight: 1, arbitrary: fc.nat(1) });
const tagList = fc.array(fc.nat(7), { minLength: 1, maxLength: 3 });
const detailsArb = fc.record(
	{ email: fc.nat(3), firstName: fc.nat(3), lastName: fc.nat(3) },
	{ requiredKeys: [] },
) as fc.Arbitrary<Partial<Record<LearnerFieldName, number>>>;

/** An arbitrary drawn `weight` times as often as one of weight 1 (fast-check picks among the list evenly). */
const weighted = <T>(weight: number, arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T>[] => Array.from({ length: weight }, () => arbitrary);

/**
 * Every command, weighted: writes, erasures and deliveries most, so that work overlaps (an erasure joining another,
 * an update or erasure spanning a move); application lifecycles least.
 */
export const COMMANDS: fc.Arbitrary<fc.AsyncCommand<Sim, World, false>>[] = [
	...weighted(
		3,
		fc
			.tuple(app, learner, fc.nat(9), fc.nat(1), detailsArb, fc.array(fc.nat(7), { maxLength: 2 }), fc.array(fc.nat(7), { maxLength: 2 }), keyArb, faultArb)
			.map(([a, l, r, c, d, lt, rt, k, f]) => new Register(a, l, r, c, d, lt, rt, k, f)),
	),
	...weighted(2, fc.tuple(app, learner, fc.integer({ min: 2, max: 14 })).map(([a, l, n]) => new RegisterMany(a, l, n))),
	fc.tuple(app, fc.nat(9), faultArb).map(([a, r, f]) => new DeleteRegistration(a, r, f)),
	fc.tuple(app, fc.nat(9), tagList, fc.boolean()).map(([a, r, t, remove]) => new RegistrationTags(a, r, t, remove)),
	...weighted(2, fc.tuple(app, learner, tagList, fc.boolean(), faultArb).map(([a, l, t, remove, f]) => new LearnerTags(a, l, t, remove, f))),
	fc.tuple(app, fc.array(learner, { minLength: 1, maxLength: 3 }), tagList).map(([a, ls, t]) => new BatchTags(a, ls, t)),
	...weighted(3, fc.tuple(app, learner, detailsArb, keyArb, faultArb).map(([a, l, d, k, f]) => new UpdateInfo(a, l, d, k, f))),
	...weighted(3, fc.tuple(app, learner, fc.boolean(), privilegedArb, keyArb, faultArb).map(([a, l, s, p, k, f]) => new Erase(a, l, s, p, k, f))),
	...weighted(
		3,
		fc.tuple(app, fc.array(learner, { minLength: 1, maxLength: 4 }), fc.boolean(), keyArb, faultArb).map(([a, ls, s, k, f]) => new BulkErase(a, ls, s, k, f)),
	),
	...weighted(2, fc.tuple(learner, fc.boolean(), privilegedArb, keyArb, faultArb).map(([l, s, p, k, f]) => new RealmErase(l, s, p, k, f))),
	fc.tuple(app, learner).map(([a, l]) => new LiftSuppression(a, l)),
	...weighted(
		3,
		fc
			.tuple(app, learner, fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }), privilegedArb, fc.boolean(), faultArb)
			.map(([a, l, known, p, alone, f]) => new Export(a, l, known, p, alone, f)),
	),
	...weighted(
		2,
		fc.tuple(learner, privilegedArb, fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }), faultArb)
			.map(([l, p, alone, f]) => new RealmExport(l, p, alone, f)),
	),
	...weighted(2, fc.tuple(app, learner).map(([a, l]) => new Retain(a, l))),
	...weighted(2, fc.tuple(app, fc.nat(2), keyArb).map(([a, s, k]) => new Move(a, s, k))),
	fc.constantFrom<Region>("default", "eu").map((region) => new CreateApp(region)),
	app.map((a) => new DeleteApp(a)),
	fc.tuple(app, fc.boolean()).map(([a, allow]) => new GuardApp(a, allow)),
	fc.tuple(app, learner).map(([a, l]) => new ReadLearner(a, l)),
	fc.tuple(app, learner, fc.boolean()).map(([a, l, s]) => new ConsoleErase(a, l, s)),
	fc.tuple(app, learner, tagList, fc.boolean()).map(([a, l, t, remove]) => new ConsoleTags(a, l, t, remove)),
	app.map((a) => new ListJobs(a)),
	...weighted(4, fc.tuple(fc.nat(20), fc.boolean(), faultArb).map(([i, d, f]) => new Deliver(i, d, f))),
	...weighted(
		2,
		fc
			.tuple(
				fc.constantFrom("moveApplication", "updateLearnerInfo", "deleteAllLearnerData", "deleteLearnersData", "deleteRealmLearnerData", "deleteApplication"),
				fc.integer({ min: 1, max: 8 }),
				faultArb,
			)
			.map(([t, n, f]) => new DeliverKind(t, n, f)),
	),
	fc.nat(20).map((i) => new Drop(i)),
	fc.constant(null).map(() => new LoseSend()),
	fc.tuple(fc.constantFrom(11, 30), faultArb).map(([m, f]) => new Sweep(m, f)),
	fc.tuple(app, fc.option(fc.constantFrom(0, 1, 2, 4, 8), { freq: 3 })).map(([a, h]) => new SetRowQuota(a, h)),
];
