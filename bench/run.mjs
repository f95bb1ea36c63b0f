// `npm run bench`: load benchmarks of the service against floors on the same runtime (bench/floors/), plus
// scaling figures from D1's own meta and the JavaScript cost of the hot path (bench/probe/). Everything runs
// locally (workerd through wrangler's unstable_startWorker, local D1 in a fresh temporary directory) and all
// traffic goes to 127.0.0.1. See docs/benchmarks.md.
//
// Phases: startup (startup CPU plus the first authenticated request of each route group, and bundle size, against
// a bare Hono Worker) → migrate → seed 10 000 registrations → probe (scaling, hot path) → seed up to 100 000
// registrations → probe (scaling) → start the service and the floors → find the saturation concurrency → measure
// floors and endpoints in alternating rounds → check for errors at twice saturation → print, save
// bench/results/latest.json. BENCH_ONLY=startup runs the first alone.
//
// This file is the order of the phases; bench/lib/ holds the parts: processes.mjs (wrangler, workerd, CPUs),
// load.mjs (targets, autocannon, saturation), stats.mjs (medians, ratios), report.mjs (tables, results file),
// startup.mjs (the startup phase).
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { setTimeout as sleepFor } from "node:timers/promises";
import path from "node:path";
import { FLOORS, WRITE_FLOORS, findSaturation, json, load, preflight, targets } from "./lib/load.mjs";
import { ROOT, executeSql, log, migrateLocal, pinCpus, request, startWorker, tempRoot } from "./lib/processes.mjs";
import { formatErasuresReport, formatMoveReport, formatReport, formatStartupReport, saveResult } from "./lib/report.mjs";
import { measureStartup } from "./lib/startup.mjs";
import { summarize } from "./lib/stats.mjs";
import {
	APP_ID,
	CREDENTIAL_ID,
	LEARNERS,
	LEARNERS_SMALL,
	OTHER_SHARD,
	REALM_ADMIN,
	REGISTRATIONS_PER_LEARNER,
	SECRET,
	SHARD,
	TAGS_PER_LEARNER,
	learnerId,
	seedApplication,
	seedApplicationStorage,
	seedLearners,
} from "./seed.mjs";

// Knobs, for a quick run (BENCH_DURATION=2) or a steadier one. Defaults keep the whole run near 7 minutes.
const DURATION = Number(process.env.BENCH_DURATION ?? 3);
// An even number: the order of targets alternates between rounds.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
// Names this run in its saved file (e.g. BENCH_LABEL=before-cache).
const LABEL = process.env.BENCH_LABEL;
// BENCH_ONLY=startup: the startup phase alone (about ten minutes), saved as bench/results/latest-startup.json.
// BENCH_ONLY=move: the move phase alone, saved as bench/results/latest-move.json. BENCH_ONLY=load: everything but
// the startup and move phases (seed, probes, load), saved as bench/results/latest-load.json.
const ONLY = process.env.BENCH_ONLY;
const PHASES = ["startup", "move", "erasures", "load"];
// The move phase's application: 100 000 registrations (5 per learner), 2 learner tags per learner.
const MOVE_LEARNERS = Number(process.env.BENCH_MOVE_LEARNERS ?? 20_000);
const MOVE_REGISTRATIONS_PER_LEARNER = 5;
const MOVE_LEARNER_TAGS_EACH = 2;
const MOVE_WRITE_INTERVAL_MS = 50;
const sleep = (ms) => (ms > 0 ? sleepFor(ms) : Promise.resolve());
// The checkout whose startup, first request and bundle are measured (another one, for a before/after comparison;
// it needs its own node_modules): this repository by default. Load is always on this repository's service.
const SERVICE_DIR = path.resolve(process.env.BENCH_SERVICE_DIR ?? ROOT);
// Rounds of the startup phase: startup profiles per Worker, and fresh processes per first request. SPEC §6 asks
// for medians of at least 7; an odd number, so the median is one of them.
const STARTUP_RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 9);
const OVERLOAD_DURATION = 3;
// Seconds of load before a target's first measured round. A fresh workerd takes several seconds of traffic to
// settle (JIT, SQLite page cache): with 1 s, the first round of a floor cost up to 40 % more CPU per request.
const WARMUP = 5;

const HOT_PATH_ITERATIONS = 5_000;
const HOT_PATH_RUNS = 5;

/** A fresh Ed25519 private key as the JWK the service's RECEIPT_SIGNING_KEY holds. */
function receiptSigningKey() {
	const { kty, crv, d, x } = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
	return JSON.stringify({ kty, crv, d, x });
}

// The service's secrets, as bindings: a developer's .dev.vars never reaches the bench.
const SECRETS = {
	MANAGEMENT_APP_ID: "bench-management",
	MANAGEMENT_SECRET_KEY: "bench-management-secret-0123456789abcdef",
	TOKEN_SIGNING_SECRET: "bench-token-signing-secret-0123456789abcdef",
	LEARNER_HASH_KEY: "bench-learner-hash-key-0123456789abcdef",
	// Signs erasure receipts; the service refuses to start without one. A fresh Ed25519 key per run.
	RECEIPT_SIGNING_KEY: receiptSigningKey(),
};
const SECRET_BINDINGS = Object.fromEntries(Object.entries(SECRETS).map(([name, value]) => [name, { type: "secret_text", value }]));
// wrangler.toml allows 1200 requests a minute per application; a load test sends that in well under a second.
// This run alone overrides the binding (production's limit is untouched); the limiter is still called on every
// request, as in production, so its cost is measured — only its budget is raised.
const BENCH_RATE_LIMIT = 1_000_000_000;
// Likewise the write budget (APP_WRITE_BUDGET, 300 000 rows a minute per application in wrangler.toml), which the
// batch load spends in seconds: every write still pays its check, in the same D1 call.
const BENCH_WRITE_BUDGET = 1_000_000_000_000;

/**
 * A fresh local D1, every binding migrated (the control database and each shard), holding the bench application
 * (in the control database, placed on SHARD) and, on SHARD, its storage row and the first 10 000 registrations.
 */
function createDatabase(persistTo) {
	migrateLocal(persistTo);
	const seedMs = [executeSql(persistTo, "seed-application", seedApplication()) + executeSql(persistTo, "seed-storage", seedApplicationStorage(), SHARD)];
	seedMs.push(executeSql(persistTo, "seed-small", seedLearners(0, LEARNERS_SMALL), SHARD));
	log(`seeded ${LEARNERS_SMALL * REGISTRATIONS_PER_LEARNER} registrations in ${seedMs[1]} ms`);
	return seedMs;
}

/** Seeds the rest of the dataset, up to 100 000 registrations; returns the time it took, in ms. */
function growDatabase(persistTo) {
	const ms = executeSql(persistTo, "seed-large", seedLearners(LEARNERS_SMALL, LEARNERS), SHARD);
	log(`seeded up to ${LEARNERS * REGISTRATIONS_PER_LEARNER} registrations in ${ms} ms`);
	return ms;
}

/**
 * Scaling figures from D1's meta at the database's current size (bench/probe POST /scale), and with
 * `timeHotPath`, the JavaScript cost of the request path too. The probe worker runs alone: one workerd at a
 * time on the database file.
 */
async function probe(persistTo, label, { timeHotPath = false } = {}) {
	const { worker, origin } = await startWorker(path.join(ROOT, "bench/probe/wrangler.toml"), { persistTo });
	try {
		const response = await request(origin, "POST", "/scale", {
			headers: json,
			body: JSON.stringify({
				seededAppId: APP_ID,
				seededLearnerIds: [learnerId(0), learnerId(1), learnerId(LEARNERS_SMALL - 1)],
				requestedBy: REALM_ADMIN,
				appId: `SCALE${label.toUpperCase()}`,
				shard: SHARD,
				secret: SECRET,
			}),
		});
		if (response.status !== 200) throw new Error(`probe ${label}: ${response.status} ${response.text}`);
		const scale = JSON.parse(response.text);
		log(`scale at ${scale.databaseRegistrations} registrations: done`);
		return { scale, hotPath: timeHotPath ? await hotPath(origin) : undefined };
	} finally {
		await worker.dispose();
	}
}

/** Bulk erasure: learners × registrations each, in one job (SPEC §9 asks for 1 000 × 10). */
const BULK_LEARNERS = 1000;
/** A tenth of it, run first: rows read growing with the learners (×10 here), not with their square (×100). */
const BULK_LEARNERS_SMALL = 100;
const BULK_REGISTRATIONS_PER_LEARNER = 10;
/** Realm-wide erasure: the learner's registrations in each of the three applications (one per shard). */
const REALM_REGISTRATIONS = 10;

/**
 * The erasures phase (bench/probe POST /erasures): a bulk erasure of BULK_LEARNERS learners with
 * BULK_REGISTRATIONS_PER_LEARNER registrations each, and a realm-wide erasure of a learner held by an application on
 * each shard, every D1 call metered, the jobs run one chunk at a time.
 */
async function erasuresProbe(persistTo) {
	const { worker, origin } = await startWorker(path.join(ROOT, "bench/probe/wrangler.toml"), { persistTo });
	const run = async (bulkLearners) => {
		const response = await request(origin, "POST", "/erasures", {
			headers: json,
			body: JSON.stringify({
				requestedBy: "bench-dpo@example.com",
				bulkLearners,
				registrationsPerLearner: BULK_REGISTRATIONS_PER_LEARNER,
				realmRegistrations: REALM_REGISTRATIONS,
			}),
		});
		if (response.status !== 200) throw new Error(`/erasures: ${response.status} ${response.text}`);
		return JSON.parse(response.text);
	};
	try {
		const small = await run(BULK_LEARNERS_SMALL);
		const full = await run(BULK_LEARNERS);
		const scaling = [small, full].map(({ bulk }) => ({ learners: bulk.learners, calls: bulk.run.total.calls, rowsRead: bulk.run.total.rowsRead }));
		return { ...full, bulkScaling: scaling };
	} finally {
		await worker.dispose();
	}
}

/**
 * The move phase (bench/probe POST /move-setup, /move, /move-check; /write on a second probe process): an application of 100 000
 * registrations created on SHARD and moved to OTHER_SHARD by the service's move job, one step at a time, every D1
 * call metered, while a writer here adds a learner tag every MOVE_WRITE_INTERVAL_MS through the service's data
 * layer (POST /write: addTags on the shard the control database names), retrying each refused write
 * (application_moving) until it is acknowledged.
 */
async function moveProbe(persistTo) {
	const { worker, origin } = await startWorker(path.join(ROOT, "bench/probe/wrangler.toml"), { persistTo });
	// The writes go to a second probe process on the same database files, as other isolates' writes would: locally,
	// D1 answers a Worker from within its own workerd process, and while the move keeps one process busy with D1
	// calls, that process serves no other request (nor fires a timer) until the move ends.
	let writerWorker;
	try {
		writerWorker = await startWorker(path.join(ROOT, "bench/probe/wrangler.toml"), { persistTo });
	} catch (error) {
		await worker.dispose();
		throw error;
	}
	const appId = "BENCHMOVE0000001";
	const prefix = "move-write-";
	const body = {
		appId,
		from: SHARD,
		to: OTHER_SHARD,
		learners: MOVE_LEARNERS,
		registrationsPerLearner: MOVE_REGISTRATIONS_PER_LEARNER,
		learnerTagsEach: MOVE_LEARNER_TAGS_EACH,
	};
	const post = async (pathname, payload, to = origin) => {
		const response = await request(to, "POST", pathname, { headers: json, body: JSON.stringify(payload) });
		if (response.status !== 200) throw new Error(`${pathname}: ${response.status} ${response.text}`);
		return JSON.parse(response.text);
	};
	try {
		const dataset = await post("/move-setup", body);
		log(`move: seeded ${dataset.registrations} registrations on ${SHARD} in ${dataset.seedMs} ms`);

		// The writer: a write every MOVE_WRITE_INTERVAL_MS (the next one starts when the last is acknowledged, if later).
		let moving = true;
		const writes = [];
		// Attempts that met the database file locked by the move's workerd process (local D1 only), retried.
		let busy = 0;
		const writeOnce = async (i) => {
			const atMs = Date.now();
			let refusals = 0;
			let firstRefusalMs = null;
			for (;;) {
				const answer = await post("/write", { appId, learnerId: learnerOf(i), tag: `${prefix}${i}` }, writerWorker.origin);
				if (answer.outcome === "acknowledged") break;
				if (answer.outcome === "busy") {
					busy++;
				} else {
					refusals++;
					firstRefusalMs ??= Date.now();
				}
				await sleep(5);
			}
			const ackMs = Date.now();
			writes.push({ atMs, ackMs, refusals, firstRefusalMs, waitedMs: firstRefusalMs === null ? 0 : ackMs - firstRefusalMs });
		};
		const learnerOf = (i) => `move-learner-${String(i % MOVE_LEARNERS).padStart(6, "0")}`;
		const writer = (async () => {
			for (let i = 0; moving; i++) {
				const started = Date.now();
				await writeOnce(i);
				await sleep(started + MOVE_WRITE_INTERVAL_MS - Date.now());
			}
			// One write after the move's end: it lands on the new shard.
			await writeOnce(writes.length);
		})();
		let move;
		try {
			move = await post("/move", body);
		} finally {
			moving = false;
			await writer;
		}
		const check = await post("/move-check", { appId, from: SHARD, to: OTHER_SHARD, prefix });
		if (check.writesOnDestination !== writes.length || check.writesOnSource !== 0 || check.registrationsOnSource !== 0) {
			throw new Error(`move: ${writes.length} writes acknowledged; after the move ${JSON.stringify(check)}`);
		}
		const refused = writes.filter((write) => write.refusals > 0);
		const longest = refused.reduce((best, write) => (!best || write.waitedMs > best.waitedMs ? write : best), null);
		const relative = (ms) => (ms === null ? null : ms - move.startedAtMs);
		const during = writes.filter((write) => write.atMs >= move.startedAtMs && write.atMs <= move.endedAtMs);
		const writer_ = {
			intervalMs: MOVE_WRITE_INTERVAL_MS,
			writes: writes.length,
			writesDuringMove: during.length,
			refusedWrites: refused.length,
			refusals: writes.reduce((sum, write) => sum + write.refusals, 0),
			longestWaitMs: longest?.waitedMs ?? 0,
			longestWait: longest && {
				firstRefusalAtMs: relative(longest.firstRefusalMs),
				acknowledgedAtMs: relative(longest.ackMs),
				refusals: longest.refusals,
			},
			// From the first refusal of any write to the acknowledgement of the last refused one.
			refusalSpanMs:
				refused.length > 0 ? Math.max(...refused.map((w) => w.ackMs)) - Math.min(...refused.map((w) => w.firstRefusalMs)) : 0,
			maxLatencyMs: Math.max(...writes.map((write) => write.ackMs - write.atMs)),
			localLockRetries: busy,
			landedOnDestination: check.writesOnDestination,
			leftOnSource: check.writesOnSource,
		};
		const result = { dataset, ...move, writer: writer_ };
		log(
			`move: ${result.steps} steps, ${result.calls} D1 calls, ${result.totalMs} ms; writes waited at most ${writer_.longestWaitMs} ms, ` +
				`frozen to flipped ${result.plan.frozenToFlippedMs} ms`,
		);
		return result;
	} finally {
		await worker.dispose();
		await writerWorker.worker.dispose();
	}
}

/** The probe's POST /hotpath: the service's request path with D1 and the limiter stubbed, best of HOT_PATH_RUNS. */
async function hotPath(origin) {
	// Best of five: other work on the machine only ever adds time (single runs here ranged 2-4×).
	const runs = [];
	for (let run = 0; run < HOT_PATH_RUNS; run++) {
		const answer = await request(origin, "POST", "/hotpath", {
			headers: json,
			body: JSON.stringify({
				iterations: HOT_PATH_ITERATIONS,
				appId: APP_ID,
				credentialId: CREDENTIAL_ID,
				secret: SECRET,
				tokenSigningSecret: SECRETS.TOKEN_SIGNING_SECRET,
			}),
		});
		if (answer.status !== 200) throw new Error(`hot path: ${answer.status} ${answer.text}`);
		runs.push(JSON.parse(answer.text));
	}
	const min = (key) => Math.min(...runs.map((run) => run[key]));
	const figures = {
		iterations: HOT_PATH_ITERATIONS,
		runs: HOT_PATH_RUNS,
		floorMicros: min("floorMicros"),
		basicMicros: min("basicMicros"),
		bearerMicros: min("bearerMicros"),
	};
	log(`hot path: floor ${figures.floorMicros} µs, Basic ${figures.basicMicros} µs, Bearer ${figures.bearerMicros} µs`);
	return figures;
}

/**
 * The service (rate limit raised, request logs off) and every floor, each on its own workerd. Each is added to
 * `running` as it starts, so that a failure later still stops it.
 */
async function startWorkers(persistTo, running) {
	const service = await startWorker(path.join(ROOT, "wrangler.toml"), {
		persistTo,
		bindings: {
			...SECRET_BINDINGS,
			RATE_LIMITER: { type: "ratelimit", namespace_id: "1001", simple: { limit: BENCH_RATE_LIMIT, period: 60 } },
			APP_WRITE_BUDGET: { type: "plain_text", value: String(BENCH_WRITE_BUDGET) },
			// One JSON line per request is the production default; under load, wrangler would print it for
			// each of tens of thousands of requests, on the cores the load generator shares.
			LOG_LEVEL: { type: "plain_text", value: "warn" },
		},
	});
	running.push(service.worker);
	const floors = {};
	for (const [name, floor] of Object.entries({ ...FLOORS, ...WRITE_FLOORS })) {
		floors[name] = await startWorker(path.join(ROOT, floor.config), {
			persistTo,
			bindings: { APP_ID: { type: "plain_text", value: APP_ID } },
		});
		running.push(floors[name].worker);
	}
	return { service, floors };
}

/** Basic credentials of the seeded application, and a token minted with them. */
async function authenticate(service) {
	const basic = `Basic ${Buffer.from(`${APP_ID}:${SECRET}`).toString("base64")}`;
	const minted = await request(service.origin, "POST", "/api/v2/oauth/authenticate/application/token", {
		headers: { Authorization: basic, "Content-Type": "application/x-www-form-urlencoded" },
		body: "scope=read:learner write:learner read:registration&expiration=3600",
	});
	if (minted.status !== 200) throw new Error(`token: ${minted.status} ${minted.text}`);
	return { basic, bearer: `Bearer ${JSON.parse(minted.text).access_token}` };
}

/** Fails the run before any load when the service and the SQL floor disagree, or any target answers an error. */
async function checkTargets(service, floors, serviceTargets, auth) {
	// The floors and the service share the database file: a write through the service must be what the SQL
	// floor reads, or the floor would not be reading "the same data".
	const probeLearner = learnerId(LEARNERS - 1);
	await request(service.origin, "PUT", `/api/v2/learner/${probeLearner}/tags`, {
		headers: { Authorization: auth.basic, ...json },
		body: JSON.stringify({ tags: ["consistency-check"] }),
	});
	const [viaService, viaFloor] = await Promise.all([
		request(service.origin, "GET", `/api/v2/learner/${probeLearner}/tags`, { headers: { Authorization: auth.basic } }),
		request(floors.sql.origin, "GET", `/api/v2/learner/${probeLearner}/tags`),
	]);
	if (viaService.text !== viaFloor.text) throw new Error(`floor and service disagree: ${viaService.text} vs ${viaFloor.text}`);

	for (const [name, target] of Object.entries(serviceTargets)) await preflight(service.origin, name, target);
	for (const [name, floor] of Object.entries({ ...FLOORS, ...WRITE_FLOORS })) {
		await preflight(floors[name].origin, floor.label, floor.target);
	}
}

/**
 * ROUNDS rounds of load at `connections`: reads with their floors, then writes with theirs. Returns each round's
 * runs by target name, and the names of the service's write targets.
 */
async function measureRounds(service, floors, serviceTargets, connections) {
	// Every round measures every floor and every read endpoint, one after the other, so a burst of load from
	// elsewhere on the machine lands on both sides of a ratio: ratios are taken within a round, and each figure
	// reported is the median over rounds. Writes come after all reads: every write changes the database file,
	// and each workerd (the floors are separate processes) would then reread the pages another one wrote.
	const reads = Object.keys(serviceTargets).filter((name) => serviceTargets[name].method === "GET");
	const writes = Object.keys(serviceTargets).filter((name) => !reads.includes(name));
	const rounds = [];
	const measure = async (round, name, server, target) => {
		// A second of load first in later rounds too: the process has just been moved onto its CPU.
		const run = await load(server, target, { connections, duration: DURATION, warmup: round === 0 ? WARMUP : 1 });
		log(
			`round ${round + 1}: ${name}: ${run.requestsPerSecond} req/s, ${run.cpuMicrosPerRequest} µs CPU/request, ` +
				`p50 ${run.p50} ms, p99 ${run.p99} ms, errors ${run.errors}`,
		);
		rounds[round][name] = run;
	};
	// Odd rounds run in reverse order, so that no target is always measured first or last in a round.
	const readJobs = [
		...Object.entries(FLOORS).map(([name, floor]) => [floor.label, floors[name], floor.target]),
		...reads.map((name) => [name, service, serviceTargets[name]]),
	];
	for (let round = 0; round < ROUNDS; round++) {
		rounds.push({});
		for (const job of round % 2 ? [...readJobs].reverse() : readJobs) await measure(round, ...job);
	}
	// Write rounds pair the write floors with the service's writes, in alternating order too.
	const writeJobs = [
		...Object.entries(WRITE_FLOORS).map(([name, floor]) => [floor.label, floors[name], floor.target]),
		...writes.map((name) => [name, service, serviceTargets[name]]),
	];
	for (let round = 0; round < ROUNDS; round++) {
		for (const job of round % 2 ? [...writeJobs].reverse() : writeJobs) await measure(round, ...job);
	}
	return { rounds, writes };
}

/** Every service target at `connections`, to count errors (run at twice saturation). */
async function measureOverload(service, serviceTargets, connections) {
	const overload = {};
	for (const [name, target] of Object.entries(serviceTargets)) {
		const run = await load(service, target, { connections, duration: OVERLOAD_DURATION, warmup: 0 });
		overload[name] = run;
		log(`overload ${name}: ${run.requestsPerSecond} req/s, errors ${run.errors}`);
	}
	return overload;
}

const packageVersion = (name) => JSON.parse(readFileSync(path.join(ROOT, `node_modules/${name}/package.json`), "utf8")).version;
const machine = (loadBefore) => ({
	cpus: os.cpus().length,
	model: os.cpus()[0]?.model,
	loadAverageBefore: loadBefore,
	loadAverageAfter: os.loadavg(),
});

/** Saves and prints a run of the startup phase alone. */
function reportStartup(startup, { started, loadBefore }) {
	const result = {
		date: new Date().toISOString(),
		...(LABEL && { label: LABEL }),
		machine: machine(loadBefore),
		versions: { node: process.version, wrangler: packageVersion("wrangler") },
		startup,
		totalSeconds: Math.round((performance.now() - started) / 1000),
	};
	console.log(formatStartupReport(result, saveResult(result, "startup")));
}

async function main() {
	if (ONLY !== undefined && !PHASES.includes(ONLY)) throw new Error(`BENCH_ONLY=${ONLY}: one of ${PHASES.join(", ")}`);
	if (process.env.BENCH_SERVICE_DIR && ONLY !== "startup") {
		throw new Error("BENCH_SERVICE_DIR needs BENCH_ONLY=startup: the load phases measure this repository's service");
	}
	process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false"; // no network here: skip wrangler's Request.cf fetch
	process.env.X_LOCAL_OBSERVABILITY = "false"; // no local copy of platform logs (URLs hold learner ids)
	process.env.WRANGLER_LOG = process.env.WRANGLER_LOG ?? "warn";
	const started = performance.now();
	const loadBefore = os.loadavg();

	// The run's temporary directory: local D1's persistence, and the startup phase's builds (in startup/).
	const persistTo = mkdtempSync(path.join(tempRoot(), "learner-service-bench-"));
	// Ctrl-C must not leave a 100 000-registration database in /dev/shm, which is memory.
	process.once("SIGINT", () => {
		rmSync(persistTo, { recursive: true, force: true });
		process.exit(130);
	});
	const running = [];
	try {
		// First, before any other Worker runs: nothing else of this run competes for the CPUs.
		// The service's first requests run with its secrets (it answers 500 without them) and, as under load,
		// LOG_LEVEL=warn; the rest of its configuration is its own wrangler.toml's. Its databases are its own,
		// seeded in the phase's directory, apart from the load phases'.
		if (ONLY === "erasures") {
			log(`persistence: ${persistTo}`);
			migrateLocal(persistTo);
			const erasures = await erasuresProbe(persistTo);
			const result = {
				date: new Date().toISOString(),
				...(LABEL && { label: LABEL }),
				machine: machine(loadBefore),
				versions: { node: process.version, wrangler: packageVersion("wrangler") },
				erasures,
				totalSeconds: Math.round((performance.now() - started) / 1000),
			};
			console.log(formatErasuresReport(result, saveResult(result, "erasures")));
			return;
		}
		if (ONLY === "move") {
			log(`persistence: ${persistTo}`);
			migrateLocal(persistTo);
			const move = await moveProbe(persistTo);
			const result = {
				date: new Date().toISOString(),
				...(LABEL && { label: LABEL }),
				machine: machine(loadBefore),
				versions: { node: process.version, wrangler: packageVersion("wrangler") },
				move,
				totalSeconds: Math.round((performance.now() - started) / 1000),
			};
			console.log(formatMoveReport(result, saveResult(result, "move")));
			return;
		}
		const startup = ONLY === "load" ? undefined : await measureStartup({
			serviceDir: SERVICE_DIR,
			runs: STARTUP_RUNS,
			workDir: path.join(persistTo, "startup"),
			serviceBindings: { ...SECRET_BINDINGS, LOG_LEVEL: { type: "plain_text", value: "warn" } },
			management: { id: SECRETS.MANAGEMENT_APP_ID, secret: SECRETS.MANAGEMENT_SECRET_KEY },
		});
		if (ONLY === "startup") return reportStartup(startup, { started, loadBefore });

		log(`persistence: ${persistTo}`);
		const seedMs = createDatabase(persistTo);
		const small = await probe(persistTo, "10k", { timeHotPath: true });
		seedMs.push(growDatabase(persistTo));
		const large = await probe(persistTo, "100k");
		const scale = { "10k": small.scale, "100k": large.scale };
		// Before the service starts: the probe runs alone on the database files.
		const move = ONLY === "load" ? undefined : await moveProbe(persistTo);
		const erasures = ONLY === "load" ? undefined : await erasuresProbe(persistTo);

		const { service, floors } = await startWorkers(persistTo, running);
		const pinning = pinCpus();
		log(`CPUs: ${pinning}`);
		const auth = await authenticate(service);
		const serviceTargets = targets(auth);
		await checkTargets(service, floors, serviceTargets, auth);

		const saturation = await findSaturation(service, serviceTargets["GET /learner/{id}/tags (Basic)"]);
		const connections = saturation.connections;
		log(`saturation at ${connections} connections; measuring at ${connections}, overload check at ${connections * 2}`);
		const { rounds, writes } = await measureRounds(service, floors, serviceTargets, connections);
		const overload = await measureOverload(service, serviceTargets, connections * 2);
		const { rows, targets: targetsMet } = summarize({ rounds, overload, writes, scale });

		const result = {
			date: new Date().toISOString(),
			...(LABEL && { label: LABEL }),
			machine: machine(loadBefore),
			versions: { node: process.version, wrangler: packageVersion("wrangler"), autocannon: packageVersion("autocannon") },
			dataset: {
				learners: LEARNERS,
				registrations: LEARNERS * REGISTRATIONS_PER_LEARNER,
				learnerTagsEach: TAGS_PER_LEARNER,
				registrationTagsEach: 1,
				seedMs,
			},
			settings: {
				durationSeconds: DURATION,
				rounds: ROUNDS,
				rateLimit: `RATE_LIMITER overridden for the bench to ${BENCH_RATE_LIMIT} per 60 s (production: wrangler.toml, 1200 per 60 s)`,
				writeBudget: `APP_WRITE_BUDGET overridden for the bench to ${BENCH_WRITE_BUDGET} rows per minute (production: 300000)`,
				logLevel: "warn (production default: info)",
				cpuPinning: pinning,
				saturation,
				measuredAt: connections,
				overloadAt: connections * 2,
			},
			runs: rows,
			allRounds: rounds,
			overload,
			scale,
			hotPath: small.hotPath,
			...(move && { move }),
			...(erasures && { erasures }),
			...(startup && { startup }),
			targets: targetsMet,
			totalSeconds: Math.round((performance.now() - started) / 1000),
		};
		console.log(formatReport(result, saveResult(result, ONLY)));
	} finally {
		for (const worker of running) await worker.dispose().catch(() => {});
		rmSync(persistTo, { recursive: true, force: true });
	}
}

await main();
