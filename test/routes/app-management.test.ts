import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { apiRequest, call, fetchWithBindings } from "../support/client";
import { countApplicationsByShard, findPlacement } from "../../src/db/applications";
import { shardDatabase } from "../../src/shards";
import { expectMessage, expectNoContent, jobIdOf } from "../support/expect";
import { basicHeader, createApp, enrol, MANAGEMENT, mintToken } from "../support/fixtures";
import { findAnywhere } from "../support/scan";
import { SHARDS } from "../support/seed";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const APP_ID = /^[A-Z2-9]{10}$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const CHALLENGE = 'Basic realm="learner-service", Bearer realm="learner-service"';

interface ApplicationBody {
	id: string;
	name: string;
	createDate: string;
	dataRegion: "default" | "eu";
	shard: string;
}

/** The shards of a region, by name (wrangler.toml [vars] SHARDS). */
const shardsOf = (region: "default" | "eu") => SHARDS.filter((shard) => shard.region === region).map((shard) => shard.name);

/** POST /appManagement/applications, asserting the 200; the application as answered. */
async function createApplication(body: Record<string, unknown>): Promise<ApplicationBody> {
	const response = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body });
	expect(response.status).toBe(200);
	return (await response.json()) as ApplicationBody;
}

/** The shard databases holding the application's storage row (the row its writes are checked against). */
async function storageShardsOf(appId: string): Promise<string[]> {
	const found: string[] = [];
	for (const shard of SHARDS) {
		const row = await shardDatabase(env, shard.name).prepare("SELECT app_id FROM app_storage WHERE app_id = ?1").bind(appId).first();
		if (row) found.push(shard.name);
	}
	return found;
}

interface CredentialBody {
	id: string;
	name: string;
	status: "Enabled" | "Disabled";
	created: string;
	updated: string;
}

async function listApplications(): Promise<ApplicationBody[]> {
	const response = await call("GET", "/appManagement/applications", { auth: MANAGEMENT });
	expect(response.status).toBe(200);
	return ((await response.json()) as { applications: ApplicationBody[] }).applications;
}

async function listCredentials(appId: string): Promise<CredentialBody[]> {
	const response = await call("GET", `/appManagement/${appId}/credentials`, { auth: MANAGEMENT });
	expect(response.status).toBe(200);
	return ((await response.json()) as { credentials: CredentialBody[] }).credentials;
}

async function listUsers(): Promise<{ email: string; role: string }[]> {
	const response = await call("GET", "/appManagement/users", { auth: MANAGEMENT });
	expect(response.status).toBe(200);
	return ((await response.json()) as { users: { email: string; role: string }[] }).users;
}

async function sha256Hex(text: string): Promise<string> {
	const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
	return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** A unique address per test: realm users are shared by every test in this file. */
const uniqueEmail = (local: string) => `${local}.${crypto.randomUUID().slice(0, 8)}@example.com`;
const userPath = (email: string) => `/appManagement/users/${encodeURIComponent(email)}`;

const ping = (auth: string) => call("GET", "/ping", { auth });

describe("APP_MANAGEMENT authentication", () => {
	const routes: [string, string, Record<string, unknown>?][] = [
		["POST", "/appManagement/applications", { name: "x" }],
		["GET", "/appManagement/applications"],
		["DELETE", "/appManagement/applications/ANYAPP0000"],
		["POST", "/appManagement/ANYAPP0000/credentials", { name: "x" }],
		["GET", "/appManagement/ANYAPP0000/credentials"],
		["PUT", "/appManagement/ANYAPP0000/credentials/any-credential", { active: false }],
		["DELETE", "/appManagement/ANYAPP0000/credentials/any-credential"],
		["PUT", "/appManagement/users/someone%40example.com", { role: "owner" }],
		["GET", "/appManagement/users"],
		["DELETE", "/appManagement/users/someone%40example.com"],
	];

	it.each(routes)("answers 401 to %s %s without credentials", async (method, path, body) => {
		const response = await call(method, path, { body });
		expect(response.status).toBe(401);
		expect(await response.json()).toEqual({
			message: "Authentication required: send the realm's management credentials (Basic)",
		});
		expect(response.headers.get("WWW-Authenticate")).toBe(CHALLENGE);
	});

	it.each(routes)("answers 401 to %s %s with a wrong management secret", async (method, path, body) => {
		const auth = basicHeader(env.MANAGEMENT_APP_ID, "not-the-secret");
		const response = await call(method, path, { auth, body });
		expect(response.status).toBe(401);
		expect(await response.json()).toEqual({ message: "Invalid management credentials" });
		expect(response.headers.get("WWW-Authenticate")).toBe(CHALLENGE);
	});

	it.each(routes)("answers 401 to %s %s with an application's Basic credential", async (method, path, body) => {
		const app = await createApp();
		const response = await call(method, path, { auth: app.auth, body });
		expect(response.status).toBe(401);
		expect(await response.json()).toEqual({ message: "Invalid management credentials" });
	});

	it("answers 401 to a bearer token", async () => {
		const app = await createApp();
		const response = await call("GET", "/appManagement/applications", { auth: await mintToken(app, "admin") });
		expect(response.status).toBe(401);
		expect(await response.json()).toEqual({ message: "Invalid management credentials" });
	});

	it("gives a wrong management id and a wrong management secret the identical 401", async () => {
		const wrongId = await call("GET", "/appManagement/users", {
			auth: basicHeader("not-the-id", env.MANAGEMENT_SECRET_KEY),
		});
		const wrongSecret = await call("GET", "/appManagement/users", {
			auth: basicHeader(env.MANAGEMENT_APP_ID, "not-the-secret"),
		});
		expect(wrongId.status).toBe(401);
		expect(wrongSecret.status).toBe(401);
		expect(await wrongId.json()).toEqual(await wrongSecret.json());
		expect(wrongId.headers.get("WWW-Authenticate")).toBe(wrongSecret.headers.get("WWW-Authenticate"));
	});
});

describe("APP_NORMAL authentication with a created credential", () => {
	it("gives a wrong application id and a wrong secret the identical 401", async () => {
		const app = await createApp();
		const wrongId = await ping(basicHeader("NOSUCHAPP2", app.secret));
		const wrongSecret = await ping(basicHeader(app.appId, "not-the-secret"));
		expect(wrongId.status).toBe(401);
		expect(wrongSecret.status).toBe(401);
		const body = await wrongId.json();
		expect(body).toEqual({ message: "Invalid application id or secret key" });
		expect(await wrongSecret.json()).toEqual(body);
		expect(wrongId.headers.get("WWW-Authenticate")).toBe(CHALLENGE);
		expect(wrongSecret.headers.get("WWW-Authenticate")).toBe(CHALLENGE);
	});
});

describe("POST /appManagement/applications", () => {
	it("creates an application and answers its id, name, creation date, data region and shard", async () => {
		const response = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name: "Academy" } });
		expect(response.status).toBe(200);
		const body = (await response.json()) as ApplicationBody;
		expect(body).toEqual({
			id: expect.stringMatching(APP_ID),
			name: "Academy",
			createDate: expect.stringMatching(ISO_DATE),
			dataRegion: "default",
			shard: expect.any(String),
		});
		expect(shardsOf("default")).toContain(body.shard);
	});

	it("places an application without dataRegion, or with dataRegion default, on a default shard", async () => {
		for (const body of [{ name: "Unplaced" }, { name: "Default", dataRegion: "default" }]) {
			const app = await createApplication(body);
			expect(app.dataRegion).toBe("default");
			expect(shardsOf("default")).toContain(app.shard);
			expect(await findPlacement(env.DB, app.id)).toEqual({ appId: app.id, shard: app.shard, dataRegion: "default", deletedAt: null });
			expect(await storageShardsOf(app.id)).toEqual([app.shard]);
		}
	});

	it("places an application with dataRegion eu on the eu shard, SHARD_EU_1", async () => {
		expect(shardsOf("eu")).toEqual(["SHARD_EU_1"]);
		const app = await createApplication({ name: "Résidence", dataRegion: "eu" });

		expect(app).toEqual({
			id: expect.stringMatching(APP_ID),
			name: "Résidence",
			createDate: expect.stringMatching(ISO_DATE),
			dataRegion: "eu",
			shard: "SHARD_EU_1",
		});
		expect(await findPlacement(env.DB, app.id)).toEqual({ appId: app.id, shard: "SHARD_EU_1", dataRegion: "eu", deletedAt: null });
		// Its storage row is on the eu shard only: its data can be written nowhere else.
		expect(await storageShardsOf(app.id)).toEqual(["SHARD_EU_1"]);
	});

	it("places a new application on the default shard holding the fewest applications", async () => {
		for (let i = 0; i < 3; i++) {
			const counts = await countApplicationsByShard(env.DB);
			const fewest = Math.min(...shardsOf("default").map((shard) => counts.get(shard) ?? 0));
			// Ties go to the shard listed first in SHARDS.
			const expected = shardsOf("default").find((shard) => (counts.get(shard) ?? 0) === fewest);
			expect((await createApplication({ name: `Balanced ${i}` })).shard).toBe(expected);
		}
	});

	it("places no new application on a closed shard, and answers 503 naming a region with no open shard", async () => {
		// SPEC §7: a shard can be closed to new applications by configuration (SHARDS, `:closed`). The default shard
		// that open would take the next application (fewest applications) is the one closed.
		const counts = await countApplicationsByShard(env.DB);
		const [first, second] = shardsOf("default");
		const favourite = (counts.get(second ?? "") ?? 0) < (counts.get(first ?? "") ?? 0) ? second : first;
		const other = favourite === first ? second : first;
		const SHARDS = `${favourite}:default:closed ${other}:default SHARD_EU_1:eu:closed`;
		const create = (body: Record<string, unknown>) =>
			fetchWithBindings(apiRequest("POST", "/appManagement/applications", { auth: MANAGEMENT, body }), { SHARDS: SHARDS as Env["SHARDS"] });
		for (let i = 0; i < 2; i++) {
			const response = await create({ name: `Only open ${i}` });
			expect(response.status).toBe(200);
			expect(((await response.json()) as ApplicationBody).shard).toBe(other);
		}
		expect((await countApplicationsByShard(env.DB)).get(favourite ?? "") ?? 0).toBe(counts.get(favourite ?? "") ?? 0);
		const eu = await create({ name: "Nowhere in the EU", dataRegion: "eu" });
		expect(await expectMessage(eu, 503)).toContain("[eu]");
		expect((await listApplications()).map(({ name }) => name)).not.toContain("Nowhere in the EU");
	});

	it("places a new application on the open shard holding the fewest live applications: deleted ones do not count", async () => {
		const [first, second] = shardsOf("default") as [string, string];
		const counted = async (live: boolean) => {
			const { results } = await env.DB.prepare(
				`SELECT shard, count(*) AS n FROM applications WHERE shard IN (?1, ?2)${live ? " AND deleted_at IS NULL" : ""} GROUP BY shard`,
			)
				.bind(first, second)
				.all<{ shard: string; n: number }>();
			return new Map(results.map((row) => [row.shard, row.n]));
		};
		const live = await counted(true);
		const winner = (live.get(second) ?? 0) < (live.get(first) ?? 0) ? second : first;
		const other = winner === first ? second : first;
		// Deleted applications on the shard with the fewest live ones, until it holds the most applications in all.
		const all = await counted(false);
		const deleted = Math.max(0, (all.get(other) ?? 0) - (all.get(winner) ?? 0)) + 1;
		const now = new Date().toISOString();
		for (let i = 0; i < deleted; i++) {
			await env.DB.prepare("INSERT INTO applications (id, name, data_region, shard, created_at, deleted_at) VALUES (?1, 'gone', 'default', ?2, ?3, ?3)")
				.bind(`GONE${String(i).padStart(6, "0")}`, winner, now)
				.run();
		}
		const created = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name: "Placed by live ones" } });
		expect(created.status).toBe(200);
		expect(((await created.json()) as ApplicationBody).shard).toBe(winner);
	});

	it("answers 400 naming dataRegion when it is not a data region", async () => {
		for (const dataRegion of ["us", "EU", "", 7, null]) {
			const response = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name: "Nowhere", dataRegion } });
			expect(await expectMessage(response, 400)).toBe("Invalid request: dataRegion must be one of: default, eu");
		}
		expect((await listApplications()).map(({ name }) => name)).not.toContain("Nowhere");
	});

	it("gives every application a different id", async () => {
		const [first, second] = await Promise.all([createApp("same name"), createApp("same name")]);
		expect(first.appId).not.toBe(second.appId);
	});

	it("answers 400 naming name when it is missing", async () => {
		const response = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: {} });
		expect(await expectMessage(response, 400)).toBe("Invalid request: name is required");
	});

	it("answers 400 naming name when it is not a string", async () => {
		const response = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name: 7 } });
		expect(await expectMessage(response, 400)).toBe("Invalid request: name must be a string");
	});

	it("answers 400 naming name when it is empty", async () => {
		const response = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name: "" } });
		expect(await expectMessage(response, 400)).toBe("Invalid request: name must not be empty");
	});

	it("answers 400 naming the limit when name is longer than 255 characters", async () => {
		const body = { name: "n".repeat(256) };
		const response = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body });
		expect(await expectMessage(response, 400)).toBe("Invalid request: name must be at most 255 characters");
	});
});

describe("GET /appManagement/applications", () => {
	it("lists applications with id, name, creation date, data region and shard", async () => {
		const app = await createApplication({ name: "Listed app" });
		const eu = await createApplication({ name: "Listed eu app", dataRegion: "eu" });
		const applications = await listApplications();
		expect(applications.filter(({ id }) => id === app.id || id === eu.id)).toEqual([
			{ id: app.id, name: "Listed app", createDate: expect.stringMatching(ISO_DATE), dataRegion: "default", shard: app.shard },
			{ id: eu.id, name: "Listed eu app", createDate: expect.stringMatching(ISO_DATE), dataRegion: "eu", shard: "SHARD_EU_1" },
		]);
		expect(shardsOf("default")).toContain(app.shard);
	});

	it("lists applications oldest first", async () => {
		const first = await createApp();
		const second = await createApp();
		const ids = (await listApplications()).map(({ id }) => id);
		expect(ids.indexOf(first.appId)).toBeLessThan(ids.indexOf(second.appId));
	});
});

describe("DELETE /appManagement/applications/:childAppId", () => {
	it("answers 204 with the deletion job's Location and an empty body", async () => {
		const app = await createApp();
		const response = await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		expect(response.status).toBe(204);
		jobIdOf(response, app.appId);
		expect(await response.text()).toBe("");
	});

	it("stops the application's Basic credentials at once", async () => {
		const app = await createApp();
		expect((await ping(app.auth)).status).toBe(200);
		await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		const response = await ping(app.auth);
		expect(response.status).toBe(401);
		expect(await response.json()).toEqual({ message: "Invalid application id or secret key" });
	});

	it("removes the application from the list", async () => {
		const app = await createApp();
		await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		expect((await listApplications()).map(({ id }) => id)).not.toContain(app.appId);
	});

	it("answers a second request while the job is unfinished with the same Location", async () => {
		const app = await createApp();
		const first = await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		const second = await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		expect(second.status).toBe(204);
		jobIdOf(second, app.appId);
		expect(second.headers.get("Location")).toBe(first.headers.get("Location"));
	});

	it("makes the application's credentials routes answer 404", async () => {
		const app = await createApp();
		await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		const response = await call("GET", `/appManagement/${app.appId}/credentials`, { auth: MANAGEMENT });
		expect(response.status).toBe(404);
		expect(await response.json()).toEqual({ message: `Application [${app.appId}] was not found` });
	});

	it("answers 404 naming an unknown application", async () => {
		const response = await call("DELETE", "/appManagement/applications/NOSUCHAPP2", { auth: MANAGEMENT });
		expect(response.status).toBe(404);
		expect(await response.json()).toEqual({ message: "Application [NOSUCHAPP2] was not found" });
	});
});

describe("DELETE /appManagement/applications/:childAppId with allowDelete", () => {
	it("refuses with 409 naming allowDelete while it is false, and the application keeps working", async () => {
		const app = await createApp();
		await expectNoContent(await call("PUT", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT, body: { allowDelete: false } }));
		const refused = await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		expect(await expectMessage(refused, 409)).toBe(
			`Application [${app.appId}] has allowDelete: false, which guards it against deletion; set allowDelete to true (PUT /appManagement/applications/${app.appId}) to delete it`,
		);
		expect((await ping(app.auth)).status).toBe(200);
		expect((await listCredentials(app.appId)).map(({ id }) => id)).toEqual([app.credentialId]);
	});

	it("deletes once allowDelete is true again", async () => {
		const app = await createApp();
		const path = `/appManagement/applications/${app.appId}`;
		await call("PUT", path, { auth: MANAGEMENT, body: { allowDelete: false } });
		await call("PUT", path, { auth: MANAGEMENT, body: { allowDelete: true } });
		const response = await call("DELETE", path, { auth: MANAGEMENT });
		expect(response.status).toBe(204);
		jobIdOf(response, app.appId);
	});
});

interface ApplicationInfoBody {
	id: string;
	name: string;
	createDate: string;
	updateDate: string;
	allowDelete: boolean;
	courseCount?: number;
	registrationCount?: number;
	dataRegion: "default" | "eu";
	shard: string;
}

async function applicationInfo(appId: string, query = ""): Promise<ApplicationInfoBody> {
	const response = await call("GET", `/appManagement/applications/${appId}${query}`, { auth: MANAGEMENT });
	expect(response.status).toBe(200);
	return (await response.json()) as ApplicationInfoBody;
}

describe("GET /appManagement/applications/:childAppId", () => {
	it("answers SCORM Cloud's ApplicationInfoSchema with the application's placement, without counts unless asked", async () => {
		const created = await createApplication({ name: "Info app" });
		expect(await applicationInfo(created.id)).toEqual({
			id: created.id,
			name: "Info app",
			createDate: created.createDate,
			updateDate: created.createDate,
			allowDelete: true,
			dataRegion: "default",
			shard: created.shard,
		});
	});

	it("counts the application's registrations, and no courses, when asked (True and true alike)", async () => {
		const app = await createApp();
		await enrol(app, "counted-1");
		await enrol(app, "counted-2");
		expect(await applicationInfo(app.appId, "?includeRegistrationCount=True&includeCourseCount=true")).toMatchObject({
			registrationCount: 2,
			courseCount: 0,
		});
		const without = await applicationInfo(app.appId, "?includeRegistrationCount=false&includeCourseCount=False");
		expect(without).not.toHaveProperty("registrationCount");
		expect(without).not.toHaveProperty("courseCount");
	});

	it("answers 400 naming a flag that is not a boolean", async () => {
		const app = await createApp();
		const response = await call("GET", `/appManagement/applications/${app.appId}?includeRegistrationCount=yes`, { auth: MANAGEMENT });
		expect(await expectMessage(response, 400)).toContain("includeRegistrationCount must be true or false");
	});

	it("answers 404 for an unknown application and for one being deleted", async () => {
		const app = await createApp();
		await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		for (const appId of ["NOSUCHAPP2", app.appId]) {
			const response = await call("GET", `/appManagement/applications/${appId}`, { auth: MANAGEMENT });
			expect(response.status).toBe(404);
			expect(await response.json()).toEqual({ message: `Application [${appId}] was not found` });
		}
	});
});

describe("PUT /appManagement/applications/:childAppId", () => {
	it("renames the application and sets allowDelete, moving its updateDate", async () => {
		const created = await createApplication({ name: "Before" });
		const response = await call("PUT", `/appManagement/applications/${created.id}`, { auth: MANAGEMENT, body: { name: "After", allowDelete: false } });
		await expectNoContent(response);
		const info = await applicationInfo(created.id);
		expect(info).toMatchObject({ name: "After", allowDelete: false, createDate: created.createDate });
		expect(info.updateDate > info.createDate).toBe(true);
		// The other field stays as it is.
		await call("PUT", `/appManagement/applications/${created.id}`, { auth: MANAGEMENT, body: { name: "Again" } });
		expect(await applicationInfo(created.id)).toMatchObject({ name: "Again", allowDelete: false });
	});

	it("answers 400 for a body that changes nothing or holds a wrong type", async () => {
		const app = await createApp();
		const path = `/appManagement/applications/${app.appId}`;
		expect(await expectMessage(await call("PUT", path, { auth: MANAGEMENT, body: {} }), 400)).toContain("Provide name, allowDelete, or both");
		expect(await expectMessage(await call("PUT", path, { auth: MANAGEMENT, body: { allowDelete: "no" } }), 400)).toContain(
			"allowDelete must be a boolean",
		);
	});

	it("answers 404 naming an unknown application", async () => {
		const response = await call("PUT", "/appManagement/applications/NOSUCHAPP2", { auth: MANAGEMENT, body: { name: "x" } });
		expect(response.status).toBe(404);
		expect(await response.json()).toEqual({ message: "Application [NOSUCHAPP2] was not found" });
	});
});

describe("GET /appManagement/applicationList", () => {
	const list = async (query: string) => {
		const response = await call("GET", `/appManagement/applicationList?${query}`, { auth: MANAGEMENT });
		expect(response.status).toBe(200);
		return { body: (await response.json()) as { applications: ApplicationInfoBody[]; more?: string }, total: response.headers.get("X-Total-Count") };
	};

	it("pages the applications whose name holds the filter text, 100 a page, more carrying the filters", async () => {
		const prefix = `Paged-${crypto.randomUUID().slice(0, 8)}`;
		const ids: string[] = [];
		for (let i = 0; i < 101; i++) ids.push((await createApplication({ name: `${prefix} ${i}` })).id);
		const first = await list(`filter=${prefix.toLowerCase()}&filterBy=app_name&orderBy=created_asc&includeTotalCount=true`);
		expect(first.total).toBe("101");
		expect(first.body.applications).toHaveLength(100);
		expect(first.body.more).toEqual(expect.any(String));
		// An application created meanwhile that the filter does not match: the next page keeps the first's filters.
		await createApplication({ name: "Not in the listing" });
		const second = await list(`more=${encodeURIComponent(first.body.more ?? "")}`);
		expect(second.total).toBeNull();
		expect(second.body.more).toBeUndefined();
		expect([...first.body.applications, ...second.body.applications].map(({ id }) => id)).toEqual(ids);
		const newest = await list(`filter=${prefix}&filterBy=app_name&orderBy=created_desc`);
		expect(newest.body.applications[0]?.id).toBe(ids.at(-1));
		// 102 applications made through the API, one after another.
	}, 60_000);

	it("finds an application by id text, with its counts when asked", async () => {
		const app = await createApp();
		await enrol(app, "listed-learner");
		const { body } = await list(`filter=${app.appId}&includeRegistrationCount=true&includeCourseCount=true`);
		expect(body.applications).toEqual([expect.objectContaining({ id: app.appId, allowDelete: true, registrationCount: 1, courseCount: 0 })]);
	});

	it("bounds the update date with since and until by default, and the creation date with datetimeFilter=created", async () => {
		const prefix = `Dated-${crypto.randomUUID().slice(0, 8)}`;
		const older = await createApplication({ name: `${prefix} older` });
		const newer = await createApplication({ name: `${prefix} newer` });
		const between = new Date(Date.parse(newer.createDate) + 1).toISOString();
		await new Promise((resolve) => setTimeout(resolve, 5));
		await call("PUT", `/appManagement/applications/${older.id}`, { auth: MANAGEMENT, body: { name: `${prefix} older, renamed` } });
		const since = encodeURIComponent(between);
		expect((await list(`filter=${prefix}&filterBy=app_name&since=${since}`)).body.applications.map(({ id }) => id)).toEqual([older.id]);
		expect((await list(`filter=${prefix}&filterBy=app_name&datetimeFilter=created&until=${since}&orderBy=created_desc`)).body.applications.map(({ id }) => id)).toEqual([
			newer.id,
			older.id,
		]);
	});

	it("takes the defaults the PHP client always sends, and .NET's dates and booleans", async () => {
		const app = await createApp();
		const php = await list(
			`datetimeFilter=updated&filter=${app.appId}&filterBy=app_id&orderBy=updated_asc&includeCourseCount=false&includeRegistrationCount=false&includeTotalCount=false`,
		);
		expect(php.body.applications.map(({ id }) => id)).toEqual([app.appId]);
		const dotnet = await list(`since=2000-01-01T00:00:00.0000000&until=2999-01-01T00:00:00.0000000Z&filter=${app.appId}&includeTotalCount=True`);
		expect([dotnet.body.applications.map(({ id }) => id), dotnet.total]).toEqual([[app.appId], "1"]);
		// Python's: a naive date, and a count with no filter text (each filter left out is a parameter unbound).
		const python = await list("since=2000-01-01T00:00:00.123456&datetimeFilter=created&orderBy=created_desc&includeTotalCount=True&includeCourseCount=True");
		expect(Number(python.total)).toBeGreaterThanOrEqual(1);
		expect(python.body.applications[0]?.courseCount).toBe(0);
		expect((await list("includeTotalCount=true")).total).toEqual(expect.stringMatching(/^\d+$/));
	});

	it("answers 400 naming an unknown orderBy, filterBy or datetimeFilter", async () => {
		for (const [query, named] of [
			["orderBy=name_asc", "orderBy must be one of updated_asc, updated_desc, created_asc, created_desc"],
			["filterBy=course_id", "filterBy must be one of app_id, app_name"],
			["datetimeFilter=deleted", "datetimeFilter must be one of updated, created"],
		]) {
			const response = await call("GET", `/appManagement/applicationList?${query}`, { auth: MANAGEMENT });
			expect(await expectMessage(response, 400)).toContain(named);
		}
	});

	it("refuses a more token of another listing", async () => {
		const response = await call("GET", "/appManagement/applicationList?more=abc.def", { auth: MANAGEMENT });
		expect(await expectMessage(response, 400)).toContain("more is not a paging token");
	});
});

describe("POST /appManagement/:childAppId/credentials", () => {
	it("creates an enabled credential and shows its secret", async () => {
		const app = await createApp();
		const response = await call("POST", `/appManagement/${app.appId}/credentials`, {
			auth: MANAGEMENT,
			body: { name: "reporting" },
		});
		expect(response.status).toBe(200);
		const body = (await response.json()) as { credential: string };
		expect(body).toEqual({
			id: expect.stringMatching(UUID),
			name: "reporting",
			credential: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
			status: "Enabled",
			created: expect.stringMatching(ISO_DATE),
			updated: expect.stringMatching(ISO_DATE),
		});
		expect((await ping(basicHeader(app.appId, body.credential))).status).toBe(200);
	});

	it("creates a disabled credential that does not authenticate", async () => {
		const app = await createApp();
		const response = await call("POST", `/appManagement/${app.appId}/credentials`, {
			auth: MANAGEMENT,
			body: { name: "spare", active: false },
		});
		expect(response.status).toBe(200);
		const body = (await response.json()) as { credential: string };
		expect(body).toEqual({
			id: expect.stringMatching(UUID),
			name: "spare",
			credential: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
			status: "Disabled",
			created: expect.stringMatching(ISO_DATE),
			updated: expect.stringMatching(ISO_DATE),
		});
		expect((await ping(basicHeader(app.appId, body.credential))).status).toBe(401);
	});

	it("stores only the SHA-256 of the secret, never the secret itself", async () => {
		const app = await createApp();
		const row = await env.DB.prepare("SELECT * FROM credentials WHERE id = ?1")
			.bind(app.credentialId)
			.first<Record<string, unknown>>();
		expect(row?.secret_hash).toBe(await sha256Hex(app.secret));
		for (const value of Object.values(row ?? {})) expect(String(value)).not.toContain(app.secret);
		// Nor in any other table of the control database or of any shard.
		expect((await findAnywhere([app.secret])).findings).toEqual([]);
	});

	it("answers 400 naming active when it is not a boolean", async () => {
		const app = await createApp();
		const response = await call("POST", `/appManagement/${app.appId}/credentials`, {
			auth: MANAGEMENT,
			body: { name: "x", active: "yes" },
		});
		expect(await expectMessage(response, 400)).toBe("Invalid request: active must be a boolean");
	});

	it("answers 400 naming name when it is missing", async () => {
		const app = await createApp();
		const response = await call("POST", `/appManagement/${app.appId}/credentials`, { auth: MANAGEMENT, body: {} });
		expect(await expectMessage(response, 400)).toBe("Invalid request: name is required");
	});

	it("answers 404 naming an unknown application", async () => {
		const response = await call("POST", "/appManagement/NOSUCHAPP2/credentials", {
			auth: MANAGEMENT,
			body: { name: "x" },
		});
		expect(response.status).toBe(404);
		expect(await response.json()).toEqual({ message: "Application [NOSUCHAPP2] was not found" });
	});
});

describe("GET /appManagement/:childAppId/credentials", () => {
	it("lists the application's credentials without their secrets", async () => {
		const app = await createApp();
		const response = await call("GET", `/appManagement/${app.appId}/credentials`, { auth: MANAGEMENT });
		expect(response.status).toBe(200);
		const text = await response.text();
		expect(JSON.parse(text)).toEqual({
			credentials: [
				{ id: app.credentialId, name: "main", status: "Enabled", created: expect.stringMatching(ISO_DATE), updated: expect.stringMatching(ISO_DATE) },
			],
		});
		expect(text).not.toContain(app.secret);
	});

	it("lists only that application's credentials", async () => {
		const app = await createApp();
		const other = await createApp();
		expect((await listCredentials(app.appId)).map(({ id }) => id)).toEqual([app.credentialId]);
		expect((await listCredentials(other.appId)).map(({ id }) => id)).toEqual([other.credentialId]);
	});

	it("answers 404 naming an unknown application", async () => {
		const response = await call("GET", "/appManagement/NOSUCHAPP2/credentials", { auth: MANAGEMENT });
		expect(response.status).toBe(404);
		expect(await response.json()).toEqual({ message: "Application [NOSUCHAPP2] was not found" });
	});
});

describe("PUT /appManagement/:childAppId/credentials/:credentialId", () => {
	const credentialPath = (appId: string, credentialId: string) => `/appManagement/${appId}/credentials/${credentialId}`;

	it("renames a credential", async () => {
		const app = await createApp();
		const response = await call("PUT", credentialPath(app.appId, app.credentialId), {
			auth: MANAGEMENT,
			body: { name: "renamed" },
		});
		await expectNoContent(response);
		const [renamed] = await listCredentials(app.appId);
		expect(renamed).toEqual({
			id: app.credentialId,
			name: "renamed",
			status: "Enabled",
			created: expect.stringMatching(ISO_DATE),
			updated: expect.stringMatching(ISO_DATE),
		});
		// updated is the rename's time; created stays.
		expect(renamed && renamed.updated > renamed.created).toBe(true);
		expect((await ping(app.auth)).status).toBe(200);
	});

	it("disables a credential so that its Basic auth answers 401 at once", async () => {
		const app = await createApp();
		expect((await ping(app.auth)).status).toBe(200);
		const response = await call("PUT", credentialPath(app.appId, app.credentialId), {
			auth: MANAGEMENT,
			body: { active: false },
		});
		expect(response.status).toBe(204);
		expect((await listCredentials(app.appId))[0]?.status).toBe("Disabled");
		const denied = await ping(app.auth);
		expect(denied.status).toBe(401);
		expect(await denied.json()).toEqual({ message: "Invalid application id or secret key" });
	});

	it("re-enables a disabled credential so that it works again", async () => {
		const app = await createApp();
		await call("PUT", credentialPath(app.appId, app.credentialId), { auth: MANAGEMENT, body: { active: false } });
		expect((await ping(app.auth)).status).toBe(401);
		const response = await call("PUT", credentialPath(app.appId, app.credentialId), {
			auth: MANAGEMENT,
			body: { active: true },
		});
		expect(response.status).toBe(204);
		expect((await ping(app.auth)).status).toBe(200);
	});

	it("answers 400 when the body has neither name nor active", async () => {
		const app = await createApp();
		const response = await call("PUT", credentialPath(app.appId, app.credentialId), { auth: MANAGEMENT, body: {} });
		expect(await expectMessage(response, 400)).toBe("Invalid request: Provide name, active, or both");
	});

	it("answers 404 naming an unknown credential", async () => {
		const app = await createApp();
		const response = await call("PUT", credentialPath(app.appId, "no-such-credential"), {
			auth: MANAGEMENT,
			body: { active: false },
		});
		expect(response.status).toBe(404);
		expect(await response.json()).toEqual({ message: "Credential [no-such-credential] was not found" });
	});

	it("answers 404 for another application's credential and leaves it working", async () => {
		const app = await createApp();
		const other = await createApp();
		const response = await call("PUT", credentialPath(app.appId, other.credentialId), {
			auth: MANAGEMENT,
			body: { active: false },
		});
		expect(response.status).toBe(404);
		expect(await response.json()).toEqual({ message: `Credential [${other.credentialId}] was not found` });
		expect((await ping(other.auth)).status).toBe(200);
	});

	it("answers 404 naming an unknown application", async () => {
		const app = await createApp();
		const response = await call("PUT", credentialPath("NOSUCHAPP2", app.credentialId), {
			auth: MANAGEMENT,
			body: { active: false },
		});
		expect(response.status).toBe(404);
		expect(await response.json()).toEqual({ message: "Application [NOSUCHAPP2] was not found" });
	});
});

describe("DELETE /appManagement/:childAppId/credentials/:credentialId", () => {
	const credentialPath = (appId: string, credentialId: string) => `/appManagement/${appId}/credentials/${credentialId}`;

	it("deletes a credential: it leaves the list and its Basic auth answers 401 at once", async () => {
		const app = await createApp();
		expect((await ping(app.auth)).status).toBe(200);
		const response = await call("DELETE", credentialPath(app.appId, app.credentialId), { auth: MANAGEMENT });
		await expectNoContent(response);
		expect(await listCredentials(app.appId)).toEqual([]);
		expect((await ping(app.auth)).status).toBe(401);
	});

	it("answers 404 the second time", async () => {
		const app = await createApp();
		await call("DELETE", credentialPath(app.appId, app.credentialId), { auth: MANAGEMENT });
		const response = await call("DELETE", credentialPath(app.appId, app.credentialId), { auth: MANAGEMENT });
		expect(response.status).toBe(404);
		expect(await response.json()).toEqual({ message: `Credential [${app.credentialId}] was not found` });
	});

	it("answers 404 for another application's credential and leaves it working", async () => {
		const app = await createApp();
		const other = await createApp();
		const response = await call("DELETE", credentialPath(app.appId, other.credentialId), { auth: MANAGEMENT });
		expect(response.status).toBe(404);
		expect(await response.json()).toEqual({ message: `Credential [${other.credentialId}] was not found` });
		expect((await ping(other.auth)).status).toBe(200);
	});

	it("answers 404 naming an unknown application", async () => {
		const response = await call("DELETE", credentialPath("NOSUCHAPP2", "any-credential"), { auth: MANAGEMENT });
		expect(response.status).toBe(404);
		expect(await response.json()).toEqual({ message: "Application [NOSUCHAPP2] was not found" });
	});
});

describe("PUT /appManagement/users/:email", () => {
	it("creates a realm user with a role", async () => {
		const email = uniqueEmail("owner");
		const response = await call("PUT", userPath(email), { auth: MANAGEMENT, body: { role: "owner" } });
		await expectNoContent(response);
		expect((await listUsers()).filter((user) => user.email === email)).toEqual([{ email, role: "owner" }]);
	});

	it("changes the role of the user whose email matches case-insensitively, keeping the first spelling", async () => {
		const email = uniqueEmail("Mixed.Case");
		await call("PUT", userPath(email), { auth: MANAGEMENT, body: { role: "member" } });
		const response = await call("PUT", userPath(email.toUpperCase()), { auth: MANAGEMENT, body: { role: "admin" } });
		expect(response.status).toBe(204);
		const matching = (await listUsers()).filter((user) => user.email.toLowerCase() === email.toLowerCase());
		expect(matching).toEqual([{ email, role: "admin" }]);
	});

	it("answers 400 naming role when it is not owner, admin or member", async () => {
		const email = uniqueEmail("root");
		const response = await call("PUT", userPath(email), { auth: MANAGEMENT, body: { role: "superuser" } });
		expect(await expectMessage(response, 400)).toBe('Invalid request: role must be one of "owner", "admin", "member"');
		expect((await listUsers()).map((user) => user.email)).not.toContain(email);
	});

	it("answers 400 naming role when it is missing", async () => {
		const response = await call("PUT", userPath(uniqueEmail("nobody")), { auth: MANAGEMENT, body: {} });
		expect(await expectMessage(response, 400)).toBe('Invalid request: role must be one of "owner", "admin", "member"');
	});

	it("answers 400 naming email when it is not an address", async () => {
		const response = await call("PUT", userPath("not-an-address"), { auth: MANAGEMENT, body: { role: "admin" } });
		expect(await expectMessage(response, 400)).toBe("Invalid request: email must be a valid email address");
	});
});

describe("GET /appManagement/users", () => {
	it("lists realm users with their email and role", async () => {
		const owner = uniqueEmail("listed-owner");
		const member = uniqueEmail("listed-member");
		await call("PUT", userPath(owner), { auth: MANAGEMENT, body: { role: "owner" } });
		await call("PUT", userPath(member), { auth: MANAGEMENT, body: { role: "member" } });
		const response = await call("GET", "/appManagement/users", { auth: MANAGEMENT });
		expect(response.status).toBe(200);
		const { users } = (await response.json()) as { users: { email: string; role: string }[] };
		expect(users.filter((user) => user.email === owner || user.email === member)).toEqual(
			[
				{ email: owner, role: "owner" },
				{ email: member, role: "member" },
			].sort((a, b) => a.email.localeCompare(b.email)),
		);
	});
});

describe("DELETE /appManagement/users/:email", () => {
	it("removes a realm user, matching the email case-insensitively", async () => {
		const email = uniqueEmail("leaving");
		await call("PUT", userPath(email), { auth: MANAGEMENT, body: { role: "admin" } });
		const response = await call("DELETE", userPath(email.toUpperCase()), { auth: MANAGEMENT });
		await expectNoContent(response);
		expect((await listUsers()).map((user) => user.email)).not.toContain(email);
	});

	it("answers 404 naming an unknown user", async () => {
		const email = uniqueEmail("stranger");
		const response = await call("DELETE", userPath(email), { auth: MANAGEMENT });
		expect(response.status).toBe(404);
		expect(await response.json()).toEqual({ message: `Realm user [${email}] was not found` });
	});

	it("answers 400 naming email when it is not an address", async () => {
		const response = await call("DELETE", userPath("not-an-address"), { auth: MANAGEMENT });
		expect(await expectMessage(response, 400)).toBe("Invalid request: email must be a valid email address");
	});
});
