// The processes a bench run drives: wrangler (migrations, SQL, builds), the Workers it starts through
// unstable_startWorker, and the workerd processes behind them, found and placed on CPUs through Linux /proc.
import { execFileSync, spawnSync } from "node:child_process";
import { accessSync, constants, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { unstable_startWorker } from "wrangler";
import { migrateAll } from "../../scripts/migrate.mjs";

/** The repository the bench runs from. */
export const ROOT = path.resolve(import.meta.dirname, "../..");
const WRANGLER_BIN = path.join(ROOT, "node_modules/wrangler/bin/wrangler.js");

/** A progress line on stderr: stdout carries the report alone. */
export const log = (message) => process.stderr.write(`[bench] ${message}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Where the temporary database lives: in memory (/dev/shm) when there is one. Local D1 and the local rate
 * limiter are SQLite files, and neither production D1 nor the production limiter writes to this machine's
 * disk; on a shared disk, other jobs' I/O would show up as noise in every figure.
 */
export function tempRoot() {
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
export function cpuNanos(pid) {
	return readdirSync(`/proc/${pid}/task`).reduce(
		(sum, task) => sum + Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]),
		0,
	);
}

/**
 * Waits until the process `pid` is idle: under `maxNanos` of CPU (all threads) in a window of `windowMs`, checked
 * window after window. After a request, this is when the work the request left behind (the runtime's logging,
 * V8's concurrent compiling and collecting) is done, so that a CPU reading then holds all of it and none of the
 * next request's. Answers whether it went idle within `timeoutMs`.
 */
export async function waitForIdle(pid, { windowMs = 25, maxNanos = 50_000, timeoutMs = 5_000 } = {}) {
	const deadline = performance.now() + timeoutMs;
	let previous = cpuNanos(pid);
	while (performance.now() < deadline) {
		await sleep(windowMs);
		const now = cpuNanos(pid);
		if (now - previous < maxNanos) return true;
		previous = now;
	}
	return false;
}

/** The CPUs a process may run on, as `taskset` lists them ("0-1"), or null where there is no /proc. */
function cpuList(pid) {
	try {
		return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? null;
	} catch {
		return null;
	}
}

/**
 * CPU placement for measuring one workerd process at a time (the startup phase's first requests), as pinCpus
 * does for the load: this Node process — and so whatever it starts from now on, wrangler's proxy workerd
 * included — on CPU 0, and each measured workerd moved to the last CPU by `alone(pid)`. `restore()`
 * gives this process back the CPUs it had, for the phases after. Without taskset or a second CPU, both do
 * nothing and `description` says so.
 */
export function pinOneAtATime() {
	const cpus = os.cpus().length;
	const original = cpuList(process.pid);
	const none = (why) => ({ description: `not pinned (${why})`, alone: () => {}, restore: () => {} });
	if (process.platform !== "linux" || cpus < 2 || !original) return none("needs Linux and 2 CPUs");
	const runtimeCpu = String(cpus - 1);
	try {
		execFileSync("taskset", ["-a", "-pc", "0", String(process.pid)], { stdio: "ignore" });
	} catch (error) {
		return none(`taskset: ${error instanceof Error ? error.message.split("\n")[0] : error}`);
	}
	return {
		description: `measured workerd alone on CPU ${runtimeCpu}; the bench and wrangler's proxy workerd on CPU 0 (taskset)`,
		alone: (pid) => execFileSync("taskset", ["-a", "-pc", runtimeCpu, String(pid)], { stdio: "ignore" }),
		restore: () => execFileSync("taskset", ["-a", "-pc", original, String(process.pid)], { stdio: "ignore" }),
	};
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
export function pinCpus() {
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
export function focusCpus(pid) {
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

/**
 * Runs this repository's wrangler with the Node running the bench, in `cwd` (the repository by default); throws
 * with its output when it fails.
 */
export function wrangler(args, { cwd = ROOT } = {}) {
	const result = spawnSync(process.execPath, [WRANGLER_BIN, ...args], {
		cwd,
		encoding: "utf8",
		env: { ...process.env, CI: "true" },
	});
	if (result.status !== 0) {
		throw new Error(`wrangler ${args.join(" ")} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
	}
	return result.stdout;
}

/**
 * Runs a SQL file on one database (D1 binding) of the bench's local D1; returns how long it took, in ms. The
 * binding is the service's wrangler.toml's, or `config`'s (another checkout's, a floor's): it names the database,
 * and so its file under `persistTo`.
 */
export function executeSql(persistTo, name, sql, binding = "DB", { config = path.join(ROOT, "wrangler.toml") } = {}) {
	const file = path.join(persistTo, `${name}.sql`);
	writeFileSync(file, sql);
	const started = performance.now();
	wrangler(["d1", "execute", binding, "--local", "--persist-to", persistTo, "--config", config, "--file", file]);
	return Math.round(performance.now() - started);
}

/**
 * Migrates every D1 binding of the service's wrangler.toml (the control database and each shard) on the bench's
 * local persistence, with scripts/migrate.mjs as `npm run db:migrate:local` does; or those of `config` (another
 * checkout's, with its own migrations; a floor's).
 */
export function migrateLocal(persistTo, { config = path.join(ROOT, "wrangler.toml") } = {}) {
	migrateAll(["--local", "--persist-to", persistTo, "--config", config], {
		config,
		stdio: "pipe",
		// This repository's wrangler, with the Node running the bench, whether or not npm put node_modules/.bin on PATH.
		env: { PATH: `${path.join(ROOT, "node_modules/.bin")}${path.delimiter}${process.env.PATH ?? ""}` },
	});
}

/**
 * Starts one worker on the bench's local persistence. Returns the URL of the worker's own workerd: wrangler's
 * dev URL goes through its proxy worker (another workerd, one Durable Object forwarding every request), a hop
 * production does not have and that would cap every figure, the floors' alike. `entrypoint` and `build`, when
 * given, replace the config's `main` and its build (to run modules built already, unbundled).
 */
export async function startWorker(config, { persistTo, bindings = {}, entrypoint, build }) {
	const worker = await unstable_startWorker({
		config,
		bindings,
		...(entrypoint && { entrypoint }),
		...(build && { build }),
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

/** One request to a started worker; answers its status and body text. */
export async function request(origin, method, pathname, { headers = {}, body } = {}) {
	const response = await fetch(`${origin}${pathname}`, { method, headers, body });
	const text = await response.text();
	return { status: response.status, text };
}
