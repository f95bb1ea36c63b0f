import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { markApplicationDeleted, noteDeletionRecorded } from "../../src/db/applications";
import { recordApplicationDeletion } from "../../src/db/jobs";
import type { DataRegion } from "../../src/shards";
import { apiRequest, call, envWith, fetchWithBindings } from "../support/client";
import { basicHeader, MANAGEMENT, realmUser, type TestApp, uniqueValue } from "../support/fixtures";
import { deliver, type SentMessage, stubSends, WORK_QUEUE } from "../support/queue";
import { D1_ERRORS, type FaultDecision, faultyDatabases } from "../support/faulty-d1";
import { SHARDS, countOf, shardOf } from "../support/seed";
import { findAnywhere } from "../support/scan";

/**
 * SPEC §11 under load: a few thousand mixed requests from several applications spread over every shard, with D1
 * faults (transient and overload errors, before D1 runs a call or after it committed one, in the control database
 * and on the shards alike) and lost queue sends injected at random; job messages delivered in random order, some
 * lost, each through the same faulty D1 bindings; one application deleted half-way (on a shard it shares with a
 * live one, and now and then with its shard's half left to the sweeper), learners erased along the way. Then the sweeper and the consumer run until nothing is left to do,
 * and the test checks: every job finished, every acknowledged write is there, nothing of the deleted
 * application or of an erased learner remains anywhere, and each application's stored-row count is exact.
 *
 * The client is modelled as a careful one: what it was told succeeded must hold; what failed with 503 may or
 * may not have happened (the message says so), so those writes are neither expected nor forbidden.
 */

const REQUESTS = 2400;
const FAULT_RATE = 0.04;
const LOST_SEND_RATE = 0.1;
const LOST_MESSAGE_RATE = 0.03;
const MINUTE = 60_000;

/** mulberry32: a small seeded generator, so a failing run can be replayed from its printed seed. */
function generator(seed: number) {
	let state = seed >>> 0;
	const next = () => {
		state = (state + 0x6d2b79f5) >>> 0;
		let t = state;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
	return {
		chance: (p: number) => next() < p,
		int: (n: number) => Math.floor(next() * n),
		pick: <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)] as T,
	};
}

const SEED = Number(process.env.SOAK_SEED ?? Date.now() % 1_000_000);
const random = generator(SEED);
const ERRORS = [D1_ERRORS.networkLost, D1_ERRORS.reset, D1_ERRORS.overloaded, D1_ERRORS.queuedTooLong];

let faults = 0;
/** Every D1 binding (the control database and each shard), failing a random share of calls, before or after D1 runs them. */
const faultyBindings = faultyDatabases((): FaultDecision => {
	if (!random.chance(FAULT_RATE)) return null;
	faults++;
	return { message: random.pick(ERRORS), when: random.chance(0.5) ? "before" : "after" };
});

interface Pending {
	body: unknown;
	attempts: number;
	dead: boolean;
}
const pending: Pending[] = [];
/** The queue, for the whole run: it loses a share of sends (the send throws) and keeps the rest for the test to deliver. */
async function lossySend({ body }: SentMessage): Promise<void> {
	if (random.chance(LOST_SEND_RATE)) {
		faults++;
		throw new Error("Queue send failed: Network connection lost.");
	}
	pending.push({ body, attempts: 1, dead: false });
}

const faultyEnv = (): Partial<Env> => faultyBindings;

/** An application created through the API in `region` (placed on that region's least-used open shard), with one credential. */
async function createAppIn(region: DataRegion): Promise<TestApp & { shard: string }> {
	const created = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name: uniqueValue("soak"), dataRegion: region } });
	expect(created.status).toBe(200);
	const { id: appId, shard } = (await created.json()) as { id: string; shard: string };
	const credential = await call("POST", `/appManagement/${appId}/credentials`, { auth: MANAGEMENT, body: { name: "main" } });
	expect(credential.status).toBe(200);
	const { id: credentialId, credential: secret } = (await credential.json()) as { id: string; credential: string };
	return { appId, credentialId, secret, auth: basicHeader(appId, secret), shard };
}

/** Delivers one pending message as the queue would: retries with attempts + 1, then the dead-letter queue. */
async function deliverOne(index: number, withFaults: boolean): Promise<void> {
	const [message] = pending.splice(index, 1);
	if (!message) return;
	const queue = message.dead ? env.JOBS_DEAD_LETTER_QUEUE : WORK_QUEUE;
	const { result } = await deliver([message.body], { env: envWith(withFaults ? faultyEnv() : {}), queue, attempts: message.attempts });
	if (result.retryMessages.length === 0) return;
	// max_retries: 5 on the work queue, 10 on the dead-letter queue (wrangler.toml); past that a message is gone.
	if (!message.dead && message.attempts >= 6) pending.push({ body: message.body, attempts: 1, dead: true });
	else if (!(message.dead && message.attempts >= 11)) pending.push({ ...message, attempts: message.attempts + 1 });
}

/** Runs the Cron Trigger's sweep at `time`, through the faulty bindings or not. */
async function sweep(time: number, withFaults: boolean): Promise<void> {
	const controller = createScheduledController({ scheduledTime: new Date(time), cron: "*/5 * * * *" });
	try {
		await worker.scheduled(controller, envWith(withFaults ? faultyEnv() : {}));
	} catch {
		// A sweep that meets a fault simply ends: the next one, five minutes later, goes on.
	}
}

/** What the client was told. */
interface Learner {
	app: TestApp;
	id: string;
	/** An erasure was requested: nothing of it may remain once it completes. */
	erased: boolean;
	/** A deletion of what may have been its last registration was attempted: it may be gone, tags and all. */
	maybeGone: boolean;
	/** Tags acknowledged as added and not since targeted by a removal that may have happened. */
	tags: Set<string>;
}

interface Registration {
	app: TestApp;
	id: string;
	learner: Learner;
	tags: Set<string>;
	/** A deletion was attempted: it may have happened. */
	maybeDeleted: boolean;
}

afterEach(() => {
	vi.restoreAllMocks();
});

describe("the service under faults", () => {
	it("finishes every job, keeps every acknowledged write, and leaves nothing of deleted data", { timeout: 300_000 }, async () => {
		stubSends(lossySend);
		// Placed as the API places them: the default region's two shards in turn, and the EU shard.
		const apps = [await createAppIn("default"), await createAppIn("default"), await createAppIn("eu"), await createAppIn("default")];
		const doomed = await createAppIn("default");
		expect(new Set(apps.map((app) => app.shard))).toEqual(new Set(SHARDS.map((shard) => shard.name)));
		// The deleted application shares its shard with a live one, whose data must come through whole.
		expect(apps.some((app) => app.shard === doomed.shard)).toBe(true);
		const admin = await realmUser("admin");
		const learners: Learner[] = [];
		const registrations: Registration[] = [];
		const erasures: { learner: Learner; jobId: string }[] = [];
		const jobIds = new Set<string>();
		let doomedDeleted = false;
		let requests = 0;

		const send = async (app: TestApp, method: string, path: string, body?: unknown) => {
			requests++;
			const response = await fetchWithBindings(apiRequest(method, path, { auth: app.auth, body }), faultyEnv());
			const location = response.headers.get("Location");
			if (location) jobIds.add(location.slice("/api/v2/jobs/".length));
			expect(response.status, `${method} ${path}`).not.toBe(500);
			return response;
		};
		// The deleted application's learners stay out of what must remain; new registrations keep being tried for it.
		const live = () => learners.filter((learner) => !learner.erased && !learner.maybeGone && (learner.app !== doomed || !doomedDeleted));
		const liveRegistrations = () =>
			registrations.filter(
				(registration) =>
					!registration.learner.erased && !registration.learner.maybeGone && !registration.maybeDeleted && (registration.app !== doomed || !doomedDeleted),
			);

		const operations: (() => Promise<void>)[] = [
			// A registration for a new or known learner, with tags.
			async () => {
				const known = live();
				const app = random.pick([...apps, doomed]);
				const ownLearners = known.filter((learner) => learner.app === app);
				const learner = ownLearners.length > 0 && random.chance(0.6)
					? random.pick(ownLearners)
					: { app, id: uniqueValue("soak-learner"), erased: false, maybeGone: false, tags: new Set<string>() };
				const registration = { app, id: uniqueValue("soak-registration"), learner, tags: new Set<string>(), maybeDeleted: false };
				const learnerTag = uniqueValue("lt");
				const registrationTag = uniqueValue("rt");
				const response = await send(app, "POST", "/registrations", {
					courseId: "soak",
					registrationId: registration.id,
					learner: { id: learner.id, email: `${learner.id}@example.com` },
					learnerTags: [learnerTag],
					registrationTags: [registrationTag],
				});
				if (response.status !== 204) return;
				if (!learners.includes(learner)) learners.push(learner);
				learner.tags.add(learnerTag);
				registration.tags.add(registrationTag);
				registrations.push(registration);
			},
			// Tags added to a learner, or to several in a batch.
			async () => {
				const candidates = live();
				if (candidates.length === 0) return;
				const learner = random.pick(candidates);
				const tags = [uniqueValue("t"), uniqueValue("t")];
				const targets = random.chance(0.5)
					? [learner]
					: candidates.filter((other) => other.app === learner.app).slice(0, 1 + random.int(5));
				const response =
					targets.length === 1 && targets[0] === learner
						? await send(learner.app, "PUT", `/learner/${learner.id}/tags`, { tags })
						: await send(learner.app, "PUT", "/learner/tags", { ids: targets.map((one) => one.id), tags });
				if (response.status !== 204) return;
				for (const one of targets) for (const tag of tags) one.tags.add(tag);
			},
			// A learner's tag removed: it may be gone whatever the answer.
			async () => {
				const candidates = live().filter((learner) => learner.tags.size > 0);
				if (candidates.length === 0) return;
				const learner = random.pick(candidates);
				const tag = random.pick([...learner.tags]);
				learner.tags.delete(tag);
				await send(learner.app, "DELETE", `/learner/${learner.id}/tags`, { tags: [tag] });
			},
			// Registration tags.
			async () => {
				const candidates = liveRegistrations();
				if (candidates.length === 0) return;
				const registration = random.pick(candidates);
				const tag = uniqueValue("rt");
				const response = await send(registration.app, "PUT", `/registrations/${registration.id}/tags`, { tags: [tag] });
				if (response.status === 204) registration.tags.add(tag);
			},
			// A learner's details updated.
			async () => {
				const candidates = live();
				if (candidates.length === 0) return;
				const learner = random.pick(candidates);
				await send(learner.app, "POST", `/learner/${learner.id}/updateInfo`, { id: learner.id, firstName: uniqueValue("name") });
			},
			// Reads.
			async () => {
				const candidates = live();
				if (candidates.length === 0) return;
				const learner = random.pick(candidates);
				await send(learner.app, "GET", `/learner/${learner.id}/tags`);
				await send(learner.app, "GET", `/registrations?learnerId=${learner.id}`);
			},
			// A registration deleted: it may be gone whatever the answer.
			async () => {
				const candidates = liveRegistrations();
				if (candidates.length === 0 || !random.chance(0.3)) return;
				const registration = random.pick(candidates);
				registration.maybeDeleted = true;
				// A learner goes with its last registration.
				if (!liveRegistrations().some((other) => other.learner === registration.learner)) registration.learner.maybeGone = true;
				await send(registration.app, "DELETE", `/registrations/${registration.id}`);
			},
			// A learner erased: from the request on, nothing of it may remain once its job completes.
			async () => {
				const candidates = live();
				if (candidates.length === 0 || !random.chance(0.2)) return;
				const learner = random.pick(candidates);
				learner.erased = true;
				const response = await send(learner.app, "POST", `/learner/${learner.id}/delete-information?userEmail=${encodeURIComponent(admin)}`);
				if (response.status === 204) erasures.push({ learner, jobId: (response.headers.get("Location") ?? "").split("/").pop() ?? "" });
				else erasures.push({ learner, jobId: "" });
			},
		];

		while (requests < REQUESTS) {
			await random.pick(operations)();
			if (random.chance(0.3) && pending.length > 0) {
				const index = random.int(pending.length);
				if (random.chance(LOST_MESSAGE_RATE)) {
					pending.splice(index, 1);
					faults++;
				} else {
					await deliverOne(index, true);
				}
			}
			if (!doomedDeleted && requests >= REQUESTS / 2) {
				// Another isolate accepts the application's deletion: this one still trusts its credential, so the
				// writes that keep coming for it are stopped only by the fence in its shard. Now and then that request
				// fails between the two databases: the control database marked it deleted, its shard was never told,
				// and the sweeper must finish the deletion (the writes meanwhile land, and go with the rest).
				const now = new Date().toISOString();
				expect(await markApplicationDeleted(env.DB, doomed.appId, now)).toMatchObject({ appId: doomed.appId, shard: doomed.shard });
				if (random.chance(0.5)) {
					const job = await recordApplicationDeletion(await shardOf(doomed.appId), doomed.appId, now);
					expect(job).not.toBeNull();
					await noteDeletionRecorded(env.DB, doomed.appId, now);
					pending.push({ body: { type: "deleteApplication", jobId: job?.id }, attempts: 1, dead: false });
				}
				doomedDeleted = true;
			}
		}

		// Let the system settle: sweeps (each 11 minutes on from the last) and deliveries, still under faults at
		// first, then without. An erasure the client was not told succeeded, or that failed, is asked again, as a
		// careful client would.
		let time = Date.now();
		for (let round = 0; round < 40; round++) {
			const quiet = round >= 10;
			time += 11 * MINUTE;
			await sweep(time, !quiet);
			while (pending.length > 0) await deliverOne(0, !quiet && random.chance(0.5));
			if (!quiet) continue;
			for (const erasure of erasures) {
				const job = erasure.jobId
					? await (await shardOf(erasure.learner.app.appId)).prepare("SELECT status FROM jobs WHERE id = ?1").bind(erasure.jobId).first<{ status: string }>()
					: null;
				if (job?.status === "completed" || (erasure.learner.app === doomed && doomedDeleted)) continue;
				const { learner } = erasure;
				const response = await fetchWithBindings(
					apiRequest("POST", `/learner/${learner.id}/delete-information?userEmail=${encodeURIComponent(admin)}`, { auth: learner.app.auth }),
					{},
				);
				// 404: nothing of the learner is left to erase.
				if (response.status === 204) erasure.jobId = (response.headers.get("Location") ?? "").split("/").pop() ?? "";
				else expect(response.status).toBe(404);
			}
			const unfinished = await countOf("SELECT count(*) AS n FROM jobs WHERE status IN ('queued', 'running')");
			if (unfinished === 0 && pending.length === 0 && round > 12) break;
		}

		// Every job reached a final state.
		const stuck = await countOf("SELECT count(*) AS n FROM jobs WHERE status IN ('queued', 'running')");
		// The deleted application's deletion reached its shard, whichever way, and finished there.
		const deletion = await (await shardOf(doomed.appId)).prepare("SELECT status FROM jobs WHERE app_id = ?1 AND type = 'deleteApplication'")
			.bind(doomed.appId)
			.all<{ status: string }>();

		// Every acknowledged write is there.
		const lost: string[] = [];
		for (const learner of live()) {
			const { results } = await (await shardOf(learner.app.appId)).prepare("SELECT tag FROM learner_tags WHERE app_id = ?1 AND learner_id = ?2")
				.bind(learner.app.appId, learner.id)
				.all<{ tag: string }>();
			const stored = new Set(results.map((row) => row.tag));
			for (const tag of learner.tags) if (!stored.has(tag)) lost.push(`learner tag ${tag}`);
		}
		for (const registration of liveRegistrations()) {
			const { results } = await (await shardOf(registration.app.appId)).prepare("SELECT tag FROM registration_tags WHERE app_id = ?1 AND registration_id = ?2")
				.bind(registration.app.appId, registration.id)
				.all<{ tag: string }>();
			const stored = new Set(results.map((row) => row.tag));
			if (results.length === 0 && registration.tags.size > 0) lost.push(`registration ${registration.id}`);
			for (const tag of registration.tags) if (!stored.has(tag)) lost.push(`registration tag ${tag}`);
		}

		// Nothing of the deleted application, nor of an erased learner, remains.
		const leftovers: string[] = [];
		const { findings } = await findAnywhere(learners.filter((learner) => learner.erased).map((learner) => learner.id));
		for (const finding of findings) leftovers.push(`${finding.table}.${finding.column}`);
		const { findings: ofDoomed } = await findAnywhere(learners.filter((learner) => learner.app === doomed).map((learner) => learner.id));
		for (const finding of ofDoomed) leftovers.push(`deleted application: ${finding.table}.${finding.column}`);

		// Each application's stored-row count (the quota's) matches what it holds.
		const drift: string[] = [];
		for (const app of apps) {
			const row = await (await shardOf(app.appId)).prepare(
				`SELECT s.stored_rows AS counted, (SELECT count(*) FROM registrations WHERE app_id = ?1)
				   + (SELECT count(*) FROM learner_tags WHERE app_id = ?1) + (SELECT count(*) FROM registration_tags WHERE app_id = ?1) AS actual
				 FROM app_storage s WHERE s.app_id = ?1`,
			)
				.bind(app.appId)
				.first<{ counted: number; actual: number }>();
			if (row?.counted !== row?.actual) drift.push(`${app.appId}: counted ${row?.counted}, holds ${row?.actual}`);
		}

		console.log(`${requests} requests, ${faults} faults, stuck jobs = ${stuck}, lost writes = ${lost.length}, leftovers = ${leftovers.length}`);
		console.log(`seed ${SEED}; ${jobIds.size} jobs; ${erasures.length} erasures; ${learners.length} learners`);
		expect(requests).toBeGreaterThanOrEqual(REQUESTS);
		expect(faults).toBeGreaterThan(0);
		expect(stuck).toBe(0);
		expect(deletion.results).toEqual([{ status: "completed" }]);
		expect(lost).toEqual([]);
		expect(leftovers).toEqual([]);
		expect(drift).toEqual([]);
		expect(erasures.length).toBeGreaterThan(0);
	});
});
