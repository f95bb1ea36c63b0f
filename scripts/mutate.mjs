// npm run mutate: behaviour mutation testing. Each mutant in scripts/mutations.mjs breaks one promise of
// SPEC.md by replacing one exact piece of src/ (or migrations/, or the auditor's scripts/verify-audit.mjs); the
// tests named for it must then fail. Mutants are applied one at a time to a scratch copy of the work tree (src/
// here is never written), and the tests run there inside workerd, as `npm test` runs them.
//
//   npm run mutate                         every mutant (a control run first: the tests must pass unmutated)
//   npm run mutate -- tags-set-union ...   only these mutants
//   npm run mutate -- --list               the mutants, with the promise each breaks
//   npm run mutate -- --timeout 300        seconds one vitest run may take (default 300; over it counts as caught)
//   npm run mutate -- --no-control         skip the control run
//   npm run mutate -- --blind [ids...]     the blind list instead (scripts/mutations-blind.mjs, BLIND_MUTATIONS: mutants
//                                          written from the contract without reading the tests); same checks, results
//                                          in .wrangler/mutate/latest-blind.json, logs prefixed blind-
//
// Each mutant ends caught (its tests failed), survived (they passed: a promise no test holds), stale (the search
// text is not in the file exactly once: the list has fallen behind the code) or broken (vitest failed without a
// failing test, e.g. the mutated module did not load: the mutant proves nothing). Exit status 1 unless every
// mutant is caught. Results: .wrangler/mutate/latest.json (latest-blind.json with --blind); vitest's output for each
// mutant beside it.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { MUTATIONS } from "./mutations.mjs";
import { BLIND_MUTATIONS } from "./mutations-blind.mjs";

const root = path.resolve(import.meta.dirname, "..");
const resultsDir = path.join(root, ".wrangler", "mutate");

function parseArgs(argv) {
	const options = { list: false, control: true, blind: false, timeoutSeconds: 300, ids: [] };
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i];
		if (arg === "--list") options.list = true;
		else if (arg === "--no-control") options.control = false;
		else if (arg === "--blind") options.blind = true;
		else if (arg === "--timeout") options.timeoutSeconds = Number(argv[++i]);
		else if (arg === "--help" || arg === "-h") options.help = true;
		else if (arg.startsWith("-")) throw new Error(`Unknown option ${arg} (see --help)`);
		else options.ids.push(arg);
	}
	if (!(options.timeoutSeconds > 0)) throw new Error("--timeout takes a number of seconds");
	return options;
}

/** How many times `search` occurs in `text` (non-overlapping). */
function occurrences(text, search) {
	let count = 0;
	for (let at = text.indexOf(search); at !== -1; at = text.indexOf(search, at + search.length)) count++;
	return count;
}

/** Checks the list itself: unique ids, every field present, test files that exist. */
function checkList(mutations) {
	const problems = [];
	const seen = new Set();
	for (const m of mutations) {
		if (seen.has(m.id)) problems.push(`${m.id}: duplicate id`);
		seen.add(m.id);
		for (const field of ["id", "promise", "spec", "file", "search"]) {
			if (typeof m[field] !== "string" || m[field] === "") problems.push(`${m.id}: ${field} missing`);
		}
		if (typeof m.replace !== "string") problems.push(`${m.id}: replace missing`);
		if (m.search === m.replace) problems.push(`${m.id}: replacement equals the search text`);
		// What the service ships: its code, its migrations, and the script auditors verify the audit trail with.
		if (!/^((src|migrations)\/|scripts\/verify-audit\.mjs$)/.test(m.file ?? "")) problems.push(`${m.id}: file must be under src/ or migrations/, or be scripts/verify-audit.mjs`);
		if (!Array.isArray(m.tests) || m.tests.length === 0) problems.push(`${m.id}: no test files`);
		for (const test of m.tests ?? []) if (!existsSync(path.join(root, test))) problems.push(`${m.id}: no such test file ${test}`);
	}
	return problems;
}

/** A scratch copy of the work tree (tracked and untracked files, not ignored ones), sharing node_modules. */
function makeScratch() {
	const listed = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: root, encoding: "utf8" });
	if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
	const dir = mkdtempSync(path.join(tmpdir(), "learner-service-mutate-"));
	for (const file of listed.stdout.split("\0").filter(Boolean)) {
		if (!existsSync(path.join(root, file))) continue; // deleted in the work tree, not yet committed
		mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
		cpSync(path.join(root, file), path.join(dir, file));
	}
	symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"), "dir");
	return dir;
}

let scratch;
let running; // the vitest child process, if any
let interrupted = false;

function cleanUp() {
	if (running) {
		try {
			process.kill(-running.pid, "SIGKILL");
		} catch {
			// already gone
		}
	}
	if (scratch) rmSync(scratch, { recursive: true, force: true });
	scratch = undefined;
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
	process.on(signal, () => {
		interrupted = true;
		console.log(`\n${signal}: stopping; the scratch copy is removed, src/ was never changed`);
		cleanUp();
		process.exit(130);
	});
}

/**
 * Runs vitest on `tests` in the scratch copy. Resolves with the outcome: passed, failed (with the number of
 * failing tests), timeout, or error (vitest failed with no failing test).
 */
function runTests(tests, project, timeoutSeconds, logName) {
	const report = path.join(scratch, ".wrangler", "mutate-report.json");
	rmSync(report, { force: true });
	const args = ["vitest", "run", "--project", project, "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...tests];
	const started = Date.now();
	return new Promise((resolve) => {
		// Own process group, so a timeout or Ctrl-C ends vitest and its workerd together.
		const child = spawn("npx", args, { cwd: scratch, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CI: "true" } });
		running = child;
		const output = [];
		child.stdout.on("data", (chunk) => output.push(chunk));
		child.stderr.on("data", (chunk) => output.push(chunk));
		let timedOut = false;
		const timer = setTimeout(() => {
			timedOut = true;
			try {
				process.kill(-child.pid, "SIGKILL");
			} catch {
				// already gone
			}
		}, timeoutSeconds * 1000);
		child.on("close", (code) => {
			clearTimeout(timer);
			running = undefined;
			const seconds = (Date.now() - started) / 1000;
			mkdirSync(resultsDir, { recursive: true });
			writeFileSync(path.join(resultsDir, `${logName}.log`), Buffer.concat(output));
			let summary;
			try {
				summary = JSON.parse(readFileSync(report, "utf8"));
			} catch {
				summary = undefined;
			}
			const failedTests = summary?.numFailedTests ?? 0;
			const totalTests = summary?.numTotalTests ?? 0;
			let outcome;
			if (timedOut) outcome = "timeout";
			else if (code === 0) outcome = "passed";
			else if (failedTests > 0) outcome = "failed";
			else outcome = "error";
			resolve({ outcome, seconds, failedTests, totalTests });
		});
	});
}

const pad = (text, width) => String(text).padEnd(width);

async function main() {
	const options = parseArgs(process.argv.slice(2));
	if (options.help) {
		console.log(readFileSync(import.meta.filename, "utf8").split("\n").filter((line) => line.startsWith("//")).slice(0, 19).map((line) => line.slice(3)).join("\n"));
		return 0;
	}
	// The list to run: the main one, or the blind one (--blind), each with its own results file and log names.
	const list = options.blind
		? { mutations: BLIND_MUTATIONS, file: "scripts/mutations-blind.mjs", results: "latest-blind.json", logPrefix: "blind-" }
		: { mutations: MUTATIONS, file: "scripts/mutations.mjs", results: "latest.json", logPrefix: "" };
	const MUTANTS = list.mutations;
	const problems = checkList(MUTANTS);
	if (problems.length > 0) {
		console.error(`${list.file} has problems:\n  ${problems.join("\n  ")}`);
		return 2;
	}
	if (options.list) {
		let stale = 0;
		for (const m of MUTANTS) {
			const found = occurrences(readFileSync(path.join(root, m.file), "utf8"), m.search);
			if (found !== 1) stale++;
			const mark = found === 1 ? "" : `  STALE: search text found ${found} times`;
			console.log(`${pad(m.id, 40)} ${m.file}  (${m.spec})${mark}\n${" ".repeat(41)}${m.promise}`);
		}
		console.log(`\n${MUTANTS.length} mutants, ${stale} stale`);
		return stale === 0 ? 0 : 1;
	}
	const unknown = options.ids.filter((id) => !MUTANTS.some((m) => m.id === id));
	if (unknown.length > 0) {
		console.error(`No mutant ${unknown.join(", ")} (npm run mutate -- --list)`);
		return 2;
	}
	const selected = options.ids.length > 0 ? MUTANTS.filter((m) => options.ids.includes(m.id)) : MUTANTS;
	const started = Date.now();
	scratch = makeScratch();
	console.log(`Scratch copy: ${scratch} (src/ in ${root} is never written)`);

	if (options.control) {
		// Unmutated, every test file the selected mutants use must pass, or "caught" would mean nothing.
		for (const project of [...new Set(selected.map((m) => m.project ?? "workers"))]) {
			const tests = [...new Set(selected.filter((m) => (m.project ?? "workers") === project).flatMap((m) => m.tests))].sort();
			process.stdout.write(`control run (${project}, ${tests.length} test files, unmutated) ... `);
			const control = await runTests(tests, project, options.timeoutSeconds * 3, `${list.logPrefix}control-${project}`);
			console.log(`${control.outcome} in ${control.seconds.toFixed(0)} s (${control.totalTests} tests)`);
			if (control.outcome !== "passed") {
				console.error(`The tests fail without any mutant (.wrangler/mutate/${list.logPrefix}control-${project}.log): fix them first.`);
				cleanUp();
				return 2;
			}
		}
	}

	const results = [];
	for (const [index, m] of selected.entries()) {
		if (interrupted) break;
		const label = `[${index + 1}/${selected.length}] ${pad(m.id, 40)}`;
		const original = readFileSync(path.join(root, m.file), "utf8");
		const count = occurrences(original, m.search);
		if (count !== 1) {
			console.log(`${label} STALE     search text found ${count} times in ${m.file}`);
			results.push({ id: m.id, status: "stale", occurrences: count });
			continue;
		}
		const target = path.join(scratch, m.file);
		writeFileSync(target, original.replace(m.search, () => m.replace));
		let run;
		try {
			run = await runTests(m.tests, m.project ?? "workers", options.timeoutSeconds, m.id.startsWith(list.logPrefix) ? m.id : `${list.logPrefix}${m.id}`);
		} finally {
			writeFileSync(target, original);
		}
		const status = { failed: "caught", timeout: "caught", passed: "survived", error: "broken" }[run.outcome];
		const detail =
			run.outcome === "failed"
				? `${run.failedTests} of ${run.totalTests} tests failed`
				: run.outcome === "timeout"
					? `timed out after ${options.timeoutSeconds} s`
					: run.outcome === "passed"
						? `all ${run.totalTests} tests passed`
						: "vitest failed with no failing test (see the log)";
		console.log(`${label} ${pad(status.toUpperCase(), 9)} ${detail}, ${run.seconds.toFixed(0)} s`);
		results.push({ id: m.id, status, ...run });
	}
	cleanUp();

	const count = (status) => results.filter((r) => r.status === status).length;
	const caught = count("caught");
	const seconds = (Date.now() - started) / 1000;
	const score = results.length ? (100 * caught) / results.length : 0;
	console.log(
		`\n${caught} caught, ${count("survived")} survived, ${count("stale")} stale, ${count("broken")} broken of ${results.length}: ` +
			`score ${score.toFixed(1)} % in ${(seconds / 60).toFixed(1)} min`,
	);
	for (const status of ["survived", "stale", "broken"]) {
		const ids = results.filter((r) => r.status === status).map((r) => r.id);
		if (ids.length > 0) console.log(`${status}: ${ids.join(", ")}`);
	}
	mkdirSync(resultsDir, { recursive: true });
	writeFileSync(
		path.join(resultsDir, list.results),
		`${JSON.stringify({ date: new Date().toISOString(), seconds, score, results }, null, "\t")}\n`,
	);
	return caught === results.length ? 0 : 1;
}

main().then(
	(code) => {
		process.exitCode = code;
	},
	(error) => {
		cleanUp();
		console.error(error);
		process.exitCode = 2;
	},
);
