// The startup phase (SPEC §6, cold start): what a fresh isolate costs until it has answered once — its startup
// (the `wrangler check startup` profile) plus its first request (the CPU of a fresh workerd process serving it) —
// for the service and for a bare Hono Worker running the same SQL (bench/floors/startup-hono/), in alternating
// rounds of the same run. The first requests are real: authenticated, one per route group, each on a fresh copy
// of a seeded local D1. Also the requests after the first on the same isolate, and the size of what
// `wrangler deploy` would upload for each Worker.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { unstable_readConfig } from "wrangler";
import {
	APP_ID,
	JOB_ID,
	REGISTRATIONS_PER_LEARNER,
	SECRET,
	SHARD,
	TAGS_PER_LEARNER,
	learnerId,
	learnerTags,
	seedApplication,
	seedApplicationStorage,
	seedJob,
	seedLearners,
} from "../seed.mjs";
import { ROOT, cpuNanos, executeSql, log, migrateLocal, pinOneAtATime, request, startWorker, waitForIdle, wrangler } from "./processes.mjs";
import { median } from "./stats.mjs";

const FLOOR_CONFIG = path.join(ROOT, "bench/floors/startup-hono/wrangler.toml");
// The same floor with the service's one Rate Limiting call per request (Miniflare's simulator locally), reported
// beside it for the tags routes: what of the ratio is that call.
const FLOOR_LIMITER_CONFIG = path.join(ROOT, "bench/floors/startup-hono/wrangler.limiter.toml");
// V8's default sampling interval (the inspector's Profiler domain), for a profile too short to measure its own.
const DEFAULT_INTERVAL_MICROS = 1000;

const ms = (micros) => Number((micros / 1000).toFixed(1));
const sum = (values) => values.reduce((total, value) => total + value, 0);

/**
 * The CPU an isolate spent starting, from the V8 CPU profile `wrangler check startup` writes (it profiles one
 * request whose handler imports the Worker's main module: parsing, compiling and running its top level).
 *
 * Counted: every sample in which the isolate was not "(idle)": the Worker's own code, "(program)" (native work on
 * the isolate, such as compiling) and "(garbage collector)" — all CPU the isolate spends because it starts. Each
 * such sample stands for the time since the sample before it, as in wrangler's own summary ("Active"), except the
 * first of each busy stretch (after an idle sample, or first in the profile), which stands for at most one
 * sampling interval. The time before that first sample is not startup: no sample is taken in it, and it is as
 * long (13–36 ms on this machine) for a 300-byte Worker whose startup runs no code, whose "Active" it alone made
 * vary from 0 to 36 ms between runs. Samples are about 1 ms apart, so figures are known to about 1 ms.
 */
export function startupCpu(profile) {
	const functionNames = new Map(profile.nodes.map((node) => [node.id, node.callFrame.functionName]));
	const samples = profile.samples ?? [];
	const deltas = profile.timeDeltas ?? [];
	const busy = samples.map((id) => functionNames.get(id) !== "(idle)");
	const continuing = (i) => i > 0 && busy[i - 1];
	// The sampling interval while the isolate runs: between two busy samples in a row.
	const intervals = deltas.filter((_, i) => busy[i] && continuing(i));
	const interval = intervals.length ? median(intervals) : DEFAULT_INTERVAL_MICROS;
	let cpu = 0;
	let active = 0;
	deltas.forEach((delta, i) => {
		if (!busy[i]) return;
		active += delta;
		cpu += continuing(i) ? delta : Math.min(delta, interval);
	});
	return {
		cpuMs: ms(cpu),
		wranglerActiveMs: ms(active),
		busySamples: busy.filter(Boolean).length,
		samplingIntervalMs: Number((interval / 1000).toFixed(2)),
	};
}

/**
 * Raw and gzip bytes of every module in a `wrangler deploy --outdir` directory — the main module and the Text and
 * Data modules beside it — and their totals. Left out: wrangler's README.md about the folder, and source maps,
 * which are not modules. Each file is gzipped alone and the total is their sum; wrangler's "Total Upload … gzip"
 * compresses the modules as one stream and comes within 0.1 % of it.
 */
function moduleSizes(outdir) {
	const modules = readdirSync(outdir, { recursive: true })
		.filter((file) => file !== "README.md" && !file.endsWith(".map") && statSync(path.join(outdir, file)).isFile())
		.sort()
		.map((file) => {
			const content = readFileSync(path.join(outdir, file));
			return { file, bytes: content.length, gzipBytes: gzipSync(content).length };
		});
	return {
		modules,
		bytes: sum(modules.map((module) => module.bytes)),
		gzipBytes: sum(modules.map((module) => module.gzipBytes)),
	};
}

/**
 * Builds the Worker of `config` once, as `wrangler deploy` would upload it (--dry-run): its modules into
 * `<workDir>/modules`, and the same upload as one file, which `wrangler check startup --worker` then profiles as
 * often as asked without building again. Runs in the Worker's own directory, so that another checkout is bundled
 * with its own node_modules (by this repository's wrangler).
 */
function build(config, workDir) {
	const outdir = path.join(workDir, "modules");
	const bundle = path.join(workDir, "worker.bundle");
	wrangler(["deploy", "--dry-run", "--config", config, "--outdir", outdir, "--outfile", bundle], { cwd: path.dirname(config) });
	return { bundle, size: moduleSizes(outdir) };
}

/** One `wrangler check startup` of a built bundle; its profile's startup CPU (see startupCpu). */
function profileStartup(bundle, outfile) {
	// Run beside the bundle, where no wrangler.toml is found: the profile is of the bundle and nothing else.
	wrangler(["check", "startup", "--worker", bundle, "--outfile", outfile], { cwd: path.dirname(bundle) });
	return startupCpu(JSON.parse(readFileSync(outfile, "utf8")));
}

// SPEC §6's targets for startup + first request, as multiples of the floor's: GET and PUT tags, and every route.
const TAGS_TARGET = 2;
const ROUTE_TARGET = 3;
// Learners in the seeded databases (REGISTRATIONS_PER_LEARNER registrations and TAGS_PER_LEARNER learner tags each,
// bench/seed.mjs): a small application, so that a first request costs what starting to serve costs, not the size
// of what it reads.
const SEEDED_LEARNERS = 10;
// The learner every request names, its tags as GET answers them, and what PUT adds.
const LEARNER = learnerId(0);
const TAGS_BODY = JSON.stringify({ tags: learnerTags(0) });
const PUT_BODY = JSON.stringify({ tags: ["x"] });
const API = "/api/v2";
const TAGS_PATH = `${API}/learner/${LEARNER}/tags`;
const JSON_BODY = { "Content-Type": "application/json" };
// Where local D1 keeps its databases under a persistence directory, one SQLite file per database.
const D1_FILES = path.join("v3", "d1", "miniflare-D1DatabaseObject");
// Requests after the first on the same isolate, one at a time: the warm figures are their medians.
const WARM_REQUESTS = 20;

/** The parsed JSON of a body, or undefined. */
const parsed = (text) => {
	try {
		return JSON.parse(text);
	} catch {
		return undefined;
	}
};

/**
 * The first requests measured: the two SPEC §6 holds to TAGS_TARGET (GET and PUT tags, each against the floor's
 * same route) and one per other route group, held to ROUTE_TARGET against the floor's GET. Each must answer
 * `status` on the seeded database, and its first answer pass `check`, so that a measured request is known to have
 * done its work (authenticated, reached D1 for what it reads). `auth`: the bench application's Basic credentials,
 * the realm's management credentials (Basic), or none.
 */
const REQUESTS = [
	{
		name: "GET /learner/{id}/tags",
		method: "GET",
		path: TAGS_PATH,
		auth: "application",
		status: 200,
		floor: "GET",
		target: TAGS_TARGET,
		check: (text) => text === TAGS_BODY,
	},
	{
		name: "PUT /learner/{id}/tags",
		method: "PUT",
		path: TAGS_PATH,
		auth: "application",
		body: PUT_BODY,
		status: 204,
		floor: "PUT",
		target: TAGS_TARGET,
	},
	{
		name: "GET /registrations?learnerId=",
		method: "GET",
		path: `${API}/registrations?learnerId=${LEARNER}`,
		auth: "application",
		status: 200,
		floor: "GET",
		target: ROUTE_TARGET,
		check: (text) => {
			const registrations = parsed(text)?.registrations ?? [];
			return registrations.length === REGISTRATIONS_PER_LEARNER && registrations.every((registration) => registration.learner?.id === LEARNER);
		},
	},
	{
		name: "GET /jobs/{jobId}",
		method: "GET",
		path: `${API}/jobs/${JOB_ID}`,
		auth: "application",
		status: 200,
		floor: "GET",
		target: ROUTE_TARGET,
		check: (text) => parsed(text)?.id === JOB_ID,
	},
	{
		name: "GET /ping",
		method: "GET",
		path: `${API}/ping`,
		auth: "application",
		status: 200,
		floor: "GET",
		target: ROUTE_TARGET,
		check: (text) => parsed(text)?.apiMessage === "pong",
	},
	{
		name: "GET /appManagement/applications",
		method: "GET",
		path: `${API}/appManagement/applications`,
		auth: "management",
		status: 200,
		floor: "GET",
		target: ROUTE_TARGET,
		check: (text) => parsed(text)?.applications?.some((application) => application.id === APP_ID),
	},
	{
		name: "GET /openapi.json",
		method: "GET",
		path: `${API}/openapi.json`,
		auth: "none",
		status: 200,
		floor: "GET",
		target: ROUTE_TARGET,
		check: (text) => typeof parsed(text)?.openapi === "string",
	},
	{
		name: "GET /console/sign-in",
		method: "GET",
		path: "/console/sign-in",
		auth: "none",
		status: 200,
		floor: "GET",
		target: ROUTE_TARGET,
		check: (text) => text.includes("<form"),
	},
];

/**
 * The requests this run measures: all of REQUESTS, or, with BENCH_STARTUP_TAGS_ONLY=1, GET and PUT tags alone (a
 * quicker run while trying a change; the report then lists those two).
 */
const MEASURED = process.env.BENCH_STARTUP_TAGS_ONLY === "1" ? REQUESTS.filter((spec) => spec.target === TAGS_TARGET) : REQUESTS;

/** The floor's two routes, on the same seeded rows: the same answers as the service's. */
const FLOOR_REQUESTS = {
	GET: { name: "GET /learner/{id}/tags", method: "GET", path: TAGS_PATH, auth: "none", status: 200, check: (text) => text === TAGS_BODY },
	PUT: { name: "PUT /learner/{id}/tags", method: "PUT", path: TAGS_PATH, auth: "none", body: PUT_BODY, status: 204 },
};

const basic = (id, secret) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

/** The headers a request is sent with: its credentials, and the JSON media type of a body. */
function headersOf(spec, management) {
	const authorization =
		spec.auth === "application" ? basic(APP_ID, SECRET) : spec.auth === "management" ? basic(management.id, management.secret) : undefined;
	return { ...(authorization && { Authorization: authorization }), ...(spec.body && JSON_BODY) };
}

/**
 * Checkpoints every SQLite file under a persistence directory into its main file: closing the last connection
 * (node:sqlite) writes the write-ahead log back and removes it. wrangler leaves each database's log beside it, and
 * the first process to open a database after that recovers it by reading the whole log — for the service, every
 * migration — on its first request: work no production isolate does, and more for the service than for the floor.
 */
async function settle(dir) {
	const { DatabaseSync } = await import("node:sqlite");
	for (const file of readdirSync(dir, { recursive: true }).filter((name) => String(name).endsWith(".sqlite"))) {
		const db = new DatabaseSync(path.join(dir, String(file)));
		db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
		db.close();
	}
}

/**
 * The seeded local D1s every measured process starts from, one per Worker, made once in `workDir`. The service's:
 * each of its D1 bindings migrated with its own checkout's migrations (the control database and every shard), the
 * bench application in the control database (placed on SHARD, with one enabled credential whose secret the bench
 * knows, bench/seed.mjs), and on SHARD the application's storage row, SEEDED_LEARNERS learners (registrations,
 * registration tags, learner tags and their counts) and a finished job. The floor's one database: the shard
 * migrations (bench/floors/startup-hono/wrangler.toml migrations_dir) and the same shard rows. Each is then
 * settled (see settle).
 */
async function seedTemplates(serviceConfig, workDir) {
	const shardRows = seedApplicationStorage() + seedLearners(0, SEEDED_LEARNERS) + seedJob();
	const service = path.join(workDir, "template-service");
	migrateLocal(service, { config: serviceConfig });
	executeSql(service, "seed-control", seedApplication(), "DB", { config: serviceConfig });
	executeSql(service, "seed-shard", shardRows, SHARD, { config: serviceConfig });
	const floor = path.join(workDir, "template-floor");
	migrateLocal(floor, { config: FLOOR_CONFIG });
	executeSql(floor, "seed-shard", shardRows, "DB", { config: FLOOR_CONFIG });
	for (const template of [service, floor]) await settle(template);
	return { service, floor };
}

const nanosToMs = (nanos) => Number((nanos / 1e6).toFixed(2));
const round2 = (value) => Number(value.toFixed(2));

/**
 * One request to a started Worker, with the CPU its workerd process spent on it and its wall-clock latency; throws
 * unless it answers the spec's status (and, with `check`, its body passes the spec's check).
 *
 * CPU: the process's CPU time (all threads) from Linux /proc/<pid>/task/<tid>/schedstat, read before the request
 * and again once the process has gone idle after it (waitForIdle: under 0.05 ms of CPU in 25 ms), so it holds
 * everything the request set off. Not /proc/<pid>/stat's utime and stime, which count clock ticks (10 ms at
 * USER_HZ 100): read side by side here, warm requests of 1.8–5.7 ms read 0 or 10 ms there. schedstat's first
 * field is the scheduler's own sum of run time, in nanoseconds, exact for a process that is not running when
 * read — which the idle wait makes sure of; the wait's last window lets at most 0.05 ms of unrelated work in. So
 * resolution is not the limit; the machine's noise is (caches, frequency, other jobs on the same cores): a warm
 * request's CPU here ranges over 1.2–6 ms from one request to the next, hence the median of WARM_REQUESTS, and a
 * first request's by up to a quarter from one fresh process to the next, hence medians over rounds.
 *
 * It is the whole workerd process: besides the Worker's isolate, Miniflare's entry Worker (which routes each
 * request to it, and pays its own first request too), the runtime's HTTP handling, and local D1 (a Durable Object
 * in the same process, running SQLite: the first request opens each database it touches). The floor pays them
 * alike for its one database; the service's first authenticated request opens two (the control database for the
 * credential, then the shard) and calls the local Rate Limiting simulator. Latency: from sending the request
 * until its body has been read, on a kept-alive connection for the warm requests (the first one also opens it).
 */
async function timedRequest({ origin, pid }, spec, { check }) {
	const cpuBefore = cpuNanos(pid);
	const started = performance.now();
	const response = await request(origin, spec.method, spec.path, { headers: spec.headers, body: spec.body });
	const latencyMs = performance.now() - started;
	if (response.status !== spec.status || (check && spec.check && !spec.check(response.text))) {
		throw new Error(`${spec.method} ${spec.path}: ${response.status} (expected ${spec.status}) ${response.text.slice(0, 300)}`);
	}
	const idle = await waitForIdle(pid);
	return { cpuNanos: cpuNanos(pid) - cpuBefore, latencyMs, idle };
}

// Module types of the upload's parts (their Content-Type), as wrangler's module rules name them.
const MODULE_TYPES = {
	"application/javascript+module": "esm",
	"application/javascript": "commonjs",
	"application/wasm": "compiled-wasm",
	"text/plain": "text",
	"application/octet-stream": "buffer",
};

/**
 * What `wrangler deploy --dry-run` built (see build), as unstable_startWorker runs it without bundling again: the
 * main module (in the outdir) and the other modules with their types, read from the upload itself (a multipart
 * form: metadata, then one part per module; source maps are left out). So the first requests run the same code
 * the startup profiles ran — as it would be deployed, with none of wrangler's dev-only wrappers, and unchanged by
 * edits to the checkout during the run.
 */
async function prebuilt({ bundle }) {
	const body = readFileSync(bundle);
	const boundary = body.subarray(2, body.indexOf("\r\n")).toString();
	const form = await new globalThis.Response(body, { headers: { "Content-Type": `multipart/form-data; boundary=${boundary}` } }).formData();
	const metadata = JSON.parse(String(form.get("metadata")));
	const outdir = path.join(path.dirname(bundle), "modules");
	const additionalModules = [];
	for (const [name, part] of form) {
		const type = typeof part === "string" ? undefined : MODULE_TYPES[part.type];
		const moduleName = path.posix.normalize(name);
		if (!type || moduleName === metadata.main_module) continue;
		const content = Buffer.from(await part.arrayBuffer());
		additionalModules.push({ name: moduleName, filePath: path.join(outdir, moduleName), content, type });
	}
	return {
		entrypoint: path.join(outdir, metadata.main_module),
		// The upload as it is: no bundling, and no custom build ([build] in wrangler.toml), which would run instead and
		// take its modules from its own output, not these ("" is a command wrangler does not run).
		build: { bundle: false, findAdditionalModules: false, additionalModules, minify: false, custom: { command: "" } },
	};
}

/**
 * Copies `template` (a seeded persistence directory, see seedTemplates) to `persistTo` and starts the Worker of
 * `config` on it, running its `built` modules (see prebuilt) in a fresh workerd process; waits for the process to
 * go idle after its startup, then sends the request `spec` once and `warm` more times, one at a time (see
 * timedRequest). Stops the Worker; `inspect(persistTo)`, when given, may then read its databases, before the copy
 * is removed.
 */
async function firstRequestRun(config, built, { template, persistTo, bindings, spec, pinning, warm = WARM_REQUESTS, inspect }) {
	mkdirSync(path.dirname(persistTo), { recursive: true });
	// The SQL files wrangler ran to seed the template are not part of the databases.
	cpSync(template, persistTo, { recursive: true, filter: (source) => !source.endsWith(".sql") });
	try {
		const started = await startWorker(config, { persistTo, bindings, ...built });
		let figures;
		try {
			if (!started.pid) throw new Error(`${config}: its workerd process was not found (needs Linux /proc)`);
			pinning.alone(started.pid);
			const settled = await waitForIdle(started.pid);
			const spawnToIdleNanos = cpuNanos(started.pid);
			const first = await timedRequest(started, spec, { check: true });
			const after = [];
			for (let i = 0; i < warm; i++) after.push(await timedRequest(started, spec, { check: false }));
			const notIdle = [first, ...after].filter((timed) => !timed.idle).length + (settled ? 0 : 1);
			figures = {
				firstCpuMs: nanosToMs(first.cpuNanos),
				spawnToIdleCpuMs: nanosToMs(spawnToIdleNanos),
				firstLatencyMs: round2(first.latencyMs),
				...(after.length && {
					warmCpuMs: nanosToMs(median(after.map((timed) => timed.cpuNanos))),
					warmLatencyMs: round2(median(after.map((timed) => timed.latencyMs))),
				}),
				// Idle waits that timed out (5 s) instead of seeing the process idle: their readings hold other work.
				...(notIdle && { notIdle }),
			};
		} finally {
			await started.worker.dispose();
		}
		await inspect?.(persistTo);
		return figures;
	} finally {
		rmSync(persistTo, { recursive: true, force: true });
	}
}

/**
 * What a PUT of tags left in a shard database (a copy under `persistTo`, its file named `file`): the application's
 * storage row (but the budget's minute, which depends on the clock), the learner's tags in order, its count, and
 * whether its last write was stamped since `startedAt`.
 */
async function tagsWritten(persistTo, file, startedAt) {
	const { DatabaseSync } = await import("node:sqlite");
	const db = new DatabaseSync(path.join(persistTo, D1_FILES, file));
	try {
		return {
			storage: db
				.prepare("SELECT stored_rows, row_quota, write_budget, budget_spent, deleted_at, frozen_at FROM app_storage WHERE app_id = ?")
				.get(APP_ID),
			tags: db.prepare("SELECT tag FROM learner_tags WHERE app_id = ? AND learner_id = ? ORDER BY rowid").all(APP_ID, LEARNER),
			count: db.prepare("SELECT tag_count FROM learner_tag_counts WHERE app_id = ? AND learner_id = ?").get(APP_ID, LEARNER),
			// Its last write: stamped by the PUT (the time itself differs between the two runs).
			stamped: db.prepare("SELECT count(*) AS n FROM learner_activity WHERE app_id = ? AND learner_id = ? AND last_write_at > ?").get(APP_ID, LEARNER, startedAt).n,
		};
	} finally {
		db.close();
	}
}

/**
 * Before the rounds, unmeasured: one PUT of tags through each Worker, after which both shard databases must hold
 * the same rows — the floor's statements do what the service's do. The floor's database file has the name of
 * the service's SHARD (same database_id); a service whose SHARD has another id is not compared (logged).
 */
async function checkFloorWrites(workers, modules, templates, { workDir, bindings, pinning, management }) {
	const databases = (dir) => readdirSync(path.join(dir, D1_FILES)).filter((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite");
	const [file, ...others] = databases(templates.floor);
	if (!file || others.length) throw new Error(`${templates.floor}: expected one database, found ${[file, ...others].join(", ")}`);
	if (!databases(templates.service).includes(file)) {
		log(`first request: the service's ${SHARD} is not the floor's database (another database_id): PUT's writes not compared`);
		return;
	}
	const written = {};
	const startedAt = new Date().toISOString();
	for (const [name, spec] of [
		["service", REQUESTS[1]],
		["floor", FLOOR_REQUESTS.PUT],
	]) {
		await firstRequestRun(workers[name].config, modules[name], {
			template: templates[name],
			persistTo: path.join(workDir, name, "persist-check"),
			bindings: bindings[name],
			spec: { ...spec, headers: headersOf(spec, management) },
			pinning,
			warm: 0,
			inspect: async (persistTo) => {
				written[name] = await tagsWritten(persistTo, file, startedAt);
			},
		});
	}
	const [service, floor] = [JSON.stringify(written.service), JSON.stringify(written.floor)];
	if (service !== floor) throw new Error(`PUT tags: the floor's writes differ from the service's: ${floor} vs ${service}`);
	log(`first request: a PUT of tags leaves the same rows through the floor as through the service: ${service}`);
}

/**
 * The first requests: `runs` rounds, each starting a fresh workerd process on a fresh copy of its Worker's seeded
 * database for every request of REQUESTS (the service) and for each of the floor's two (FLOOR_REQUESTS), measured
 * by firstRequestRun with the process alone on a CPU (pinOneAtATime). The floor's GET and PUT come first in even
 * rounds, beside the service's, and everything runs in reverse order in odd rounds, so that no request is always
 * measured first or last. Answers every run, by Worker and request.
 */
async function measureFirstRequests(workers, built, templates, { runs, workDir, bindings, management }) {
	const modules = { service: await prebuilt(built.service), floor: await prebuilt(built.floor), floorLimiter: await prebuilt(built.floorLimiter) };
	for (const [name, { entrypoint, build }] of Object.entries(modules)) {
		log(`first request: ${name} runs ${path.basename(entrypoint)} and ${build.additionalModules.length} other modules, unbundled`);
	}
	const pinning = pinOneAtATime();
	log(`first request: CPUs: ${pinning.description}`);
	const jobs = [
		["floor", FLOOR_REQUESTS.GET],
		["service", MEASURED[0]],
		["floorLimiter", FLOOR_REQUESTS.GET],
		["floor", FLOOR_REQUESTS.PUT],
		["floorLimiter", FLOOR_REQUESTS.PUT],
		...MEASURED.slice(1).map((spec) => ["service", spec]),
	];
	const results = { service: {}, floor: {}, floorLimiter: {} };
	for (const [name, spec] of jobs) results[name][spec.name] = [];
	try {
		await checkFloorWrites(workers, modules, templates, { workDir, bindings, pinning, management });
		for (let round = 0; round < runs; round++) {
			for (const [name, spec] of round % 2 ? [...jobs].reverse() : jobs) {
				const figures = await firstRequestRun(workers[name].config, modules[name], {
					template: templates[name],
					persistTo: path.join(workDir, name, `persist-${round + 1}`),
					bindings: bindings[name],
					spec: { ...spec, headers: headersOf(spec, management) },
					pinning,
				});
				results[name][spec.name].push(figures);
				log(
					`first request round ${round + 1}: ${name}: ${spec.name}: spawn to idle ${figures.spawnToIdleCpuMs} ms CPU; first ${figures.firstCpuMs} ms CPU, ${figures.firstLatencyMs} ms; ` +
						`warm ${figures.warmCpuMs} ms CPU, ${figures.warmLatencyMs} ms`,
				);
			}
		}
	} finally {
		pinning.restore();
	}
	return { results, cpuPinning: pinning.description };
}

/** Medians over rounds of one request's figures (see firstRequestRun), with its startup CPU and their sum. */
function firstRequestSummary(runs, startupCpuMs) {
	const medianOf = (key) => round2(median(runs.map((figures) => figures[key])));
	const firstCpu = runs.map((figures) => figures.firstCpuMs);
	const notIdle = runs.reduce((total, figures) => total + (figures.notIdle ?? 0), 0);
	return {
		startupCpuMs: startupCpuMs,
		firstCpuMs: medianOf("firstCpuMs"),
		startupPlusFirstCpuMs: round2(startupCpuMs + medianOf("firstCpuMs")),
		warmCpuMs: medianOf("warmCpuMs"),
		firstLatencyMs: medianOf("firstLatencyMs"),
		warmLatencyMs: medianOf("warmLatencyMs"),
		firstCpuRangeMs: [Math.min(...firstCpu), Math.max(...firstCpu)],
		...(notIdle && { notIdle }),
	};
}

/**
 * The commit a checkout is at, and whether what the service is built and seeded from (src/, migrations/,
 * wrangler.toml) has uncommitted changes; null outside git.
 */
function checkoutOf(dir) {
	const git = (...args) => execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
	try {
		return { commit: git("rev-parse", "--short=12", "HEAD"), changed: git("status", "--porcelain", "--", "src", "migrations", "wrangler.toml") !== "" };
	} catch {
		return null;
	}
}

// Paths in the results file: from the repository when inside it.
const shown = (file) => (file.startsWith(`${ROOT}${path.sep}`) ? path.relative(ROOT, file) : file);
const compatibilityDate = (config) => /^compatibility_date\s*=\s*"([^"]+)"/m.exec(readFileSync(config, "utf8"))?.[1] ?? null;

/**
 * The startup phase: builds the service in `serviceDir` and the Hono floor, profiles the startup of each `runs`
 * times, alternating (the floor first in odd runs, so neither always runs first); seeds a local D1 for each (see
 * seedTemplates); then measures the first request of every route group of REQUESTS, and the floor's, `runs` rounds
 * of fresh processes each (see measureFirstRequests; the service started with `serviceBindings`, its secrets, and
 * asked with the bench application's credentials or the realm's `management` ones), all in `workDir`, which it
 * removes. Returns the figures for the results file: per request, medians of startup and first request CPU, their
 * sum, and the sum's ratio to the floor's, against SPEC §6's targets.
 */
export async function measureStartup({ serviceDir, runs, workDir, serviceBindings, management }) {
	const serviceConfig = path.join(serviceDir, "wrangler.toml");
	const checkout = checkoutOf(serviceDir);
	const at = checkout ? ` at ${checkout.commit}${checkout.changed ? " with uncommitted changes" : ""}` : "";
	const workers = {
		service: { label: `service (${serviceDir === ROOT ? "this checkout" : serviceDir}${at})`, config: serviceConfig, checkout },
		floor: { label: "floor: bare Hono, GET and PUT tags's SQL", config: FLOOR_CONFIG },
		floorLimiter: { label: "floor + limiter: the same, with one Rate Limiting call", config: FLOOR_LIMITER_CONFIG },
	};
	if (runs < 7) log(`startup: ${runs} rounds; SPEC §6's figures are medians of at least 7`);
	try {
		const built = {};
		const profiles = {};
		for (const [name, { config }] of Object.entries(workers)) {
			built[name] = build(config, path.join(workDir, name));
			profiles[name] = [];
			log(`startup: built ${name}: ${built[name].size.bytes} bytes, ${built[name].size.gzipBytes} gzip`);
		}
		for (let run = 0; run < runs; run++) {
			for (const name of run % 2 ? ["floorLimiter", "floor", "service"] : ["service", "floor", "floorLimiter"]) {
				const figures = profileStartup(built[name].bundle, path.join(workDir, name, `startup-${run + 1}.cpuprofile`));
				profiles[name].push(figures);
				log(`startup run ${run + 1}: ${name}: ${figures.cpuMs} ms CPU (wrangler's "Active": ${figures.wranglerActiveMs} ms)`);
			}
		}
		const summary = (name) => {
			const { label, config, checkout } = workers[name];
			const medianOf = (key) => Number(median(profiles[name].map((profile) => profile[key])).toFixed(2));
			return {
				label,
				config: shown(config),
				...(checkout !== undefined && { checkout }),
				compatibilityDate: compatibilityDate(config),
				cpuMs: medianOf("cpuMs"),
				wranglerActiveMs: medianOf("wranglerActiveMs"),
				// How many samples the figure rests on: 0 or 1 is "within one sampling interval".
				busySamples: medianOf("busySamples"),
				bundle: built[name].size,
				profiles: profiles[name],
			};
		};
		const service = summary("service");
		const floor = summary("floor");
		const floorLimiter = summary("floorLimiter");
		if (service.compatibilityDate !== floor.compatibilityDate) {
			log(`startup: compatibility dates differ (service ${service.compatibilityDate}, floor ${floor.compatibilityDate})`);
		}
		const ratio = (key) => (floor[key] > 0 ? Number((service[key] / floor[key]).toFixed(2)) : null);

		const started = performance.now();
		const templates = await seedTemplates(serviceConfig, workDir);
		// The limiter's floor runs on the floor's database (same binding, same database id).
		templates.floorLimiter = templates.floor;
		log(`first request: seeded the service's and the floor's databases in ${Math.round(performance.now() - started)} ms`);
		// The floor records the quota and budget the service's own configuration sets (its writes record them).
		const vars = unstable_readConfig({ config: serviceConfig }).vars ?? {};
		const floorBindings = {
			APP_ID: { type: "plain_text", value: APP_ID },
			...(vars.APP_ROW_QUOTA !== undefined && { ROW_QUOTA: { type: "plain_text", value: String(vars.APP_ROW_QUOTA) } }),
			...(vars.APP_WRITE_BUDGET !== undefined && { WRITE_BUDGET: { type: "plain_text", value: String(vars.APP_WRITE_BUDGET) } }),
		};
		const { results, cpuPinning } = await measureFirstRequests(workers, built, templates, {
			runs,
			workDir,
			bindings: { service: serviceBindings, floor: floorBindings, floorLimiter: floorBindings },
			management,
		});

		// What an isolate costs until it has answered once: its startup (the profile's isolate CPU) and then its
		// first request (the process's CPU, runtime and local D1 included): two measures added up, for both alike.
		// They do not count the same work alike — the profile samples the isolate's own thread, about 1 ms apart;
		// the process figure also holds V8's helper threads (concurrent compiling, collecting) — so work moved from
		// startup to the first request may weigh somewhat more in the sum. Measuring the whole process from its
		// start instead would be one measure, but workerd's own start (0.6–1 s of CPU here, ±150 ms between runs)
		// would bury the difference.
		const floorSummaries = (name, startupCpuMs) =>
			Object.fromEntries(
				Object.entries(FLOOR_REQUESTS).map(([key, spec]) => [
					key,
					{ request: `${spec.method} ${spec.path}`, status: spec.status, ...firstRequestSummary(results[name][spec.name], startupCpuMs), runs: results[name][spec.name] },
				]),
			);
		const floorRequests = floorSummaries("floor", floor.cpuMs);
		const floorLimiterRequests = floorSummaries("floorLimiter", floorLimiter.cpuMs);
		const requests = MEASURED.map((spec) => {
			const figures = firstRequestSummary(results.service[spec.name], service.cpuMs);
			const against = floorRequests[spec.floor];
			const overFloor = against.startupPlusFirstCpuMs > 0 ? round2(figures.startupPlusFirstCpuMs / against.startupPlusFirstCpuMs) : null;
			const withLimiter = floorLimiterRequests[spec.floor];
			const overFloorWithLimiter =
				spec.target === TAGS_TARGET && withLimiter.startupPlusFirstCpuMs > 0 ? round2(figures.startupPlusFirstCpuMs / withLimiter.startupPlusFirstCpuMs) : null;
			return {
				name: spec.name,
				request: `${spec.method} ${spec.path}`,
				auth: spec.auth,
				status: spec.status,
				floor: spec.floor,
				target: spec.target,
				serviceOverFloor: overFloor,
				met: overFloor !== null && overFloor <= spec.target,
				...(overFloorWithLimiter !== null && { serviceOverFloorWithLimiter: overFloorWithLimiter }),
				...figures,
				runs: results.service[spec.name],
			};
		});
		return {
			runs,
			service,
			floor,
			floorLimiter,
			serviceOverFloor: ratio("cpuMs"),
			serviceOverFloorWranglerActive: ratio("wranglerActiveMs"),
			firstRequest: {
				method:
					"startup (the profile above) + the first request of a fresh workerd process, started on a fresh copy of a seeded local D1, " +
					"one process per request and round",
				database: `${SEEDED_LEARNERS} learners × ${REGISTRATIONS_PER_LEARNER} registrations and ${TAGS_PER_LEARNER} learner tags, one finished job; the service's control database holds the application and its credential`,
				modules: "the wrangler deploy --dry-run upload profiled above, run unbundled by unstable_startWorker",
				warmRequests: WARM_REQUESTS,
				cpu: "workerd process CPU time, all threads (/proc/<pid>/task/*/schedstat, ns), read before and after each request once the process is idle",
				cpuPinning,
				targets: { tags: TAGS_TARGET, routes: ROUTE_TARGET },
				met: requests.every((row) => row.met),
				requests,
				floorRequests,
				floorLimiterRequests,
			},
		};
	} finally {
		rmSync(workDir, { recursive: true, force: true });
	}
}
