// The startup phase (SPEC §6, cold start): the service's startup CPU against a bare Hono Worker running the same
// query (bench/floors/startup-hono/), both profiled by `wrangler check startup` in the same run; what the first
// request an isolate serves costs each of them, against the requests after it; and the size of what
// `wrangler deploy` would upload for each.
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { ROOT, cpuNanos, log, pinOneAtATime, request, startWorker, waitForIdle, wrangler } from "./processes.mjs";
import { median } from "./stats.mjs";

const FLOOR_CONFIG = path.join(ROOT, "bench/floors/startup-hono/wrangler.toml");
// SPEC §6: an isolate starts in at most 1.5× the startup CPU of a bare Hono Worker running the same query.
const TARGET = 1.5;
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

// The first request: the same request to both, which neither answers from D1. The service answers 401 (no
// Authorization header) after building its app and running its middleware up to authentication; the floor has
// no route for it and answers 404.
const FIRST_REQUEST = { path: "/api/v2/ping", status: { service: 401, floor: 404 } };
// Identical requests after the first, on the same isolate: the warm figures are their medians.
const WARM_REQUESTS = 20;

const nanosToMs = (nanos) => Number((nanos / 1e6).toFixed(2));
const round2 = (value) => Number(value.toFixed(2));

/**
 * One request to a started Worker, with the CPU its workerd process spent on it and its wall-clock latency.
 *
 * CPU: the process's CPU time (all threads) from Linux /proc/<pid>/task/<tid>/schedstat, read before the request
 * and again once the process has gone idle after it (waitForIdle: under 0.05 ms of CPU in 25 ms), so it holds
 * everything the request set off. Not /proc/<pid>/stat's utime and stime, which count clock ticks (10 ms at
 * USER_HZ 100): read side by side here, warm requests of 1.8–5.7 ms read 0 or 10 ms there. schedstat's first
 * field is the scheduler's own sum of run time, in nanoseconds, exact for a process that is not running when
 * read — which the idle wait makes sure of; the wait's last window lets at most 0.05 ms of unrelated work in. So
 * resolution is not the limit; the machine's noise is (caches, frequency, other jobs on the same cores): a warm
 * request's CPU here ranges over 1.2–6 ms from one request to the next, hence the median of 20, and a first
 * request's by up to a quarter from one fresh process to the next, hence medians over fresh processes.
 *
 * It is the whole workerd process: besides the Worker's isolate, Miniflare's entry Worker (which routes each
 * request to it, and pays its own first request too) and the runtime's HTTP handling — the floor pays them
 * alike, so the difference between the two is the Worker's own. Latency: from sending the request until its body
 * has been read, on a kept-alive connection for the warm requests (the first one also opens it).
 */
async function timedRequest({ origin, pid }, expectedStatus) {
	const cpuBefore = cpuNanos(pid);
	const started = performance.now();
	const response = await request(origin, "GET", FIRST_REQUEST.path);
	const latencyMs = performance.now() - started;
	if (response.status !== expectedStatus) {
		throw new Error(`GET ${FIRST_REQUEST.path}: ${response.status} (expected ${expectedStatus}) ${response.text.slice(0, 200)}`);
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
 * the startup profiles ran — minified as it would be deployed, with none of wrangler's dev-only wrappers, and
 * unchanged by edits to the checkout during the run.
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
		build: { bundle: false, findAdditionalModules: false, additionalModules, minify: false },
	};
}

/**
 * Starts the Worker of `config`, running its `built` modules (see prebuilt), in a fresh workerd process on a
 * fresh, empty persistence directory (no D1 is touched, so nothing is seeded), waits for the process to go idle
 * after its startup, then sends the first request and WARM_REQUESTS identical ones after it, one at a time (see
 * timedRequest). Stops the Worker.
 */
async function firstRequestRun(config, built, { persistTo, bindings, expectedStatus, pinning }) {
	mkdirSync(persistTo, { recursive: true });
	const started = await startWorker(config, { persistTo, bindings, ...built });
	try {
		if (!started.pid) throw new Error(`${config}: its workerd process was not found (needs Linux /proc)`);
		pinning.alone(started.pid);
		const settled = await waitForIdle(started.pid);
		const first = await timedRequest(started, expectedStatus);
		const warm = [];
		for (let i = 0; i < WARM_REQUESTS; i++) warm.push(await timedRequest(started, expectedStatus));
		const notIdle = [first, ...warm].filter((timed) => !timed.idle).length + (settled ? 0 : 1);
		return {
			firstCpuMs: nanosToMs(first.cpuNanos),
			warmCpuMs: nanosToMs(median(warm.map((timed) => timed.cpuNanos))),
			firstLatencyMs: round2(first.latencyMs),
			warmLatencyMs: round2(median(warm.map((timed) => timed.latencyMs))),
			// Idle waits that timed out (5 s) instead of seeing the process idle: their readings hold other work.
			...(notIdle && { notIdle }),
		};
	} finally {
		await started.worker.dispose();
	}
}

/**
 * The first requests: `runs` fresh processes of each Worker, alternating (the floor first in odd runs), each
 * measured by firstRequestRun with its workerd alone on a CPU (pinOneAtATime). Per Worker: the medians over
 * runs of each figure, and every run.
 */
async function measureFirstRequests(workers, built, { runs, workDir, serviceBindings }) {
	const modules = { service: await prebuilt(built.service), floor: await prebuilt(built.floor) };
	for (const [name, { entrypoint, build }] of Object.entries(modules)) {
		log(`first request: ${name} runs ${path.basename(entrypoint)} and ${build.additionalModules.length} other modules, unbundled`);
	}
	const pinning = pinOneAtATime();
	log(`first request: CPUs: ${pinning.description}`);
	const results = { service: [], floor: [] };
	try {
		for (let run = 0; run < runs; run++) {
			for (const name of run % 2 ? ["floor", "service"] : ["service", "floor"]) {
				const figures = await firstRequestRun(workers[name].config, modules[name], {
					persistTo: path.join(workDir, name, `persist-${run + 1}`),
					bindings: name === "service" ? serviceBindings : {},
					expectedStatus: FIRST_REQUEST.status[name],
					pinning,
				});
				results[name].push(figures);
				log(
					`first request run ${run + 1}: ${name}: first ${figures.firstCpuMs} ms CPU, ${figures.firstLatencyMs} ms; ` +
						`warm ${figures.warmCpuMs} ms CPU, ${figures.warmLatencyMs} ms`,
				);
			}
		}
	} finally {
		pinning.restore();
	}
	const summary = (name) => {
		const medianOf = (key) => round2(median(results[name].map((figures) => figures[key])));
		const firstCpu = results[name].map((figures) => figures.firstCpuMs);
		return {
			status: FIRST_REQUEST.status[name],
			firstCpuMs: medianOf("firstCpuMs"),
			warmCpuMs: medianOf("warmCpuMs"),
			firstLatencyMs: medianOf("firstLatencyMs"),
			warmLatencyMs: medianOf("warmLatencyMs"),
			firstCpuRangeMs: [Math.min(...firstCpu), Math.max(...firstCpu)],
			runs: results[name],
		};
	};
	return {
		request: `GET ${FIRST_REQUEST.path}, no Authorization header`,
		modules: "the wrangler deploy --dry-run upload profiled above, run unbundled by unstable_startWorker",
		warmRequests: WARM_REQUESTS,
		cpu: "workerd process CPU time, all threads (/proc/<pid>/task/*/schedstat, ns), read before and after each request once the process is idle",
		cpuPinning: pinning.description,
		service: summary("service"),
		floor: summary("floor"),
	};
}

// Paths in the results file: from the repository when inside it.
const shown = (file) => (file.startsWith(`${ROOT}${path.sep}`) ? path.relative(ROOT, file) : file);
const compatibilityDate = (config) => /^compatibility_date\s*=\s*"([^"]+)"/m.exec(readFileSync(config, "utf8"))?.[1] ?? null;

/**
 * The startup phase: builds the service in `serviceDir` and the Hono floor, then profiles the startup of each
 * `runs` times, alternating (the floor first in odd runs, so neither always runs first), then measures their
 * first requests `runs` times each, alternating too (the service started with `serviceBindings`: its secrets),
 * in `workDir`, which it removes. Returns the figures for the results file: medians, and the ratios of the
 * medians.
 */
export async function measureStartup({ serviceDir, runs, workDir, serviceBindings }) {
	const workers = {
		service: { label: `service (${serviceDir === ROOT ? "this checkout" : serviceDir})`, config: path.join(serviceDir, "wrangler.toml") },
		floor: { label: "floor: bare Hono, GET tags's query", config: FLOOR_CONFIG },
	};
	try {
		const built = {};
		const profiles = {};
		for (const [name, { config }] of Object.entries(workers)) {
			built[name] = build(config, path.join(workDir, name));
			profiles[name] = [];
			log(`startup: built ${name}: ${built[name].size.bytes} bytes, ${built[name].size.gzipBytes} gzip`);
		}
		for (let run = 0; run < runs; run++) {
			for (const name of run % 2 ? ["floor", "service"] : ["service", "floor"]) {
				const figures = profileStartup(built[name].bundle, path.join(workDir, name, `startup-${run + 1}.cpuprofile`));
				profiles[name].push(figures);
				log(`startup run ${run + 1}: ${name}: ${figures.cpuMs} ms CPU (wrangler's "Active": ${figures.wranglerActiveMs} ms)`);
			}
		}
		const summary = (name) => {
			const { label, config } = workers[name];
			const medianOf = (key) => Number(median(profiles[name].map((profile) => profile[key])).toFixed(2));
			return {
				label,
				config: shown(config),
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
		if (service.compatibilityDate !== floor.compatibilityDate) {
			log(`startup: compatibility dates differ (service ${service.compatibilityDate}, floor ${floor.compatibilityDate})`);
		}
		const ratio = (key) => (floor[key] > 0 ? Number((service[key] / floor[key]).toFixed(2)) : null);
		const firstRequest = await measureFirstRequests(workers, built, { runs, workDir, serviceBindings });
		// What an isolate costs until it has answered once: its startup (the profile's isolate CPU) and then its
		// first request (the process's CPU, runtime included): two measures added up, for both alike. They do not
		// count the same work alike — the profile samples the isolate's own thread, about 1 ms apart; the process
		// figure also holds V8's helper threads (concurrent compiling, collecting) — so work moved from startup to
		// the first request may weigh somewhat more in the sum. Measuring the whole process from its start
		// instead would be one measure, but workerd's own start (0.6–1 s of CPU here, ±150 ms between runs)
		// would bury the difference.
		for (const [name, summary] of [["service", service], ["floor", floor]]) {
			firstRequest[name].startupPlusFirstCpuMs = round2(summary.cpuMs + firstRequest[name].firstCpuMs);
		}
		const firstRatio = (key) => (firstRequest.floor[key] > 0 ? round2(firstRequest.service[key] / firstRequest.floor[key]) : null);
		firstRequest.serviceOverFloor = {
			firstCpu: firstRatio("firstCpuMs"),
			warmCpu: firstRatio("warmCpuMs"),
			startupPlusFirstCpu: firstRatio("startupPlusFirstCpuMs"),
		};
		return {
			runs,
			service,
			floor,
			serviceOverFloor: ratio("cpuMs"),
			serviceOverFloorWranglerActive: ratio("wranglerActiveMs"),
			target: TARGET,
			firstRequest,
		};
	} finally {
		rmSync(workDir, { recursive: true, force: true });
	}
}
