import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { shardDatabase } from "../../src/shards";
import { call } from "../support/client";
import { expectMessage, getJob, jobIdOf, waitForJob } from "../support/expect";
import { MANAGEMENT, appOnShard, createApp, enrol, mintToken, realmUser, uniqueValue } from "../support/fixtures";
import { type SeedJob, insertJobs, seedJobId } from "../support/jobs-seed";
import { SHARDS, shardOf } from "../support/seed";

// Job lists (SPEC §10; not in SCORM Cloud): GET /jobs for the calling application, GET /appManagement/jobs for the
// realm, newest first, 100 a page, with signed `more` tokens carrying the filters.

interface JobList {
	jobs: { id: string; type: string; status: string; createdDate: string; applicationId?: string }[];
	more?: string;
}

async function list(path: string, auth: string): Promise<JobList> {
	const response = await call("GET", path, { auth });
	expect(response.status, await response.clone().text()).toBe(200);
	return (await response.json()) as JobList;
}

/** Every page of a listing, following `more`; the jobs' ids in the order served. */
async function everyPage(path: string, auth: string): Promise<{ ids: string[]; pages: number }> {
	const ids: string[] = [];
	let pages = 0;
	let next: string | undefined = path;
	while (next) {
		const page = await list(next, auth);
		pages++;
		expect(page.jobs.length).toBeLessThanOrEqual(100);
		ids.push(...page.jobs.map((job) => job.id));
		next = page.more ? `${path.split("?")[0]}?more=${encodeURIComponent(page.more)}` : undefined;
	}
	return { ids, pages };
}

/** A time in a year no real job has, so a `since` keeps only the jobs a test seeded (storage is shared in a file). */
const FUTURE = (year: number, second: number) => new Date(Date.UTC(year, 0, 1, 0, 0, second)).toISOString();

describe("GET /jobs", () => {
	it("lists the application's jobs newest first, each as GET /jobs/{jobId} shows it", async () => {
		const app = await createApp();
		const learner = uniqueValue("learner");
		await enrol(app, learner);
		const ids: string[] = [];
		for (const email of ["a@example.com", "b@example.com"]) {
			const response = await call("POST", `/learner/${encodeURIComponent(learner)}/updateInfo`, { auth: app.auth, body: { id: learner, email } });
			ids.push(jobIdOf(response, app.appId));
			await waitForJob(app.auth, ids.at(-1) ?? "");
		}
		const erasure = await call("POST", `/learner/${encodeURIComponent(learner)}/delete-information?userEmail=${encodeURIComponent(await realmUser("admin"))}`, {
			auth: app.auth,
		});
		ids.push(jobIdOf(erasure, app.appId));
		await waitForJob(app.auth, ids.at(-1) ?? "");

		const { jobs, more } = await list("/jobs", app.auth);
		expect(more).toBeUndefined();
		expect(jobs.map((job) => job.id)).toEqual([...ids].reverse());
		for (const job of jobs) expect(job).toEqual(await getJob(app.auth, job.id));
		expect(jobs[0]).toMatchObject({ type: "deleteAllLearnerData", status: "completed", applicationId: app.appId, learnerHash: expect.any(String) });
	}, 30_000);

	it("keeps only the jobs of the status, type or time asked for", async () => {
		const app = await createApp();
		const db = await shardOf(app.appId);
		const seeded: SeedJob[] = [
			{ id: seedJobId(app.appId), appId: app.appId, type: "updateLearnerInfo", status: "completed", createdAt: FUTURE(2091, 1) },
			{ id: seedJobId(app.appId), appId: app.appId, type: "deleteAllLearnerData", status: "queued", createdAt: FUTURE(2091, 2) },
			{ id: seedJobId(app.appId), appId: app.appId, type: "updateLearnerInfo", status: "failed", createdAt: FUTURE(2091, 3) },
			{ id: seedJobId(app.appId), appId: app.appId, type: "deleteAllLearnerData", status: "completed", createdAt: FUTURE(2092, 1) },
		];
		await insertJobs(db, seeded);
		const ids = (query: string) => list(`/jobs?${query}`, app.auth).then((page) => page.jobs.map((job) => job.id));
		const [first, second, third, fourth] = seeded.map((job) => job.id);
		expect(await ids("status=completed")).toEqual([fourth, first]);
		expect(await ids("type=deleteAllLearnerData")).toEqual([fourth, second]);
		expect(await ids("status=completed&type=updateLearnerInfo")).toEqual([first]);
		expect(await ids(`since=${encodeURIComponent(FUTURE(2091, 2))}`)).toEqual([fourth, third, second]);
		expect(await ids("status=running")).toEqual([]);
	});

	it("pages through 100 jobs at a time, none missed or repeated, the filters kept by the token", async () => {
		const app = await createApp();
		// 250 updates, in groups of equal acceptance times (the id orders them then), and 30 erasures among them.
		const seeded: SeedJob[] = Array.from({ length: 280 }, (_, i) => ({
			id: seedJobId(app.appId),
			appId: app.appId,
			type: i % 10 === 3 ? "deleteAllLearnerData" : "updateLearnerInfo",
			status: "completed",
			createdAt: FUTURE(2093, Math.floor(i / 4)),
		}));
		await insertJobs(await shardOf(app.appId), seeded);
		const newestFirst = (jobs: SeedJob[]) =>
			[...jobs].sort((a, b) => (a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1)).map((job) => job.id);
		const all = await everyPage("/jobs?type=updateLearnerInfo", app.auth);
		expect(all.pages).toBe(3);
		expect(all.ids).toEqual(newestFirst(seeded.filter((job) => job.type === "updateLearnerInfo")));
		// The filters travel in the token: those sent beside it are ignored.
		const first = await list("/jobs?type=deleteAllLearnerData&status=completed&since=2093-01-01T00:00:00Z", app.auth);
		expect(first.jobs).toHaveLength(28);
		expect(first.more).toBeUndefined();
		const page1 = await list("/jobs?status=completed", app.auth);
		const page2 = await list(`/jobs?status=failed&more=${encodeURIComponent(page1.more ?? "")}`, app.auth);
		expect(page2.jobs.every((job) => job.status === "completed")).toBe(true);
		expect(page2.jobs[0]?.id).toBe(newestFirst(seeded)[100]);
	});

	it("leaves a bulk erasure's children out: the bulk job stands for them", async () => {
		const app = await createApp();
		const [one, two] = [uniqueValue("learner"), uniqueValue("learner")];
		await enrol(app, one);
		await enrol(app, two);
		const response = await call("POST", `/learners/delete-information?userEmail=${encodeURIComponent(await realmUser("admin"))}`, {
			auth: app.auth,
			body: { ids: [one, two] },
		});
		const bulk = jobIdOf(response, app.appId);
		await waitForJob(app.auth, bulk);
		const { jobs } = await list("/jobs", app.auth);
		expect(jobs.map((job) => [job.id, job.type])).toEqual([[bulk, "deleteLearnersData"]]);
	}, 20_000);

	it("shows only the caller's own jobs, and its token is refused to another application", async () => {
		const [mine, theirs] = [await createApp(), await createApp()];
		await insertJobs(await shardOf(theirs.appId), [
			{ id: seedJobId(theirs.appId), appId: theirs.appId, type: "updateLearnerInfo", status: "completed", createdAt: FUTURE(2094, 1) },
		]);
		await insertJobs(
			await shardOf(mine.appId),
			Array.from({ length: 101 }, (_, i) => ({
				id: seedJobId(mine.appId),
				appId: mine.appId,
				type: "updateLearnerInfo" as const,
				status: "completed" as const,
				createdAt: FUTURE(2094, i),
			})),
		);
		expect((await list("/jobs", theirs.auth)).jobs).toHaveLength(1);
		const { more } = await list("/jobs", mine.auth);
		expect(more).toBeDefined();
		const refused = await call("GET", `/jobs?more=${encodeURIComponent(more ?? "")}`, { auth: theirs.auth });
		expect(await expectMessage(refused, 400)).toBe("more is not a paging token issued by this API for this application");
	});

	it("answers 400 naming a bad status, type or since, and an altered token", async () => {
		const app = await createApp();
		expect(await expectMessage(await call("GET", "/jobs?status=done", { auth: app.auth }), 400)).toContain("status must be one of queued, running, completed, failed");
		expect(await expectMessage(await call("GET", "/jobs?type=move", { auth: app.auth }), 400)).toContain("type must be one of");
		expect(await expectMessage(await call("GET", "/jobs?since=yesterday", { auth: app.auth }), 400)).toContain("since must be an ISO-8601 date-time");
		expect(await expectMessage(await call("GET", "/jobs?more=abc.def", { auth: app.auth }), 400)).toBe(
			"more is not a paging token issued by this API for this application",
		);
	});

	it("needs read:learner", async () => {
		const app = await createApp();
		expect((await call("GET", "/jobs", { auth: await mintToken(app, "read:learner") })).status).toBe(200);
		expect(await expectMessage(await call("GET", "/jobs", { auth: await mintToken(app, "read:registration") }), 403)).toContain("read:learner");
	});
});

describe("GET /appManagement/jobs", () => {
	it("merges every shard's jobs and the realm jobs, newest first, across pages: none missed or repeated", async () => {
		// Apps on each shard, and realm jobs in the control database, their times interleaved.
		const apps = await Promise.all(SHARDS.map((shard) => createApp(`jobs-${shard.name}`)));
		const byShard = await Promise.all(apps.map((app) => shardOf(app.appId)));
		const seeded: { db: D1Database; job: SeedJob }[] = [];
		for (let i = 0; i < 330; i++) {
			const which = i % 4;
			const createdAt = FUTURE(2095, Math.floor(i / 3));
			if (which === 3) {
				seeded.push({
					db: env.DB,
					job: {
						id: crypto.randomUUID(),
						appId: i % 8 === 3 ? "" : (apps[0]?.appId ?? ""),
						type: i % 8 === 3 ? "deleteRealmLearnerData" : "moveApplication",
						status: "completed",
						createdAt,
						payload: i % 8 === 3 ? '{"suppress":false,"holders":[]}' : '{"from":"SHARD_1","to":"SHARD_2","toRegion":"default","phase":"cleanup","table":0,"after":null,"rounds":0}',
					},
				});
			} else {
				const app = apps[which];
				const db = byShard[which];
				if (!app || !db) throw new Error("no app");
				seeded.push({ db, job: { id: seedJobId(app.appId), appId: app.appId, type: "updateLearnerInfo", status: "completed", createdAt } });
			}
		}
		for (const db of new Set(seeded.map((entry) => entry.db))) {
			await insertJobs(
				db,
				seeded.filter((entry) => entry.db === db).map((entry) => entry.job),
			);
		}
		const expected = seeded
			.map((entry) => entry.job)
			.sort((a, b) => (a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1))
			.map((job) => job.id);
		const since = encodeURIComponent(FUTURE(2095, 0));
		const all = await everyPage(`/appManagement/jobs?since=${since}`, MANAGEMENT);
		expect(all.pages).toBe(4);
		expect(all.ids).toEqual(expected);

		// One application's: its shard's jobs and its moves.
		const first = apps[0]?.appId ?? "";
		const own = await everyPage(`/appManagement/jobs?appId=${first}&since=${since}`, MANAGEMENT);
		const ownExpected = seeded.filter((entry) => entry.job.appId === first).map((entry) => entry.job.id);
		expect(new Set(own.ids)).toEqual(new Set(ownExpected));
		expect(own.ids).toEqual(expected.filter((id) => ownExpected.includes(id)));
	});

	it("shows a move's shards and phase, and a realm-wide erasure without an application", async () => {
		const app = await createApp();
		const move = {
			id: crypto.randomUUID(),
			appId: app.appId,
			type: "moveApplication" as const,
			status: "running" as const,
			createdAt: FUTURE(2096, 1),
			payload: JSON.stringify({ from: "SHARD_1", to: "SHARD_2", toRegion: "default", phase: "catchUp", table: 0, after: null, rounds: 2 }),
		};
		const realm = {
			id: crypto.randomUUID(),
			appId: "",
			type: "deleteRealmLearnerData" as const,
			status: "queued" as const,
			createdAt: FUTURE(2096, 2),
			requestedBy: "dpo@example.com",
			learnerHash: "ab".repeat(32),
			payload: '{"suppress":false,"holders":[]}',
		};
		await insertJobs(env.DB, [move, realm]);
		const { jobs } = await list(`/appManagement/jobs?since=${encodeURIComponent(FUTURE(2096, 0))}`, MANAGEMENT);
		expect(jobs).toEqual([
			{ id: realm.id, type: "deleteRealmLearnerData", status: "queued", createdDate: realm.createdAt, registrationsAffected: 0, tagsRemoved: 0, learnerHash: realm.learnerHash },
			{ id: move.id, type: "moveApplication", status: "running", createdDate: move.createdAt, registrationsAffected: 0, applicationId: app.appId, move: { from: "SHARD_1", to: "SHARD_2", phase: "catchingUp" } },
		]);
	});

	it("lists a job found on two shards (a move copying it) once: the copy where its application is placed", async () => {
		// Placed on the second shard, its copy on the first: the first database's copy is met first in the merge.
		const app = await appOnShard("SHARD_2");
		const placed = shardDatabase(env, "SHARD_2");
		const other = shardDatabase(env, "SHARD_1");
		const id = seedJobId(app.appId);
		const createdAt = FUTURE(2097, 1);
		await insertJobs(placed, [{ id, appId: app.appId, type: "updateLearnerInfo", status: "completed", createdAt }]);
		await insertJobs(other, [{ id, appId: app.appId, type: "updateLearnerInfo", status: "running", createdAt }]);
		const { jobs } = await list(`/appManagement/jobs?since=${encodeURIComponent(FUTURE(2097, 0))}`, MANAGEMENT);
		expect(jobs.map((job) => [job.id, job.status])).toEqual([[id, "completed"]]);
	});

	it("answers 404 for an unknown application, and 400 for a token of the application listing", async () => {
		expect(await expectMessage(await call("GET", "/appManagement/jobs?appId=NOSUCHAPP1", { auth: MANAGEMENT }), 404)).toBe(
			"Application [NOSUCHAPP1] was not found",
		);
		const app = await createApp();
		await insertJobs(
			await shardOf(app.appId),
			Array.from({ length: 101 }, (_, i) => ({
				id: seedJobId(app.appId),
				appId: app.appId,
				type: "updateLearnerInfo" as const,
				status: "completed" as const,
				createdAt: FUTURE(2098, i),
			})),
		);
		const { more } = await list("/jobs", app.auth);
		const refused = await call("GET", `/appManagement/jobs?more=${encodeURIComponent(more ?? "")}`, { auth: MANAGEMENT });
		expect(await expectMessage(refused, 400)).toBe("more is not a paging token issued by this API for this application");
	});

	it("needs the management credentials", async () => {
		const app = await createApp();
		expect((await call("GET", "/appManagement/jobs", { auth: app.auth })).status).toBe(401);
	});
});
