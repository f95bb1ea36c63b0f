import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import worker from "../../src/index";
import { shardDatabase } from "../../src/shards";
import { apiRequest, call, envWith, fetchWithBindings } from "../support/client";
import { D1_ERRORS, faultyDatabases } from "../support/faulty-d1";
import { MANAGEMENT, basicHeader } from "../support/fixtures";
import { type SentMessage, WORK_QUEUE, deliver } from "../support/queue";
import { SHARDS } from "../support/seed";

/**
 * The real side of the whole-service simulation: the Worker in workerd with its real control database and shards,
 * driven as clients, the queue, the Cron Trigger and D1's faults would drive it. Everything the simulation does to
 * the service goes through here; test/sim/model.ts says what must come of it.
 */

/** One of D1's documented transient or overload errors (developers.cloudflare.com/d1/observability/debug-d1). */
export const FAULT_MESSAGES = [D1_ERRORS.networkLost, D1_ERRORS.reset, D1_ERRORS.overloaded, D1_ERRORS.queuedTooLong] as const;

/** A fault a command carries: its `nth` D1 call fails, before D1 runs it or after D1 committed it. */
export interface Fault {
	nth: number;
	message: number;
	after: boolean;
}

export const describeFault = (fault: Fault | null) =>
	fault ? `D1 call ${fault.nth} fails ${fault.after ? "after committing" : "before running"}` : "";

/** A message sent to the work queue (or moved to its dead-letter queue) and not yet delivered. */
export interface QueuedMessage {
	body: unknown;
	attempts: number;
	dead: boolean;
}

/** What the run did, for the `sim:` line. */
export interface Tally {
	steps: number;
	faults: number;
	requests: number;
	deliveries: number;
}

/** The answer to a request, read once. */
export interface Answer {
	status: number;
	body: unknown;
	location: string | null;
	replayed: boolean;
	/** The first attempt met an injected fault (503) and this is the careful client's retry. */
	retried: boolean;
}

const MINUTE = 60_000;

export class World {
	queue: QueuedMessage[] = [];
	/** The simulated clock's lead over the wall clock: the sweeper runs at wall time plus this. */
	clockLead = 0;
	/**
	 * The operator's settings in force for this run, as bindings every request, delivery and sweep runs with (the
	 * row quota, APP_ROW_QUOTA, when a command has lowered it). Empty: the test configuration's.
	 */
	settings: Record<string, string> = {};

	constructor(
		readonly run: number,
		readonly tally: Tally,
	) {}

	/** The next send to the work queue fails (the queue was unreachable): the sweeper must find the job. */
	loseNextSend = false;

	/** Receives what the Worker sends to its work queue while this world runs (test/sim/simulation.test.ts). */
	async sent(message: SentMessage): Promise<void> {
		if (this.loseNextSend) {
			this.loseNextSend = false;
			this.tally.faults++;
			throw new Error("Queue send failed: Network connection lost.");
		}
		this.queue.push({ body: message.body, attempts: 1, dead: false });
	}

	/**
	 * A request as a careful client sends it: with `fault`, the given D1 call fails; a 503 caused by the fault is then
	 * sent again without one (a write that was not acknowledged may or may not have been applied: the retry settles it).
	 */
	async request(
		method: string,
		path: string,
		options: { auth: string; body?: unknown; key?: string; fault?: Fault | null; form?: boolean },
	): Promise<Answer> {
		this.tally.requests++;
		const send = async (fault: Fault | null) => {
			const request = apiRequest(method, path, { auth: options.auth, body: options.body });
			if (options.key !== undefined) request.headers.set("Idempotency-Key", options.key);
			const response = await fetchWithBindings(request, this.bindings(fault));
			const text = await response.text();
			return {
				status: response.status,
				body: text === "" ? null : (JSON.parse(text) as unknown),
				location: response.headers.get("Location"),
				replayed: response.headers.get("Idempotent-Replayed") === "true",
				retried: false,
			};
		};
		const first = await send(options.fault ?? null);
		if (!options.fault) return first;
		this.tally.faults++;
		if (first.status !== 503 || /moving between shards/.test(messageOf(first))) return first;
		return { ...(await send(null)), retried: true };
	}

	/** Delivers the queued message at `index` to the Worker's queue handler, as the queue would (retries, dead letters). */
	async deliver(index: number, options: { fault: Fault | null; duplicate: boolean }): Promise<void> {
		const message = this.queue[index];
		if (!message) return;
		if (!options.duplicate) this.queue.splice(index, 1);
		this.tally.deliveries++;
		if (options.fault) this.tally.faults++;
		const queue = message.dead ? env.JOBS_DEAD_LETTER_QUEUE : WORK_QUEUE;
		const { result } = await deliver([message.body], {
			env: envWith(this.bindings(options.fault)),
			queue,
			attempts: message.attempts,
		});
		if (result.retryMessages.length === 0) return;
		// max_retries: 5 on the work queue, 10 on the dead-letter queue (wrangler.toml); past that a message is gone.
		if (!message.dead && message.attempts >= 6) this.queue.push({ body: message.body, attempts: 1, dead: true });
		else if (!(message.dead && message.attempts >= 11)) this.queue.push({ ...message, attempts: message.attempts + 1 });
	}

	/** The run's settings, and D1 failing as `fault` says. */
	bindings(fault: Fault | null = null): Partial<Env> {
		return { ...(this.settings as unknown as Partial<Env>), ...(fault ? faultsAt(fault) : {}) };
	}

	/** Loses the queued message at `index` (the sweeper must find its job). */
	drop(index: number): void {
		if (this.queue.splice(index, 1).length > 0) this.tally.faults++;
	}

	/** Runs the Cron Trigger's sweep `minutes` on from now (simulated: the wall clock plus the lead), optionally under a fault. */
	async sweep(minutes: number, fault: Fault | null = null): Promise<void> {
		this.clockLead = Math.max(this.clockLead, minutes * MINUTE);
		const controller = createScheduledController({ scheduledTime: new Date(Date.now() + this.clockLead), cron: "*/5 * * * *" });
		if (fault) this.tally.faults++;
		try {
			await worker.scheduled(controller, envWith(this.bindings(fault)));
		} catch {
			// A sweep that meets a fault simply ends: the next one goes on.
		}
	}

	/** Every job's status among `ids`, wherever it lives (the control database or any shard). */
	async jobStatuses(ids: string[]): Promise<Map<string, string>> {
		const statuses = new Map<string, string>();
		if (ids.length === 0) return statuses;
		for (const db of databases()) {
			const { results } = await db
				.prepare("SELECT id, status FROM jobs WHERE id IN (SELECT value FROM json_each(?1))")
				.bind(JSON.stringify(ids))
				.all<{ id: string; status: string }>();
			for (const row of results) statuses.set(row.id, row.status);
		}
		return statuses;
	}

	/** Unfinished jobs of these applications (and realm jobs about them), anywhere. */
	async unfinishedJobs(appIds: string[]): Promise<{ id: string; type: string; status: string }[]> {
		const found: { id: string; type: string; status: string }[] = [];
		for (const db of databases()) {
			const { results } = await db
				.prepare(
					`SELECT id, type, status FROM jobs WHERE status IN ('queued', 'running')
					   AND (app_id IN (SELECT value FROM json_each(?1)) OR (app_id = '' AND created_at >= ?2))`,
				)
				.bind(JSON.stringify(appIds), this.startedAt)
				.all<{ id: string; type: string; status: string }>();
			found.push(...results);
		}
		return found;
	}

	readonly startedAt = new Date().toISOString();

	/** The application's shard as the control database places it. */
	async placement(appId: string): Promise<{ shard: string; deleted: boolean } | null> {
		const row = await env.DB.prepare("SELECT shard, deleted_at FROM applications WHERE id = ?1")
			.bind(appId)
			.first<{ shard: string; deleted_at: string | null }>();
		return row ? { shard: row.shard, deleted: row.deleted_at !== null } : null;
	}
}

/** After every step: a learner has at most one erasure pending (a repeat, a bulk or a realm-wide request joins it). */
export async function checkOneErasurePerLearner(appIds: string[]): Promise<string | null> {
	for (const db of databases().slice(1)) {
		const { results } = await db
			.prepare(
				`SELECT app_id, count(*) AS n FROM jobs WHERE type = 'deleteAllLearnerData' AND status IN ('queued', 'running')
				   AND app_id IN (SELECT value FROM json_each(?1))
				 GROUP BY app_id, learner_hash HAVING count(*) > 1 LIMIT 1`,
			)
			.bind(JSON.stringify(appIds))
			.all<{ app_id: string; n: number }>();
		if (results[0]) return `application ${results[0].app_id} has ${results[0].n} unfinished erasures of one learner: a repeat must join the pending one`;
	}
	return null;
}

/**
 * The rows of the `jobs` table each application holds on the shards (its moves are realm jobs, in the control
 * database). During a move its jobs are on both shards (the destination's a copy of the source's): the larger count
 * is the application's.
 */
export async function jobRowsOf(appIds: string[]): Promise<Map<string, number>> {
	const rows = new Map<string, number>();
	for (const db of databases().slice(1)) {
		const { results } = await db
			.prepare("SELECT app_id, count(*) AS n FROM jobs WHERE app_id IN (SELECT value FROM json_each(?1)) GROUP BY app_id")
			.bind(JSON.stringify(appIds))
			.all<{ app_id: string; n: number }>();
		for (const row of results) rows.set(row.app_id, Math.max(rows.get(row.app_id) ?? 0, row.n));
	}
	return rows;
}

/** The error message of an answer that has one. */
export const messageOf = (answer: { body: unknown }) =>
	typeof answer.body === "object" && answer.body !== null && "message" in answer.body ? String((answer.body as { message: unknown }).message) : "";

/** Every D1 binding failing its `nth` call (counted across all of them) as the fault says. */
function faultsAt(fault: Fault): Record<string, D1Database> {
	let calls = 0;
	return faultyDatabases(() => {
		if (calls++ !== fault.nth) return null;
		return { message: FAULT_MESSAGES[fault.message % FAULT_MESSAGES.length] ?? D1_ERRORS.networkLost, when: fault.after ? "after" : "before" };
	});
}

/** The control database and every shard. */
export const databases = (): D1Database[] => [env.DB, ...SHARDS.map((shard) => shardDatabase(env, shard.name))];

/** A new application in `region`, made through the management API, with one credential. */
export async function createApplication(region: "default" | "eu", name: string): Promise<{ appId: string; auth: string; shard: string }> {
	const created = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name, dataRegion: region } });
	if (created.status !== 200) throw new Error(`creating an application answered ${created.status}`);
	const { id: appId, shard } = (await created.json()) as { id: string; shard: string };
	const credential = await call("POST", `/appManagement/${appId}/credentials`, { auth: MANAGEMENT, body: { name: "sim" } });
	if (credential.status !== 200) throw new Error(`creating a credential answered ${credential.status}`);
	const { credential: secret } = (await credential.json()) as { credential: string };
	return { appId, auth: basicHeader(appId, secret), shard };
}
