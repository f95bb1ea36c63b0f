import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import "./meta";
import { CHUNK_BOUNDS, JOB_PACE } from "../../src/jobs/run";
import { MOVE_BOUNDS } from "../../src/jobs/move";
import { liftRateLimit } from "../support/client";
import { realmUser } from "../support/fixtures";
import { stubSends } from "../support/queue";
import { SHARDS } from "../support/seed";
import { COMMANDS, type Sim, TAG_POOL, learnerPool, newApp, registrationPool } from "./commands";
import { checkSettled, retryFailedErasures, settle } from "./invariants";
import { Model, type Region } from "./model";
import { type Tally, World, createApplication } from "./world";

/**
 * The whole service under one seeded schedule (SPEC §11, "Features hold together"; FoundationDB's deterministic
 * simulation and Jepsen's checkers are the model): fast-check draws sequences of real operations — registrations,
 * every tag write, updates, single, bulk and realm-wide erasures with and without suppression, suppression lifts,
 * keyed and unkeyed retries, application creation, deletion and moves — interleaved with queue deliveries (in any
 * order, duplicated or lost), sweeps and D1 faults, and runs each against the Worker and the reference model
 * (./model.ts), checking every answer; each run then settles and is checked whole (./invariants.ts). A failure
 * prints its seed and the shrunk sequence of commands; `npm run sim -- --seed S --path P --replay R` replays it.
 *
 * Chunks and move steps are made small (the test's only knobs: the modules' own bounds and pace), so that jobs
 * span several chunks and messages and moves several steps, and so interleave with everything else.
 */

// Bounded for CI (a few minutes); `npm run sim -- --runs N` runs longer.
const RUNS = Number(env.SIM_RUNS || 12);
const MAX_COMMANDS = Number(env.SIM_STEPS || 80);
const SEED = env.SIM_SEED === "" ? Date.now() % 2_147_483_647 : Number(env.SIM_SEED);
const PATH = env.SIM_PATH || undefined;
/** The commands' own replay path (fast-check's replayPath): which commands of a shrunk sequence ran. */
const REPLAY = env.SIM_REPLAY || undefined;
/** Off (`npm run sim -- --no-shrink`): a failure is reported as found, unshrunk, without the shrinking that can take long. */
const SHRINK = env.SIM_SHRINK !== "0";

const tally: Tally = { steps: 0, faults: 0, requests: 0, deliveries: 0 };
let current: World | undefined;
const saved = { chunk: { ...CHUNK_BOUNDS }, pace: { ...JOB_PACE }, move: { ...MOVE_BOUNDS } };

beforeAll(() => {
	// Small chunks, one per message, and moves of few rows per step, few steps per message: jobs and moves span many
	// messages, so they interleave with each other and with everything else.
	Object.assign(CHUNK_BOUNDS, { registrations: 2, rows: 6 });
	Object.assign(JOB_PACE, { chunksPerMessage: 1 });
	Object.assign(MOVE_BOUNDS, { rowsPerStep: 2, keysPerStep: 2, maxCatchUpRounds: 3, stepsPerMessage: 2 });
	stubSends(async (message) => {
		if (!current) throw new Error("a message was sent outside any simulated run");
		await current.sent(message);
	});
	liftRateLimit();
});

afterAll(() => {
	Object.assign(CHUNK_BOUNDS, saved.chunk);
	Object.assign(JOB_PACE, saved.pace);
	Object.assign(MOVE_BOUNDS, saved.move);
	vi.restoreAllMocks();
});

/** A run's starting point: three applications (two in the default region, one in the EU), fresh pools of ids. */
async function newSim(world: World, admin: string, member: string): Promise<Sim> {
	const model = new Model();
	model.rowQuota = Number(env.APP_ROW_QUOTA);
	const regions: Region[] = ["default", "default", "eu"];
	for (const [index, region] of regions.entries()) {
		const created = await createApplication(region, `sim-${world.run}-${index}`);
		model.apps.push(newApp(index, created, region));
		for (const action of ["application.create", "credential.create"]) model.audited.push({ action, target: { applicationId: created.appId }, command: "the run's first applications" });
	}
	return {
		model,
		world,
		admin,
		member,
		learners: learnerPool(world.run),
		registrationIds: registrationPool(world.run),
		tags: TAG_POOL,
		serial: 0,
		maxApps: 5,
		configuredRowQuota: model.rowQuota,
		shards: SHARDS.map((shard) => ({ name: shard.name, region: shard.region })),
	};
}

describe("the whole service", () => {
	it("holds together under interleavings, retries, moves, sweeps and faults", { timeout: 3_600_000 }, async ({ task }) => {
		const admin = await realmUser("admin");
		const member = await realmUser("member");
		let runs = 0;
		let found = false;
		const property = fc.asyncProperty(fc.commands(COMMANDS, { maxCommands: MAX_COMMANDS, size: "max", replayPath: REPLAY }), async (commands) => {
			const world = new World(++runs, tally);
			current = world;
			const sim = await newSim(world, admin, member);
			try {
				await fc.asyncModelRun(() => ({ model: sim, real: world }), commands);
				await settle(sim);
				await retryFailedErasures(sim);
				await checkSettled(sim);
			} catch (error) {
				// Said at once: shrinking a long run's failure can take far longer than finding it.
				if (!found) console.error(`sim: run ${runs} failed after ${tally.steps} steps${SHRINK ? "; shrinking" : ""}: ${error instanceof Error ? error.message : String(error)}`);
				found = true;
				throw error;
			}
		});
		const details = await fc.check(property, { seed: SEED, numRuns: RUNS, path: PATH, endOnFailure: !SHRINK });
		const line = `sim: ${details.numRuns} runs, ${tally.steps} steps, ${tally.faults} faults, violations = ${details.failed ? 1 : 0} (seed ${SEED})`;
		task.meta.sim = line;
		if (details.failed) {
			const commands = /\/\*replayPath="([^"]*)"\*\//.exec(String(details.counterexample?.[0]))?.[1];
			// The path is fast-check's over runs drawn with these settings: a replay names them too.
			const settings = `${env.SIM_RUNS ? ` --runs ${RUNS}` : ""}${env.SIM_STEPS ? ` --steps ${MAX_COMMANDS}` : ""}`;
			const replay = `npm run sim --${settings} --seed ${SEED} --path ${details.counterexamplePath}${commands ? ` --replay '${commands}'` : ""}`;
			const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
			console.error(`${line}\n${error}\nshrunk: ${String(details.counterexample?.[0])}\nreplay: ${replay}`);
		}
		expect(details.failed ? `${String(details.errorInstance)}\nshrunk: ${String(details.counterexample?.[0])}\nseed ${SEED}, path ${details.counterexamplePath}` : null).toBeNull();
	});
});

