// npm run sim -- [--seed S] [--runs N] [--steps N] [--no-shrink] [--path P --replay R]: the whole-service simulation
// (test/sim) alone. A failing run prints its seed, its path and its commands' replay path (fast-check's replayPath);
// passing all three replays exactly that run, shrunk. --runs and --steps set how many runs and how many commands each
// may draw (CI runs the defaults within `npm test`). The first failure is printed when found; --no-shrink reports it
// as it was found instead of shrinking it (which can take long after a long run).
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";

const { values } = parseArgs({
	options: {
		seed: { type: "string" },
		runs: { type: "string" },
		steps: { type: "string" },
		path: { type: "string" },
		replay: { type: "string" },
		"no-shrink": { type: "boolean" },
	},
});

for (const [name, value] of Object.entries(values)) {
	if (name !== "path" && name !== "replay" && name !== "no-shrink" && !/^\d+$/.test(value)) {
		console.error(`--${name} must be a whole number (got ${value})`);
		process.exit(2);
	}
}

const result = spawnSync("npx", ["vitest", "run", "--project", "workers", "test/sim/"], {
	stdio: "inherit",
	env: {
		...process.env,
		SIM_SEED: values.seed ?? "",
		SIM_RUNS: values.runs ?? "",
		SIM_STEPS: values.steps ?? "",
		SIM_PATH: values.path ?? "",
		SIM_REPLAY: values.replay ?? "",
		SIM_SHRINK: values["no-shrink"] ? "0" : "",
	},
});
process.exit(result.status ?? 1);
