// Vitest reporter (runs in Node): sums the conformance counts that the workerd test files attach as task meta
// (test/conformance-setup.ts) and prints one line at the end of the run. Failing the run on a violation is the
// tests' job; this only reports.
import type { Reporter, TestModule } from "vitest/node";
import type { ConformanceCounts } from "./conformance";

export default class ConformanceReporter implements Reporter {
	onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
		const total: ConformanceCounts = { checked: 0, violations: 0 };
		const add = (counts: ConformanceCounts | undefined) => {
			total.checked += counts?.checked ?? 0;
			total.violations += counts?.violations ?? 0;
		};
		for (const testModule of testModules) {
			add(testModule.meta().conformance);
			for (const testCase of testModule.children.allTests()) add(testCase.meta().conformance);
		}
		console.log(`conformance: ${total.checked} responses checked, ${total.violations} violations`);
	}
}
