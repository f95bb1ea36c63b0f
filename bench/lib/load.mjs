// Load on the started Workers: the request shapes (targets) of the service and of each floor, one autocannon run
// with the CPU it cost, the preflight request, and the search for the saturation concurrency.
import autocannon from "autocannon";
import { LEARNERS, learnerId } from "../seed.mjs";
import { cpuNanos, focusCpus, log, request } from "./processes.mjs";

const SATURATION_STEPS = [1, 2, 4, 8, 16, 32, 64];
const SATURATION_DURATION = 2;

const randomLearner = () => learnerId(Math.floor(Math.random() * LEARNERS));

/** Distinct random learners. */
function randomLearners(count) {
	const ids = new Set();
	while (ids.size < count) ids.add(randomLearner());
	return [...ids];
}

export const json = { "Content-Type": "application/json" };

/** The load targets: one request shape each, spread over all learners (a new random learner per request). */
export function targets(auth) {
	const tagsPath = () => `/api/v2/learner/${randomLearner()}/tags`;
	const get = (pathOf, authorization) => ({
		method: "GET",
		headers: { Authorization: authorization },
		setupRequest: (req) => ({ ...req, path: pathOf() }),
	});
	return {
		"GET /learner/{id}/tags (Basic)": get(tagsPath, auth.basic),
		"GET /learner/{id}/tags (Bearer)": get(tagsPath, auth.bearer),
		"GET /registrations?learnerId= (Basic)": get(() => `/api/v2/registrations?learnerId=${randomLearner()}`, auth.basic),
		// A first page of 100 learners by one of the 50 seeded tags (each on 2 000 learners).
		"GET /learners?tags= one tag (Basic)": get(() => `/api/v2/learners?tags=tag-${Math.floor(Math.random() * 50)}`, auth.basic),
		"PUT /learner/{id}/tags (Basic)": {
			method: "PUT",
			headers: { Authorization: auth.basic, ...json },
			setupRequest: (req) => ({
				...req,
				path: tagsPath(),
				// One of 20 new tags: set union, so each learner gains at most 20 over the run.
				body: JSON.stringify({ tags: [`put-tag-${Math.floor(Math.random() * 20)}`] }),
			}),
		},
		"PUT /learner/tags batch 10×5 (Basic)": {
			method: "PUT",
			headers: { Authorization: auth.basic, ...json },
			setupRequest: (req) => ({
				...req,
				path: "/api/v2/learner/tags",
				body: JSON.stringify({
					ids: randomLearners(10),
					tags: Array.from({ length: 5 }, (_, i) => `batch-tag-${i * 4 + Math.floor(Math.random() * 4)}`),
				}),
			}),
		},
	};
}

const sqlFloorTarget = { method: "GET", setupRequest: (req) => ({ ...req, path: `/api/v2/learner/${randomLearner()}/tags` }) };
/** PUT /learner/{id}/tags, as the service's write target sends it. */
const putTagsTarget = {
	method: "PUT",
	headers: { "Content-Type": "application/json" },
	setupRequest: (req) => ({
		...req,
		path: `/api/v2/learner/${randomLearner()}/tags`,
		body: JSON.stringify({ tags: [`put-tag-${Math.floor(Math.random() * 20)}`] }),
	}),
};
/** Floors for the write rounds: PUT tags's SQL with the platform's obligations, without and with the tenant checks. */
export const WRITE_FLOORS = {
	write: {
		label: "floor: PUT tags SQL + limiter + session",
		config: "bench/floors/sql-write/wrangler.toml",
		target: putTagsTarget,
	},
	writeChecked: {
		label: "floor: PUT tags SQL + limiter + session + tenant checks",
		config: "bench/floors/sql-write/checked.wrangler.toml",
		target: putTagsTarget,
	},
};
/** Floors for the read rounds. */
export const FLOORS = {
	static: {
		label: "floor: static 200",
		config: "bench/floors/static/wrangler.toml",
		target: { method: "GET", setupRequest: (req) => ({ ...req, path: "/" }) },
	},
	sql: { label: "floor: raw SQL of GET tags", config: "bench/floors/sql/wrangler.toml", target: sqlFloorTarget },
	platform: {
		label: "floor: raw SQL + limiter + session",
		config: "bench/floors/sql-platform/wrangler.toml",
		target: sqlFloorTarget,
	},
};

/** One autocannon run; throughput counts 2xx answers only. With the server's pid, also its CPU per request. */
export async function load(server, target, { connections, duration, warmup = 1 }) {
	const { method, headers = {}, setupRequest } = target;
	const options = { url: server.origin, connections, method, headers, requests: [{ method, headers, setupRequest }] };
	focusCpus(server.pid);
	if (warmup) await autocannon({ ...options, duration: warmup });
	const cpuBefore = server.pid ? cpuNanos(server.pid) : null;
	const result = await autocannon({ ...options, duration });
	const cpu = server.pid ? cpuNanos(server.pid) - cpuBefore : null;
	const ok = Object.entries(result.statusCodeStats ?? {})
		.filter(([status]) => status.startsWith("2"))
		.reduce((sum, [, { count }]) => sum + Number(count), 0);
	const statuses = Object.fromEntries(
		Object.entries(result.statusCodeStats ?? {}).map(([status, { count }]) => [status, Number(count)]),
	);
	const answered = Object.values(statuses).reduce((sum, count) => sum + count, 0);
	return {
		connections,
		requestsPerSecond: Math.round(ok / result.duration),
		cpuMicrosPerRequest: cpu === null || answered === 0 ? null : Math.round(cpu / 1000 / answered),
		p50: result.latency.p50,
		p99: result.latency.p99,
		errors: result.errors + result.timeouts + result.non2xx,
		statuses,
		total: result.requests.total,
	};
}

/** Checks one request of each target before loading it: a misconfigured run fails here, not as a 0 req/s row. */
export async function preflight(origin, name, target) {
	const req = target.setupRequest({ method: target.method, headers: target.headers ?? {}, path: "/" });
	const response = await request(origin, req.method, req.path, { headers: req.headers, body: req.body });
	if (response.status >= 300) throw new Error(`${name}: preflight answered ${response.status} ${response.text}`);
}

/**
 * Doubles the connections until throughput stops rising (two doublings in a row without a 5 % gain), then
 * takes the lowest concurrency within 5 % of the best seen: where the plateau starts.
 */
export async function findSaturation(server, target) {
	const curve = [];
	let best = 0;
	let stalls = 0;
	for (const connections of SATURATION_STEPS) {
		const run = await load(server, target, { connections, duration: SATURATION_DURATION });
		curve.push({ connections, requestsPerSecond: run.requestsPerSecond, p50: run.p50, p99: run.p99 });
		log(`saturation: ${connections} connections → ${run.requestsPerSecond} req/s`);
		stalls = run.requestsPerSecond < best * 1.05 ? stalls + 1 : 0;
		best = Math.max(best, run.requestsPerSecond);
		if (stalls === 2) break;
	}
	const plateau = curve.find((step) => step.requestsPerSecond >= best * 0.95);
	return { connections: plateau.connections, curve };
}
