/**
 * The reference model of the whole-service simulation (test/sim/simulation.test.ts): what the service must hold,
 * written from the contract (SPEC §3–§11) alone, with no I/O. The simulation applies each command to it and to the
 * real Worker, and compares.
 *
 * Asynchronous work makes some outcomes depend on when a job's chunks ran. The model keeps that honest rather than
 * guessing: while an erasure of a learner is pending, an operation on the learner may find it still there or already
 * erased, and what the service answers tells which (the model then catches up); a job's end is applied when the
 * simulation sees the job finished.
 */

export type Region = "default" | "eu";

/** A learner field's value and the version (job clock) that set it (SPEC §3: updates apply in acceptance order). */
export interface Field {
	value: string | null;
	version: number;
}

export interface RegistrationModel {
	id: string;
	learner: string;
	course: string;
	email: Field;
	firstName: Field;
	lastName: Field;
	/** Registration tags in the order first applied. */
	tags: string[];
}

export type LearnerFieldName = "email" | "firstName" | "lastName";
export const LEARNER_FIELDS: readonly LearnerFieldName[] = ["email", "firstName", "lastName"];

/** What the model knows of an Idempotency-Key's first request. */
export interface KeyRecord {
	request: string;
	status: number;
	location: string | null;
	/** The learner the request named (updateInfo, registrations): an erasure of it forgets the key. */
	learner: string | null;
}

export interface AppModel {
	/** Position in the run's applications: the commands' handle. */
	index: number;
	appId: string;
	auth: string;
	region: Region;
	shard: string;
	deleted: boolean;
	/** SCORM Cloud's allowDelete: while false, deleting the application is refused (409) and nothing changes. */
	allowDelete: boolean;
	/** A move was accepted and is not seen finished: its freeze may refuse writes (503, nothing written). */
	moving: string | null;
	registrations: Map<string, RegistrationModel>;
	/** Learner tags in the order first applied, for learners that exist. */
	learnerTags: Map<string, string[]>;
	/** Learners erased with suppression whose suppression was not lifted. */
	suppressed: Set<string>;
	keys: Map<string, KeyRecord>;
	/**
	 * Learners whose details can no longer be predicted: an update of theirs failed after it may have run some chunks.
	 * Their details are not compared.
	 */
	uncertainDetails: Set<string>;
	/** Registrations that may or may not exist (a failed erasure may have deleted them). */
	uncertainRegistrations: Set<string>;
	/**
	 * Requests sent to the application (each attempt, a careful client's retry too) that may start a job: updates and
	 * single, bulk, realm-wide and console erasures. Each may add one job row.
	 */
	jobRequests: number;
	/** Erasures of one learner begun where none was pending: each may add one job row besides its request's. */
	erasuresBegun: number;
}

/** An audit entry an answer promises: its action, and ids its target must carry; `command` says which step. */
export interface AuditExpectation {
	action: string;
	target: { applicationId?: string; jobId?: string };
	command: string;
}

/** An erasure the service accepted for one learner in one application: what every request covering it promised. */
export interface PendingErasure {
	app: number;
	learner: string;
	/** Some accepted request asked for suppression: once erased, the learner must be suppressed. */
	suppress: boolean;
	/** Registrations (and their tags) found gone while the erasure was pending: the erasure deleted them. */
	erasedRegistrations: number;
	erasedTags: number;
	/** Details of those registrations: once erased, nothing may hold them. */
	values: Set<string>;
	/**
	 * Begun by a realm-wide erasure that could not ask the application yet (moving between shards, or a fault cut its
	 * request short): until its job's next step asks, nothing on the application's shard says the learner is being
	 * erased, and the application takes the learner's updates and exports as usual (the erasure, once asked, cancels
	 * and deletes them). `before`: the newest erasure of the learner the shard held then, finished, not this one.
	 */
	unasked?: { before: string | null };
}

export type JobKind = "update" | "erasure" | "bulk" | "realm" | "move" | "deleteApp" | "export";

/** A job the model knows by the Location it was answered with. */
export interface JobModel {
	id: string;
	kind: JobKind;
	/** The application whose credentials read it (management for realm jobs, moves and deletions). */
	app: number | null;
	status: "pending" | "completed" | "failed";
	/** Learner jobs: the (application, learner) pairs it covers. */
	pairs: { app: number; learner: string }[];
	/** An update's payload and seq. */
	update?: { learner: string; fields: Partial<Record<LearnerFieldName, string>>; seq: number };
	/** A move's target. */
	target?: string;
	/** Erasures: what the job's receipt must count, filled in as its learners are seen erased. */
	counted: { registrations: number; tags: number; learners: Set<string> };
	/** Erasures: the jobs (other than itself) already pending for a learner when it was accepted, by learner. */
	satisfiedBy?: Map<string, string>;
	/**
	 * An export's: its document must be gone once an erasure of its learner completed (or its application was deleted);
	 * `uncertain` once an erasure of the learner failed (what it deleted is unknown).
	 */
	exported?: { gone: boolean; uncertain: boolean };
}

/** An (application, learner) pair as a key: of pending erasures, and of the pairs an erasure job has counted. */
export const pairKey = (app: number, learner: string) => `${app}\n${learner}`;

export class Model {
	apps: AppModel[] = [];
	jobs = new Map<string, JobModel>();
	/** Pending erasures by pairKey. */
	erasures = new Map<string, PendingErasure>();
	/** The job clock: the seq of the newest accepted job (relative order is all that matters). */
	clock = 0;
	/** APP_ROW_QUOTA in force: the rows one application may store (docs/api.md, "Tenant limits"). */
	rowQuota = Number.POSITIVE_INFINITY;
	/** Management Idempotency-Keys (the realm's). */
	realmKeys = new Map<string, KeyRecord>();
	/**
	 * The audit trail's entries this run's answers promise (SPEC §12): one per accepted management or privacy action,
	 * named by its action and the ids its target must carry.
	 */
	audited: AuditExpectation[] = [];
	/**
	 * Learners whose erasure completed, by application, with the values that named them (id, email, names): none may
	 * remain anywhere in that application unless the learner is registered again.
	 */
	erased = new Map<number, Map<string, Set<string>>>();

	live(index: number): AppModel | undefined {
		const app = this.apps[index];
		return app && !app.deleted ? app : undefined;
	}

	liveApps(): AppModel[] {
		return this.apps.filter((app) => !app.deleted);
	}

	registrationsOf(app: AppModel, learner: string): RegistrationModel[] {
		return [...app.registrations.values()].filter((registration) => registration.learner === learner);
	}

	exists(app: AppModel, learner: string): boolean {
		return this.registrationsOf(app, learner).length > 0;
	}

	pendingErasure(app: number, learner: string): PendingErasure | undefined {
		return this.erasures.get(pairKey(app, learner));
	}

	/** A learner under an erasure anywhere in the realm (a realm-wide one covers every application). */
	erasing(learner: string): boolean {
		for (const erasure of this.erasures.values()) if (erasure.learner === learner) return true;
		return false;
	}

	/** Registers a pending erasure of the pair (or joins the one pending), OR-ing the suppression asked. */
	beginErasure(app: number, learner: string, suppress: boolean): PendingErasure {
		const key = pairKey(app, learner);
		const known = this.erasures.get(key);
		const application = this.apps[app];
		if (!known && application) application.erasuresBegun++;
		const pending = known ?? { app, learner, suppress: false, erasedRegistrations: 0, erasedTags: 0, values: new Set<string>() };
		pending.suppress ||= suppress;
		this.erasures.set(key, pending);
		return pending;
	}

	/** A registration was found gone while its learner's erasure was pending: the erasure took it, tags and all. */
	registrationErased(app: AppModel, registrationId: string): void {
		const registration = app.registrations.get(registrationId);
		if (!registration) return;
		const erasure = this.pendingErasure(app.index, registration.learner);
		if (erasure) {
			erasure.erasedRegistrations++;
			erasure.erasedTags += registration.tags.length;
			for (const name of LEARNER_FIELDS) if (registration[name].value) erasure.values.add(registration[name].value as string);
		}
		app.registrations.delete(registrationId);
	}

	/**
	 * The pair's erasure is seen finished: everything of the learner in the application goes, it is suppressed if any
	 * covering request asked, and every erasure job covering it counts what went. `failed`: what is left is uncertain.
	 */
	finishErasure(app: AppModel, learner: string, outcome: "completed" | "failed"): void {
		const key = pairKey(app.index, learner);
		const pending = this.erasures.get(key);
		if (!pending) return;
		this.erasures.delete(key);
		const exports = [...this.jobs.values()].filter(
			(job) => job.kind === "export" && job.pairs.some((pair) => pair.app === app.index && pair.learner === learner),
		);
		if (outcome === "failed") {
			for (const registration of this.registrationsOf(app, learner)) app.uncertainRegistrations.add(registration.id);
			for (const job of exports) if (job.exported) job.exported.uncertain = true;
			return;
		}
		// Erasing a learner deletes its exports (SPEC §12).
		for (const job of exports) if (job.exported) job.exported.gone = true;
		let registrations = pending.erasedRegistrations;
		let tags = pending.erasedTags + (app.learnerTags.get(learner)?.length ?? 0);
		let erased = this.erased.get(app.index);
		if (!erased) this.erased.set(app.index, (erased = new Map()));
		const values = erased.get(learner) ?? new Set([learner, ...pending.values]);
		erased.set(learner, values);
		for (const registration of this.registrationsOf(app, learner)) {
			registrations++;
			tags += registration.tags.length;
			for (const name of LEARNER_FIELDS) if (registration[name].value) values.add(registration[name].value as string);
			app.registrations.delete(registration.id);
		}
		app.learnerTags.delete(learner);
		if (pending.suppress) app.suppressed.add(learner);
		for (const [keyName, record] of app.keys) if (record.learner === learner) app.keys.delete(keyName);
		for (const job of this.jobs.values()) {
			if (job.kind !== "erasure" && job.kind !== "bulk" && job.kind !== "realm") continue;
			if (!job.pairs.some((pair) => pair.app === app.index && pair.learner === learner)) continue;
			if (job.counted.learners.has(key)) continue;
			job.counted.learners.add(key);
			job.counted.registrations += registrations;
			job.counted.tags += tags;
		}
	}

	/** The learner (re)appears with a new registration: it is no longer an erased learner. */
	registered(app: AppModel, registration: RegistrationModel, learnerTags: string[]): void {
		app.registrations.set(registration.id, registration);
		const tags = app.learnerTags.get(registration.learner) ?? [];
		for (const tag of learnerTags) if (!tags.includes(tag)) tags.push(tag);
		app.learnerTags.set(registration.learner, tags);
		this.erased.get(app.index)?.delete(registration.learner);
	}

	/** A registration deleted through the API: its learner goes with its last one (SPEC §4). */
	registrationDeleted(app: AppModel, registrationId: string): void {
		const registration = app.registrations.get(registrationId);
		if (!registration) return;
		app.registrations.delete(registrationId);
		if (!this.exists(app, registration.learner)) app.learnerTags.delete(registration.learner);
	}

	/** An update seen completed: it applies where it is newer than the field's version (SPEC §3). */
	applyUpdate(job: JobModel): void {
		const update = job.update;
		const app = job.app === null ? undefined : this.live(job.app);
		if (!update || !app) return;
		for (const registration of this.registrationsOf(app, update.learner)) {
			for (const name of LEARNER_FIELDS) {
				const value = update.fields[name];
				if (value === undefined) continue;
				const field = registration[name];
				if (field.version < update.seq) registration[name] = { value, version: update.seq };
			}
		}
	}

	/**
	 * The rows the application stores as its quota counts them (registrations, learner tags, registration tags):
	 * `most` counting every row the model holds, `least` leaving out rows a pending or failed erasure may have
	 * deleted already.
	 */
	storedRows(app: AppModel): { least: number; most: number } {
		let least = 0;
		let most = 0;
		for (const registration of app.registrations.values()) {
			most += 1 + registration.tags.length;
			if (!app.uncertainRegistrations.has(registration.id) && !this.pendingErasure(app.index, registration.learner)) least += 1 + registration.tags.length;
		}
		for (const [learner, tags] of app.learnerTags) {
			most += tags.length;
			if (!this.pendingErasure(app.index, learner)) least += tags.length;
		}
		return { least, most };
	}

	/** The application's deletion was accepted: nothing of it may remain, and nothing of it is pending any more. */
	deleteApp(app: AppModel): void {
		app.deleted = true;
		for (const job of this.jobs.values()) if (job.kind === "export" && job.app === app.index && job.exported) job.exported.gone = true;
		for (const [key, erasure] of this.erasures) if (erasure.app === app.index) this.erasures.delete(key);
	}
}

/** A registration as created, its details versioned at the job clock (a registration takes the clock's value). */
export function newRegistration(
	model: Model,
	id: string,
	learner: string,
	course: string,
	details: Partial<Record<LearnerFieldName, string>>,
	tags: string[],
): RegistrationModel {
	const field = (name: LearnerFieldName): Field => ({ value: details[name] ?? null, version: model.clock });
	return { id, learner, course, email: field("email"), firstName: field("firstName"), lastName: field("lastName"), tags: [...new Set(tags)] };
}

/** Tags added in order of first application, duplicates ignored (set union that keeps order). */
export function union(existing: string[], added: string[]): string[] {
	const result = [...existing];
	for (const tag of added) if (!result.includes(tag)) result.push(tag);
	return result;
}
