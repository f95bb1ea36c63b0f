// npm run sim -- [--seed S] [--runs N] [--steps N] [--path P]: the whole-service simulation (test/sim) alone.
// A failing run prints its seed and path; passing both replays exactly that run, shrunk. --runs and --steps set how
// many runs and how many commands each may draw (CI runs the defaults within `npm test`).
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";

const { values } = parseArgs({
	options: {
		seed: { type: "string" },
		runs: { type: "string" },
		steps: { type: "string" },
		path: { type: "string" },
	},
});

for (const [name, value] of Object.entries(values)) {
	if (name !== "path" && !/^\d+$/.test(value)) {
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
	},
});
process.exit(result.status ?? 1);
