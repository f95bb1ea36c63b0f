// What a run leaves behind: the results file (bench/results/latest.json and a timestamped copy) and the printed
// report, both made from the one result object.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ROOT } from "./processes.mjs";

const RESULTS = path.join(ROOT, "bench/results");

const pad = (text, width) => String(text).padEnd(width);
const padStart = (text, width) => String(text).padStart(width);

/** A markdown table, columns padded to their widest cell, as the tables in docs/ are written. */
export function markdownTable(headers, rows) {
	const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => String(row[i]).length)));
	// First column left-aligned, figures right-aligned.
	const line = (cells) => `| ${cells.map((cell, i) => (i === 0 ? pad(cell, widths[i]) : padStart(cell, widths[i]))).join(" | ")} |`;
	const rule = `|${widths.map((width, i) => (i === 0 ? ` ${"-".repeat(width)} ` : ` ${"-".repeat(width - 1)}: `)).join("|")}|`;
	return [line(headers), rule, ...rows.map(line)].join("\n");
}

/**
 * Writes the result as bench/results/latest.json and as a copy named by its date (and label). A run of one
 * phase (`only`: "startup") writes latest-startup.json and <date>-startup.json instead, leaving the full run's
 * latest.json as it was. Returns the path of the latest file, from the repository.
 */
export function saveResult(result, only) {
	const suffix = only ? `-${only}` : "";
	mkdirSync(RESULTS, { recursive: true });
	const body = `${JSON.stringify(result, null, "\t")}\n`;
	writeFileSync(path.join(RESULTS, `latest${suffix}.json`), body);
	writeFileSync(path.join(RESULTS, `${result.date.replace(/[:.]/g, "-")}${suffix}${result.label ? `-${result.label}` : ""}.json`), body);
	return `bench/results/latest${suffix}.json`;
}

/** One row per load target, with its ratios to the floors. */
function loadTable({ runs, settings }) {
	return markdownTable(
		[
			"target",
			"req/s",
			"p50 ms",
			"p99 ms",
			"errors",
			`errors at ${settings.overloadAt} conn`,
			"× SQL",
			"× platform",
			"CPU µs/req",
			"× SQL (CPU)",
			"× platform (CPU)",
		],
		runs.map((r) => [
			r.name,
			r.requestsPerSecond,
			r.p50,
			r.p99,
			r.errors,
			r.overloadErrors,
			r.vsSql,
			r.vsPlatform,
			r.cpuMicrosPerRequest,
			r.cpuVsSql,
			r.cpuVsPlatform,
		]),
	);
}

/** The probe's D1 figures for the bulk operations, at both database sizes. */
function scaleTable(scale) {
	const scaleRow = (label, key, operation) => {
		const entry = scale[label][key];
		const total = entry.total ?? entry;
		return [
			`${operation} @ ${scale[label].databaseRegistrations.toLocaleString("en")} registrations`,
			total.ms,
			total.calls,
			total.rowsRead,
			total.rowsWritten,
			entry.chunks ?? "-",
			entry.perChunkMax ? `${entry.perChunkMax.rowsRead} / ${entry.perChunkMax.rowsWritten}` : "-",
		];
	};
	return markdownTable(
		["operation @ database size", "ms", "D1 calls", "rows read", "rows written", "chunks", "max per chunk (read / written)"],
		["10k", "100k"].flatMap((label) => [
			scaleRow(label, "batch", "PUT /learner/tags 1000 × 100"),
			scaleRow(label, "update", "updateLearnerInfo, 10 000 registrations"),
			scaleRow(label, "erasure", "deleteAllLearnerData, 10 000 registrations"),
		]),
	);
}

/**
 * Startup + first request of each route group, against the floor's (SPEC §6: GET and PUT tags at most
 * `targets.tags` ×, every route at most `targets.routes` ×), and the warm requests after it.
 */
function firstRequestSection({ runs, service, floor, firstRequest }) {
	const { requests, floorRequests, targets } = firstRequest;
	const sum = (figures) => `${figures.startupCpuMs} + ${figures.firstCpuMs} = ${figures.startupPlusFirstCpuMs}`;
	const range = (figures) => figures.firstCpuRangeMs.join("–");
	return [
		`Startup + first request, CPU ms (SPEC §6: GET and PUT tags at most ${targets.tags}× the floor, every route at most ${targets.routes}×; ` +
			`medians of ${runs} alternating rounds, a fresh workerd process on a fresh copy of a seeded local D1 per request and round):`,
		"",
		markdownTable(
			["first request: status", "service: startup + first", "floor", "floor: startup + first", "× floor", "target", "met", "× floor + limiter", "warm: service", "warm: floor"],
			requests.map((row) => {
				const against = floorRequests[row.floor];
				return [
					`${row.name}: ${row.status}`,
					sum(row),
					`${row.floor} tags`,
					sum(against),
					row.serviceOverFloor ?? "-",
					`≤ ${row.target}`,
					row.met ? "yes" : "NO",
					row.serviceOverFloorWithLimiter ?? "-",
					row.warmCpuMs,
					against.warmCpuMs,
				];
			}),
		),
		"",
		`  all met: ${firstRequest.met ? "yes" : "no"}; startup: the profiles above (${service.label} ${service.cpuMs} ms, floor ${floor.cpuMs} ms)`,
		...(firstRequest.floorLimiterRequests
			? [
					`  × floor + limiter: against the same floor making the service's one Rate Limiting call per request (GET ${firstRequest.floorLimiterRequests.GET.startupPlusFirstCpuMs} ms, ` +
						`PUT ${firstRequest.floorLimiterRequests.PUT.startupPlusFirstCpuMs} ms): locally its first call starts Miniflare's simulator, which production's limiter does not`,
				]
			: []),
		`  first request CPU over the rounds: ${requests.map((row) => `${row.name} ${range(row)}`).join(", ")}; ` +
			`floor ${Object.entries(floorRequests)
				.map(([key, figures]) => `${key} ${range(figures)}`)
				.join(", ")} ms`,
		`  first request latency (median ms): ${requests.map((row) => `${row.name} ${row.firstLatencyMs}`).join(", ")}; ` +
			`floor ${Object.entries(floorRequests)
				.map(([key, figures]) => `${key} ${figures.firstLatencyMs}`)
				.join(", ")}`,
		`  database: ${firstRequest.database}`,
		`  CPU: the workerd process's (all threads, Linux schedstat, ns), before the request and after it once idle; ` +
			`warm: median of the ${firstRequest.warmRequests} requests after the first`,
		`  CPUs: ${firstRequest.cpuPinning}`,
	].join("\n");
}

/** The startup phase's figures: startup CPU, first requests and bundle size of the service and of its Hono floor. */
function startupSection(startup) {
	const { runs, service, floor, floorLimiter, serviceOverFloor, serviceOverFloorWranglerActive } = startup;
	const workers = floorLimiter ? [service, floor, floorLimiter] : [service, floor];
	const dates = service.compatibilityDate === floor.compatibilityDate ? `${service.compatibilityDate} (both)` : `service ${service.compatibilityDate}, floor ${floor.compatibilityDate}`;
	return [
		`Startup (wrangler check startup on the wrangler deploy --dry-run upload; medians of ${runs} runs each, alternating):`,
		"",
		markdownTable(
			["worker", "startup CPU ms", "samples", `wrangler "Active" ms`, "bundle bytes", "gzip bytes"],
			workers.map((worker) => [
				worker.label,
				worker.cpuMs,
				worker.busySamples,
				worker.wranglerActiveMs,
				worker.bundle.bytes,
				worker.bundle.gzipBytes,
			]),
		),
		"",
		`  service × floor, startup CPU alone: ${serviceOverFloor ?? "-"}; by wrangler's "Active": ${serviceOverFloorWranglerActive ?? "-"} (SPEC §6 counts startup + first request, below)`,
		`  startup CPU: the profile's busy samples, about 1 ms apart; "Active" also counts the wait before the first (bench/lib/startup.mjs)`,
		`  compatibility date: ${dates}`,
		"",
		...(startup.firstRequest?.requests ? [firstRequestSection(startup), ""] : []),
		markdownTable(
			["module", "bytes", "gzip bytes"],
			workers.flatMap((worker) =>
				worker.bundle.modules.map((module) => [
					`${worker === service ? "service" : worker === floor ? "floor" : "floor + limiter"}: ${module.file}`,
					module.bytes,
					module.gzipBytes,
				]),
			),
		),
	].join("\n");
}

/** The printed report of a run of the startup phase alone, saved as `savedAs`. */
export function formatStartupReport(result, savedAs) {
	const { machine } = result;
	return [
		"",
		`Learner Service startup — ${result.date}`,
		`${machine.cpus} CPUs (${machine.model}), load average before ${machine.loadAverageBefore.map((n) => n.toFixed(2)).join(" ")}`,
		"",
		startupSection(result.startup),
		"",
		`Saved ${savedAs} (${result.totalSeconds} s)`,
	].join("\n");
}

/** The move phase's figures (bench/probe POST /move). */
function moveSection(move) {
	const { dataset, writer, plan, byDatabase, perStepMax } = move;
	const count = (n) => n.toLocaleString("en");
	const db = (name, entry) => [name, entry.calls, entry.rowsRead, entry.rowsWritten];
	return [
		`Move (bench/probe /move: src/jobs/move.ts runMove one step per call, every D1 binding metered; MOVE_LINGER_SECONDS=${move.moveLingerSeconds}):`,
		`  application: ${count(dataset.registrations)} registrations, ${count(dataset.learners)} learners, ${count(dataset.learnerTags)} learner tags; ${move.from} → ${move.to}`,
		`  steps (chunks): ${move.steps}; D1 calls: ${count(move.calls)}; rows read: ${count(move.rowsRead)}; rows written: ${count(move.rowsWritten)}; total ${count(move.totalMs)} ms`,
		`  per step at most: ${perStepMax.calls} D1 calls, ${perStepMax.rowsRead} rows read, ${perStepMax.rowsWritten} rows written, ${perStepMax.ms} ms`,
		"",
		markdownTable(["database", "D1 calls", "rows read", "rows written"], [
			db("control (DB)", byDatabase.control),
			db(`source (${move.from})`, byDatabase.source),
			db(`destination (${move.to})`, byDatabase.destination),
		]),
		"",
		`  frozen → flipped (job plan frozenAt/flippedAt): ${plan.frozenToFlippedMs} ms (${plan.frozenAt} → ${plan.flippedAt})`,
		`  writer (addTags every ${writer.intervalMs} ms, retried while refused application_moving): ${writer.writes} writes, ` +
			`${writer.refusedWrites} refused at least once (${writer.refusals} refusals), all ${writer.landedOnDestination} on the destination`,
		`  longest wait of a write (first refusal → acknowledgement): ${writer.longestWaitMs} ms; ` +
			`first refusal of any write → last refused write acknowledged: ${writer.refusalSpanMs} ms; slowest write ${writer.maxLatencyMs} ms`,
		`  local D1 lock conflicts between the move's and the writer's workerd processes, retried: ${move.localLockRetries} move steps, ` +
			`${writer.localLockRetries} write attempts (a local artifact: one file per database, two processes)`,
	].join("\n");
}

/** Rows read by the bulk erasure's run at two sizes: linear growth reads ×10 for ×10 the learners, quadratic ×100. */
function bulkScalingLine([small, large]) {
	const count = (n) => n.toLocaleString("en");
	const perLearner = (entry) => (entry.rowsRead / entry.learners).toFixed(1);
	return (
		`  bulk run at two sizes: ${count(small.learners)} learners ${count(small.rowsRead)} rows read (${perLearner(small)} a learner), ` +
		`${count(large.learners)} learners ${count(large.rowsRead)} rows read (${perLearner(large)} a learner): ` +
		`×${(large.rowsRead / small.rowsRead).toFixed(1)} rows for ×${large.learners / small.learners} learners`
	);
}

/** The erasures phase's lines: a bulk erasure and a realm-wide erasure (bench/probe erasures). */
function erasuresSection(erasures) {
	const { bulk, realm } = erasures;
	const count = (n) => n.toLocaleString("en");
	return [
		"Erasures (bench/probe /erasures: the service's functions on metered bindings, jobs run one chunk at a time):",
		`  bulk: ${count(bulk.learners)} learners × ${count(bulk.registrations / bulk.learners)} registrations, one job: acceptance 1 D1 call ` +
			`(${count(bulk.acceptance.rowsRead)} rows read, ${count(bulk.acceptance.rowsWritten)} written); ${count(bulk.run.chunks)} chunks, ` +
			`${count(bulk.run.total.calls)} D1 calls, ${count(bulk.run.total.rowsRead)} rows read, ${count(bulk.run.total.rowsWritten)} written, ` +
			`${count(bulk.totalMs)} ms; per chunk at most ${count(bulk.run.perChunkMax.rowsRead)} rows read, ` +
			`${count(bulk.run.perChunkMax.rowsWritten)} written, ${bulk.run.perChunkMax.ms} ms (bounds: ${bulk.run.chunkBounds.registrations} registrations, ${bulk.run.chunkBounds.rows} rows)`,
		`  bulk job: registrationsAffected ${count(bulk.job.registrationsAffected)}, tagsRemoved ${count(bulk.job.tagsRemoved)}`,
		...(erasures.bulkScaling ? [bulkScalingLine(erasures.bulkScaling)] : []),
		`  realm-wide: a learner in ${realm.applications} applications (${realm.shards.join(", ")}), ${realm.registrationsPerApplication} registrations each, ` +
			`and one application without it: acceptance ${realm.acceptance.calls} D1 calls (${Object.entries(realm.acceptance.byDatabase)
				.filter(([, entry]) => entry.calls > 0)
				.map(([name, entry]) => `${name} ${entry.calls}`)
				.join(", ")}), ${count(realm.acceptance.rowsRead)} rows read, ${count(realm.acceptance.rowsWritten)} written; ` +
			`children: ${realm.children.chunks} chunks, ${realm.children.calls} D1 calls, ${count(realm.children.rowsRead)} rows read, ` +
			`${count(realm.children.rowsWritten)} written; the realm job's look: ${realm.look.calls} D1 calls; ${count(realm.totalMs)} ms in all`,
		`  realm job: registrationsAffected ${realm.job.registrationsAffected}, tagsRemoved ${realm.job.tagsRemoved}; ` +
			`the application without the learner spent ${realm.bystanderBudgetSpent} of its write budget (no write)`,
	].join("\n");
}

/** The printed report of a run of the erasures phase alone, saved as `savedAs`. */
export function formatErasuresReport(result, savedAs) {
	const { machine } = result;
	return [
		"",
		`Learner Service erasures — ${result.date}`,
		`${machine.cpus} CPUs (${machine.model}), load average before ${machine.loadAverageBefore.map((n) => n.toFixed(2)).join(" ")}`,
		"",
		erasuresSection(result.erasures),
		"",
		`Saved ${savedAs} (${result.totalSeconds} s)`,
	].join("\n");
}

/** The printed report of a run of the move phase alone, saved as `savedAs`. */
export function formatMoveReport(result, savedAs) {
	const { machine } = result;
	return [
		"",
		`Learner Service move — ${result.date}`,
		`${machine.cpus} CPUs (${machine.model}), load average before ${machine.loadAverageBefore.map((n) => n.toFixed(2)).join(" ")}`,
		"",
		moveSection(result.move),
		"",
		`Saved ${savedAs} (${result.totalSeconds} s)`,
	].join("\n");
}

/** D1 calls of whole GET and PUT tags requests through the service, per database (bench/probe requestCalls). */
function requestCallLines(scale) {
	return ["10k", "100k"].flatMap((label) => {
		const requests = scale[label].requests;
		if (!requests) return [];
		return Object.entries(requests).map(([name, { first, warm }]) => {
			const where = (entry) =>
				Object.entries(entry.byDatabase)
					.filter(([, figures]) => figures.calls > 0)
					.map(([database, figures]) => `${database} ${figures.calls}`)
					.join(" + ");
			return (
				`  ${name} @ ${scale[label].databaseRegistrations.toLocaleString("en")} registrations: warm ${warm.calls} (${where(warm)}), ` +
				`rows read ${warm.rowsRead}, written ${warm.rowsWritten}; first in the isolate ${first.calls} (${where(first)})`
			);
		});
	});
}

/** The printed report of a full run, saved as `savedAs`. */
export function formatReport(result, savedAs) {
	const { machine, dataset, settings, scale, hotPath, targets } = result;
	const count = (n) => n.toLocaleString("en");
	const rowsRead = (label) => {
		const { databaseRegistrations, getTags, getTagsAfterBatch } = scale[label];
		const reads = [...getTags, getTagsAfterBatch].map((entry) => `${entry.rowsRead} rows for ${entry.tags} tags`);
		const pages = (scale[label].directory ?? []).map(
			(entry) => `${entry.rowsRead} rows for a page of ${entry.learners} learners by ${entry.tags} tag(s)`,
		);
		return `  at ${count(databaseRegistrations)} registrations: ${[...reads, ...pages].join(", ")}`;
	};
	const versusLine = (label, { vsSqlFloor, cpuVsSqlFloor, vsPlatformFloor, cpuVsPlatformFloor, target }) =>
		`  ${label}: ${vsSqlFloor} (CPU ${cpuVsSqlFloor}) × raw SQL floor, target ≥ ${target}; ` +
		`${vsPlatformFloor} (CPU ${cpuVsPlatformFloor}) × platform floor`;
	const curve = settings.saturation.curve.map((step) => `${step.connections}→${step.requestsPerSecond}`).join(", ");
	const { getTagsRowsReadOverTags: rowsOverTags, writes } = targets;
	return [
		"",
		`Learner Service benchmark — ${result.date}`,
		`${machine.cpus} CPUs (${machine.model}), load average before ${machine.loadAverageBefore.map((n) => n.toFixed(2)).join(" ")}`,
		`Dataset: ${count(dataset.learners)} learners, ${count(dataset.registrations)} registrations, ` +
			`${dataset.learnerTagsEach} tags per learner, ${dataset.registrationTagsEach} per registration`,
		`Rate limit: ${settings.rateLimit}`,
		`CPUs: ${settings.cpuPinning}`,
		"Request logs: LOG_LEVEL=warn for the run (production default info)",
		`Saturation (GET tags, Basic): ${curve} req/s; measured at ${settings.measuredAt} connections`,
		`Medians of ${settings.rounds} rounds × ${settings.durationSeconds} s; reads paired with the floors in each round, writes after`,
		"",
		loadTable(result),
		"",
		"GET tags, throughput as a ratio of the floors:",
		versusLine("Basic", targets.basic),
		versusLine("Bearer", targets.bearer),
		`Errors at ${settings.overloadAt} connections (2 × saturation), all service targets: ${targets.overloadErrors}`,
		"PUT tags, throughput (CPU) as a ratio of the write floors, within each write round:",
		`  service × floor with the same SQL (tenant checks included): ${writes.putVsCheckedFloor} (CPU ${writes.cpuPutVsCheckedFloor})`,
		`  service × floor without the tenant checks: ${writes.putVsUncheckedFloor}`,
		`  cost of the checks: floor with × floor without: ${writes.checkedFloorVsUnchecked} (CPU ${writes.cpuCheckedFloorVsUnchecked})`,
		`JavaScript per GET tags request, D1 and limiter stubbed (bench/probe /hotpath, best of ${hotPath.runs} × ${hotPath.iterations}): ` +
			`floor ${hotPath.floorMicros} µs, service Basic ${hotPath.basicMicros} µs, Bearer ${hotPath.bearerMicros} µs`,
		`GET tags rows read (D1 meta) = tags + ${[...new Set([...rowsOverTags["10k"], ...rowsOverTags["100k"]])].join(" or ")}:`,
		rowsRead("10k"),
		rowsRead("100k"),
		"",
		"D1 calls per request through the service (bench/probe, app.fetch on metered bindings; first: credential not cached):",
		...requestCallLines(scale),
		"",
		"Scaling (D1 meta, bench/probe/worker.ts driving src/db and src/jobs/run.ts runJob chunk by chunk):",
		"",
		scaleTable(scale),
		"",
		...(result.move ? [moveSection(result.move), ""] : []),
		...(result.erasures ? [erasuresSection(result.erasures), ""] : []),
		...(result.startup ? [startupSection(result.startup), ""] : []),
		`Saved ${savedAs} (${result.totalSeconds} s)`,
	].join("\n");
}
