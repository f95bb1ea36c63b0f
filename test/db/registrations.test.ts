import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
	type NewRegistration,
	type RegistrationFilter,
	type RegistrationOrder,
	createRegistration,
	deleteRegistration,
	getRegistration,
	listRegistrations,
} from "../../src/db/registrations";
import { findPlacement } from "../../src/db/applications";
import { LEARNER_TAGS, REGISTRATION_TAGS, TagLimitError, getTags } from "../../src/db/tags";
import { range } from "../support/fixtures";
import { DEFAULT_LIMITS, seedApplication, setRegistrationDates, shardOf } from "../support/seed";

// src/db/registrations.ts on its own, apart from the routes: SPEC §4's registrations, and §3's rule that a
// learner exists while one of its application's registrations names it. The functions run on the application's
// shard; applications told apart are placed on the same shard, so only the application id keeps their rows apart.

/** A new application on the same shard as `appId`. */
async function appBeside(appId: string): Promise<string> {
	const placement = await findPlacement(env.DB, appId);
	if (!placement) throw new Error(`no application ${appId}`);
	return seedApplication({ shard: placement.shard });
}

/** A registration of learner "ada" on course-1, created now, without tags, unless `fields` say otherwise. */
const registration = (id: string, fields: Partial<NewRegistration> = {}): NewRegistration => ({
	id,
	courseId: "course-1",
	learner: { id: "ada" },
	xapiRegistrationId: crypto.randomUUID(),
	learnerTags: [],
	registrationTags: [],
	createdAt: new Date().toISOString(),
	...fields,
});

/** Creates the registrations in order, asserting each was created. */
async function create(appId: string, ...registrations: NewRegistration[]): Promise<void> {
	const db = await shardOf(appId);
	for (const entry of registrations) expect(await createRegistration(db, appId, entry, DEFAULT_LIMITS)).toBe(true);
}

describe("createRegistration", () => {
	it("stores the registration, its tags and its learner's tags, as getRegistration answers them", async () => {
		const appId = await seedApplication();
		const db = await shardOf(appId);
		const learner = { id: "ada", email: "ada@example.com", firstName: "Ada", lastName: "Lovelace" };
		const created = registration("reg-1", { courseId: "course-9", learner, registrationTags: ["r1", "r2"], learnerTags: ["l1"] });

		expect(await createRegistration(db, appId, created, DEFAULT_LIMITS)).toBe(true);

		expect(await getRegistration(db, appId, "reg-1")).toEqual({
			pk: expect.any(Number),
			id: "reg-1",
			courseId: "course-9",
			learner,
			instance: 0,
			xapiRegistrationId: created.xapiRegistrationId,
			createdAt: created.createdAt,
			updatedAt: created.createdAt,
			tags: ["r1", "r2"],
		});
		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toEqual(["l1"]);
	});

	it("leaves learner fields that were never given unset", async () => {
		const appId = await seedApplication();
		const db = await shardOf(appId);
		await create(appId, registration("reg-1"));

		expect((await getRegistration(db, appId, "reg-1"))?.learner).toEqual({ id: "ada", email: null, firstName: null, lastName: null });
	});

	it("adds learner tags to an existing learner without removing its tags", async () => {
		const appId = await seedApplication();
		const db = await shardOf(appId);
		await create(appId, registration("reg-1", { learnerTags: ["a", "b"] }), registration("reg-2", { learnerTags: ["c", "a"] }));

		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toEqual(["a", "b", "c"]);
	});

	it("answers false to an id the application already has, keeping the original and writing nothing", async () => {
		const appId = await seedApplication();
		const db = await shardOf(appId);
		await create(appId, registration("reg-1", { courseId: "original", registrationTags: ["kept"] }));
		const before = await getRegistration(db, appId, "reg-1");

		const duplicate = registration("reg-1", { courseId: "other", learner: { id: "bob" }, learnerTags: ["never"], registrationTags: ["never"] });
		expect(await createRegistration(db, appId, duplicate, DEFAULT_LIMITS)).toBe(false);

		expect(await getRegistration(db, appId, "reg-1")).toEqual(before);
		expect(await getTags(db, LEARNER_TAGS, appId, "bob")).toBeNull();
	});

	it("lets two applications use the same id", async () => {
		const first = await seedApplication();
		const second = await appBeside(first);
		const db = await shardOf(first);

		await create(first, registration("reg-1", { courseId: "first" }));
		await create(second, registration("reg-1", { courseId: "second" }));

		expect((await getRegistration(db, first, "reg-1"))?.courseId).toBe("first");
		expect((await getRegistration(db, second, "reg-1"))?.courseId).toBe("second");
	});

	it("throws TagLimitError naming the learner when its tags would pass 1000, creating nothing", async () => {
		const appId = await seedApplication();
		const db = await shardOf(appId);
		await create(appId, registration("reg-1", { learnerTags: range(1000, "t") }));

		const refused = createRegistration(db, appId, registration("reg-2", { learnerTags: ["one-too-many"] }), DEFAULT_LIMITS);

		const error: unknown = await refused.then(() => expect.fail("the registration was created"), (thrown: unknown) => thrown);
		expect(error).toBeInstanceOf(TagLimitError);
		expect((error as TagLimitError).ownerIds).toEqual(["ada"]);
		expect(await getRegistration(db, appId, "reg-2")).toBeNull();
		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toEqual(range(1000, "t"));
	});
});

describe("getRegistration", () => {
	it("answers null for an unknown id and for another application's registration", async () => {
		const owner = await seedApplication();
		const other = await appBeside(owner);
		const db = await shardOf(owner);
		await create(owner, registration("reg-1"));

		expect(await getRegistration(db, owner, "nope")).toBeNull();
		expect(await getRegistration(db, other, "reg-1")).toBeNull();
	});
});

describe("listRegistrations", () => {
	const filter = (fields: Partial<RegistrationFilter> = {}): RegistrationFilter => ({ datetimeFilter: "created", ...fields });
	const ids = async (appId: string, fields: Partial<RegistrationFilter> = {}, order: RegistrationOrder = "created_asc") =>
		(await listRegistrations(await shardOf(appId), appId, { filter: filter(fields), order, limit: 100, count: false })).registrations.map(
			(entry) => entry.id,
		);

	/** jan, feb, mar: created on the 15th of each month of 2024, last updated in the reverse order. */
	async function quarter(appId: string): Promise<void> {
		await create(appId, registration("jan"), registration("feb"), registration("mar"));
		await setRegistrationDates(appId, "jan", { createdAt: "2024-01-15T00:00:00.000Z", updatedAt: "2024-06-03T00:00:00.000Z" });
		await setRegistrationDates(appId, "feb", { createdAt: "2024-02-15T00:00:00.000Z", updatedAt: "2024-06-02T00:00:00.000Z" });
		await setRegistrationDates(appId, "mar", { createdAt: "2024-03-15T00:00:00.000Z", updatedAt: "2024-06-01T00:00:00.000Z" });
	}

	it("lists only the application's registrations, in full", async () => {
		const appId = await seedApplication();
		const other = await appBeside(appId);
		const db = await shardOf(appId);
		await create(appId, registration("reg-b", { registrationTags: ["x"] }), registration("reg-a", { learner: { id: "bob" } }));
		await create(other, registration("reg-other"));

		const { registrations } = await listRegistrations(db, appId, { filter: filter(), order: "created_asc", limit: 100, count: false });

		expect(registrations).toEqual([await getRegistration(db, appId, "reg-b"), await getRegistration(db, appId, "reg-a")]);
	});

	it("orders by creation or by last update, either way", async () => {
		const appId = await seedApplication();
		await quarter(appId);

		expect(await ids(appId, {}, "created_asc")).toEqual(["jan", "feb", "mar"]);
		expect(await ids(appId, {}, "created_desc")).toEqual(["mar", "feb", "jan"]);
		expect(await ids(appId, {}, "updated_asc")).toEqual(["mar", "feb", "jan"]);
		expect(await ids(appId, {}, "updated_desc")).toEqual(["jan", "feb", "mar"]);
	});

	it("bounds by since and until, both inclusive, on the creation date or on the last update", async () => {
		const appId = await seedApplication();
		await quarter(appId);

		expect(await ids(appId, { since: "2024-02-15T00:00:00.000Z" })).toEqual(["feb", "mar"]);
		expect(await ids(appId, { until: "2024-02-15T00:00:00.000Z" })).toEqual(["jan", "feb"]);
		expect(await ids(appId, { since: "2024-02-01T00:00:00.000Z", until: "2024-02-28T00:00:00.000Z" })).toEqual(["feb"]);
		expect(await ids(appId, { datetimeFilter: "updated", since: "2024-06-02T00:00:00.000Z" })).toEqual(["jan", "feb"]);
		expect(await ids(appId, { datetimeFilter: "updated", until: "2024-06-01T00:00:00.000Z" })).toEqual(["mar"]);
	});

	it("filters by course, by learner, and by tags (any of them), together or apart", async () => {
		const appId = await seedApplication();
		await create(
			appId,
			registration("r1", { courseId: "math", registrationTags: ["red"] }),
			registration("r2", { courseId: "math", learner: { id: "bob" }, registrationTags: ["green"] }),
			registration("r3", { courseId: "art", registrationTags: ["blue", "red"] }),
			registration("r4", { courseId: "math" }),
		);

		expect(await ids(appId, { courseId: "math" })).toEqual(["r1", "r2", "r4"]);
		expect(await ids(appId, { courseId: "Math" })).toEqual([]);
		expect(await ids(appId, { learnerId: "bob" })).toEqual(["r2"]);
		expect(await ids(appId, { learnerId: "nobody" })).toEqual([]);
		expect(await ids(appId, { tags: ["red"] })).toEqual(["r1", "r3"]);
		expect(await ids(appId, { tags: ["blue", "green"] })).toEqual(["r2", "r3"]);
		expect(await ids(appId, { courseId: "math", learnerId: "ada", tags: ["red"] })).toEqual(["r1"]);
	});

	it("pages: each page starts after the position where the previous one ended, and the count is of every match", async () => {
		const appId = await seedApplication();
		const db = await shardOf(appId);
		const all = range(5, "r");
		await create(appId, ...all.map((id) => registration(id)));
		const query = { filter: filter(), order: "created_asc" as const, limit: 2 };

		const first = await listRegistrations(db, appId, { ...query, count: true });
		const last = first.registrations.at(-1);
		const second = await listRegistrations(db, appId, {
			...query,
			count: false,
			...(last && { position: { pk: last.pk, createdAt: last.createdAt, updatedAt: last.updatedAt } }),
		});

		expect(first.registrations.map((entry) => entry.id)).toEqual(all.slice(0, 2));
		expect(first.total).toBe(5);
		expect(second.registrations.map((entry) => entry.id)).toEqual(all.slice(2, 4));
		expect(second.total).toBeUndefined();
	});
});

describe("deleteRegistration", () => {
	it("deletes the registration and its tags, keeping its learner while another registration names it", async () => {
		const appId = await seedApplication();
		const db = await shardOf(appId);
		await create(appId, registration("reg-1", { registrationTags: ["x"], learnerTags: ["kept"] }), registration("reg-2"));

		expect(await deleteRegistration(db, appId, "reg-1", DEFAULT_LIMITS)).toBe(true);

		expect(await getRegistration(db, appId, "reg-1")).toBeNull();
		expect(await getTags(db, REGISTRATION_TAGS, appId, "reg-1")).toBeNull();
		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toEqual(["kept"]);
	});

	it("removes the learner and its tags with its last registration; a new registration starts it without tags", async () => {
		const appId = await seedApplication();
		const db = await shardOf(appId);
		await create(appId, registration("reg-1", { learnerTags: ["old"] }));

		await deleteRegistration(db, appId, "reg-1", DEFAULT_LIMITS);

		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toBeNull();
		await create(appId, registration("reg-2"));
		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toEqual([]);
	});

	it("answers false for an unknown id and for another application's registration, which stays", async () => {
		const owner = await seedApplication();
		const other = await appBeside(owner);
		const db = await shardOf(owner);
		await create(owner, registration("reg-1", { learnerTags: ["mine"] }));

		expect(await deleteRegistration(db, owner, "nope", DEFAULT_LIMITS)).toBe(false);
		expect(await deleteRegistration(db, other, "reg-1", DEFAULT_LIMITS)).toBe(false);

		expect((await getRegistration(db, owner, "reg-1"))?.id).toBe("reg-1");
		expect(await getTags(db, LEARNER_TAGS, owner, "ada")).toEqual(["mine"]);
	});

	it("leaves a learner of the same id in another application alone", async () => {
		const first = await seedApplication();
		const second = await appBeside(first);
		const db = await shardOf(first);
		await create(first, registration("reg-1", { learnerTags: ["first"] }));
		await create(second, registration("reg-1", { learnerTags: ["second"] }));

		await deleteRegistration(db, first, "reg-1", DEFAULT_LIMITS);

		expect(await getTags(db, LEARNER_TAGS, second, "ada")).toEqual(["second"]);
	});
});
