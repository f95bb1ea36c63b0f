import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { shardDatabase } from "../../src/shards";
import { apiRequest, fetchWithBindings } from "../support/client";
import { MANAGEMENT, appOnShard } from "../support/fixtures";
import { type SeedJob, insertJobs, seedJobId } from "../support/jobs-seed";
import { type RecordedStatement, RecordingDb, recordingDatabases } from "../support/recording";
import { SHARDS, insertRegistrations } from "../support/seed";

// The job lists and usage read through indexes only (EXPLAIN QUERY PLAN on the database each statement ran on), and
// what they read (D1's rows_read) follows the answer, not the database: the same before and after the databases
// grow by thousands of jobs and registrations around the page.

const SHARD = SHARDS.find((shard) => shard.region === "default")?.name ?? "";

interface Placed extends RecordedStatement {
	database: string;
}

/** Records every D1 call a request makes, per database. */
class Recorder {
	readonly #recorders = new Map(["DB", ...SHARDS.map((shard) => shard.name)].map((name) => [name, new RecordingDb()] as const));

	bindings(): Record<string, D1Database> {
		return Object.fromEntries([...this.#recorders].map(([name, recorder]) => [name, recordingDatabases(recorder)[name] as D1Database]));
	}

	get statements(): Placed[] {
		return [...this.#recorders].flatMap(([database, recorder]) => recorder.statements.map((statement) => ({ ...statement, database })));
	}

	get calls(): number {
		return [...this.#recorders.values()].reduce((sum, recorder) => sum + recorder.calls, 0);
	}
}

const databaseNamed = (name: string) => (name === "DB" ? env.DB : shardDatabase(env, name));

/** The plan of a statement, with the values it ran with, on its database. */
async function planOf(statement: Placed): Promise<string[]> {
	const { results } = await databaseNamed(statement.database)
		.prepare(`EXPLAIN QUERY PLAN ${statement.sql}`)
		.bind(...statement.params)
		.all<{ detail: string }>();
	return results.map((row) => row.detail);
}

/** The one table read whole on purpose: the applications (one small row each; usage lists them all). */
const WHOLE = /^SCAN applications\b/;

/** Runs a GET through recording bindings; answers its body, its statements and their plans, and what it read. */
async function measured(path: string, auth: string) {
	const recorder = new Recorder();
	const response = await fetchWithBindings(apiRequest("GET", path, { auth }), recorder.bindings());
	expect(response.status, await response.clone().text()).toBe(200);
	const body = (await response.json()) as { jobs?: unknown[] };
	// Authentication's own reads (a cold credential) are not the listing's.
	const statements = recorder.statements.filter((statement) => !/FROM credentials|FROM console_sign_outs/.test(statement.sql));
	const plans = await Promise.all(statements.map(planOf));
	for (const [i, plan] of plans.entries()) {
		const sql = statements[i]?.sql ?? "";
		expect(plan.filter((step) => /^SCAN /.test(step) && !/json_each|VIRTUAL TABLE/.test(step) && !WHOLE.test(step)), sql).toEqual([]);
		// Pages come out of an index in order: no sort of everything that matched (the applications, read whole, are
		// put in creation order).
		if (!plan.some((step) => WHOLE.test(step))) expect(plan.filter((step) => step.includes("TEMP B-TREE FOR ORDER BY")), sql).toEqual([]);
	}
	return {
		body,
		calls: recorder.calls,
		rowsRead: statements.reduce((sum, statement) => sum + (statement.meta?.rows_read ?? 0), 0),
		plans: plans.flat(),
	};
}

const at = (year: number, i: number) => new Date(Date.UTC(year, 0, 1) + i * 1000).toISOString();

function jobs(appId: string, count: number, year: number, shape: (i: number) => Partial<SeedJob> = () => ({})): SeedJob[] {
	return Array.from({ length: count }, (_, i) => ({
		id: seedJobId(appId),
		appId,
		type: i % 4 === 0 ? "deleteAllLearnerData" : "updateLearnerInfo",
		status: i % 5 === 0 ? "failed" : "completed",
		createdAt: at(year, i),
		...shape(i),
	}));
}

describe("job lists and usage: index-served, rows read flat in the database's size", () => {
	it("GET /jobs and GET /appManagement/jobs read about one page, whatever the databases hold", async () => {
		const app = await appOnShard(SHARD);
		const neighbour = await appOnShard(SHARD);
		const shard = shardDatabase(env, SHARD);
		// The page: 150 of the application's newest jobs (some unfinished), and 30 realm jobs.
		await insertJobs(shard, jobs(app.appId, 150, 2080, (i) => (i % 50 === 7 ? { status: "queued" } : {})));
		await insertJobs(env.DB, jobs("", 30, 2080, () => ({ type: "deleteRealmLearnerData", payload: "{}" })));
		const paths = [
			"/jobs",
			"/jobs?status=completed",
			"/jobs?type=updateLearnerInfo",
			"/jobs?status=queued&type=updateLearnerInfo",
			"/jobs?since=2080-01-01T00:01:00Z",
		];
		const realmPaths = [`/appManagement/jobs?since=2080-01-01T00:00:00Z`, `/appManagement/jobs?appId=${app.appId}&status=completed`];
		const before = await Promise.all([...paths.map((path) => measured(path, app.auth)), ...realmPaths.map((path) => measured(path, MANAGEMENT))]);

		// Grow the shard and the control database around the page: older jobs of the application, another
		// application's, realm jobs, and a bulk erasure's children; and registrations.
		await insertJobs(shard, jobs(app.appId, 4000, 2070));
		await insertJobs(shard, jobs(neighbour.appId, 4000, 2081));
		await insertJobs(shard, jobs(app.appId, 1000, 2082, () => ({ parentId: seedJobId(app.appId), type: "deleteAllLearnerData" })));
		await insertJobs(env.DB, jobs("", 1000, 2070, () => ({ type: "deleteRealmLearnerData", payload: "{}" })));
		await insertRegistrations(
			neighbour.appId,
			Array.from({ length: 5000 }, (_, i) => ({ id: `r${i}`, courseId: "c", learnerId: `l${i % 700}` })),
		);
		const after = await Promise.all([...paths.map((path) => measured(path, app.auth)), ...realmPaths.map((path) => measured(path, MANAGEMENT))]);

		for (const [i, path] of [...paths, ...realmPaths].entries()) {
			const [small, big] = [before[i], after[i]];
			if (!small || !big) throw new Error("not measured");
			console.log(
				`rows_read GET ${path}: ${big.rowsRead} for a page of ${big.body.jobs?.length} jobs in ${big.calls} D1 calls (before growing: ${small.rowsRead} for ${small.body.jobs?.length})`,
			);
			// The page itself is the same, and so is what it read (within a few index entries).
			expect(big.body.jobs?.length, path).toBe(small.body.jobs?.length);
			expect(Math.abs(big.rowsRead - small.rowsRead), path).toBeLessThanOrEqual(4);
			// About as many rows as it returns: each job's index entry and row, and the one past the page.
			expect(big.rowsRead, path).toBeLessThanOrEqual(2 * ((big.body.jobs?.length ?? 0) + 2) * (path.startsWith("/appManagement") ? SHARDS.length + 1 : 1));
		}
		expect(after[0]?.plans).toContain("SEARCH jobs USING INDEX jobs_listed_by_app (app_id=?)");
	}, 60_000);

	it("usage reads counters and the last 24 hours' jobs, not the registrations", async () => {
		const app = await appOnShard(SHARD);
		const recent = (count: number) =>
			jobs(app.appId, count, 2000, () => ({ createdAt: new Date(Date.now() - 60_000).toISOString(), completedAt: new Date(Date.now() - 30_000).toISOString() }));
		await insertJobs(shardDatabase(env, SHARD), recent(20));
		const paths = [`/appManagement/applications/${app.appId}/usage`, "/appManagement/usage"];
		const before = await Promise.all(paths.map((path) => measured(path, MANAGEMENT)));
		await insertRegistrations(
			app.appId,
			Array.from({ length: 5000 }, (_, i) => ({ id: `u${i}`, courseId: "c", learnerId: `l${i % 900}` })),
		);
		// Jobs finished long ago are not read either.
		await insertJobs(shardDatabase(env, SHARD), jobs(app.appId, 3000, 2001));
		const after = await Promise.all(paths.map((path) => measured(path, MANAGEMENT)));
		for (const [i, path] of paths.entries()) {
			console.log(`rows_read GET ${path}: ${after[i]?.rowsRead} in ${after[i]?.calls} D1 calls (before growing: ${before[i]?.rowsRead})`);
			expect(after[i]?.rowsRead, path).toBe(before[i]?.rowsRead);
		}
		expect(after[0]?.calls).toBe(3);
		expect(after[1]?.calls).toBe(2 + SHARDS.length);
	}, 60_000);
});
