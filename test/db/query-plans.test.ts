import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { findPlacement } from "../../src/db/applications";
import { shardDatabase } from "../../src/shards";
import { apiRequest, fetchWithBindings } from "../support/client";
import { appOnShard, createApp, MANAGEMENT, mintToken, type TestApp } from "../support/fixtures";
import { type RecordedStatement, RecordingDb, recordingDatabases } from "../support/recording";
import { SHARDS, insertRegistrations, seedApplication, seedRegistrations, shardOf, tagLearners } from "../support/seed";

// Query plans are read on the database each statement ran on: the control database (credentials, applications)
// or the application's shard (its data). An application's shard is the database that grows with the data, so
// the rows-read checks grow it with other applications placed on that same shard.

// Every table these routes touch. The four that grow with the data (registrations and tags) are the point;
// the others are checked too, since a scan of any of them would grow with the realm.
const TABLES = [
	"registrations",
	"learner_tags",
	"registration_tags",
	"learner_tag_counts",
	"credentials",
	"applications",
	"jobs",
	"app_storage",
	"learner_activity",
	"audit_log",
	"retention_policies",
	"audit_outbox",
] as const;
const TABLE_REFERENCE = new RegExp(`\\b(${TABLES.join("|")})\\b(?:\\s+(?:AS\\s+)?([a-z_][a-z0-9_]*))?`, "g");

/** The names a statement uses for the tables: the table names and their (lower-case) aliases. */
function tableNames(sql: string): Set<string> {
	const names = new Set<string>();
	for (const [, table, alias] of sql.matchAll(TABLE_REFERENCE)) {
		if (table) names.add(table);
		if (alias) names.add(alias);
	}
	return names;
}

interface PlanStep {
	id: number;
	parent: number;
	detail: string;
}

/** A statement a request ran, with the binding of the database it ran on ("DB", the control database, or a shard). */
interface PlacedStatement extends RecordedStatement {
	database: string;
}

/** The D1 database a binding names. */
const databaseNamed = (name: string): D1Database => (name === "DB" ? env.DB : shardDatabase(env, name));

/**
 * Records every D1 call a request makes on any database of the realm, one recorder per binding, so that each
 * statement is known with the database it ran on. `calls` and `statements` cover them all.
 */
class RealmRecorder {
	readonly #recorders = new Map(["DB", ...SHARDS.map((shard) => shard.name)].map((name) => [name, new RecordingDb()] as const));

	/** The Worker's D1 bindings, each recording into its own recorder. */
	bindings(): Record<string, D1Database> {
		return Object.fromEntries(
			[...this.#recorders].map(([name, recorder]) => {
				const binding = recordingDatabases(recorder)[name];
				if (!binding) throw new Error(`no binding ${name}`);
				return [name, binding];
			}),
		);
	}

	get statements(): PlacedStatement[] {
		return [...this.#recorders].flatMap(([database, recorder]) => recorder.statements.map((statement) => ({ ...statement, database })));
	}

	get calls(): number {
		return [...this.#recorders.values()].reduce((total, recorder) => total + recorder.calls, 0);
	}
}

/** Calls the Worker with every D1 binding recording into `recorder`. */
function callRecorded(recorder: RealmRecorder, method: string, path: string, options: { auth: string; body?: unknown }): Promise<Response> {
	return fetchWithBindings(apiRequest(method, path, options), recorder.bindings());
}

/** The statement's query plan (EXPLAIN QUERY PLAN with the values it ran with), on the database it ran on. */
async function plan(statement: PlacedStatement): Promise<PlanStep[]> {
	const { results } = await databaseNamed(statement.database)
		.prepare(`EXPLAIN QUERY PLAN ${statement.sql}`)
		.bind(...statement.params)
		.all<PlanStep>();
	return results;
}

/**
 * The plan steps that scan one of the tables in full (table or index). Scans of json_each (virtual tables),
 * of constant rows and of subquery results are not table scans and are allowed.
 */
async function tableScans(statement: PlacedStatement): Promise<string[]> {
	const names = tableNames(statement.sql);
	return (await plan(statement))
		.map((step) => step.detail)
		.filter((detail) => {
			const scanned = /^SCAN (\S+)/.exec(detail)?.[1];
			return scanned !== undefined && names.has(scanned);
		});
}

/** The binding of the shard holding the application's data. */
async function shardNameOf(appId: string): Promise<string> {
	const placement = await findPlacement(env.DB, appId);
	if (!placement) throw new Error(`no application ${appId}`);
	return placement.shard;
}

/**
 * Asserts that the request ran statements, each on the control database or on the application's shard, and that
 * none of them scans a table there.
 */
async function expectIndexedOnly(recorder: RealmRecorder, appId: string): Promise<void> {
	expect(recorder.statements.length).toBeGreaterThan(0);
	const databases = ["DB", await shardNameOf(appId)];
	for (const statement of recorder.statements) {
		expect(databases, statement.sql).toContain(statement.database);
		expect(await tableScans(statement), statement.sql).toEqual([]);
	}
}

/** Runs one request through a recording D1 binding and checks every statement it ran. */
async function expectRequestIndexed(
	app: TestApp,
	method: string,
	path: string,
	expectedStatus: number,
	body?: unknown,
): Promise<RealmRecorder & { body: string }> {
	const recorder = new RealmRecorder();
	const response = await callRecorded(recorder, method, path, { auth: app.auth, body });
	expect(response.status).toBe(expectedStatus);
	const text = await response.text();
	await expectIndexedOnly(recorder, app.appId);
	return Object.assign(recorder, { body: text });
}

/** An application with learner "ada" on registration "reg-1" (tagged) and a second learner, plus noise. */
async function populatedApp(app?: TestApp): Promise<TestApp> {
	app ??= await createApp();
	const created = await callRecorded(new RealmRecorder(), "POST", "/registrations", {
		auth: app.auth,
		body: {
			courseId: "course-1",
			registrationId: "reg-1",
			learner: { id: "ada", email: "ada@example.com" },
			learnerTags: ["l1", "l2"],
			registrationTags: ["r1", "r2"],
		},
	});
	expect(created.status).toBe(204);
	await seedRegistrations(app.appId, "noise", 50);
	return app;
}

const encode = encodeURIComponent;

/** A new application on the same shard as `app`: its rows grow the database `app` reads. */
async function appBeside(app: TestApp): Promise<string> {
	return seedApplication({ shard: await shardNameOf(app.appId) });
}

describe("the query-plan check", () => {
	// Plans of the data tables are read on a shard, where they live.
	const shard = SHARDS[0]?.name ?? "";

	it("catches a full scan of a table, by name and by alias, on a shard", async () => {
		const statement = (sql: string): PlacedStatement => ({ sql, params: ["x"], database: shard });
		expect(await tableScans(statement("SELECT tag FROM learner_tags WHERE tag = ?1"))).toEqual([
			expect.stringMatching(/^SCAN learner_tags/),
		]);
		expect(await tableScans(statement("SELECT r.pk FROM registrations r WHERE r.learner_email = ?1"))).toEqual([
			expect.stringMatching(/^SCAN r/),
		]);
	});

	it("catches a full scan of a control table on the control database", async () => {
		const statement: PlacedStatement = { sql: "SELECT id FROM credentials WHERE name = ?1", params: ["x"], database: "DB" };
		expect(await tableScans(statement)).toEqual([expect.stringMatching(/^SCAN credentials/)]);
	});

	it("allows scans of json_each", async () => {
		const statement = { sql: "SELECT value FROM json_each(?1) j", params: ['["a"]'], database: shard };
		expect(await tableScans(statement)).toEqual([]);
		expect((await plan(statement)).map((step) => step.detail)).toEqual([expect.stringMatching(/^SCAN j VIRTUAL TABLE/)]);
	});
});

describe("authentication uses indexes only", () => {
	it("looks up a Basic credential and a token's credential on a cold cache", async () => {
		const app = await createApp();
		const basic = await expectRequestIndexed(app, "GET", "/learner/nobody/tags", 404);
		expect(basic.statements.map((statement) => statement.sql).join("\n")).toContain("FROM credentials");
		const token = await mintToken(app, "read:learner");
		const recorder = new RealmRecorder();
		const response = await callRecorded(recorder, "GET", "/learner/nobody/tags", { auth: token });
		expect(response.status).toBe(404);
		expect(recorder.statements.map((statement) => statement.sql).join("\n")).toContain("FROM credentials");
		await expectIndexedOnly(recorder, app.appId);
	});
});

describe("learner routes use indexes only", () => {
	it("GET /learner/:learnerId/tags, for a learner and for an unknown one", async () => {
		const app = await populatedApp();
		await expectRequestIndexed(app, "GET", "/learner/ada/tags", 200);
		await expectRequestIndexed(app, "GET", "/learner/nobody/tags", 404);
	});

	it("PUT /learner/:learnerId/tags, adding, for an unknown learner, and past the tag limit", async () => {
		const app = await populatedApp();
		await expectRequestIndexed(app, "PUT", "/learner/ada/tags", 204, { tags: ["l2", "l3"] });
		await expectRequestIndexed(app, "PUT", "/learner/nobody/tags", 404, { tags: ["x"] });
		await (await shardOf(app.appId)).prepare("UPDATE learner_tag_counts SET tag_count = 1000 WHERE app_id = ?1 AND learner_id = 'ada'")
			.bind(app.appId)
			.run();
		const overLimit = await expectRequestIndexed(app, "PUT", "/learner/ada/tags", 400, { tags: ["new"] });
		// The failed batch (guard, row count, tag count, insert, the learner's last write, unknown ids), then the read
		// naming the learners over the limit.
		expect(overLimit.statements.length).toBe(7);
	});

	it("DELETE /learner/:learnerId/tags, for a learner and for an unknown one", async () => {
		const app = await populatedApp();
		await expectRequestIndexed(app, "DELETE", "/learner/ada/tags", 204, { tags: ["l1", "none"] });
		await expectRequestIndexed(app, "DELETE", "/learner/nobody/tags", 404, { tags: ["x"] });
	});

	it("PUT /learner/tags, all known and with an unknown id", async () => {
		const app = await populatedApp();
		await expectRequestIndexed(app, "PUT", "/learner/tags", 204, { ids: ["ada", "noise-learner-3"], tags: ["b1"] });
		await expectRequestIndexed(app, "PUT", "/learner/tags", 404, { ids: ["ada", "ghost"], tags: ["b2"] });
	});
});

describe("the learner directory uses indexes only, one D1 call a page", () => {
	it.each([
		["every learner", ""],
		["one tag", "tags=l1"],
		["one tag with tagMatch=all", "tags=l1&tagMatch=all"],
		["any of several tags", "tags=l1,l2,none"],
		["all of several tags", "tags=l1,l2&tagMatch=all"],
	])("GET /learners with %s, and its next page", async (_name, query) => {
		const app = await populatedApp();
		const learners = await seedRegistrations(app.appId, "directory", 150);
		await tagLearners(app.appId, learners, ["l1", "l2"]);
		// Warm the isolate's credential cache: a page is then one call.
		await callRecorded(new RealmRecorder(), "GET", `/learners?${query}`, { auth: app.auth });
		const first = await expectRequestIndexed(app, "GET", `/learners?${query}`, 200);
		expect(first.calls).toBe(1);
		const { more } = JSON.parse(first.body) as { more?: string };
		expect(more).toEqual(expect.any(String));
		const next = await expectRequestIndexed(app, "GET", `/learners?more=${encode(more ?? "")}`, 200);
		expect(next.calls).toBe(1);
	});
});

describe("registration routes use indexes only", () => {
	it("POST /registrations, new, retried and duplicate", async () => {
		const app = await populatedApp();
		const body = {
			courseId: "course-2",
			registrationId: "reg-2",
			learner: { id: "ada" },
			learnerTags: ["l9"],
			registrationTags: ["r9"],
		};
		await expectRequestIndexed(app, "POST", "/registrations", 204, body);
		await expectRequestIndexed(app, "POST", "/registrations", 204, body);
		await expectRequestIndexed(app, "POST", "/registrations", 400, { ...body, courseId: "course-3" });
	});

	const FILTERS = {
		courseId: "course-1",
		learnerId: "ada",
		since: "2000-01-01T00:00:00.000Z",
		until: "2100-01-01T00:00:00.000Z",
		tags: "r1,r2",
	};
	const combinations = Object.entries(FILTERS).reduce<[string, string][][]>(
		(sets, entry) => [...sets, ...sets.map((set) => [...set, entry])],
		[[]],
	);

	it.each(combinations.map((set) => [set.map(([name]) => name).join("+") || "no filter", set] as const))(
		"GET /registrations with %s",
		async (_name, set) => {
			const app = await populatedApp();
			const query = set.map(([name, value]) => `${name}=${encode(value)}`).join("&");
			await expectRequestIndexed(app, "GET", `/registrations?${query}`, 200);
		},
	);

	it.each(["created_asc", "created_desc", "updated_asc", "updated_desc"])(
		"GET /registrations ordered by %s: first page with the total count, then the next page",
		async (orderBy) => {
			const app = await populatedApp();
			await seedRegistrations(app.appId, "page", 150);
			for (const filters of ["", `&tags=r1&datetimeFilter=updated&since=${encode(FILTERS.since)}`]) {
				const first = await expectRequestIndexed(
					app,
					"GET",
					`/registrations?orderBy=${orderBy}&includeTotalCount=true${filters}`,
					200,
				);
				const { more } = JSON.parse(first.body) as { more?: string };
				if (filters === "") expect(more).toEqual(expect.any(String));
				if (more) await expectRequestIndexed(app, "GET", `/registrations?more=${encode(more)}`, 200);
			}
		},
	);

	it("GET and HEAD /registrations/:registrationId", async () => {
		const app = await populatedApp();
		await expectRequestIndexed(app, "GET", "/registrations/reg-1", 200);
		await expectRequestIndexed(app, "HEAD", "/registrations/reg-1", 200);
		await expectRequestIndexed(app, "GET", "/registrations/nope", 404);
	});

	it("DELETE /registrations/:registrationId, with the learner kept and with the learner removed", async () => {
		const app = await populatedApp();
		await insertRegistrations(app.appId, [{ id: "reg-2", courseId: "course-1", learnerId: "ada" }]);
		await expectRequestIndexed(app, "DELETE", "/registrations/reg-2", 204);
		await expectRequestIndexed(app, "DELETE", "/registrations/reg-1", 204);
		await expectRequestIndexed(app, "DELETE", "/registrations/nope", 404);
	});

	it("GET, PUT and DELETE /registrations/:registrationId/tags", async () => {
		const app = await populatedApp();
		await expectRequestIndexed(app, "GET", "/registrations/reg-1/tags", 200);
		await expectRequestIndexed(app, "PUT", "/registrations/reg-1/tags", 204, { tags: ["r3"] });
		await expectRequestIndexed(app, "DELETE", "/registrations/reg-1/tags", 204, { tags: ["r1"] });
		await expectRequestIndexed(app, "GET", "/registrations/nope/tags", 404);
		await expectRequestIndexed(app, "PUT", "/registrations/nope/tags", 404, { tags: ["x"] });
		await expectRequestIndexed(app, "DELETE", "/registrations/nope/tags", 404, { tags: ["x"] });
		await (await shardOf(app.appId)).prepare("UPDATE registrations SET tag_count = 1000 WHERE app_id = ?1 AND id = 'reg-1'")
			.bind(app.appId)
			.run();
		await expectRequestIndexed(app, "PUT", "/registrations/reg-1/tags", 400, { tags: ["new"] });
	});

	it("PUT /registrations/tags, all known and with an unknown id", async () => {
		const app = await populatedApp();
		await expectRequestIndexed(app, "PUT", "/registrations/tags", 204, { ids: ["reg-1", "noise-reg-1"], tags: ["b"] });
		await expectRequestIndexed(app, "PUT", "/registrations/tags", 404, { ids: ["reg-1", "ghost"], tags: ["c"] });
	});
});

describe("every shard's statements use indexes only", () => {
	it.each(SHARDS.map((shard) => [shard.name]))("an application on %s: its data is read and written there", async (shard) => {
		const app = await populatedApp(await appOnShard(shard));
		for (const [method, path, status, body] of [
			["GET", "/learner/ada/tags", 200],
			["PUT", "/learner/ada/tags", 204, { tags: ["s1"] }],
			["GET", "/learners?tags=l1", 200],
			["GET", "/registrations?learnerId=ada", 200],
			["PUT", "/registrations/tags", 204, { ids: ["reg-1"], tags: ["s2"] }],
			["DELETE", "/registrations/reg-1", 204],
		] as const) {
			const recorded = await expectRequestIndexed(app, method, path, status, body);
			expect(recorded.statements.some((statement) => statement.database === shard), `${method} ${path}`).toBe(true);
		}
	});
});

describe("credential management routes use indexes only, one D1 call each", () => {
	const management = (app: TestApp): TestApp => ({ ...app, auth: MANAGEMENT });

	it("POST and GET /appManagement/:childAppId/credentials, for an application and for an unknown one", async () => {
		const app = management(await createApp());
		for (const [method, path, status, body] of [
			["POST", `/appManagement/${app.appId}/credentials`, 200, { name: "second" }],
			["GET", `/appManagement/${app.appId}/credentials`, 200],
			["POST", "/appManagement/NOSUCHAPP/credentials", 404, { name: "x" }],
			["GET", "/appManagement/NOSUCHAPP/credentials", 404],
		] as const) {
			const recorded = await expectRequestIndexed(app, method, path, status, body);
			expect(recorded.calls, `${method} ${path}`).toBe(1);
		}
	});

	it("PUT and DELETE /appManagement/:childAppId/credentials/:credentialId: found, unknown, unknown application", async () => {
		const app = management(await createApp());
		const credential = `/appManagement/${app.appId}/credentials/${app.credentialId}`;
		for (const [method, path, status, body] of [
			["PUT", credential, 204, { name: "renamed" }],
			["PUT", `/appManagement/${app.appId}/credentials/nope`, 404, { name: "x" }],
			["PUT", `/appManagement/NOSUCHAPP/credentials/${app.credentialId}`, 404, { name: "x" }],
			["DELETE", `/appManagement/NOSUCHAPP/credentials/${app.credentialId}`, 404],
			["DELETE", credential, 204],
			["DELETE", credential, 404],
		] as const) {
			const recorded = await expectRequestIndexed(app, method, path, status, body);
			expect(recorded.calls, `${method} ${path}`).toBe(1);
		}
	});
});

describe("application management routes", () => {
	const management = (app: TestApp): TestApp => ({ ...app, auth: MANAGEMENT });

	it("GET and PUT /appManagement/applications/:childAppId use indexes only, one D1 call each (two with the registration count)", async () => {
		const app = management(await populatedApp());
		for (const [method, path, status, body, calls] of [
			["GET", `/appManagement/applications/${app.appId}`, 200, undefined, 1],
			["GET", `/appManagement/applications/${app.appId}?includeRegistrationCount=true`, 200, undefined, 2],
			["PUT", `/appManagement/applications/${app.appId}`, 204, { name: "renamed" }, 1],
			["GET", "/appManagement/applications/NOSUCHAPP", 404, undefined, 1],
		] as const) {
			const recorded = await expectRequestIndexed(app, method, path, status, body);
			expect(recorded.calls, `${method} ${path}`).toBe(calls);
		}
	});

	it("GET /appManagement/applicationList bounded by since finds its range in the order's index, in one D1 call", async () => {
		const app = management(await createApp());
		const since = encode(new Date(Date.now() - 60_000).toISOString());
		for (const order of ["updated_asc", "created_desc"]) {
			const datetimeFilter = order.startsWith("created") ? "created" : "updated";
			const recorded = await expectRequestIndexed(app, "GET", `/appManagement/applicationList?since=${since}&datetimeFilter=${datetimeFilter}&orderBy=${order}`, 200);
			expect(recorded.calls).toBe(1);
		}
	});
});

describe("rows read", () => {
	/**
	 * Makes the app's shard much bigger around it: 2000 registrations here and 2000 in another application on the
	 * same shard, all tagged.
	 */
	async function growDatabase(app: TestApp): Promise<void> {
		const db = await shardOf(app.appId);
		const elsewhere = { appId: await appBeside(app) };
		for (const [target, prefix] of [
			[app, "grown"],
			[elsewhere, "grown"],
		] as const) {
			const learners = await seedRegistrations(target.appId, prefix, 2000);
			await db.prepare(
				`INSERT INTO learner_tags (app_id, learner_id, tag)
				 SELECT ?1, l.value, t.value FROM json_each(?2) l, json_each('["l1","l2","x"]') t`,
			)
				.bind(target.appId, JSON.stringify(learners))
				.run();
			await db.prepare(
				`INSERT INTO registration_tags (app_id, registration_id, tag)
				 SELECT ?1, ?2 || '-reg-' || l.key, t.value FROM json_each(?3) l, json_each('["r1","r2","x"]') t`,
			)
				.bind(target.appId, prefix, JSON.stringify(learners))
				.run();
		}
		// The same learner and registration ids in another application, with tags of their own.
		await insertRegistrations(elsewhere.appId, [{ id: "reg-1", courseId: "course-1", learnerId: "ada" }]);
		await db.prepare(
			`INSERT INTO learner_tags (app_id, learner_id, tag) SELECT ?1, 'ada', value FROM json_each(?2)`,
		)
			.bind(elsewhere.appId, JSON.stringify(Array.from({ length: 500 }, (_, i) => `other-${i}`)))
			.run();
	}

	/**
	 * The most rows a GET of `tags` tags may read: the owner's existence (one index entry), each tag's index
	 * entry plus the one past the end of the range, and each tag again as it comes out of the sorter that puts
	 * them in the order first applied (ORDER BY rowid: the unique index is in tag order, and D1 counts the
	 * sorter's rows as read).
	 */
	const SORTED_ROWS_READ = (tags: number) => 2 * tags + 2;

	/**
	 * Tags on ids that sort right after the measured owners': an index range scan reads one entry past its
	 * range to find its end, so with these in place from the start the measurement cannot change because
	 * growDatabase happens to put a neighbour there.
	 */
	async function neighbours(app: TestApp): Promise<void> {
		const db = await shardOf(app.appId);
		await db.batch([
			db.prepare("INSERT INTO learner_tags (app_id, learner_id, tag) VALUES (?1, 'ada-neighbour', 'n')").bind(app.appId),
			db.prepare("INSERT INTO registration_tags (app_id, registration_id, tag) VALUES (?1, 'reg-1-neighbour', 'n')").bind(
				app.appId,
			),
		]);
	}

	/** rows_read of the one statement a warm GET runs, and the number of tags it answered. */
	async function readCost(app: TestApp, path: string): Promise<{ rowsRead: number; tags: number; calls: number }> {
		// Warm the isolate's credential cache, so the measured request runs only its own statement.
		await callRecorded(new RealmRecorder(), "GET", path, { auth: app.auth });
		const recorder = new RealmRecorder();
		const response = await callRecorded(recorder, "GET", path, { auth: app.auth });
		expect(response.status).toBe(200);
		const { tags } = (await response.json()) as { tags: string[] };
		expect(recorder.statements).toHaveLength(1);
		return { rowsRead: recorder.statements[0]?.meta?.rows_read ?? -1, tags: tags.length, calls: recorder.calls };
	}

	it("GET /learner/:learnerId/tags reads in proportion to its answer, whatever the database holds", async () => {
		const app = await populatedApp();
		await callRecorded(new RealmRecorder(), "PUT", "/learner/ada/tags", {
			auth: app.auth,
			body: { tags: ["l3", "l4", "l5"] },
		});
		await neighbours(app);
		const before = await readCost(app, "/learner/ada/tags");
		await growDatabase(app);
		const after = await readCost(app, "/learner/ada/tags");
		console.log(
			`rows_read GET /learner/:learnerId/tags: ${after.rowsRead} for ${after.tags} tags (before growing: ${before.rowsRead})`,
		);
		expect(after).toEqual(before);
		expect(after.tags).toBe(5);
		expect(after.calls).toBe(1);
		expect(after.rowsRead).toBeLessThanOrEqual(SORTED_ROWS_READ(after.tags));
	});

	it("GET /registrations/:registrationId/tags reads in proportion to its answer, whatever the database holds", async () => {
		const app = await populatedApp();
		await neighbours(app);
		const before = await readCost(app, "/registrations/reg-1/tags");
		await growDatabase(app);
		const after = await readCost(app, "/registrations/reg-1/tags");
		console.log(
			`rows_read GET /registrations/:registrationId/tags: ${after.rowsRead} for ${after.tags} tags (before growing: ${before.rowsRead})`,
		);
		expect(after).toEqual(before);
		expect(after.tags).toBe(2);
		expect(after.rowsRead).toBeLessThanOrEqual(SORTED_ROWS_READ(after.tags));
	});

	/** rows_read of the one statement a warm listing runs, and how many registrations its page holds. */
	async function listCost(app: TestApp, path: string): Promise<{ rowsRead: number; page: number; more?: string }> {
		await callRecorded(new RealmRecorder(), "GET", path, { auth: app.auth });
		const recorder = new RealmRecorder();
		const response = await callRecorded(recorder, "GET", path, { auth: app.auth });
		expect(response.status).toBe(200);
		const { registrations, more } = (await response.json()) as { registrations: unknown[]; more?: string };
		expect(recorder.statements).toHaveLength(1);
		return { rowsRead: recorder.statements[0]?.meta?.rows_read ?? -1, page: registrations.length, ...(more && { more }) };
	}

	/** Registrations of one learner on one course, created one millisecond apart from `start`. */
	async function insertDated(appId: string, prefix: string, count: number, start: number): Promise<void> {
		const rows = Array.from({ length: count }, (_, i) => ({
			id: `${prefix}-${i}`,
			date: new Date(start + i).toISOString(),
		}));
		await (await shardOf(appId)).prepare(
			`INSERT INTO registrations (app_id, id, course_id, learner_id, xapi_registration_id, created_at, updated_at)
			 SELECT ?1, value ->> '$.id', 'dated-course', 'dated-learner', lower(hex(randomblob(16))),
			   value ->> '$.date', value ->> '$.date'
			 FROM json_each(?2) ORDER BY key`,
		)
			.bind(appId, JSON.stringify(rows))
			.run();
	}

	it.each([
		["no filter", ""],
		["since (created)", "since=2001-01-01T00:00:00.000Z"],
		["until (created)", "until=2099-01-01T00:00:00.000Z"],
		["since, oldest first", "since=2001-01-01T00:00:00.000Z&orderBy=created_asc"],
		["learnerId and since", "learnerId=dated-learner&since=2001-01-01T00:00:00.000Z"],
		["courseId and until", "courseId=dated-course&until=2099-01-01T00:00:00.000Z"],
		["since (updated), by update", "datetimeFilter=updated&since=2001-01-01T00:00:00.000Z&orderBy=updated_asc"],
	])("GET /registrations with %s reads in proportion to its page, however many registrations match", async (_name, query) => {
		const app = await createApp();
		await insertDated(app.appId, "first", 150, Date.parse("2002-01-01T00:00:00.000Z"));
		const before = await listCost(app, `/registrations?${query}`);
		await insertDated(app.appId, "later", 2000, Date.parse("2003-01-01T00:00:00.000Z"));
		await insertDated(app.appId, "earlier", 2000, Date.parse("2001-06-01T00:00:00.000Z"));
		const after = await listCost(app, `/registrations?${query}`);
		console.log(
			`rows_read GET /registrations?${query}: ${after.rowsRead} for a page of ${after.page} (before growing: ${before.rowsRead})`,
		);
		expect(before.page).toBe(100);
		expect(after.page).toBe(100);
		expect(after.rowsRead).toBe(before.rowsRead);
		expect(after.rowsRead).toBeLessThanOrEqual(2 * after.page + 2);
		// The next page starts where this one ended, in the same index range.
		const next = await listCost(app, `/registrations?more=${encode(after.more ?? "")}`);
		expect(next.page).toBe(100);
		expect(next.rowsRead).toBeLessThanOrEqual(2 * next.page + 2);
	});

	/** rows_read of the one statement a warm GET /learners runs, and what its page holds. */
	async function directoryCost(app: TestApp, path: string) {
		await callRecorded(new RealmRecorder(), "GET", path, { auth: app.auth });
		const recorder = new RealmRecorder();
		const response = await callRecorded(recorder, "GET", path, { auth: app.auth });
		expect(response.status).toBe(200);
		const { learners, more } = (await response.json()) as {
			learners: { tags: string[]; registrationCount: number }[];
			more?: string;
		};
		expect(recorder.statements).toHaveLength(1);
		const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
		return {
			rowsRead: recorder.statements[0]?.meta?.rows_read ?? -1,
			page: learners.length,
			// What the page holds: its learners, their tags and their registrations.
			held: learners.length + sum(learners.map((learner) => learner.tags.length + learner.registrationCount)),
			...(more && { more }),
		};
	}

	/**
	 * 150 learners "directory-learner-<n>" of this application, each with one registration and the tags "dir" and
	 * "also"; every second one with a second registration and a third tag.
	 */
	async function directoryApp(): Promise<TestApp> {
		const app = await createApp();
		const learners = await seedRegistrations(app.appId, "directory", 150);
		await tagLearners(app.appId, learners, ["dir", "also"]);
		const even = learners.filter((_, i) => i % 2 === 0);
		await insertRegistrations(app.appId, even.map((learnerId) => ({ id: `${learnerId}-second`, courseId: "c", learnerId })));
		await tagLearners(app.appId, even, ["third"]);
		return app;
	}

	/**
	 * Cases, each with the index seeks a learner of the page costs beyond its own rows: `any` looks for the next
	 * learner in each tag's range, `all` for each tag after the first on the learner.
	 */
	it.each([
		["one tag", "tags=dir", 0],
		["any of two tags", "tags=dir,also", 2],
		["any of ten tags", `tags=dir,${Array.from({ length: 9 }, (_, i) => `absent-${i}`).join(",")}`, 10],
		["any of a hundred tags", `tags=dir,${Array.from({ length: 99 }, (_, i) => `absent-${i}`).join(",")}`, 100],
		["all of two tags", "tags=dir,also&tagMatch=all", 1],
		["every learner", "", 0],
	])("GET /learners with %s reads in proportion to its page, whatever the database holds", async (name, query, seeks) => {
		const app = await directoryApp();
		const before = await directoryCost(app, `/learners?${query}`);
		// Thousands of learners more: after the page's in id order with the same tags, in between with others,
		// and in another application on the same shard with the same tags.
		await growDatabase(app);
		const later = await seedRegistrations(app.appId, "late", 2000);
		await tagLearners(app.appId, later, ["dir", "also", "third"]);
		const elsewhere = await appBeside(app);
		await tagLearners(elsewhere, await seedRegistrations(elsewhere, "directory", 2000), ["dir", "also"]);
		const after = await directoryCost(app, `/learners?${query}`);
		console.log(
			`rows_read GET /learners with ${name}: ${after.rowsRead} for a page of ${after.page} learners holding ${after.held} rows (before growing: ${before.rowsRead})`,
		);
		expect(before.page).toBe(100);
		expect(after.page).toBe(100);
		expect(after.held).toBe(before.held);
		expect(after.rowsRead).toBe(before.rowsRead);
		// Each row held is read at most twice (index entry, then table row), plus the seeks (each a json_each row
		// and an index entry) for the page's learners and the one past it.
		const bound = (cost: { held: number; page: number }) => 2 * cost.held + 2 * seeks * (cost.page + 1);
		expect(after.rowsRead).toBeLessThanOrEqual(bound(after));
		const next = await directoryCost(app, `/learners?more=${encode(after.more ?? "")}`);
		console.log(`rows_read GET /learners with ${name}, next page: ${next.rowsRead} for ${next.page} learners holding ${next.held} rows`);
		expect(next.page).toBe(100);
		expect(next.rowsRead).toBeLessThanOrEqual(bound(next));
	});

	it("GET /learners?tagMatch=all reads the first tag's learners until the page is full: the rarer tag first reads the least", async () => {
		const app = await createApp();
		const learners = await seedRegistrations(app.appId, "common", 2000);
		await tagLearners(app.appId, learners, ["common"]);
		await tagLearners(app.appId, learners.filter((_, i) => i % 20 === 0), ["rare"]);
		const rareFirst = await directoryCost(app, "/learners?tags=rare,common&tagMatch=all");
		const commonFirst = await directoryCost(app, "/learners?tags=common,rare&tagMatch=all");
		const rareAlone = await directoryCost(app, "/learners?tags=rare");
		console.log(
			`rows_read GET /learners?tagMatch=all, 100 of 2000 learners match: rare tag first ${rareFirst.rowsRead}, common tag first ${commonFirst.rowsRead} (one tag, rare: ${rareAlone.rowsRead})`,
		);
		expect([rareFirst.page, commonFirst.page]).toEqual([100, 100]);
		expect(rareFirst.rowsRead).toBeLessThan(commonFirst.rowsRead);
		// Driven by the common tag, the page reads every one of its 2000 learners to find the 100 that match.
		expect(commonFirst.rowsRead).toBeGreaterThan(2000);
	});

	it("PUT /learner/:learnerId/tags reads as much in a big database as in a small one", async () => {
		const app = await populatedApp();
		const put = async (learnerId: string) => {
			const recorder = new RealmRecorder();
			const response = await callRecorded(recorder, "PUT", `/learner/${learnerId}/tags`, {
				auth: app.auth,
				body: { tags: ["a", "b", "c"] },
			});
			expect(response.status).toBe(204);
			return { calls: recorder.calls, rowsRead: recorder.statements.map((statement) => statement.meta?.rows_read) };
		};
		const before = await put("noise-learner-1");
		await growDatabase(app);
		const after = await put("noise-learner-2");
		expect(after).toEqual(before);
		expect(after.calls).toBe(1);
	});
});

describe("privacy beyond erasure uses indexes only (SPEC §12)", () => {
	it("the export's reads, the export expiry, the retention sweep's candidates, the audit outbox's rounds and the audit trail's pages", async () => {
		const { exportJobs, exportRegistrations, exportsToExpire } = await import("../../src/db/exports");
		const { inactiveLearners } = await import("../../src/db/activity");
		const { listAudit, unsealedAudit, appendAudit } = await import("../../src/db/audit");
		const app = await populatedApp();
		const shardName = await shardNameOf(app.appId);
		const shard = new RecordingDb(shardDatabase(env, shardName));
		await exportRegistrations(shard, { appId: app.appId, learnerId: "ada" }, 0, { registrations: 500, rows: 5000 });
		await exportJobs(shard, app.appId, "hash", "", 500);
		await exportsToExpire(shard, new Date().toISOString(), 100);
		await inactiveLearners(shard, app.appId, new Date().toISOString(), 100);
		const { clearOutbox, outboxRecords } = await import("../../src/db/audit-outbox");
		await outboxRecords(shard, 0, 500);
		await clearOutbox(shard, 0);
		const control = new RecordingDb(env.DB);
		await appendAudit(control, [{ at: new Date().toISOString(), actor: "management", action: "realmUser.put", target: "{}", requestId: "plan" }]);
		await unsealedAudit(control, 500);
		await listAudit(control, { after: 0, limit: 101 });
		await listAudit(control, { after: 0, action: "realmUser.put", limit: 101 });
		await listAudit(control, { after: 0, since: new Date(0).toISOString(), limit: 101 });
		const statements = [
			...shard.statements.map((statement) => ({ ...statement, database: shardName })),
			...control.statements.map((statement) => ({ ...statement, database: "DB" })),
		];
		expect(statements).toHaveLength(12);
		for (const statement of statements) expect(await tableScans(statement), statement.sql).toEqual([]);
	});
});
