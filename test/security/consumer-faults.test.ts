import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { findPlacement } from "../../src/db/applications";
import type { JobMessage } from "../../src/jobs/contract";
import { call, envWith } from "../support/client";
import { d1Binding, everyD1Binding } from "../support/d1-bindings";
import { getJob } from "../support/expect";
import { type FaultDecision, faultyDatabases } from "../support/faulty-d1";
import { basicHeader, createApp, enrol, MANAGEMENT, putTags, realmUser, type TestApp, uniqueValue } from "../support/fixtures";
import { acceptErasure, acceptUpdate, deliver, drain, sentDuring } from "../support/queue";
import { countOf, registrationCount, seedApplication, seedLearnerRegistrations, shardOf } from "../support/seed";

/**
 * Fault injection in the queue consumer. The seam is the env: every D1 binding of it (the control database, where
 * the consumer reads the job's placement, and each shard, where the job's rows are) is a wrapper around the test
 * database that fails the k-th D1 call, counted over all of them (a db.batch() or one statement run on its own),
 * either before it reaches D1, or after D1 has committed it (the reply is lost). For every k a job makes, the
 * message is delivered once with the fault, then redelivered as the queue would, and the final state must be
 * exactly right.
 */

const FAULT = "D1_ERROR: injected fault";
/** Enough registrations for three chunks of src/jobs/run.ts's CHUNK_SIZE (500). */
const REGISTRATIONS = 1100;

type Mode = "before" | "after";

/** Fails the `failAt`-th D1 call, once, wherever it goes; counts every call. */
class FaultPlan {
	calls = 0;
	fired = false;

	constructor(
		readonly failAt: number,
		readonly mode: Mode,
	) {}

	/** faultyDatabases' decision for each call. */
	readonly decide = (): FaultDecision => {
		this.calls++;
		if (this.calls !== this.failAt) return null;
		this.fired = true;
		return { message: FAULT, when: this.mode };
	};
}

const EXECUTORS = new Set<PropertyKey>(["first", "all", "run", "raw"]);

/**
 * Every D1 binding of the Worker (the control database and each shard), failing each call that binds `jobId` to
 * one of its statements, whatever the attempt. The statements' bound values decide here, which faultyDatabases'
 * decision (the SQL only) cannot tell apart: a batch's other jobs run the same SQL.
 */
function poisonedDatabases(jobId: string): Partial<Env> {
	const over = (database: D1Database): D1Database => {
		const originals = new WeakMap<object, { statement: D1PreparedStatement; values: unknown[] }>();
		const run = <T>(values: readonly unknown[], work: () => Promise<T>): Promise<T> =>
			values.includes(jobId) ? Promise.reject(new Error(FAULT)) : work();
		const wrap = (statement: D1PreparedStatement, values: unknown[]): D1PreparedStatement => {
			const wrapped = new Proxy(statement, {
				get: (target, property) => {
					if (property === "bind") return (...bound: unknown[]) => wrap(target.bind(...bound), bound);
					if (EXECUTORS.has(property)) {
						const method = Reflect.get(target, property, target) as (...args: unknown[]) => Promise<unknown>;
						return (...args: unknown[]) => run(values, () => method.apply(target, args));
					}
					// D1's statement methods use internal state, so they run on the real statement.
					const value: unknown = Reflect.get(target, property, target);
					return typeof value === "function" ? value.bind(target) : value;
				},
			});
			originals.set(wrapped, { statement, values });
			return wrapped;
		};
		const calls = (db: D1Database | D1DatabaseSession) => ({
			prepare: (sql: string) => wrap(db.prepare(sql), []),
			batch: <T>(statements: D1PreparedStatement[]) => {
				const entries = statements.map((statement) => originals.get(statement) ?? { statement, values: [] });
				return run(
					entries.flatMap((entry) => entry.values),
					() => db.batch<T>(entries.map((entry) => entry.statement)),
				);
			},
		});
		return d1Binding(database, calls);
	};
	return everyD1Binding(over) as Partial<Env>;
}

/** An application placed beside `app`, on its shard (src/db itself places it), with a credential made through the API. */
async function appBeside(app: TestApp): Promise<TestApp> {
	const placement = await findPlacement(env.DB, app.appId);
	const appId = await seedApplication({ shard: placement?.shard ?? "" });
	const created = await call("POST", `/appManagement/${appId}/credentials`, { auth: MANAGEMENT, body: { name: "main" } });
	expect(created.status).toBe(200);
	const { id: credentialId, credential: secret } = (await created.json()) as { id: string; credential: string };
	return { appId, credentialId, secret, auth: basicHeader(appId, secret) };
}

interface Scene {
	app: TestApp;
	otherApp: TestApp;
	/** The learner the job is about. */
	learnerId: string;
	/** A learner of the same application the job must not touch, with one registration. */
	bystanderId: string;
	bystanderRegistration: string;
	learnerTags: string[];
}

async function scene(): Promise<Scene> {
	const app = await createApp();
	// Another application on the same shard: the same tables, where a job's statements could reach its rows.
	const otherApp = await appBeside(app);
	const learnerId = uniqueValue("faulted");
	await seedLearnerRegistrations(app.appId, learnerId, REGISTRATIONS, "fault");
	const learnerTags = ["fault-a", "fault-b", "fault-c"];
	await putTags(app, "learner", learnerId, learnerTags);
	const bystanderId = uniqueValue("bystander");
	const bystanderRegistration = await enrol(
		app,
		{ id: bystanderId, email: "bystander@example.com", firstName: "Bystander" },
		{ learnerTags: ["bystander"], registrationTags: ["bystander"] },
	);
	// The same learner id in another application is another learner.
	await enrol(otherApp, { id: learnerId, email: "other-app@example.com" }, { learnerTags: ["other-app"] });
	return { app, otherApp, learnerId, bystanderId, bystanderRegistration, learnerTags };
}

/** The bystanders, as the API shows them: they must come out of every job exactly as they went in. */
async function bystanders(s: Scene): Promise<unknown> {
	const read = async (auth: string, path: string) => {
		const response = await call("GET", path, { auth });
		return { status: response.status, body: await response.json() };
	};
	return {
		tags: await read(s.app.auth, `/learner/${s.bystanderId}/tags`),
		registration: await read(s.app.auth, `/registrations/${s.bystanderRegistration}`),
		otherApp: await read(s.otherApp.auth, `/learner/${s.learnerId}/tags`),
		otherAppRegistrations: await read(s.otherApp.auth, `/registrations?learnerId=${s.learnerId}`),
	};
}

/** Runs the message to the end with the real database, as the queue's redeliveries would. Answers whether all acked. */
async function redeliver(message: JobMessage, attempts: number): Promise<boolean> {
	try {
		await drain(message, { attempts });
		return true;
	} catch {
		return false;
	}
}

/** What went wrong with the final state of a job run under a fault (empty when it is exactly right). */
type Check = (s: Scene, message: JobMessage, before: unknown) => Promise<string[]>;

/**
 * The job's answer on GET /jobs: completed, with exact counts, and no message. A job's message says why it failed
 * or was cancelled (docs/jobs-and-webhooks.md, Background jobs); these jobs did neither, so an error a failed attempt
 * recorded on the way must not outlive the attempt that completed them.
 */
async function jobProblems(s: Scene, message: JobMessage, counts: Record<string, number>): Promise<string[]> {
	const job = await getJob(s.app.auth, message.jobId);
	const problems: string[] = [];
	if (job.status !== "completed") problems.push(`job is ${job.status}`);
	for (const [field, value] of Object.entries(counts)) {
		if (job[field as keyof typeof job] !== value) problems.push(`job ${field} is ${String(job[field as keyof typeof job])}, not ${value}`);
	}
	if (job.message !== undefined) problems.push(`the completed job says "${job.message}"`);
	return problems;
}

const UPDATE = { email: "after@example.com", firstName: "After", lastName: "Update" };

const updateIsExact: Check = async (s, message, before) => {
	const problems = await jobProblems(s, message, { registrationsAffected: REGISTRATIONS });
	const updated = await countOf(
		"SELECT count(*) AS n FROM registrations WHERE app_id = ?1 AND learner_id = ?2 AND learner_email = ?3 AND learner_first_name = ?4 AND learner_last_name = ?5",
		s.app.appId,
		s.learnerId,
		UPDATE.email,
		UPDATE.firstName,
		UPDATE.lastName,
	);
	if (updated !== REGISTRATIONS) problems.push(`${updated} of ${REGISTRATIONS} registrations updated`);
	const job = await (await shardOf(s.app.appId)).prepare("SELECT learner_id, payload FROM jobs WHERE id = ?1").bind(message.jobId).first();
	if (job?.learner_id !== null || job.payload !== null) problems.push("the finished job still holds the learner's data");
	if (JSON.stringify(await bystanders(s)) !== JSON.stringify(before)) problems.push("a bystander changed");
	return problems;
};

const erasureIsExact: Check = async (s, message, before) => {
	const problems = await jobProblems(s, message, {
		registrationsAffected: REGISTRATIONS,
		tagsRemoved: REGISTRATIONS + s.learnerTags.length,
	});
	const left = {
		registrations: await registrationCount(s.app.appId, s.learnerId),
		registrationTags: await countOf(
			"SELECT count(*) AS n FROM registration_tags WHERE app_id = ?1 AND instr(registration_id, ?2 || '-registration-') = 1",
			s.app.appId,
			s.learnerId,
		),
		learnerTags: await countOf("SELECT count(*) AS n FROM learner_tags WHERE app_id = ?1 AND learner_id = ?2", s.app.appId, s.learnerId),
		tagCounts: await countOf("SELECT count(*) AS n FROM learner_tag_counts WHERE app_id = ?1 AND learner_id = ?2", s.app.appId, s.learnerId),
		jobs: await countOf(
			"SELECT count(*) AS n FROM jobs WHERE app_id = ?1 AND (learner_id = ?2 OR instr(payload, ?3) > 0)",
			s.app.appId,
			s.learnerId,
			"pending@example.com",
		),
	};
	for (const [what, n] of Object.entries(left)) if (n !== 0) problems.push(`${n} ${what} left for the erased learner`);
	if (JSON.stringify(await bystanders(s)) !== JSON.stringify(before)) problems.push("a bystander changed");
	return problems;
};

interface JobKind {
	name: string;
	accept: (s: Scene) => Promise<JobMessage>;
	check: Check;
}

const KINDS: JobKind[] = [
	{ name: "updateLearnerInfo", accept: (s) => acceptUpdate(s.app, { id: s.learnerId, ...UPDATE }), check: updateIsExact },
	{
		name: "deleteAllLearnerData",
		accept: async (s) => {
			// A pending update of the learner: the erasure must drop its payload too.
			await acceptUpdate(s.app, { id: s.learnerId, email: "pending@example.com" });
			return acceptErasure(s.app, s.learnerId, await realmUser("admin"));
		},
		check: erasureIsExact,
	},
];

const tally = { faults: 0, wrong: 0 };

/** Runs `work` without the service's log lines: each injected fault logs an expected error. */
async function quietly<T>(work: () => Promise<T>): Promise<T> {
	const spy = vi.spyOn(console, "log").mockImplementation(() => undefined);
	try {
		return await work();
	} finally {
		spy.mockRestore();
	}
}

/** Runs one job with the k-th D1 call failing, redelivers it, and answers what is wrong with the result. */
async function runWithFault(kind: JobKind, plan: FaultPlan): Promise<string[]> {
	const s = await scene();
	const message = await kind.accept(s);
	const before = await bystanders(s);
	const { result: faulted } = await quietly(() =>
		sentDuring(() => deliver([message], { env: envWith(faultyDatabases(plan.decide)) })),
	);
	const problems: string[] = [];
	if (plan.fired) {
		tally.faults++;
		if (faulted.result.retryMessages.length !== 1) problems.push("the faulted delivery was not retried");
	}
	if (!(await redeliver(message, 2))) problems.push("a redelivery did not ack");
	problems.push(...(await kind.check(s, message, before)));
	if (problems.length > 0) tally.wrong++;
	return problems;
}

describe.each(KINDS)("$name job with a D1 fault at each of its calls", (kind) => {
	it("ends exactly right whichever call fails, before D1 runs it or after D1 committed it", async () => {
		// A clean run first, to count the calls the job makes.
		const clean = new FaultPlan(Number.POSITIVE_INFINITY, "before");
		expect(await runWithFault(kind, clean)).toEqual([]);
		expect(clean.calls).toBeGreaterThanOrEqual(6);

		const outcomes: Record<string, string[]> = {};
		for (let k = 1; k <= clean.calls; k++) {
			for (const mode of ["before", "after"] as const) {
				const plan = new FaultPlan(k, mode);
				outcomes[`call ${k} fails ${mode}`] = await runWithFault(kind, plan);
				expect(plan.fired).toBe(true);
			}
		}
		expect(outcomes).toEqual(Object.fromEntries(Object.keys(outcomes).map((key) => [key, []])));
	}, 120_000);
});

describe("a poison message", () => {
	it("is dead-lettered and its job marked failed, while the rest of its batch completes", async () => {
		const s = await scene();
		const first = await enrol(s.app, { id: uniqueValue("first"), email: "first@example.com" });
		const firstLearner = (await (await call("GET", `/registrations/${first}`, { auth: s.app.auth })).json()) as { learner: { id: string } };
		const good = await acceptUpdate(s.app, { id: firstLearner.learner.id, email: "first-after@example.com" });
		const poison = await acceptErasure(s.app, s.learnerId, await realmUser("owner"));
		const alsoGood = await acceptUpdate(s.app, { id: s.bystanderId, firstName: "Still" });

		// Every D1 call of the poison job fails, whatever the attempt; whatever the deliveries send is kept.
		const outage = envWith(poisonedDatabases(poison.jobId));

		const { result: firstDelivery } = await quietly(() => sentDuring(() => deliver([good, poison, alsoGood], { env: outage })));
		expect(firstDelivery.result.explicitAcks).toEqual([firstDelivery.ids[0], firstDelivery.ids[2]]);
		expect(firstDelivery.result.retryMessages).toEqual([{ msgId: firstDelivery.ids[1] }]);
		tally.faults++;
		// wrangler.toml: max_retries = 5, so six deliveries in all, then the dead-letter queue.
		for (let attempts = 2; attempts <= 6; attempts++) {
			const { result: retried } = await quietly(() => sentDuring(() => deliver([poison], { env: outage, attempts })));
			expect(retried.result.retryMessages).toEqual([{ msgId: retried.ids[0] }]);
			tally.faults++;
		}
		const dead = await quietly(() => deliver([poison], { queue: env.JOBS_DEAD_LETTER_QUEUE }));
		expect(dead.result.explicitAcks).toEqual(dead.ids);

		const problems: string[] = [];
		const failed = await getJob(s.app.auth, poison.jobId);
		if (failed.status !== "failed") problems.push(`the poison job is ${failed.status}`);
		if (!failed.message?.startsWith("Gave up after repeated failures")) problems.push(`the poison job says ${failed.message}`);
		if ((await getJob(s.app.auth, good.jobId)).status !== "completed") problems.push("the first job did not complete");
		if ((await getJob(s.app.auth, alsoGood.jobId)).status !== "completed") problems.push("the last job did not complete");
		// The erasure never ran: the learner is whole.
		if ((await registrationCount(s.app.appId, s.learnerId)) !== REGISTRATIONS) problems.push("the poison job changed data");
		const bystander = (await (await call("GET", `/registrations/${s.bystanderRegistration}`, { auth: s.app.auth })).json()) as {
			learner: { firstName?: string };
		};
		if (bystander.learner.firstName !== "Still") problems.push("the batch's last update was not applied");
		if (problems.length > 0) tally.wrong++;
		expect(problems).toEqual([]);
	});
});

describe("all faults", () => {
	it("left no wrong final state", () => {
		console.log(`${tally.faults} faults injected, wrong final states = ${tally.wrong}`);
		expect(tally.faults).toBeGreaterThan(0);
		expect(tally.wrong).toBe(0);
	});
});
