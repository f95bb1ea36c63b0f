// The last line of .ci/run: "N passed, N failed", from the summary test/summary-reporter.ts wrote. Runs on its own:
//
//   node .ci/summary.mjs .ci/test-summary.json --checks-failed=0 --tests-exit=0 --chromium-missing=0
//
// Failed counts everything that is not a passing test: failed tests; tests skipped, todo or never finished (the
// project skips nothing on purpose); failed hooks and files that did not load; unhandled errors; an interrupted
// run or one with no tests; failed static checks; a missing Chromium (the docs-page test needs it); and a test run
// that exited non-zero with nothing of the above to show for it. What it counts is listed on stderr first.
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
	allowPositionals: true,
	options: {
		"checks-failed": { type: "string", default: "0" },
		"tests-exit": { type: "string", default: "0" },
		"chromium-missing": { type: "string", default: "0" },
	},
});

const file = positionals[0] ?? ".ci/test-summary.json";
const failures = [];
let passed = 0;

let summary;
try {
	summary = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : undefined;
} catch (error) {
	failures.push(`unreadable test summary ${file}: ${error.message}`);
}

if (summary) {
	const { tests, notRun, hookAndFileErrors, unhandledErrors, reason } = summary;
	passed = tests.passed;
	for (let i = 0; i < tests.failed; i++) failures.push("failed test");
	for (const name of notRun) failures.push(`test not run: ${name}`);
	for (const { where, message } of hookAndFileErrors) failures.push(`hook or file error in ${where}: ${message}`);
	for (const { where, message } of unhandledErrors) failures.push(`unhandled error (${where}): ${message}`);
	if (reason === "interrupted") failures.push("the test run was interrupted");
	if (tests.passed + tests.failed + tests.skipped + tests.pending === 0) failures.push("no tests ran");
} else if (failures.length === 0) {
	failures.push(`no test summary at ${file}: the test run did not finish`);
}

const testsExit = Number(values["tests-exit"]);
if (testsExit !== 0 && failures.length === 0) failures.push(`the test run exited with status ${testsExit}`);
const checksFailed = Number(values["checks-failed"]);
if (checksFailed > 0) failures.push(`static checks failed (${checksFailed})`);
if (values["chromium-missing"] !== "0") failures.push("chromium is not installed: the docs-page test cannot run");

const counted = new Map();
for (const failure of failures) counted.set(failure, (counted.get(failure) ?? 0) + 1);
for (const [failure, times] of counted) console.error(`counted as failed: ${failure}${times > 1 ? ` (${times})` : ""}`);
console.log(`${passed} passed, ${failures.length} failed`);
process.exitCode = failures.length > 0 ? 1 : 0;
