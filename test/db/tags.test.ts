import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { LEARNER_TAGS, REGISTRATION_TAGS, TagLimitError, addTags, getTags, removeTags } from "../../src/db/tags";
import { range } from "../support/fixtures";
import { findPlacement } from "../../src/db/applications";
import { DEFAULT_LIMITS, insertRegistrations, seedApplication, shardOf } from "../support/seed";

// src/db/tags.ts on its own, apart from the routes: SPEC §3's rules for tags, on learners and on registrations.
// A learner exists while one of its application's registrations names it; ids and tags are exact strings. The
// functions run on the application's shard; applications told apart are placed on the same shard, so only the
// application id keeps their rows apart.

/** Gives the application these learners (one registration each, `<learnerId>-registration`); its id. */
async function withLearners(appId: string, learnerIds: string[]): Promise<string> {
	await insertRegistrations(
		appId,
		learnerIds.map((learnerId) => ({ id: `${learnerId}-registration`, courseId: "course", learnerId })),
	);
	return appId;
}

/** A new application whose learners are these. */
const appWithLearners = async (...learnerIds: string[]) => withLearners(await seedApplication(), learnerIds);

/** A new application on the same shard as `appId`. */
async function appBeside(appId: string): Promise<string> {
	const placement = await findPlacement(env.DB, appId);
	if (!placement) throw new Error(`no application ${appId}`);
	return seedApplication({ shard: placement.shard });
}

/** What a tag write threw (the test fails if it did not throw). */
async function refusal(write: Promise<unknown>): Promise<unknown> {
	return write.then(
		() => expect.fail("the write was not refused"),
		(error: unknown) => error,
	);
}

describe("getTags", () => {
	it("answers null for a learner no registration names", async () => {
		const appId = await appWithLearners("ada");
		const db = await shardOf(appId);

		expect(await getTags(db, LEARNER_TAGS, appId, "nobody")).toBeNull();
	});

	it("answers null for another application's learner", async () => {
		const owner = await appWithLearners("ada");
		const appId = await appBeside(owner);
		const db = await shardOf(appId);

		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toBeNull();
	});

	it("treats learner ids as case-sensitive", async () => {
		const appId = await appWithLearners("ada");
		const db = await shardOf(appId);

		expect(await getTags(db, LEARNER_TAGS, appId, "Ada")).toBeNull();
	});

	it("answers an empty list for a learner without tags", async () => {
		const appId = await appWithLearners("ada");
		const db = await shardOf(appId);

		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toEqual([]);
	});

	it("answers the tags in the order first applied", async () => {
		const appId = await appWithLearners("ada");
		const db = await shardOf(appId);
		await addTags(db, LEARNER_TAGS, appId, ["ada"], ["b", "a"], DEFAULT_LIMITS);
		await addTags(db, LEARNER_TAGS, appId, ["ada"], ["c", "a", "d"], DEFAULT_LIMITS);

		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toEqual(["b", "a", "c", "d"]);
	});

	it("answers a registration's tags, apart from its learner's", async () => {
		const appId = await appWithLearners("ada");
		const db = await shardOf(appId);
		await addTags(db, REGISTRATION_TAGS, appId, ["ada-registration"], ["r"], DEFAULT_LIMITS);
		await addTags(db, LEARNER_TAGS, appId, ["ada"], ["l"], DEFAULT_LIMITS);

		expect(await getTags(db, REGISTRATION_TAGS, appId, "ada-registration")).toEqual(["r"]);
		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toEqual(["l"]);
		expect(await getTags(db, REGISTRATION_TAGS, appId, "ada")).toBeNull();
	});
});

describe("addTags", () => {
	it("adds every tag to every owner, keeping the tags they had, and answers no unknown id", async () => {
		const appId = await appWithLearners("ada", "bob");
		const db = await shardOf(appId);
		await addTags(db, LEARNER_TAGS, appId, ["ada"], ["old"], DEFAULT_LIMITS);

		expect(await addTags(db, LEARNER_TAGS, appId, ["ada", "bob"], ["x", "old"], DEFAULT_LIMITS)).toEqual([]);

		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toEqual(["old", "x"]);
		expect(await getTags(db, LEARNER_TAGS, appId, "bob")).toEqual(["x", "old"]);
	});

	it("treats tags as case-sensitive", async () => {
		const appId = await appWithLearners("ada");
		const db = await shardOf(appId);

		await addTags(db, LEARNER_TAGS, appId, ["ada"], ["Tag", "tag", "TAG"], DEFAULT_LIMITS);

		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toEqual(["Tag", "tag", "TAG"]);
	});

	it("writes nothing when any id is unknown, and answers the unknown ids in request order", async () => {
		const appId = await appWithLearners("ada");
		const db = await shardOf(appId);
		await addTags(db, LEARNER_TAGS, appId, ["ada"], ["old"], DEFAULT_LIMITS);

		const unknown = await addTags(db, LEARNER_TAGS, appId, ["zed", "ada", "amy"], ["new"], DEFAULT_LIMITS);

		expect(unknown).toEqual(["zed", "amy"]);
		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toEqual(["old"]);
	});

	it("treats another application's learners as unknown, writing into neither application", async () => {
		const owner = await appWithLearners("ada");
		const other = await withLearners(await appBeside(owner), ["bob"]);
		const db = await shardOf(owner);

		expect(await addTags(db, LEARNER_TAGS, other, ["bob", "ada"], ["theirs"], DEFAULT_LIMITS)).toEqual(["ada"]);

		expect(await getTags(db, LEARNER_TAGS, other, "bob")).toEqual([]);
		expect(await getTags(db, LEARNER_TAGS, owner, "ada")).toEqual([]);
	});

	it("throws TagLimitError naming the owners that would pass 1000 tags, and writes nothing", async () => {
		const appId = await appWithLearners("ada", "bob", "cy");
		const db = await shardOf(appId);
		const full = range(1000, "t");
		await addTags(db, LEARNER_TAGS, appId, ["ada", "cy"], full, DEFAULT_LIMITS);

		const error = await refusal(addTags(db, LEARNER_TAGS, appId, ["bob", "ada", "cy"], ["one-too-many"], DEFAULT_LIMITS));

		expect(error).toBeInstanceOf(TagLimitError);
		expect([...(error as TagLimitError).ownerIds].sort()).toEqual(["ada", "cy"]);
		expect(await getTags(db, LEARNER_TAGS, appId, "bob")).toEqual([]);
		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toEqual(full);
	});

	it("accepts tags an owner at the limit already has", async () => {
		const appId = await appWithLearners("ada");
		const db = await shardOf(appId);
		const full = range(1000, "t");
		await addTags(db, LEARNER_TAGS, appId, ["ada"], full, DEFAULT_LIMITS);

		expect(await addTags(db, LEARNER_TAGS, appId, ["ada"], ["t0", "t999"], DEFAULT_LIMITS)).toEqual([]);

		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toEqual(full);
	});

	it("holds registrations to the same rules: unknown ids answered, 1000 tags at most", async () => {
		const appId = await appWithLearners("ada");
		const db = await shardOf(appId);
		const full = range(1000, "t");

		expect(await addTags(db, REGISTRATION_TAGS, appId, ["ada-registration", "ghost"], ["x"], DEFAULT_LIMITS)).toEqual(["ghost"]);
		expect(await addTags(db, REGISTRATION_TAGS, appId, ["ada-registration"], full, DEFAULT_LIMITS)).toEqual([]);
		const error = await refusal(addTags(db, REGISTRATION_TAGS, appId, ["ada-registration"], ["extra"], DEFAULT_LIMITS));

		expect(error).toBeInstanceOf(TagLimitError);
		expect((error as TagLimitError).ownerIds).toEqual(["ada-registration"]);
		expect(await getTags(db, REGISTRATION_TAGS, appId, "ada-registration")).toEqual(full);
	});
});

describe("removeTags", () => {
	it("removes the given tags, ignores tags the owner lacks, and keeps the rest in order", async () => {
		const appId = await appWithLearners("ada");
		const db = await shardOf(appId);
		await addTags(db, LEARNER_TAGS, appId, ["ada"], ["a", "b", "c", "d"], DEFAULT_LIMITS);

		expect(await removeTags(db, LEARNER_TAGS, appId, "ada", ["b", "never", "d"], DEFAULT_LIMITS)).toBe(true);

		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toEqual(["a", "c"]);
	});

	it("answers false for an owner that does not exist, nor for another application's", async () => {
		const owner = await appWithLearners("ada");
		const db = await shardOf(owner);
		await addTags(db, LEARNER_TAGS, owner, ["ada"], ["mine"], DEFAULT_LIMITS);
		const other = await appBeside(owner);

		expect(await removeTags(db, LEARNER_TAGS, owner, "nobody", ["mine"], DEFAULT_LIMITS)).toBe(false);
		expect(await removeTags(db, LEARNER_TAGS, other, "ada", ["mine"], DEFAULT_LIMITS)).toBe(false);

		expect(await getTags(db, LEARNER_TAGS, owner, "ada")).toEqual(["mine"]);
	});

	it("puts a tag added again after its removal at the end", async () => {
		const appId = await appWithLearners("ada");
		const db = await shardOf(appId);
		await addTags(db, LEARNER_TAGS, appId, ["ada"], ["a", "b"], DEFAULT_LIMITS);

		await removeTags(db, LEARNER_TAGS, appId, "ada", ["a"], DEFAULT_LIMITS);
		await addTags(db, LEARNER_TAGS, appId, ["ada"], ["a"], DEFAULT_LIMITS);

		expect(await getTags(db, LEARNER_TAGS, appId, "ada")).toEqual(["b", "a"]);
	});

	it("makes room under the limit for exactly as many tags as it removed", async () => {
		const appId = await appWithLearners("ada");
		const db = await shardOf(appId);
		await addTags(db, LEARNER_TAGS, appId, ["ada"], range(1000, "t"), DEFAULT_LIMITS);

		await removeTags(db, LEARNER_TAGS, appId, "ada", ["t0", "t1", "not-there"], DEFAULT_LIMITS);

		expect(await addTags(db, LEARNER_TAGS, appId, ["ada"], ["new-1", "new-2"], DEFAULT_LIMITS)).toEqual([]);
		expect(await refusal(addTags(db, LEARNER_TAGS, appId, ["ada"], ["new-3"], DEFAULT_LIMITS))).toBeInstanceOf(TagLimitError);
		const tags = await getTags(db, LEARNER_TAGS, appId, "ada");
		expect(tags).toHaveLength(1000);
		expect(tags?.slice(-2)).toEqual(["new-1", "new-2"]);
	});
});
