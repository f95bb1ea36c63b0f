// From measured rounds to reported figures: medians over rounds, and ratios to the floors taken within a round,
// so that a burst of load from elsewhere on the machine lands on both sides of a ratio.
import { FLOORS, WRITE_FLOORS } from "./load.mjs";

/** The median of a list of numbers (the mean of the middle two for an even count). */
export function median(values) {
	const sorted = [...values].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * One row per target (medians over rounds, ratios to each floor) and the figures SPEC §6 sets targets for.
 * `writes` names the service's write targets, which ran in write rounds of their own.
 */
export function summarize({ rounds, overload, writes, scale }) {
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
	const targets = {
		writes: writeFloorsMet,
		basic: { target: 0.8, ...versus(row("GET /learner/{id}/tags (Basic)")) },
		bearer: { target: 0.85, ...versus(row("GET /learner/{id}/tags (Bearer)")) },
		getTagsRowsReadOverTags: { "10k": getRows("10k"), "100k": getRows("100k") },
		overloadErrors: Object.values(overload).reduce((sum, run) => sum + run.errors, 0),
	};
	return { rows, targets };
}
