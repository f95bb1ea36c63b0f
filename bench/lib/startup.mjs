// The startup phase (SPEC §6, cold start): the service's startup CPU against a bare Hono Worker running the same
// query (bench/floors/startup-hono/), both profiled by `wrangler check startup` in the same run, and the size of
// what `wrangler deploy` would upload for each.
import { readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { ROOT, log, wrangler } from "./processes.mjs";
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

// Paths in the results file: from the repository when inside it.
const shown = (file) => (file.startsWith(`${ROOT}${path.sep}`) ? path.relative(ROOT, file) : file);
const compatibilityDate = (config) => /^compatibility_date\s*=\s*"([^"]+)"/m.exec(readFileSync(config, "utf8"))?.[1] ?? null;

/**
 * The startup phase: builds the service in `serviceDir` and the Hono floor, then profiles the startup of each
 * `runs` times, alternating (the floor first in odd runs, so neither always runs first), in `workDir`, which it
 * removes. Returns the figures for the results file: medians, and the ratio of the medians.
 */
export function measureStartup({ serviceDir, runs, workDir }) {
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
		return {
			runs,
			service,
			floor,
			serviceOverFloor: ratio("cpuMs"),
			serviceOverFloorWranglerActive: ratio("wranglerActiveMs"),
			target: TARGET,
		};
	} finally {
		rmSync(workDir, { recursive: true, force: true });
	}
}
