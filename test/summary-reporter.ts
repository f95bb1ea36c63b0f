// Vitest reporter (runs in Node) for CI: writes what the run did to a JSON file that .ci/summary.mjs turns into
// the final "N passed, N failed" line. Vitest's own JSON report has no place for a failed beforeAll/afterAll
// hook (the file's tests stay skipped or passed) nor for unhandled errors; this records them.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Reporter, TestModule, TestSuite } from "vitest/node";

/** Where the summary goes: TEST_SUMMARY_FILE, else .ci/test-summary.json under the working directory. */
const SUMMARY_FILE = process.env.TEST_SUMMARY_FILE ?? ".ci/test-summary.json";

/** One error outside any test's own result: a failed hook, a file that did not load, an unhandled error. */
interface RunError {
	where: string;
	message: string;
}

export interface TestRunSummary {
	/** How the run ended ("passed", "failed" or "interrupted"). */
	reason: string;
	tests: { passed: number; failed: number; skipped: number; pending: number };
	/** Full names of the tests that were skipped or never finished (none is skipped on purpose here). */
	notRun: string[];
	/** Errors recorded on a file or a suite rather than a test: failed beforeAll/afterAll hooks, load failures. */
	hookAndFileErrors: RunError[];
	unhandledErrors: RunError[];
}

const firstLine = (message: string | undefined) => (message ?? "(no message)").split("\n")[0] ?? "";

export default class SummaryReporter implements Reporter {
	onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<{ message?: string; name?: string }>, reason: string) {
		const summary: TestRunSummary = {
			reason,
			tests: { passed: 0, failed: 0, skipped: 0, pending: 0 },
			notRun: [],
			hookAndFileErrors: [],
			unhandledErrors: unhandledErrors.map((error) => ({ where: error.name ?? "unhandled", message: firstLine(error.message) })),
		};
		for (const testModule of testModules) {
			const where = `${testModule.project.name}: ${testModule.relativeModuleId}`;
			const suites: (TestModule | TestSuite)[] = [testModule, ...testModule.children.allSuites()];
			for (const suite of suites) {
				const name = suite.type === "module" ? where : `${where} > ${suite.fullName}`;
				for (const error of suite.errors()) summary.hookAndFileErrors.push({ where: name, message: firstLine(error.message) });
			}
			for (const testCase of testModule.children.allTests()) {
				const { state } = testCase.result();
				summary.tests[state]++;
				if (state === "skipped" || state === "pending") summary.notRun.push(`${where} > ${testCase.fullName}`);
			}
		}
		mkdirSync(path.dirname(SUMMARY_FILE), { recursive: true });
		writeFileSync(SUMMARY_FILE, `${JSON.stringify(summary, null, "\t")}\n`);
	}
}
