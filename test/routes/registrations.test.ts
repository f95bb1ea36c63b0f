import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { REGISTRATION_PAGES, type RegistrationPageCursor, encodeCursor } from "../../src/paging";
import { call } from "../support/client";
import { expectMessage, expectNoContent } from "../support/expect";
import {
	appOnShard,
	createApp,
	mintToken,
	putTags,
	range,
	tagsOf,
	type TestApp,
	UNUSUAL_IDS,
} from "../support/fixtures";
import { countOf, insertRegistrations, type SeedRegistration, setRegistrationDates } from "../support/seed";

interface RegistrationBody {
	id: string;
	instance: number;
	xapiRegistrationId: string;
	createdDate: string;
	updated: string;
	registrationCompletion: string;
	registrationSuccess: string;
	totalSecondsTracked: number;
	course: { id: string };
	learner: { id: string; email?: string; firstName?: string; lastName?: string };
	tags: string[];
}

interface ListBody {
	registrations: RegistrationBody[];
	more?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Two applications side by side: in one shard database, and in two (tenancy holds either way). */
const TWO_APPS: [string, [string, string]][] = [
	["on the same shard", ["SHARD_1", "SHARD_1"]],
	["on different shards", ["SHARD_1", "SHARD_2"]],
	["in different data regions", ["SHARD_2", "SHARD_EU_1"]],
];

/** An application on each of the two shards named. */
const appsOn = async ([first, second]: [string, string]): Promise<[TestApp, TestApp]> => [await appOnShard(first), await appOnShard(second)];

const path = (registrationId: string, suffix = "") => `/registrations/${encodeURIComponent(registrationId)}${suffix}`;

interface NewRegistration {
	courseId?: string;
	learner?: Record<string, unknown>;
	learnerTags?: string[];
	registrationTags?: string[];
	courseTags?: string[];
}

function create(app: TestApp, registrationId: string, fields: NewRegistration = {}, auth = app.auth) {
	return call("POST", "/registrations", {
		auth,
		body: { courseId: "course-1", learner: { id: "ada" }, ...fields, registrationId },
	});
}

async function register(app: TestApp, registrationId: string, fields: NewRegistration = {}): Promise<void> {
	await expectNoContent(await create(app, registrationId, fields));
}

/** The registration as GET answers it, asserting the 200. */
async function fetchRegistration(app: TestApp, registrationId: string): Promise<RegistrationBody> {
	const response = await call("GET", path(registrationId), { auth: app.auth });
	expect(response.status).toBe(200);
	return (await response.json()) as RegistrationBody;
}

async function learnerTagsOf(app: TestApp, learnerId: string): Promise<Response> {
	return call("GET", `/learner/${encodeURIComponent(learnerId)}/tags`, { auth: app.auth });
}

/** GET /registrations with the query ("?a=b" or ""), oldest first, asserting the 200. */
async function list(app: TestApp, query = "", auth = app.auth): Promise<ListBody> {
	const response = await call("GET", `/registrations${query}${query ? "&" : "?"}orderBy=created_asc`, { auth });
	expect(response.status).toBe(200);
	return (await response.json()) as ListBody;
}

const ids = (body: ListBody) => body.registrations.map((registration) => registration.id);

/** Backdates a registration: its creation and last update both at `date`. */
const setDates = (app: TestApp, registrationId: string, date: string) =>
	setRegistrationDates(app.appId, registrationId, { createdAt: date, updatedAt: date });

describe("POST /registrations", () => {
	it("creates a registration that GET answers in full", async () => {
		const app = await createApp();
		const response = await create(app, "reg-1", {
			courseId: "course-9",
			learner: { id: "ada", email: "ada@example.com", firstName: "Ada", lastName: "Lovelace" },
			registrationTags: ["r1", "r2"],
			learnerTags: ["l1"],
			courseTags: ["c1"],
		});
		await expectNoContent(response);
		const fetched = await call("GET", path("reg-1"), { auth: app.auth });
		expect(fetched.status).toBe(200);
		const body = (await fetched.json()) as RegistrationBody;
		expect(body).toEqual({
			id: "reg-1",
			instance: 0,
			xapiRegistrationId: expect.stringMatching(UUID),
			createdDate: expect.stringMatching(ISO_DATE),
			updated: body.createdDate,
			registrationCompletion: "UNKNOWN",
			registrationSuccess: "UNKNOWN",
			totalSecondsTracked: 0,
			course: { id: "course-9" },
			learner: { id: "ada", email: "ada@example.com", firstName: "Ada", lastName: "Lovelace" },
			tags: ["r1", "r2"],
		});
		expect(Math.abs(Date.parse(body.createdDate) - Date.now())).toBeLessThan(60_000);
		const learnerTags = await learnerTagsOf(app, "ada");
		expect(learnerTags.status).toBe(200);
		expect(await learnerTags.json()).toEqual({ tags: ["l1"] });
	});

	it("leaves out learner fields that were never given", async () => {
		const app = await createApp();
		await register(app, "reg-1", { learner: { id: "ada" } });
		const body = await fetchRegistration(app, "reg-1");
		expect(body.learner).toEqual({ id: "ada" });
		expect(body.tags).toEqual([]);
	});

	it("gives each registration its own xAPI registration id", async () => {
		const app = await createApp();
		await register(app, "reg-1");
		await register(app, "reg-2");
		const [first, second] = [await fetchRegistration(app, "reg-1"), await fetchRegistration(app, "reg-2")];
		expect(first.xapiRegistrationId).not.toBe(second.xapiRegistrationId);
	});

	it("stores repeated learner and registration tags once, in the order given", async () => {
		const app = await createApp();
		await register(app, "reg-1", { learnerTags: ["b", "a", "b"], registrationTags: ["y", "x", "y"] });
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual(["y", "x"]);
		expect(await (await learnerTagsOf(app, "ada")).json()).toEqual({ tags: ["b", "a"] });
	});

	it("adds learner tags to an existing learner without removing its tags", async () => {
		const app = await createApp();
		await register(app, "reg-1", { learnerTags: ["a", "b"] });
		await register(app, "reg-2", { learnerTags: ["c", "a"] });
		expect(await (await learnerTagsOf(app, "ada")).json()).toEqual({ tags: ["a", "b", "c"] });
	});

	it('answers 400 "Registration with id [x] already exists" to a duplicate id and keeps the original', async () => {
		const app = await createApp();
		await register(app, "reg-1", { courseId: "original", learner: { id: "ada" }, registrationTags: ["kept"] });
		const response = await create(app, "reg-1", {
			courseId: "other",
			learner: { id: "bob" },
			learnerTags: ["never"],
			registrationTags: ["never"],
		});
		expect(await expectMessage(response, 400)).toBe("Registration with id [reg-1] already exists");
		const body = await fetchRegistration(app, "reg-1");
		expect(body.course).toEqual({ id: "original" });
		expect(body.learner).toEqual({ id: "ada" });
		expect(body.tags).toEqual(["kept"]);
		expect(await expectMessage(await learnerTagsOf(app, "bob"), 404)).toBe("Learner [bob] was not found");
	});

	it("answers a retry of the request that created the registration as the first time, writing nothing", async () => {
		const app = await createApp();
		const fields = {
			courseId: "course-9",
			learner: { id: "ada", email: "ada@example.com", firstName: "Ada" },
			learnerTags: ["cohort-1"],
			registrationTags: ["first", "second"],
		};
		await register(app, "reg-1", fields);
		const before = await fetchRegistration(app, "reg-1");

		await expectNoContent(await create(app, "reg-1", { ...fields, registrationTags: ["second", "first", "second"] }));
		expect(await fetchRegistration(app, "reg-1")).toEqual(before);
		expect(await (await learnerTagsOf(app, "ada")).json()).toEqual({ tags: ["cohort-1"] });
	});

	it.each([
		["another course", { courseId: "course-2" }],
		["other learner details", { learner: { id: "ada", email: "other@example.com" } }],
		["other registration tags", { registrationTags: ["first", "second"] }],
		["a learner tag the learner no longer carries", { learnerTags: ["cohort-1", "cohort-2"] }],
	])("answers 400 to a request for an existing id with %s", async (_case, change) => {
		const app = await createApp();
		const fields = { learner: { id: "ada", email: "ada@example.com" }, learnerTags: ["cohort-1"], registrationTags: ["first"] };
		await register(app, "reg-1", fields);
		const before = await fetchRegistration(app, "reg-1");
		const response = await create(app, "reg-1", { ...fields, ...change });
		expect(await expectMessage(response, 400)).toBe("Registration with id [reg-1] already exists");
		expect(await fetchRegistration(app, "reg-1")).toEqual(before);
	});

	it("answers 400 to a retry once the registration has changed since (its tags)", async () => {
		const app = await createApp();
		await register(app, "reg-1", { registrationTags: ["first"] });
		await expectNoContent(await call("PUT", path("reg-1", "/tags"), { auth: app.auth, body: { tags: ["added"] } }));
		const response = await create(app, "reg-1", { registrationTags: ["first"] });
		expect(await expectMessage(response, 400)).toBe("Registration with id [reg-1] already exists");
	});

	it.each(TWO_APPS)("lets two applications use the same registration id, %s", async (_, shards) => {
		const [first, second] = await appsOn(shards);
		await register(first, "reg-1", { courseId: "first" });
		await register(second, "reg-1", { courseId: "second" });
		expect((await fetchRegistration(first, "reg-1")).course).toEqual({ id: "first" });
		expect((await fetchRegistration(second, "reg-1")).course).toEqual({ id: "second" });
	});

	it("accepts ids, email and names exactly at their limits", async () => {
		const app = await createApp();
		const email = `${"e".repeat(320 - "@example.com".length)}@example.com`;
		expect(email).toHaveLength(320);
		const learner = { id: "l".repeat(255), email, firstName: "f".repeat(255), lastName: "n".repeat(255) };
		await register(app, "r".repeat(255), { courseId: "c".repeat(255), learner });
		const body = await fetchRegistration(app, "r".repeat(255));
		expect(body.course).toEqual({ id: "c".repeat(255) });
		expect(body.learner).toEqual(learner);
	});

	it.each([
		["registrationId", { registrationId: "r".repeat(256) }, "Invalid request: registrationId must be at most 255 characters"],
		["courseId", { courseId: "c".repeat(256) }, "Invalid request: courseId must be at most 255 characters"],
		["learner.id", { learner: { id: "l".repeat(256) } }, "Invalid request: learner.id must be at most 255 characters"],
		[
			"learner.email",
			{ learner: { id: "ada", email: `${"e".repeat(321 - "@example.com".length)}@example.com` } },
			"Invalid request: learner.email: email must be at most 320 characters",
		],
		[
			"learner.firstName",
			{ learner: { id: "ada", firstName: "f".repeat(256) } },
			"Invalid request: learner.firstName: firstName must be at most 255 characters",
		],
		[
			"learner.lastName",
			{ learner: { id: "ada", lastName: "n".repeat(256) } },
			"Invalid request: learner.lastName: lastName must be at most 255 characters",
		],
	])("answers 400 naming the limit when %s is one past it", async (_field, override, message) => {
		const app = await createApp();
		const response = await call("POST", "/registrations", {
			auth: app.auth,
			body: { courseId: "course-1", registrationId: "reg-1", learner: { id: "ada" }, ...override },
		});
		expect(await expectMessage(response, 400)).toBe(message);
		expect(await list(app)).toEqual({ registrations: [] });
	});

	it.each([
		["registrationId", "."],
		["registrationId", ".."],
		["learner.id", "."],
		["learner.id", ".."],
	])("answers 400 to %s %j, which no URL path can name, and creates nothing", async (field, id) => {
		const app = await createApp();
		const body =
			field === "registrationId"
				? { courseId: "course-1", registrationId: id, learner: { id: "ada" }, registrationTags: ["kept"] }
				: { courseId: "course-1", registrationId: "reg-1", learner: { id }, learnerTags: ["kept"] };
		const response = await call("POST", "/registrations", { auth: app.auth, body });
		expect(await expectMessage(response, 400)).toBe(
			`Invalid request: ${field} must not be "." or ".." (a URL path cannot name such an id)`,
		);
		expect(await list(app)).toEqual({ registrations: [] });
		// What a client sends for the id, written as-is or escaped, resolves to another path: no such route (405 where
		// the path it resolves to is a route for another method).
		for (const written of [id, id.replaceAll(".", "%2E")]) {
			const path = field === "registrationId" ? `/registrations/${written}/tags` : `/learner/${written}/tags`;
			expect([404, 405]).toContain((await call("GET", path, { auth: app.auth })).status);
		}
	});

	it("accepts ids that only contain dots among other characters", async () => {
		const app = await createApp();
		await register(app, "...reg.", { learner: { id: ".ada." } });
		expect((await fetchRegistration(app, "...reg.")).learner).toEqual({ id: ".ada." });
		expect(await tagsOf(app, "learner", ".ada.")).toEqual([]);
	});

	it("answers 400 to an email that is not an address, and accepts an empty one", async () => {
		const app = await createApp();
		const invalid = await create(app, "reg-1", { learner: { id: "ada", email: "not-an-address" } });
		expect(await expectMessage(invalid, 400)).toBe(
			"Invalid request: learner.email: email must be a valid email address (or empty to clear it)",
		);
		await register(app, "reg-2", { learner: { id: "ada", email: "" } });
		expect((await fetchRegistration(app, "reg-2")).learner).toEqual({ id: "ada", email: "" });
	});

	it("answers 400 to control characters in ids and names", async () => {
		const app = await createApp();
		const inId = await create(app, "reg\u0000-1");
		expect(await expectMessage(inId, 400)).toBe("Invalid request: registrationId must not contain control characters");
		const inName = await create(app, "reg-1", { learner: { id: "ada", firstName: "A\nda" } });
		expect(await expectMessage(inName, 400)).toBe(
			"Invalid request: learner.firstName: firstName must not contain control characters",
		);
	});

	it("accepts 100 learner tags and answers 400 naming the limit to 101", async () => {
		const app = await createApp();
		const tags = range(100, "tag-");
		await register(app, "reg-1", { learnerTags: tags, registrationTags: tags });
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual(tags);
		const response = await create(app, "reg-2", { learnerTags: range(101, "tag-") });
		expect(await expectMessage(response, 400)).toBe(
			"Invalid request: learnerTags: tags must hold at most 100 tags per request",
		);
	});

	it("answers 400 naming the limit when the learner tags would take the learner past 1000, creating nothing", async () => {
		const app = await createApp();
		for (let batch = 0; batch < 10; batch++) {
			await register(app, `reg-${batch}`, { learnerTags: range(100, `t${batch}-`) });
		}
		const response = await create(app, "reg-new", { learnerTags: ["one-too-many"] });
		expect(await expectMessage(response, 400)).toBe(
			"Learner [ada] would have more than 1000 tags (limit: 1000 tags per learner)",
		);
		expect(await expectMessage(await call("GET", path("reg-new"), { auth: app.auth }), 404)).toBe(
			"Registration [reg-new] was not found",
		);
		const tags = (await (await learnerTagsOf(app, "ada")).json()) as { tags: string[] };
		expect(tags.tags).toHaveLength(1000);
		expect(tags.tags).not.toContain("one-too-many");
	});

	it("answers 400 naming each missing required field", async () => {
		const app = await createApp();
		const response = await call("POST", "/registrations", { auth: app.auth, body: {} });
		expect(await expectMessage(response, 400)).toBe(
			"Invalid request: courseId is required; registrationId is required; learner: Invalid input: expected object, received undefined",
		);
	});

	it("answers 403 naming the scope to a token holding only read:registration", async () => {
		const app = await createApp();
		const response = await create(app, "reg-1", {}, await mintToken(app, "read:registration"));
		expect(await expectMessage(response, 403)).toBe('This operation requires the "write:registration" scope');
	});
});

describe("GET /registrations", () => {
	it("lists the application's registrations in creation order, in full", async () => {
		const app = await createApp();
		const other = await createApp();
		await register(app, "reg-b", { learner: { id: "ada", firstName: "Ada" }, registrationTags: ["x"] });
		await register(app, "reg-a", { learner: { id: "bob" } });
		await register(other, "reg-other");
		const body = await list(app);
		expect(body).toEqual({
			registrations: [await fetchRegistration(app, "reg-b"), await fetchRegistration(app, "reg-a")],
		});
		expect(body.registrations[0]?.learner).toEqual({ id: "ada", firstName: "Ada" });
	});

	it("answers an empty list to an application without registrations", async () => {
		const app = await createApp();
		const response = await call("GET", "/registrations", { auth: app.auth });
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ registrations: [] });
	});

	it("takes what the official clients always send: PHP's defaults (filterBy without filter), .NET's True and dates", async () => {
		const app = await createApp();
		await register(app, "r-php", { courseId: "math" });
		const php =
			"?courseId=math&datetimeFilter=created&filterBy=registration_id&orderBy=created_desc&includeChildResults=false" +
			"&includeInteractionsAndObjectives=false&includeRuntime=false&includeTotalCount=false";
		const answered = await call("GET", `/registrations${php}`, { auth: app.auth });
		expect([answered.status, await answered.text()]).toEqual([200, expect.stringContaining("r-php")]);
		const response = await call("GET", "/registrations?courseId=math&includeTotalCount=True&since=2000-01-01T00:00:00.0000000", { auth: app.auth });
		expect(response.status).toBe(200);
		expect(response.headers.get("X-Total-Count")).toBe("1");
	});

	it("answers 400 to a filter text, which it cannot search without reading every registration", async () => {
		const app = await createApp();
		const response = await call("GET", "/registrations?filter=r&filterBy=registration_id", { auth: app.auth });
		expect(await expectMessage(response, 400)).toContain("filter (text search) is not supported");
	});

	it("filters by courseId", async () => {
		const app = await createApp();
		await register(app, "r1", { courseId: "math" });
		await register(app, "r2", { courseId: "art" });
		await register(app, "r3", { courseId: "math" });
		expect(ids(await list(app, "?courseId=math"))).toEqual(["r1", "r3"]);
		expect(ids(await list(app, "?courseId=Math"))).toEqual([]);
	});

	it("filters by learnerId, and answers an empty list for an unknown learner", async () => {
		const app = await createApp();
		await register(app, "r1", { learner: { id: "ada" } });
		await register(app, "r2", { learner: { id: "bob" } });
		await register(app, "r3", { learner: { id: "ada" } });
		expect(ids(await list(app, "?learnerId=ada"))).toEqual(["r1", "r3"]);
		const response = await call("GET", "/registrations?learnerId=nobody", { auth: app.auth });
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ registrations: [] });
	});

	it("filters by since and until, both inclusive", async () => {
		const app = await createApp();
		await register(app, "jan");
		await register(app, "feb");
		await register(app, "mar");
		await setDates(app, "jan", "2024-01-15T00:00:00.000Z");
		await setDates(app, "feb", "2024-02-15T00:00:00.000Z");
		await setDates(app, "mar", "2024-03-15T00:00:00.000Z");
		expect(ids(await list(app, "?since=2024-02-15T00:00:00.000Z"))).toEqual(["feb", "mar"]);
		expect(ids(await list(app, "?until=2024-02-15T00:00:00Z"))).toEqual(["jan", "feb"]);
		expect(ids(await list(app, "?since=2024-02-01T00:00:00Z&until=2024-02-28T00:00:00Z"))).toEqual(["feb"]);
		// Offsets are normalised to UTC before comparing.
		expect(ids(await list(app, `?since=${encodeURIComponent("2024-02-15T01:00:00+01:00")}`))).toEqual(["feb", "mar"]);
	});

	it("answers 400 to a since that is not a date", async () => {
		const app = await createApp();
		const response = await call("GET", "/registrations?since=yesterday", { auth: app.auth });
		expect(await expectMessage(response, 400)).toBe("Invalid request: since must be an ISO-8601 date-time");
	});

	it("filters by tags, matching registrations with any of them", async () => {
		const app = await createApp();
		await register(app, "r1", { registrationTags: ["red"] });
		await register(app, "r2", { registrationTags: ["green"] });
		await register(app, "r3", { registrationTags: ["blue", "red"] });
		await register(app, "r4");
		expect(ids(await list(app, "?tags=red"))).toEqual(["r1", "r3"]);
		expect(ids(await list(app, "?tags=blue,green"))).toEqual(["r2", "r3"]);
		expect(ids(await list(app, "?tags=red,blue"))).toEqual(["r1", "r3"]);
		expect(ids(await list(app, "?tags=none"))).toEqual([]);
	});

	it("combines filters", async () => {
		const app = await createApp();
		await register(app, "r1", { courseId: "math", learner: { id: "ada" }, registrationTags: ["x"] });
		await register(app, "r2", { courseId: "math", learner: { id: "bob" }, registrationTags: ["x"] });
		await register(app, "r3", { courseId: "art", learner: { id: "ada" }, registrationTags: ["x"] });
		await register(app, "r4", { courseId: "math", learner: { id: "ada" } });
		expect(ids(await list(app, "?courseId=math&learnerId=ada&tags=x"))).toEqual(["r1"]);
	});

	it("answers 400 naming the limit to more than 100 tags", async () => {
		const app = await createApp();
		const response = await call("GET", `/registrations?tags=${range(101, "t").join(",")}`, { auth: app.auth });
		expect(await expectMessage(response, 400)).toBe("tags: tags must name at most 100 tags");
	});

	it("answers 400 to a tag in the filter that is too long", async () => {
		const app = await createApp();
		const response = await call("GET", `/registrations?tags=ok,${"t".repeat(256)}`, { auth: app.auth });
		expect(await expectMessage(response, 400)).toBe("tags: tag must be at most 255 characters");
	});

	it("ignores unknown query parameters", async () => {
		const app = await createApp();
		await register(app, "r1", { courseId: "math" });
		await register(app, "r2", { courseId: "art" });
		expect(ids(await list(app, "?_=1700000000000"))).toEqual(["r1", "r2"]);
		expect(ids(await list(app, "?courseId=art&_=1700000000000&unknown=x"))).toEqual(["r2"]);
	});

	it("answers 403 naming the scope to a token holding only read:learner", async () => {
		const app = await createApp();
		const response = await call("GET", "/registrations", { auth: await mintToken(app, "read:learner") });
		expect(await expectMessage(response, 403)).toBe('This operation requires the "read:registration" scope');
	});

	describe("paging", () => {
		/** 230 registrations of course "math" (m0..m229) with one of course "art" after every tenth. */
		async function manyRegistrations(app: TestApp): Promise<string[]> {
			const rows: SeedRegistration[] = [];
			for (let i = 0; i < 230; i++) {
				rows.push({ id: `m${i}`, courseId: "math", learnerId: "ada" });
				if (i % 10 === 9) rows.push({ id: `a${i}`, courseId: "art", learnerId: "ada" });
			}
			await insertRegistrations(app.appId, rows);
			return rows.filter((row) => row.courseId === "math").map((row) => row.id);
		}

		/** `count` registrations r0, r1, ... of learner "ada". */
		const plainRegistrations = (app: TestApp, count: number) =>
			insertRegistrations(
				app.appId,
				range(count, "r").map((id) => ({ id, courseId: "course-1", learnerId: "ada" })),
			);

		it("serves pages of 100 with an opaque more token that carries the original filters", async () => {
			const app = await createApp();
			const math = await manyRegistrations(app);
			const first = await list(app, "?courseId=math");
			expect(ids(first)).toEqual(math.slice(0, 100));
			expect(first.more).toEqual(expect.any(String));
			expect(first.more).not.toContain("math");
			// The token alone brings the next page of the same listing: the filter it carries wins.
			const second = await list(app, `?more=${encodeURIComponent(first.more ?? "")}`);
			expect(ids(second)).toEqual(math.slice(100, 200));
			const third = await list(app, `?courseId=art&more=${encodeURIComponent(second.more ?? "")}`);
			expect(third).toEqual({ registrations: expect.any(Array) });
			expect(ids(third)).toEqual(math.slice(200));
		});

		it("gives no more token when the last page is exactly full", async () => {
			const app = await createApp();
			await plainRegistrations(app, 100);
			const page = await list(app);
			expect(page.registrations).toHaveLength(100);
			expect(page.more).toBeUndefined();
		});

		it("answers 400, asking for the first page, to a token signed by a version that paged by pk alone", async () => {
			const app = await createApp();
			const earlier = await encodeCursor(env.TOKEN_SIGNING_SECRET, REGISTRATION_PAGES, {
				app: app.appId,
				filter: { datetimeFilter: "created" },
				order: "created_desc",
				after: { pk: 5, updatedAt: "2026-01-01T00:00:00.000Z" },
			} as unknown as RegistrationPageCursor);
			const response = await call("GET", `/registrations?more=${encodeURIComponent(earlier)}`, { auth: app.auth });
			expect(await expectMessage(response, 400)).toBe(
				"more was issued by an earlier version of this API; request the first page again",
			);
		});

		it("accepts the longest token its own filters can lead to (100 tags of 255 characters, long ids)", async () => {
			const app = await createApp();
			const tag = (i: number) => `${"\u{1F600}".repeat(253)}${String(i).padStart(2, "0")}`;
			const longest = await encodeCursor(env.TOKEN_SIGNING_SECRET, REGISTRATION_PAGES, {
				app: app.appId,
				filter: {
					courseId: "\u{1F600}".repeat(255),
					learnerId: "\u{1F600}".repeat(255),
					datetimeFilter: "updated",
					since: "2026-01-01T00:00:00.000Z",
					until: "2026-12-31T23:59:59.999Z",
					tags: Array.from({ length: 100 }, (_, i) => tag(i)),
				},
				order: "updated_desc",
				after: { pk: Number.MAX_SAFE_INTEGER, createdAt: "2026-12-31T23:59:59.999Z", updatedAt: "2026-12-31T23:59:59.999Z" },
			});
			const response = await call("GET", `/registrations?more=${encodeURIComponent(longest)}`, { auth: app.auth });
			expect(response.status).toBe(200);
			expect(await response.json()).toEqual({ registrations: [] });
		});

		it("answers 400 to an altered or invented more token", async () => {
			const app = await createApp();
			await plainRegistrations(app, 101);
			const { more = "" } = await list(app);
			const [payload = "", signature = ""] = more.split(".");
			const forged = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as { after: number };
			forged.after = 0;
			const reencoded = btoa(JSON.stringify(forged)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
			for (const token of [`${reencoded}.${signature}`, `${payload}.${signature.slice(1)}0`, "garbage", `${more}.x`, "."]) {
				const response = await call("GET", `/registrations?more=${encodeURIComponent(token)}`, { auth: app.auth });
				expect(await expectMessage(response, 400)).toBe(
					"more is not a paging token issued by this API for this application",
				);
			}
		});
	});
});

describe("GET /registrations/:registrationId", () => {
	it("answers 404 naming an unknown registration", async () => {
		const app = await createApp();
		const response = await call("GET", path("nope"), { auth: app.auth });
		expect(await expectMessage(response, 404)).toBe("Registration [nope] was not found");
	});

	it("answers 400 naming the limit to an id of 256 characters", async () => {
		const app = await createApp();
		const response = await call("GET", path("r".repeat(256)), { auth: app.auth });
		expect(await expectMessage(response, 400)).toBe("Invalid request: registrationId must be at most 255 characters");
	});

	it("answers 200 to a token holding read:registration and ignores unknown query parameters", async () => {
		const app = await createApp();
		await register(app, "reg-1");
		const response = await call("GET", `${path("reg-1")}?_=123`, { auth: await mintToken(app, "read:registration") });
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual(await fetchRegistration(app, "reg-1"));
	});

	it.each(UNUSUAL_IDS)("round-trips the ids %j through encoded paths and the body", async (id) => {
		const app = await createApp();
		await register(app, id, { courseId: id, learner: { id }, registrationTags: [id.replace(/,/g, "")] });
		const body = await fetchRegistration(app, id);
		expect(body.id).toBe(id);
		expect(body.course).toEqual({ id });
		expect(body.learner).toEqual({ id });
		expect(ids(await list(app, `?learnerId=${encodeURIComponent(id)}&courseId=${encodeURIComponent(id)}`))).toEqual([id]);
		await putTags(app, "registrations", id, ["added"]);
		expect(await tagsOf(app, "registrations", id)).toEqual([id, "added"]);
		await expectNoContent(await call("DELETE", path(id), { auth: app.auth }));
		expect((await call("HEAD", path(id), { auth: app.auth })).status).toBe(404);
	});
});

describe("HEAD /registrations/:registrationId", () => {
	it("answers 200 for an existing registration and 404 for an unknown one, without a body either way", async () => {
		const app = await createApp();
		await register(app, "reg-1");
		for (const [id, status] of [
			["reg-1", 200],
			["nope", 404],
		] as const) {
			const response = await call("HEAD", path(id), { auth: app.auth });
			expect({ id, status: response.status, body: await response.text() }).toEqual({ id, status, body: "" });
		}
	});
});

describe("DELETE /registrations/:registrationId", () => {
	it("deletes the registration and its tags", async () => {
		const app = await createApp();
		await register(app, "reg-1", { registrationTags: ["x"] });
		await expectNoContent(await call("DELETE", path("reg-1"), { auth: app.auth }));
		expect(await expectMessage(await call("GET", path("reg-1"), { auth: app.auth }), 404)).toBe(
			"Registration [reg-1] was not found",
		);
		expect(await expectMessage(await call("GET", path("reg-1", "/tags"), { auth: app.auth }), 404)).toBe(
			"Registration [reg-1] was not found",
		);
	});

	it("keeps the learner and its tags while another registration names it", async () => {
		const app = await createApp();
		await register(app, "reg-1", { learnerTags: ["kept"] });
		await register(app, "reg-2");
		await expectNoContent(await call("DELETE", path("reg-1"), { auth: app.auth }));
		const response = await learnerTagsOf(app, "ada");
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ tags: ["kept"] });
	});

	it("removes the learner and its tags with its last registration; a new registration starts it without tags", async () => {
		const app = await createApp();
		await register(app, "reg-1", { learnerTags: ["old"] });
		await expectNoContent(await call("DELETE", path("reg-1"), { auth: app.auth }));
		expect(await expectMessage(await learnerTagsOf(app, "ada"), 404)).toBe("Learner [ada] was not found");
		expect(ids(await list(app, "?learnerId=ada"))).toEqual([]);
		// Nowhere in the realm: on no shard, and not in the control database.
		const remaining = {
			tags: await countOf("SELECT count(*) AS n FROM learner_tags WHERE app_id = ?1", app.appId),
			counts: await countOf("SELECT count(*) AS n FROM learner_tag_counts WHERE app_id = ?1", app.appId),
		};
		expect(remaining).toEqual({ tags: 0, counts: 0 });
		await register(app, "reg-2");
		const fresh = await learnerTagsOf(app, "ada");
		expect(fresh.status).toBe(200);
		expect(await fresh.json()).toEqual({ tags: [] });
	});

	it.each(TWO_APPS)("does not touch a learner of the same id in another application, %s", async (_, shards) => {
		const [first, second] = await appsOn(shards);
		await register(first, "reg-1", { learnerTags: ["first"] });
		await register(second, "reg-1", { learnerTags: ["second"] });
		await expectNoContent(await call("DELETE", path("reg-1"), { auth: first.auth }));
		const response = await learnerTagsOf(second, "ada");
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ tags: ["second"] });
	});

	it("answers 404 naming an unknown registration, and deletes nothing", async () => {
		const app = await createApp();
		await register(app, "reg-1");
		expect(await expectMessage(await call("DELETE", path("nope"), { auth: app.auth }), 404)).toBe(
			"Registration [nope] was not found",
		);
		expect((await fetchRegistration(app, "reg-1")).id).toBe("reg-1");
	});

	it("answers 403 naming the scope to a token holding only write:registration", async () => {
		const app = await createApp();
		await register(app, "reg-1");
		const response = await call("DELETE", path("reg-1"), { auth: await mintToken(app, "write:registration") });
		expect(await expectMessage(response, 403)).toBe('This operation requires the "delete:registration" scope');
	});
});

describe("GET /registrations/:registrationId/tags", () => {
	it("answers the tags in the order first applied", async () => {
		const app = await createApp();
		await register(app, "reg-1", { registrationTags: ["b", "a"] });
		await putTags(app, "registrations", "reg-1", ["c", "b"]);
		const response = await call("GET", path("reg-1", "/tags"), { auth: app.auth });
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ tags: ["b", "a", "c"] });
	});

	it("answers an empty list for a registration without tags", async () => {
		const app = await createApp();
		await register(app, "reg-1");
		const response = await call("GET", `${path("reg-1", "/tags")}?_=1`, { auth: app.auth });
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ tags: [] });
	});

	it("answers 404 naming an unknown registration", async () => {
		const app = await createApp();
		expect(await expectMessage(await call("GET", path("nope", "/tags"), { auth: app.auth }), 404)).toBe(
			"Registration [nope] was not found",
		);
	});

	it("answers 400 naming the limit to an id of 256 characters", async () => {
		const app = await createApp();
		const response = await call("GET", path("r".repeat(256), "/tags"), { auth: app.auth });
		expect(await expectMessage(response, 400)).toBe("Invalid request: registrationId must be at most 255 characters");
	});
});

describe("PUT /registrations/:registrationId/tags", () => {
	it("adds tags without removing existing ones, storing repeats once", async () => {
		const app = await createApp();
		await register(app, "reg-1", { registrationTags: ["old"] });
		const response = await call("PUT", path("reg-1", "/tags"), { auth: app.auth, body: { tags: ["new", "old", "new"] } });
		await expectNoContent(response);
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual(["old", "new"]);
	});

	it("leaves the learner's tags alone", async () => {
		const app = await createApp();
		await register(app, "reg-1", { learnerTags: ["learner"] });
		await putTags(app, "registrations", "reg-1", ["registration"]);
		expect(await (await learnerTagsOf(app, "ada")).json()).toEqual({ tags: ["learner"] });
	});

	it("answers 404 naming an unknown registration", async () => {
		const app = await createApp();
		const unknown = await call("PUT", path("nope", "/tags"), { auth: app.auth, body: { tags: ["x"] } });
		expect(await expectMessage(unknown, 404)).toBe("Registration [nope] was not found");
	});

	it("answers 403 naming the scope to a token holding only read:registration, which can still read", async () => {
		const app = await createApp();
		await register(app, "reg-1", { registrationTags: ["x"] });
		const token = await mintToken(app, "read:registration");
		const read = await call("GET", path("reg-1", "/tags"), { auth: token });
		expect(read.status).toBe(200);
		expect(await read.json()).toEqual({ tags: ["x"] });
		const write = await call("PUT", path("reg-1", "/tags"), { auth: token, body: { tags: ["y"] } });
		expect(await expectMessage(write, 403)).toBe('This operation requires the "write:registration" scope');
	});

	it("accepts tags at their limits and answers 400 naming the limit one past them", async () => {
		const app = await createApp();
		await register(app, "reg-1");
		await putTags(app, "registrations", "reg-1", ["t".repeat(255)]);
		await putTags(app, "registrations", "reg-1", range(100, "tag-"));
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual(["t".repeat(255), ...range(100, "tag-")]);
		const long = await call("PUT", path("reg-1", "/tags"), { auth: app.auth, body: { tags: ["t".repeat(256)] } });
		expect(await expectMessage(long, 400)).toBe("Invalid request: tags[0]: tag must be at most 255 characters");
		const many = await call("PUT", path("reg-1", "/tags"), { auth: app.auth, body: { tags: range(101, "more-") } });
		expect(await expectMessage(many, 400)).toBe("Invalid request: tags must hold at most 100 tags per request");
		const comma = await call("PUT", path("reg-1", "/tags"), { auth: app.auth, body: { tags: ["a,b"] } });
		expect(await expectMessage(comma, 400)).toBe(
			"Invalid request: tags[0]: tag must not contain a comma (tags are filtered as comma-separated lists)",
		);
		const control = await call("PUT", path("reg-1", "/tags"), { auth: app.auth, body: { tags: ["a\u0000"] } });
		expect(await expectMessage(control, 400)).toBe("Invalid request: tags[0]: tag must not contain control characters");
	});

	it("accepts the 1000th tag on a registration and refuses the 1001st, writing nothing", async () => {
		const app = await createApp();
		await register(app, "reg-1");
		const tags = range(1000, "t");
		for (let start = 0; start < 1000; start += 100) await putTags(app, "registrations", "reg-1", tags.slice(start, start + 100));
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual(tags);
		const response = await call("PUT", path("reg-1", "/tags"), { auth: app.auth, body: { tags: ["t1", "extra"] } });
		expect(await expectMessage(response, 400)).toBe(
			"Registration [reg-1] would have more than 1000 tags (limit: 1000 tags per registration)",
		);
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual(tags);
	});

	it("loses no tags when 20 requests adding different tags arrive at once", async () => {
		const app = await createApp();
		await register(app, "reg-1");
		const tags = range(20, "concurrent-");
		const responses = await Promise.all(
			tags.map((tag) => call("PUT", path("reg-1", "/tags"), { auth: app.auth, body: { tags: [tag] } })),
		);
		expect(responses.map((response) => response.status)).toEqual(tags.map(() => 204));
		expect([...((await tagsOf(app, "registrations", "reg-1")) ?? [])].sort()).toEqual([...tags].sort());
	});
});

describe("DELETE /registrations/:registrationId/tags", () => {
	it("removes the given tags, ignoring tags the registration does not have", async () => {
		const app = await createApp();
		await register(app, "reg-1", { registrationTags: ["a", "b", "c"] });
		const response = await call("DELETE", path("reg-1", "/tags"), { auth: app.auth, body: { tags: ["b", "zzz"] } });
		await expectNoContent(response);
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual(["a", "c"]);
		const nothingToRemove = await call("DELETE", path("reg-1", "/tags"), { auth: app.auth, body: { tags: ["zzz"] } });
		await expectNoContent(nothingToRemove);
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual(["a", "c"]);
	});

	it("answers 404 naming an unknown registration", async () => {
		const app = await createApp();
		const unknown = await call("DELETE", path("nope", "/tags"), { auth: app.auth, body: { tags: ["x"] } });
		expect(await expectMessage(unknown, 404)).toBe("Registration [nope] was not found");
	});

	it("answers 400 naming the limit to 101 tags", async () => {
		const app = await createApp();
		await register(app, "reg-1");
		const response = await call("DELETE", path("reg-1", "/tags"), { auth: app.auth, body: { tags: range(101, "t") } });
		expect(await expectMessage(response, 400)).toBe("Invalid request: tags must hold at most 100 tags per request");
	});

	it("answers 403 naming the scope to a token holding only read:registration", async () => {
		const app = await createApp();
		await register(app, "reg-1", { registrationTags: ["x"] });
		const response = await call("DELETE", path("reg-1", "/tags"), {
			auth: await mintToken(app, "read:registration"),
			body: { tags: ["x"] },
		});
		expect(await expectMessage(response, 403)).toBe('This operation requires the "write:registration" scope');
	});
});

describe("PUT /registrations/tags", () => {
	const batch = (app: TestApp, registrationIds: string[], tags: string[], auth = app.auth) =>
		call("PUT", "/registrations/tags", { auth, body: { ids: registrationIds, tags } });

	it("adds every tag to every registration without removing existing ones", async () => {
		const app = await createApp();
		await register(app, "reg-1", { registrationTags: ["old"] });
		await register(app, "reg-2");
		await expectNoContent(await batch(app, ["reg-1", "reg-2", "reg-1"], ["x", "old", "x"]));
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual(["old", "x"]);
		expect(await tagsOf(app, "registrations", "reg-2")).toEqual(["x", "old"]);
	});

	it("answers 404 listing the unknown ids and changes nothing", async () => {
		const app = await createApp();
		await register(app, "reg-1");
		const one = await batch(app, ["reg-1", "ghost"], ["x"]);
		expect(await expectMessage(one, 404)).toBe("Registration [ghost] was not found; no tags were added");
		const two = await batch(app, ["ghost-1", "reg-1", "ghost-2"], ["x"]);
		expect(await expectMessage(two, 404)).toBe("Registrations [ghost-1], [ghost-2] were not found; no tags were added");
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual([]);
	});

	it("answers 400 naming the limit to 1001 ids, 101 tags or an id of 256 characters", async () => {
		const app = await createApp();
		const manyIds = await batch(app, range(1001, "r"), ["x"]);
		expect(await expectMessage(manyIds, 400)).toBe("Invalid request: ids must hold at most 1000 ids per batch");
		const manyTags = await batch(app, ["r"], range(101, "t"));
		expect(await expectMessage(manyTags, 400)).toBe("Invalid request: tags must hold at most 100 tags per request");
		const longId = await batch(app, ["r".repeat(256)], ["x"]);
		expect(await expectMessage(longId, 400)).toBe("Invalid request: ids[0]: id must be at most 255 characters");
	});

	it("accepts exactly 1000 ids", async () => {
		const app = await createApp();
		const registrationIds = range(1000, "reg-");
		await insertRegistrations(
			app.appId,
			registrationIds.map((id) => ({ id, courseId: "course-1", learnerId: "ada" })),
		);
		await expectNoContent(await batch(app, registrationIds, ["cohort", "2024"]));
		expect(await tagsOf(app, "registrations", "reg-0")).toEqual(["cohort", "2024"]);
		expect(await tagsOf(app, "registrations", "reg-999")).toEqual(["cohort", "2024"]);
	});

	it("answers 403 naming the scope to a token holding only read:registration", async () => {
		const app = await createApp();
		await register(app, "reg-1");
		const response = await batch(app, ["reg-1"], ["x"], await mintToken(app, "read:registration"));
		expect(await expectMessage(response, 403)).toBe('This operation requires the "write:registration" scope');
	});
});
