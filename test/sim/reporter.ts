// Vitest reporter (runs in Node): prints the whole-service simulation's summary line (test/sim/simulation.test.ts
// attaches it as task meta, the one channel from a workerd isolate back to Node) at the end of the run.
import type { Reporter, TestModule } from "vitest/node";
import type {} from "./meta";

export default class SimulationReporter implements Reporter {
	onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
		for (const testModule of testModules) {
			for (const testCase of testModule.children.allTests()) {
				const line = testCase.meta().sim;
				if (line) console.log(line);
			}
		}
	}
}
