// `npm run bench`: load benchmarks of the service against floors on the same runtime (bench/floors/), plus
// scaling figures from D1's own meta and the JavaScript cost of the hot path (bench/probe/). Everything runs
// locally (workerd through wrangler's unstable_startWorker, local D1 in a fresh temporary directory) and all
// traffic goes to 127.0.0.1. See README "Benchmarks".
//
// Phases: migrate → seed 10 000 registrations → probe (scaling, hot path) → seed up to 100 000 registrations →
// probe (scaling) → start the service and the floors → find the saturation concurrency → measure floors and
// endpoints in alternating rounds → check for errors at twice saturation → print, save bench/results/latest.json.
import { execFileSync, spawnSync } from "node:child_process";
import {
	accessSync,
	constants,
	mkdirSync,
	mkdtempSync,
	readFileSync,
	readdirSync,
	readlinkSync,
	rmSync,
	writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { unstable_startWorker } from "wrangler";
import {
	APP_ID,
	CREDENTIAL_ID,
	REALM_ADMIN,
	REGISTRATIONS_PER_LEARNER,
	SECRET,
	TAGS_PER_LEARNER,
	learnerId,
	seedApplication,
	seedLearners,
} from "./seed.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const WRANGLER_BIN = path.join(ROOT, "node_modules/wrangler/bin/wrangler.js");
const RESULTS = path.join(ROOT, "bench/results");

// Knobs, for a quick run (BENCH_DURATION=2) or a steadier one. Defaults keep the whole run near 5 minutes.
const DURATION = Number(process.env.BENCH_DURATION ?? 3);
// An even number: the order of targets alternates between rounds.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
// Names this run in its saved file (e.g. BENCH_LABEL=before-cache).
const LABEL = process.env.BENCH_LABEL;
const SATURATION_STEPS = [1, 2, 4, 8, 16, 32, 64];
const SATURATION_DURATION = 2;
const OVERLOAD_DURATION = 3;
// Seconds of load before a target's first measured round. A fresh workerd takes several seconds of traffic to
// settle (JIT, SQLite page cache): with 1 s, the first round of a floor cost up to 40 % more CPU per request.
const WARMUP = 5;

const HOT_PATH_ITERATIONS = 5_000;
const HOT_PATH_RUNS = 5;
const LEARNERS_SMALL = 2_000; // × 5 registrations = 10 000
const LEARNERS = 20_000; // × 5 registrations = 100 000

// The service's secrets, as bindings: a developer's .dev.vars never reaches the bench.
const SECRETS = {
	MANAGEMENT_APP_ID: "bench-management",
	MANAGEMENT_SECRET_KEY: "bench-management-secret-0123456789abcdef",
	TOKEN_SIGNING_SECRET: "bench-token-signing-secret-0123456789abcdef",
	LEARNER_HASH_KEY: "bench-learner-hash-key-0123456789abcdef",
};
// wrangler.toml allows 1200 requests a minute per application; a load test sends that in well under a second.
// This run alone overrides the binding (production's limit is untouched); the limiter is still called on every
// request, as in production, so its cost is measured — only its budget is raised.
const BENCH_RATE_LIMIT = 1_000_000_000;
// Likewise the write budget (APP_WRITE_BUDGET, 300 000 rows a minute per application in wrangler.toml), which the
// batch load spends in seconds: every write still pays its check, in the same D1 call.
const BENCH_WRITE_BUDGET = 1_000_000_000_000;

const log = (message) => process.stderr.write(`[bench] ${message}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Where the temporary database lives: in memory (/dev/shm) when there is one. Local D1 and the local rate
 * limiter are SQLite files, and neither production D1 nor the production limiter writes to this machine's
 * disk; on a shared disk, other jobs' I/O would show up as noise in every figure.
 */
function tempRoot() {
	try {
		accessSync("/dev/shm", constants.W_OK);
		return "/dev/shm";
	} catch {
		return os.tmpdir();
	}
}

/**
 * The workerd process serving a port (Linux /proc), or null where there is no /proc. Its CPU time per request is
 * the one figure here that load from elsewhere on a shared machine does not move: throughput does.
 */
function workerdListeningOn(port) {
	try {
		const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
		const inodes = new Set();
		for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
			for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
				const fields = line.trim().split(/\s+/);
				if (fields[1]?.endsWith(hex) && fields[3] === "0A") inodes.add(`socket:[${fields[9]}]`);
			}
		}
		for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
			try {
				if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "workerd") continue;
				for (const fd of readdirSync(`/proc/${pid}/fd`)) {
					if (inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return Number(pid);
				}
			} catch {
				// The process ended or is not ours to read: not the one.
			}
		}
	} catch {
		// No /proc: CPU figures are left out.
	}
	return null;
}

/** Nanoseconds the process has run on a CPU, all threads (schedstat). */
function cpuNanos(pid) {
	return readdirSync(`/proc/${pid}/task`).reduce(
		(sum, task) => sum + Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]),
		0,
	);
}

/** The parent pid of a process (Linux /proc), or null. */
function parentPid(pid) {
	try {
		// The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
		const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
		return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
	} catch {
		return null;
	}
}

/** Every workerd process this run started (descendants of this Node process). */
function ownWorkerdPids() {
	const own = [];
	for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
		try {
			if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "workerd") continue;
		} catch {
			continue;
		}
		for (let ancestor = parentPid(pid); ancestor && ancestor > 1; ancestor = parentPid(ancestor)) {
			if (ancestor === process.pid) {
				own.push(Number(pid));
				break;
			}
		}
	}
	return own;
}

// Set by pinCpus(): the runtime processes to place, and the CPU the measured one gets to itself.
let cpuPlan = null;
let focusedPid = null;

/**
 * Gives the measured runtime a CPU of its own (Linux `taskset`): before each load, the workerd process serving
 * the target goes to the last CPU and everything else this run started (the other Workers' processes, which
 * still checkpoint, collect garbage and keep timers after their own load ends) shares CPU 0 with the load
 * generator. Left to the scheduler, on this 2-core machine, a floor's CPU per request moved by ±30 % between
 * rounds. Returns what was done, for the results file.
 */
function pinCpus() {
	const cpus = os.cpus().length;
	if (process.platform !== "linux" || cpus < 2) return "not pinned (needs Linux and 2 CPUs)";
	try {
		execFileSync("taskset", ["-a", "-pc", "0", String(process.pid)], { stdio: "ignore" });
		cpuPlan = { runtimeCpu: String(cpus - 1), pids: ownWorkerdPids() };
		return `measured workerd alone on CPU ${cpuPlan.runtimeCpu}; load generator and ${cpuPlan.pids.length - 1} other workerd processes on CPU 0 (taskset)`;
	} catch (error) {
		return `not pinned (taskset: ${error instanceof Error ? error.message.split("\n")[0] : error})`;
	}
}

/** Places the processes for a load on the workerd process `pid` (see pinCpus). */
function focusCpus(pid) {
	if (!cpuPlan || !pid || pid === focusedPid) return;
	for (const other of cpuPlan.pids) {
		const cpu = other === pid ? cpuPlan.runtimeCpu : "0";
		execFileSync("taskset", ["-a", "-pc", cpu, String(other)], { stdio: "ignore" });
	}
	focusedPid = pid;
}

async function freePort() {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
		});
	});
}

/** Runs wrangler with the Node running this file; throws with its output when it fails. */
function wrangler(args) {
	const result = spawnSync(process.execPath, [WRANGLER_BIN, ...args], {
		cwd: ROOT,
		encoding: "utf8",
		env: { ...process.env, CI: "true" },
	});
	if (result.status !== 0) {
		throw new Error(`wrangler ${args.join(" ")} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
	}
	return result.stdout;
}

function executeSql(persistTo, name, sql) {
	const file = path.join(persistTo, `${name}.sql`);
	writeFileSync(file, sql);
	const started = performance.now();
	wrangler(["d1", "execute", "DB", "--local", "--persist-to", persistTo, "--file", file]);
	return Math.round(performance.now() - started);
}

/**
 * Starts one worker on the bench's local persistence. Returns the URL of the worker's own workerd: wrangler's
 * dev URL goes through its proxy worker (another workerd, one Durable Object forwarding every request), a hop
 * production does not have and that would cap every figure, the floors' alike.
 */
async function startWorker(config, { persistTo, bindings = {} }) {
	const worker = await unstable_startWorker({
		config,
		bindings,
		dev: {
			server: { hostname: "127.0.0.1", port: await freePort() },
			persist: persistTo,
			inspector: false,
			watch: false,
			liveReload: false,
			structuredLogsHandler: (entry) => {
				if (entry.level === "error" || entry.level === "warn") process.stderr.write(`[worker ${entry.level}] ${entry.message}\n`);
			},
		},
	});
	await worker.ready;
	// The local runtime's Miniflare appears once its first reload completes, which can trail `ready`.
	let runtime;
	for (let attempt = 0; attempt < 200 && !runtime; attempt++) {
		runtime = worker.raw.runtimes.find((candidate) => candidate.mf !== undefined);
		if (!runtime) await sleep(50);
	}
	const direct = runtime ? await runtime.mf.ready : undefined;
	const url = direct ?? (await worker.url);
	if (!direct) log(`${config}: workerd URL not found, measuring through wrangler's proxy`);
	const origin = new URL(url).origin;
	return { worker, origin, pid: direct ? workerdListeningOn(Number(new URL(url).port)) : null };
}

async function request(origin, method, pathname, { headers = {}, body } = {}) {
	const response = await fetch(`${origin}${pathname}`, { method, headers, body });
	const text = await response.text();
	return { status: response.status, text };
}

const randomLearner = () => learnerId(Math.floor(Math.random() * LEARNERS));

/** Distinct random learners. */
function randomLearners(count) {
	const ids = new Set();
	while (ids.size < count) ids.add(randomLearner());
	return [...ids];
}

const json = { "Content-Type": "application/json" };

/** The load targets: one request shape each, spread over all learners (a new random learner per request). */
function targets(auth) {
	const tagsPath = () => `/api/v2/learner/${randomLearner()}/tags`;
	const get = (pathOf, authorization) => ({
		method: "GET",
		headers: { Authorization: authorization },
		setupRequest: (req) => ({ ...req, path: pathOf() }),
	});
	return {
		"GET /learner/{id}/tags (Basic)": get(tagsPath, auth.basic),
		"GET /learner/{id}/tags (Bearer)": get(tagsPath, auth.bearer),
		"GET /registrations?learnerId= (Basic)": get(() => `/api/v2/registrations?learnerId=${randomLearner()}`, auth.basic),
		"PUT /learner/{id}/tags (Basic)": {
			method: "PUT",
			headers: { Authorization: auth.basic, ...json },
			setupRequest: (req) => ({
				...req,
				path: tagsPath(),
				// One of 20 new tags: set union, so each learner gains at most 20 over the run.
				body: JSON.stringify({ tags: [`put-tag-${Math.floor(Math.random() * 20)}`] }),
			}),
		},
		"PUT /learner/tags batch 10×5 (Basic)": {
			method: "PUT",
			headers: { Authorization: auth.basic, ...json },
			setupRequest: (req) => ({
				...req,
				path: "/api/v2/learner/tags",
				body: JSON.stringify({
					ids: randomLearners(10),
					tags: Array.from({ length: 5 }, (_, i) => `batch-tag-${i * 4 + Math.floor(Math.random() * 4)}`),
				}),
			}),
		},
	};
}

const sqlFloorTarget = { method: "GET", setupRequest: (req) => ({ ...req, path: `/api/v2/learner/${randomLearner()}/tags` }) };
/** PUT /learner/{id}/tags, as the service's write target sends it. */
const putTagsTarget = {
	method: "PUT",
	headers: { "Content-Type": "application/json" },
	setupRequest: (req) => ({
		...req,
		path: `/api/v2/learner/${randomLearner()}/tags`,
		body: JSON.stringify({ tags: [`put-tag-${Math.floor(Math.random() * 20)}`] }),
	}),
};
/** Floors for the write rounds: PUT tags's SQL with the platform's obligations, without and with the tenant checks. */
const WRITE_FLOORS = {
	write: {
		label: "floor: PUT tags SQL + limiter + session",
		config: "bench/floors/sql-write/wrangler.toml",
		target: putTagsTarget,
	},
	writeChecked: {
		label: "floor: PUT tags SQL + limiter + session + tenant checks",
		config: "bench/floors/sql-write/checked.wrangler.toml",
		target: putTagsTarget,
	},
};
const FLOORS = {
	static: {
		label: "floor: static 200",
		config: "bench/floors/static/wrangler.toml",
		target: { method: "GET", setupRequest: (req) => ({ ...req, path: "/" }) },
	},
	sql: { label: "floor: raw SQL of GET tags", config: "bench/floors/sql/wrangler.toml", target: sqlFloorTarget },
	platform: {
		label: "floor: raw SQL + limiter + session",
		config: "bench/floors/sql-platform/wrangler.toml",
		target: sqlFloorTarget,
	},
};

/** One autocannon run; throughput counts 2xx answers only. With the server's pid, also its CPU per request. */
async function load(server, target, { connections, duration, warmup = 1 }) {
	const { method, headers = {}, setupRequest } = target;
	const options = { url: server.origin, connections, method, headers, requests: [{ method, headers, setupRequest }] };
	focusCpus(server.pid);
	if (warmup) await autocannon({ ...options, duration: warmup });
	const cpuBefore = server.pid ? cpuNanos(server.pid) : null;
	const result = await autocannon({ ...options, duration });
	const cpu = server.pid ? cpuNanos(server.pid) - cpuBefore : null;
	const ok = Object.entries(result.statusCodeStats ?? {})
		.filter(([status]) => status.startsWith("2"))
		.reduce((sum, [, { count }]) => sum + Number(count), 0);
	const statuses = Object.fromEntries(
		Object.entries(result.statusCodeStats ?? {}).map(([status, { count }]) => [status, Number(count)]),
	);
	const answered = Object.values(statuses).reduce((sum, count) => sum + count, 0);
	return {
		connections,
		requestsPerSecond: Math.round(ok / result.duration),
		cpuMicrosPerRequest: cpu === null || answered === 0 ? null : Math.round(cpu / 1000 / answered),
		p50: result.latency.p50,
		p99: result.latency.p99,
		errors: result.errors + result.timeouts + result.non2xx,
		statuses,
		total: result.requests.total,
	};
}

/** Checks one request of each target before loading it: a misconfigured run fails here, not as a 0 req/s row. */
async function preflight(origin, name, target) {
	const req = target.setupRequest({ method: target.method, headers: target.headers ?? {}, path: "/" });
	const response = await request(origin, req.method, req.path, { headers: req.headers, body: req.body });
	if (response.status >= 300) throw new Error(`${name}: preflight answered ${response.status} ${response.text}`);
}

/**
 * Doubles the connections until throughput stops rising (two doublings in a row without a 5 % gain), then
 * takes the lowest concurrency within 5 % of the best seen: where the plateau starts.
 */
async function findSaturation(server, target) {
	const curve = [];
	let best = 0;
	let stalls = 0;
	for (const connections of SATURATION_STEPS) {
		const run = await load(server, target, { connections, duration: SATURATION_DURATION });
		curve.push({ connections, requestsPerSecond: run.requestsPerSecond, p50: run.p50, p99: run.p99 });
		log(`saturation: ${connections} connections → ${run.requestsPerSecond} req/s`);
		stalls = run.requestsPerSecond < best * 1.05 ? stalls + 1 : 0;
		best = Math.max(best, run.requestsPerSecond);
		if (stalls === 2) break;
	}
	const plateau = curve.find((step) => step.requestsPerSecond >= best * 0.95);
	return { connections: plateau.connections, curve };
}

const pad = (text, width) => String(text).padEnd(width);
const padStart = (text, width) => String(text).padStart(width);

function markdownTable(headers, rows) {
	const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => String(row[i]).length)));
	// First column left-aligned, figures right-aligned.
	const line = (cells) => `| ${cells.map((cell, i) => (i === 0 ? pad(cell, widths[i]) : padStart(cell, widths[i]))).join(" | ")} |`;
	const rule = `|${widths.map((width, i) => (i === 0 ? ` ${"-".repeat(width)} ` : ` ${"-".repeat(width - 1)}: `)).join("|")}|`;
	return [line(headers), rule, ...rows.map(line)].join("\n");
}

function median(values) {
	const sorted = [...values].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

async function main() {
	process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false"; // no network here: skip wrangler's Request.cf fetch
	process.env.X_LOCAL_OBSERVABILITY = "false"; // no local copy of platform logs (URLs hold learner ids)
	process.env.WRANGLER_LOG = process.env.WRANGLER_LOG ?? "warn";
	const started = performance.now();
	const loadBefore = os.loadavg();

	const persistTo = mkdtempSync(path.join(tempRoot(), "learner-service-bench-"));
	// Ctrl-C must not leave a 100 000-registration database in /dev/shm, which is memory.
	process.once("SIGINT", () => {
		rmSync(persistTo, { recursive: true, force: true });
		process.exit(130);
	});
	const running = [];
	try {
		log(`persistence: ${persistTo}`);
		wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo]);
		const seedMs = [executeSql(persistTo, "seed-application", seedApplication())];
		seedMs.push(executeSql(persistTo, "seed-small", seedLearners(0, LEARNERS_SMALL)));
		log(`seeded ${LEARNERS_SMALL * REGISTRATIONS_PER_LEARNER} registrations in ${seedMs[1]} ms`);

		// Scaling figures from D1's meta, at two database sizes. The probe worker runs alone: one workerd at a
		// time on the database file.
		const probeRequest = {
			seededAppId: APP_ID,
			seededLearnerIds: [learnerId(0), learnerId(1), learnerId(LEARNERS_SMALL - 1)],
			requestedBy: REALM_ADMIN,
		};
		const scale = {};
		let hotPath;
		const probe = async (label) => {
			const { worker, origin } = await startWorker(path.join(ROOT, "bench/probe/wrangler.toml"), { persistTo });
			try {
				const response = await request(origin, "POST", "/scale", {
					headers: json,
					body: JSON.stringify({ ...probeRequest, appId: `SCALE${label.toUpperCase()}` }),
				});
				if (response.status !== 200) throw new Error(`probe ${label}: ${response.status} ${response.text}`);
				scale[label] = JSON.parse(response.text);
				log(`scale at ${scale[label].databaseRegistrations} registrations: done`);
				if (hotPath) return;
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
				hotPath = {
					iterations: HOT_PATH_ITERATIONS,
					runs: HOT_PATH_RUNS,
					floorMicros: min("floorMicros"),
					basicMicros: min("basicMicros"),
					bearerMicros: min("bearerMicros"),
				};
				log(`hot path: floor ${hotPath.floorMicros} µs, Basic ${hotPath.basicMicros} µs, Bearer ${hotPath.bearerMicros} µs`);
			} finally {
				await worker.dispose();
			}
		};
		await probe("10k");
		seedMs.push(executeSql(persistTo, "seed-large", seedLearners(LEARNERS_SMALL, LEARNERS)));
		log(`seeded up to ${LEARNERS * REGISTRATIONS_PER_LEARNER} registrations in ${seedMs[2]} ms`);
		await probe("100k");

		// Load: the service (rate limit raised, request logs off) and both floors.
		const service = await startWorker(path.join(ROOT, "wrangler.toml"), {
			persistTo,
			bindings: {
				...Object.fromEntries(Object.entries(SECRETS).map(([name, value]) => [name, { type: "secret_text", value }])),
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

		const pinning = pinCpus();
		log(`CPUs: ${pinning}`);

		const basic = `Basic ${Buffer.from(`${APP_ID}:${SECRET}`).toString("base64")}`;
		const minted = await request(service.origin, "POST", "/api/v2/oauth/authenticate/application/token", {
			headers: { Authorization: basic, "Content-Type": "application/x-www-form-urlencoded" },
			body: "scope=read:learner write:learner read:registration&expiration=3600",
		});
		if (minted.status !== 200) throw new Error(`token: ${minted.status} ${minted.text}`);
		const auth = { basic, bearer: `Bearer ${JSON.parse(minted.text).access_token}` };
		const service_targets = targets(auth);

		// The floors and the service share the database file: a write through the service must be what the SQL
		// floor reads, or the floor would not be reading "the same data".
		const probeLearner = learnerId(LEARNERS - 1);
		await request(service.origin, "PUT", `/api/v2/learner/${probeLearner}/tags`, {
			headers: { Authorization: basic, ...json },
			body: JSON.stringify({ tags: ["consistency-check"] }),
		});
		const [viaService, viaFloor] = await Promise.all([
			request(service.origin, "GET", `/api/v2/learner/${probeLearner}/tags`, { headers: { Authorization: basic } }),
			request(floors.sql.origin, "GET", `/api/v2/learner/${probeLearner}/tags`),
		]);
		if (viaService.text !== viaFloor.text) throw new Error(`floor and service disagree: ${viaService.text} vs ${viaFloor.text}`);

		for (const [name, target] of Object.entries(service_targets)) await preflight(service.origin, name, target);
		for (const [name, floor] of Object.entries({ ...FLOORS, ...WRITE_FLOORS })) {
			await preflight(floors[name].origin, floor.label, floor.target);
		}

		const saturation = await findSaturation(service, service_targets["GET /learner/{id}/tags (Basic)"]);
		const connections = saturation.connections;
		log(`saturation at ${connections} connections; measuring at ${connections}, overload check at ${connections * 2}`);

		// Every round measures every floor and every read endpoint, one after the other, so a burst of load from
		// elsewhere on the machine lands on both sides of a ratio: ratios are taken within a round, and each figure
		// reported is the median over rounds. Writes come after all reads: every write changes the database file,
		// and each workerd (the floors are separate processes) would then reread the pages another one wrote.
		const reads = Object.keys(service_targets).filter((name) => service_targets[name].method === "GET");
		const writes = Object.keys(service_targets).filter((name) => !reads.includes(name));
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
			...reads.map((name) => [name, service, service_targets[name]]),
		];
		for (let round = 0; round < ROUNDS; round++) {
			rounds.push({});
			for (const job of round % 2 ? [...readJobs].reverse() : readJobs) await measure(round, ...job);
		}
		// Write rounds pair the write floors with the service's writes, in alternating order too.
		const writeJobs = [
			...Object.entries(WRITE_FLOORS).map(([name, floor]) => [floor.label, floors[name], floor.target]),
			...writes.map((name) => [name, service, service_targets[name]]),
		];
		for (let round = 0; round < ROUNDS; round++) {
			for (const job of round % 2 ? [...writeJobs].reverse() : writeJobs) await measure(round, ...job);
		}

		const overload = {};
		for (const [name, target] of Object.entries(service_targets)) {
			const run = await load(service, target, { connections: connections * 2, duration: OVERLOAD_DURATION, warmup: 0 });
			overload[name] = run;
			log(`overload ${name}: ${run.requestsPerSecond} req/s, errors ${run.errors}`);
		}

		const names = Object.keys(rounds[0]);
		const across = (name, value) => median(rounds.map((round) => value(round[name], round)));
		// Writes ran in rounds of their own: they are compared with the floors' medians.
		const floorMedian = (floor) => ({
			requestsPerSecond: across(FLOORS[floor].label, (run) => run.requestsPerSecond),
			cpuMicrosPerRequest: across(FLOORS[floor].label, (run) => run.cpuMicrosPerRequest),
		});
		const writeFloorLabels = Object.values(WRITE_FLOORS).map((floor) => floor.label);
		const ranInWriteRounds = (name) => writes.includes(name) || writeFloorLabels.includes(name);
		const floorOf = (name, floor, round) => (ranInWriteRounds(name) ? floorMedian(floor) : round[FLOORS[floor].label]);
		const perRound = (name, floor) => (run, round) => run.requestsPerSecond / floorOf(name, floor, round).requestsPerSecond;
		// As a throughput ratio: the floor's CPU per request over the target's (CPU-bound, throughput is its inverse).
		const cpuPerRound = (name, floor) => (run, round) => floorOf(name, floor, round).cpuMicrosPerRequest / run.cpuMicrosPerRequest;
		const cpuKnown = rounds.every((round) => Object.values(round).every((run) => run.cpuMicrosPerRequest));
		const rows = names.map((name) => ({
			name,
			requestsPerSecond: Math.round(across(name, (run) => run.requestsPerSecond)),
			p50: across(name, (run) => run.p50),
			p99: across(name, (run) => run.p99),
			errors: rounds.reduce((sum, round) => sum + round[name].errors, 0),
			vsStatic: across(name, perRound(name, "static")).toFixed(2),
			vsSql: across(name, perRound(name, "sql")).toFixed(2),
			vsPlatform: across(name, perRound(name, "platform")).toFixed(2),
			cpuMicrosPerRequest: cpuKnown ? across(name, (run) => run.cpuMicrosPerRequest) : "-",
			cpuVsSql: cpuKnown ? across(name, cpuPerRound(name, "sql")).toFixed(2) : "-",
			cpuVsPlatform: cpuKnown ? across(name, cpuPerRound(name, "platform")).toFixed(2) : "-",
			overloadErrors: overload[name]?.errors ?? "-",
		}));
		const row = (name) => rows.find((candidate) => candidate.name === name);

		const versus = (r) => ({
			vsSqlFloor: Number(r.vsSql),
			vsPlatformFloor: Number(r.vsPlatform),
			cpuVsSqlFloor: Number(r.cpuVsSql),
			cpuVsPlatformFloor: Number(r.cpuVsPlatform),
		});
		const getRows = (label) => scale[label].getTags.map((entry) => entry.rowsRead - entry.tags);
		// Within each write round: the service's PUT against the floor doing the same SQL, and what the tenant
		// checks (write guard, stored-row count) cost the floor.
		const writeRatio = (name, floor) =>
			Number(across(name, (run, round) => run.requestsPerSecond / round[WRITE_FLOORS[floor].label].requestsPerSecond).toFixed(2));
		const writeCpuRatio = (name, floor) =>
			Number(across(name, (run, round) => round[WRITE_FLOORS[floor].label].cpuMicrosPerRequest / run.cpuMicrosPerRequest).toFixed(2));
		const putTags = "PUT /learner/{id}/tags (Basic)";
		const checkedLabel = WRITE_FLOORS.writeChecked.label;
		const writeFloorsMet = {
			putVsCheckedFloor: writeRatio(putTags, "writeChecked"),
			cpuPutVsCheckedFloor: cpuKnown ? writeCpuRatio(putTags, "writeChecked") : null,
			putVsUncheckedFloor: writeRatio(putTags, "write"),
			checkedFloorVsUnchecked: writeRatio(checkedLabel, "write"),
			cpuCheckedFloorVsUnchecked: cpuKnown ? writeCpuRatio(checkedLabel, "write") : null,
		};
		const targetsMet = {
			writes: writeFloorsMet,
			basic: { target: 0.8, ...versus(row("GET /learner/{id}/tags (Basic)")) },
			bearer: { target: 0.85, ...versus(row("GET /learner/{id}/tags (Bearer)")) },
			getTagsRowsReadOverTags: { "10k": getRows("10k"), "100k": getRows("100k") },
			overloadErrors: Object.values(overload).reduce((sum, run) => sum + run.errors, 0),
		};

		const table = markdownTable(
			[
				"target",
				"req/s",
				"p50 ms",
				"p99 ms",
				"errors",
				`errors at ${connections * 2} conn`,
				"× SQL",
				"× platform",
				"CPU µs/req",
				"× SQL (CPU)",
				"× platform (CPU)",
			],
			rows.map((r) => [
				r.name,
				r.requestsPerSecond,
				r.p50,
				r.p99,
				r.errors,
				r.overloadErrors,
				r.vsSql,
				r.vsPlatform,
				r.cpuMicrosPerRequest,
				r.cpuVsSql,
				r.cpuVsPlatform,
			]),
		);
		const scaleRow = (label, key, operation) => {
			const entry = scale[label][key];
			const total = entry.total ?? entry;
			return [
				`${operation} @ ${scale[label].databaseRegistrations.toLocaleString("en")} registrations`,
				total.ms,
				total.calls,
				total.rowsRead,
				total.rowsWritten,
				entry.chunks ?? "-",
				entry.perChunkMax ? `${entry.perChunkMax.rowsRead} / ${entry.perChunkMax.rowsWritten}` : "-",
			];
		};
		const scaleTable = markdownTable(
			["operation @ database size", "ms", "D1 calls", "rows read", "rows written", "chunks", "max per chunk (read / written)"],
			["10k", "100k"].flatMap((label) => [
				scaleRow(label, "batch", "PUT /learner/tags 1000 × 100"),
				scaleRow(label, "update", "updateLearnerInfo, 10 000 registrations"),
				scaleRow(label, "erasure", "deleteAllLearnerData, 10 000 registrations"),
			]),
		);

		const result = {
			date: new Date().toISOString(),
			...(LABEL && { label: LABEL }),
			machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, loadAverageBefore: loadBefore, loadAverageAfter: os.loadavg() },
			versions: {
				node: process.version,
				wrangler: JSON.parse(readFileSync(path.join(ROOT, "node_modules/wrangler/package.json"), "utf8")).version,
				autocannon: JSON.parse(readFileSync(path.join(ROOT, "node_modules/autocannon/package.json"), "utf8")).version,
			},
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
			hotPath,
			targets: targetsMet,
			totalSeconds: Math.round((performance.now() - started) / 1000),
		};
		mkdirSync(RESULTS, { recursive: true });
		const body = `${JSON.stringify(result, null, "\t")}\n`;
		writeFileSync(path.join(RESULTS, "latest.json"), body);
		writeFileSync(path.join(RESULTS, `${result.date.replace(/[:.]/g, "-")}${LABEL ? `-${LABEL}` : ""}.json`), body);

		const count = (n) => n.toLocaleString("en");
		const rowsRead = (label) => {
			const { databaseRegistrations, getTags, getTagsAfterBatch } = scale[label];
			const reads = [...getTags, getTagsAfterBatch].map((entry) => `${entry.rowsRead} rows for ${entry.tags} tags`);
			return `  at ${count(databaseRegistrations)} registrations: ${reads.join(", ")}`;
		};
		const versusLine = (label, { vsSqlFloor, cpuVsSqlFloor, vsPlatformFloor, cpuVsPlatformFloor, target }) =>
			`  ${label}: ${vsSqlFloor} (CPU ${cpuVsSqlFloor}) × raw SQL floor, target ≥ ${target}; ` +
			`${vsPlatformFloor} (CPU ${cpuVsPlatformFloor}) × platform floor`;
		const curve = saturation.curve.map((step) => `${step.connections}→${step.requestsPerSecond}`).join(", ");
		const lines = [
			"",
			`Learner Service benchmark — ${result.date}`,
			`${result.machine.cpus} CPUs (${result.machine.model}), load average before ${loadBefore.map((n) => n.toFixed(2)).join(" ")}`,
			`Dataset: ${count(LEARNERS)} learners, ${count(LEARNERS * REGISTRATIONS_PER_LEARNER)} registrations, ` +
				`${TAGS_PER_LEARNER} tags per learner, 1 per registration`,
			`Rate limit: ${result.settings.rateLimit}`,
			`CPUs: ${pinning}`,
			"Request logs: LOG_LEVEL=warn for the run (production default info)",
			`Saturation (GET tags, Basic): ${curve} req/s; measured at ${connections} connections`,
			`Medians of ${ROUNDS} rounds × ${DURATION} s; reads paired with the floors in each round, writes after`,
			"",
			table,
			"",
			"GET tags, throughput as a ratio of the floors:",
			versusLine("Basic", targetsMet.basic),
			versusLine("Bearer", targetsMet.bearer),
			`Errors at ${connections * 2} connections (2 × saturation), all service targets: ${targetsMet.overloadErrors}`,
			"PUT tags, throughput (CPU) as a ratio of the write floors, within each write round:",
			`  service × floor with the same SQL (tenant checks included): ${writeFloorsMet.putVsCheckedFloor} (CPU ${writeFloorsMet.cpuPutVsCheckedFloor})`,
			`  service × floor without the tenant checks: ${writeFloorsMet.putVsUncheckedFloor}`,
			`  cost of the checks: floor with × floor without: ${writeFloorsMet.checkedFloorVsUnchecked} (CPU ${writeFloorsMet.cpuCheckedFloorVsUnchecked})`,
			`JavaScript per GET tags request, D1 and limiter stubbed (bench/probe /hotpath, best of ${HOT_PATH_RUNS} × ${HOT_PATH_ITERATIONS}): ` +
				`floor ${hotPath.floorMicros} µs, service Basic ${hotPath.basicMicros} µs, Bearer ${hotPath.bearerMicros} µs`,
			`GET tags rows read (D1 meta) = tags + ${[...new Set([...getRows("10k"), ...getRows("100k")])].join(" or ")}:`,
			rowsRead("10k"),
			rowsRead("100k"),
			"",
			"Scaling (D1 meta, bench/probe/worker.ts driving src/db and src/jobs/run.ts runJob chunk by chunk):",
			"",
			scaleTable,
			"",
			`Saved bench/results/latest.json (${result.totalSeconds} s)`,
		];
		console.log(lines.join("\n"));
	} finally {
		for (const worker of running) await worker.dispose().catch(() => {});
		rmSync(persistTo, { recursive: true, force: true });
	}
}

await main();
