import { describe, expect, it } from "vitest";
import { call } from "../support/client";
import { expectMessage, expectNoContent } from "../support/expect";
import { createApp, enrol, mintToken, putTags, range, tagsOf, type TestApp, UNUSUAL_IDS } from "../support/fixtures";
import { seedRegistrations } from "../support/seed";

const tagsPath = (learnerId: string) => `/learner/${encodeURIComponent(learnerId)}/tags`;


/** A learner holding exactly 1000 tags (the limit), t0..t999 in that order. */
async function learnerAtTagLimit(app: TestApp, learnerId: string): Promise<{ tags: string[]; registrationId: string }> {
	const registrationId = await enrol(app, learnerId);
	const tags = range(1000, "t");
	for (let start = 0; start < tags.length; start += 100) await putTags(app, "learner", learnerId, tags.slice(start, start + 100));
	return { tags, registrationId };
}


describe("GET /learner/:learnerId/tags", () => {
	it("answers the learner's tags in the order first applied", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["b", "a"] });
		await putTags(app, "learner", "ada", ["c", "a", "d"]);
		const response = await call("GET", tagsPath("ada"), { auth: app.auth });
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ tags: ["b", "a", "c", "d"] });
	});

	it("answers an empty list for a learner without tags", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const response = await call("GET", tagsPath("ada"), { auth: app.auth });
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ tags: [] });
	});

	it("answers 404 naming an unknown learner", async () => {
		const app = await createApp();
		const response = await call("GET", tagsPath("nobody"), { auth: app.auth });
		expect(await expectMessage(response, 404)).toBe("Learner [nobody] was not found");
	});

	it("treats learner ids as case-sensitive", async () => {
		const app = await createApp();
		await enrol(app, "Ada", { learnerTags: ["x"] });
		const response = await call("GET", tagsPath("ada"), { auth: app.auth });
		expect(await expectMessage(response, 404)).toBe("Learner [ada] was not found");
	});

	it("keeps the same learner id in two applications apart", async () => {
		const first = await createApp();
		const second = await createApp();
		await enrol(first, "ada", { learnerTags: ["first"] });
		await enrol(second, "ada", { learnerTags: ["second"] });
		expect(await tagsOf(first, "learner", "ada")).toEqual(["first"]);
		expect(await tagsOf(second, "learner", "ada")).toEqual(["second"]);
	});

	it("answers 200 to a token holding read:learner", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["x"] });
		const response = await call("GET", tagsPath("ada"), { auth: await mintToken(app, "read:learner") });
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ tags: ["x"] });
	});

	it("answers 403 naming the scope to a token without read:learner", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const response = await call("GET", tagsPath("ada"), { auth: await mintToken(app, "read:registration") });
		expect(await expectMessage(response, 403)).toBe('This operation requires the "read:learner" scope');
	});

	it("answers 401 without credentials", async () => {
		const response = await call("GET", tagsPath("ada"));
		expect(await expectMessage(response, 401)).toMatch(/Authentication required/);
	});

	it("ignores unknown query parameters", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["x"] });
		const response = await call("GET", `${tagsPath("ada")}?_=1234567890123&other=value`, { auth: app.auth });
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ tags: ["x"] });
	});

	it("accepts a learner id of exactly 255 characters", async () => {
		const app = await createApp();
		const id = "l".repeat(255);
		await enrol(app, id, { learnerTags: ["x"] });
		const response = await call("GET", tagsPath(id), { auth: app.auth });
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ tags: ["x"] });
	});

	it("counts characters, not UTF-16 units, toward the id limit", async () => {
		const app = await createApp();
		const id = "🎓".repeat(255);
		await enrol(app, id, { learnerTags: ["x"] });
		expect(await tagsOf(app, "learner", id)).toEqual(["x"]);
	});

	it("answers 400 naming the limit to a learner id of 256 characters", async () => {
		const app = await createApp();
		const response = await call("GET", tagsPath("l".repeat(256)), { auth: app.auth });
		expect(await expectMessage(response, 400)).toBe("Invalid request: learnerId must be at most 255 characters");
	});

	it("answers 400 to a learner id holding a control character", async () => {
		const app = await createApp();
		const response = await call("GET", tagsPath("ada\u0007"), { auth: app.auth });
		expect(await expectMessage(response, 400)).toBe("Invalid request: learnerId must not contain control characters");
	});

	it.each(UNUSUAL_IDS)("round-trips the learner id %j through an encoded path", async (id) => {
		const app = await createApp();
		await enrol(app, id, { learnerTags: ["from-registration"] });
		await putTags(app, "learner", id, ["added"]);
		expect(await tagsOf(app, "learner", id)).toEqual(["from-registration", "added"]);
		await expectNoContent(await call("DELETE", tagsPath(id), { auth: app.auth, body: { tags: ["added"] } }));
		expect(await tagsOf(app, "learner", id)).toEqual(["from-registration"]);
	});
});

describe("PUT /learner/:learnerId/tags", () => {
	it("adds tags without removing existing ones", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["old"] });
		const response = await call("PUT", tagsPath("ada"), { auth: app.auth, body: { tags: ["new"] } });
		await expectNoContent(response);
		expect(await tagsOf(app, "learner", "ada")).toEqual(["old", "new"]);
	});

	it("stores a tag repeated within one request once", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		await putTags(app, "learner", "ada", ["x", "y", "x", "y", "x"]);
		expect(await tagsOf(app, "learner", "ada")).toEqual(["x", "y"]);
	});

	it("stores a tag applied again once, keeping its first position", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		await putTags(app, "learner", "ada", ["first", "second"]);
		await putTags(app, "learner", "ada", ["third", "first"]);
		expect(await tagsOf(app, "learner", "ada")).toEqual(["first", "second", "third"]);
	});

	it("treats tags as case-sensitive", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		await putTags(app, "learner", "ada", ["Tag", "tag", "TAG"]);
		expect(await tagsOf(app, "learner", "ada")).toEqual(["Tag", "tag", "TAG"]);
	});

	it("accepts an empty list and changes nothing", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["x"] });
		await putTags(app, "learner", "ada", []);
		expect(await tagsOf(app, "learner", "ada")).toEqual(["x"]);
	});

	it("answers 404 naming an unknown learner", async () => {
		const app = await createApp();
		const response = await call("PUT", tagsPath("nobody"), { auth: app.auth, body: { tags: ["x"] } });
		expect(await expectMessage(response, 404)).toBe("Learner [nobody] was not found");
	});

	it("answers 403 naming the scope to a token holding only read:learner, which can still read", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["x"] });
		const token = await mintToken(app, "read:learner");
		const read = await call("GET", tagsPath("ada"), { auth: token });
		expect(read.status).toBe(200);
		expect(await read.json()).toEqual({ tags: ["x"] });
		const write = await call("PUT", tagsPath("ada"), { auth: token, body: { tags: ["y"] } });
		expect(await expectMessage(write, 403)).toBe('This operation requires the "write:learner" scope');
		expect(await tagsOf(app, "learner", "ada")).toEqual(["x"]);
	});

	it("answers 204 to a token holding write:learner", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const token = await mintToken(app, "write:learner");
		const response = await call("PUT", tagsPath("ada"), { auth: token, body: { tags: ["y"] } });
		await expectNoContent(response);
		expect(await tagsOf(app, "learner", "ada")).toEqual(["y"]);
	});

	it("accepts a tag of exactly 255 characters", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const tag = "t".repeat(255);
		await putTags(app, "learner", "ada", [tag]);
		expect(await tagsOf(app, "learner", "ada")).toEqual([tag]);
	});

	it("answers 400 naming the limit to a tag of 256 characters, and writes nothing", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const response = await call("PUT", tagsPath("ada"), { auth: app.auth, body: { tags: ["ok", "t".repeat(256)] } });
		expect(await expectMessage(response, 400)).toBe("Invalid request: tags[1]: tag must be at most 255 characters");
		expect(await tagsOf(app, "learner", "ada")).toEqual([]);
	});

	it("answers 400 to a tag holding a comma", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const response = await call("PUT", tagsPath("ada"), { auth: app.auth, body: { tags: ["a,b"] } });
		expect(await expectMessage(response, 400)).toBe(
			"Invalid request: tags[0]: tag must not contain a comma (tags are filtered as comma-separated lists)",
		);
	});

	it.each([
		["NUL", "\u0000"],
		["bell", "\u0007"],
		["newline", "\n"],
		["tab", "\t"],
		["DEL", "\u007f"],
		["C1 next-line", "\u0085"],
	])("answers 400 to a tag holding a control character (%s)", async (_name, control) => {
		const app = await createApp();
		await enrol(app, "ada");
		const response = await call("PUT", tagsPath("ada"), { auth: app.auth, body: { tags: [`bad${control}tag`] } });
		expect(await expectMessage(response, 400)).toBe("Invalid request: tags[0]: tag must not contain control characters");
	});

	it("answers 400 to an empty tag", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const response = await call("PUT", tagsPath("ada"), { auth: app.auth, body: { tags: [""] } });
		expect(await expectMessage(response, 400)).toBe("Invalid request: tags[0]: tag must not be empty");
	});

	it("accepts exactly 100 tags in one request", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const tags = range(100, "tag-");
		await putTags(app, "learner", "ada", tags);
		expect(await tagsOf(app, "learner", "ada")).toEqual(tags);
	});

	it("answers 400 naming the limit to 101 tags in one request", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const response = await call("PUT", tagsPath("ada"), { auth: app.auth, body: { tags: range(101, "tag-") } });
		expect(await expectMessage(response, 400)).toBe("Invalid request: tags must hold at most 100 tags per request");
		expect(await tagsOf(app, "learner", "ada")).toEqual([]);
	});

	it("accepts the 1000th tag on a learner and refuses the 1001st with a 400 naming the limit, writing nothing", async () => {
		const app = await createApp();
		const { tags } = await learnerAtTagLimit(app, "ada");
		expect(await tagsOf(app, "learner", "ada")).toEqual(tags);
		const response = await call("PUT", tagsPath("ada"), { auth: app.auth, body: { tags: ["t5", "one-too-many"] } });
		expect(await expectMessage(response, 400)).toBe(
			"Learner [ada] would have more than 1000 tags (limit: 1000 tags per learner)",
		);
		expect(await tagsOf(app, "learner", "ada")).toEqual(tags);
	});

	it("accepts tags the learner already has when it is at the limit", async () => {
		const app = await createApp();
		const { tags } = await learnerAtTagLimit(app, "ada");
		await putTags(app, "learner", "ada", ["t0", "t999"]);
		expect(await tagsOf(app, "learner", "ada")).toEqual(tags);
	});

	it("loses no tags when 20 requests adding different tags arrive at once", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const tags = range(20, "concurrent-");
		const responses = await Promise.all(
			tags.map((tag) => call("PUT", tagsPath("ada"), { auth: app.auth, body: { tags: [tag, "shared"] } })),
		);
		expect(responses.map((response) => response.status)).toEqual(tags.map(() => 204));
		const stored = (await tagsOf(app, "learner", "ada")) ?? [];
		expect([...stored].sort()).toEqual([...tags, "shared"].sort());
	});

	it("answers 400 to a body without tags", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const response = await call("PUT", tagsPath("ada"), { auth: app.auth, body: {} });
		expect(await expectMessage(response, 400)).toBe("Invalid request: tags must be an array of strings");
	});

	it("answers 400 to tags that are not strings", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const response = await call("PUT", tagsPath("ada"), { auth: app.auth, body: { tags: [7] } });
		expect(await expectMessage(response, 400)).toBe("Invalid request: tags[0]: tag must be a string");
	});

	it("answers 400 to malformed JSON", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const response = await call("PUT", tagsPath("ada"), { auth: app.auth, body: '{"tags": [' });
		expect(await expectMessage(response, 400)).toBe("Malformed JSON in request body");
	});

	it("answers 400 naming the limit to a learner id of 256 characters", async () => {
		const app = await createApp();
		const response = await call("PUT", tagsPath("l".repeat(256)), { auth: app.auth, body: { tags: ["x"] } });
		expect(await expectMessage(response, 400)).toBe("Invalid request: learnerId must be at most 255 characters");
	});

	it("accepts a learner id of exactly 255 characters", async () => {
		const app = await createApp();
		const id = "l".repeat(255);
		await enrol(app, id);
		await putTags(app, "learner", id, ["x"]);
		expect(await tagsOf(app, "learner", id)).toEqual(["x"]);
	});
});

describe("DELETE /learner/:learnerId/tags", () => {
	it("removes the given tags and keeps the rest in order", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["a", "b", "c", "d"] });
		const response = await call("DELETE", tagsPath("ada"), { auth: app.auth, body: { tags: ["b", "d"] } });
		await expectNoContent(response);
		expect(await tagsOf(app, "learner", "ada")).toEqual(["a", "c"]);
	});

	it("answers 204 to tags the learner does not have", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["a"] });
		const response = await call("DELETE", tagsPath("ada"), { auth: app.auth, body: { tags: ["never", "had"] } });
		await expectNoContent(response);
		expect(await tagsOf(app, "learner", "ada")).toEqual(["a"]);
	});

	it("puts a tag added again after removal at the end", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["a", "b"] });
		await expectNoContent(await call("DELETE", tagsPath("ada"), { auth: app.auth, body: { tags: ["a"] } }));
		await putTags(app, "learner", "ada", ["a"]);
		expect(await tagsOf(app, "learner", "ada")).toEqual(["b", "a"]);
	});

	it("makes room under the tag limit for exactly as many tags as it removed", async () => {
		const app = await createApp();
		await learnerAtTagLimit(app, "ada");
		const removed = await call("DELETE", tagsPath("ada"), {
			auth: app.auth,
			body: { tags: ["t0", "t1", "not-there", "t1"] },
		});
		await expectNoContent(removed);
		await putTags(app, "learner", "ada", ["new-1", "new-2"]);
		const response = await call("PUT", tagsPath("ada"), { auth: app.auth, body: { tags: ["new-3"] } });
		expect(await expectMessage(response, 400)).toBe(
			"Learner [ada] would have more than 1000 tags (limit: 1000 tags per learner)",
		);
		const tags = await tagsOf(app, "learner", "ada");
		expect(tags).toHaveLength(1000);
		expect(tags?.slice(0, 2)).toEqual(["t2", "t3"]);
		expect(tags?.slice(-2)).toEqual(["new-1", "new-2"]);
	});

	it("answers 404 naming an unknown learner", async () => {
		const app = await createApp();
		const response = await call("DELETE", tagsPath("nobody"), { auth: app.auth, body: { tags: ["x"] } });
		expect(await expectMessage(response, 404)).toBe("Learner [nobody] was not found");
	});

	it("answers 403 naming the scope to a token holding only read:learner", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["x"] });
		const token = await mintToken(app, "read:learner");
		const response = await call("DELETE", tagsPath("ada"), { auth: token, body: { tags: ["x"] } });
		expect(await expectMessage(response, 403)).toBe('This operation requires the "write:learner" scope');
		expect(await tagsOf(app, "learner", "ada")).toEqual(["x"]);
	});

	it("answers 400 naming the limit to 101 tags in one request", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const response = await call("DELETE", tagsPath("ada"), { auth: app.auth, body: { tags: range(101, "tag-") } });
		expect(await expectMessage(response, 400)).toBe("Invalid request: tags must hold at most 100 tags per request");
	});

	it("answers 400 to a body without tags", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const response = await call("DELETE", tagsPath("ada"), { auth: app.auth, body: { ids: [] } });
		expect(await expectMessage(response, 400)).toBe("Invalid request: tags must be an array of strings");
	});
});

describe("PUT /learner/tags", () => {
	const batch = (app: TestApp, ids: string[], tags: string[], auth = app.auth) =>
		call("PUT", "/learner/tags", { auth, body: { ids, tags } });

	it("adds every tag to every learner without removing existing ones", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["old"] });
		await enrol(app, "bob");
		await expectNoContent(await batch(app, ["ada", "bob"], ["x", "y"]));
		expect(await tagsOf(app, "learner", "ada")).toEqual(["old", "x", "y"]);
		expect(await tagsOf(app, "learner", "bob")).toEqual(["x", "y"]);
	});

	it("stores repeated ids and tags once, in the order first applied", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["y"] });
		await expectNoContent(await batch(app, ["ada", "ada"], ["x", "y", "x", "z"]));
		expect(await tagsOf(app, "learner", "ada")).toEqual(["y", "x", "z"]);
	});

	it("answers 404 naming the one unknown id and changes nothing", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["old"] });
		await enrol(app, "bob");
		const response = await batch(app, ["ada", "ghost", "bob"], ["new"]);
		expect(await expectMessage(response, 404)).toBe("Learner [ghost] was not found; no tags were added");
		expect(await tagsOf(app, "learner", "ada")).toEqual(["old"]);
		expect(await tagsOf(app, "learner", "bob")).toEqual([]);
	});

	it("answers 404 listing every unknown id in request order", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const response = await batch(app, ["zed", "ada", "amy"], ["new"]);
		expect(await expectMessage(response, 404)).toBe("Learners [zed], [amy] were not found; no tags were added");
		expect(await tagsOf(app, "learner", "ada")).toEqual([]);
	});

	it("answers 403 naming the scope to a token holding only read:learner", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const response = await batch(app, ["ada"], ["x"], await mintToken(app, "read:learner"));
		expect(await expectMessage(response, 403)).toBe('This operation requires the "write:learner" scope');
		expect(await tagsOf(app, "learner", "ada")).toEqual([]);
	});

	it("accepts exactly 1000 ids", async () => {
		const app = await createApp();
		const ids = await seedRegistrations(app.appId, "bulk", 1000);
		await expectNoContent(await batch(app, ids, ["cohort"]));
		expect(await tagsOf(app, "learner", ids[0] ?? "")).toEqual(["cohort"]);
		expect(await tagsOf(app, "learner", ids[999] ?? "")).toEqual(["cohort"]);
	});

	it("answers 400 naming the limit to 1001 ids", async () => {
		const app = await createApp();
		const response = await batch(app, range(1001, "learner-"), ["x"]);
		expect(await expectMessage(response, 400)).toBe("Invalid request: ids must hold at most 1000 ids per batch");
	});

	it("accepts exactly 100 tags", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const tags = range(100, "tag-");
		await expectNoContent(await batch(app, ["ada"], tags));
		expect(await tagsOf(app, "learner", "ada")).toEqual(tags);
	});

	it("answers 400 naming the limit to 101 tags", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const response = await batch(app, ["ada"], range(101, "tag-"));
		expect(await expectMessage(response, 400)).toBe("Invalid request: tags must hold at most 100 tags per request");
	});

	it("accepts an id of exactly 255 characters and answers 400 naming the limit to one of 256", async () => {
		const app = await createApp();
		const id = "l".repeat(255);
		await enrol(app, id);
		await expectNoContent(await batch(app, [id], ["x"]));
		expect(await tagsOf(app, "learner", id)).toEqual(["x"]);
		const response = await batch(app, [id, `${id}l`], ["y"]);
		expect(await expectMessage(response, 400)).toBe("Invalid request: ids[1]: id must be at most 255 characters");
	});

	it("answers 400 to a tag of 256 characters, a comma or a control character", async () => {
		const app = await createApp();
		await enrol(app, "ada");
		const tooLong = await batch(app, ["ada"], ["t".repeat(256)]);
		expect(await expectMessage(tooLong, 400)).toBe("Invalid request: tags[0]: tag must be at most 255 characters");
		const comma = await batch(app, ["ada"], ["ok", "a,b"]);
		expect(await expectMessage(comma, 400)).toBe(
			"Invalid request: tags[1]: tag must not contain a comma (tags are filtered as comma-separated lists)",
		);
		const control = await batch(app, ["ada"], ["a\u001fb"]);
		expect(await expectMessage(control, 400)).toBe("Invalid request: tags[0]: tag must not contain control characters");
		expect(await tagsOf(app, "learner", "ada")).toEqual([]);
	});

	it("answers 400 naming the learner that would pass 1000 tags and adds nothing to any learner", async () => {
		const app = await createApp();
		const { tags } = await learnerAtTagLimit(app, "ada");
		await enrol(app, "bob");
		const response = await batch(app, ["bob", "ada"], ["one-too-many"]);
		expect(await expectMessage(response, 400)).toBe(
			"Learner [ada] would have more than 1000 tags (limit: 1000 tags per learner)",
		);
		expect(await tagsOf(app, "learner", "ada")).toEqual(tags);
		expect(await tagsOf(app, "learner", "bob")).toEqual([]);
	});

	it("answers 400 when ids or tags are missing, or ids is empty", async () => {
		const app = await createApp();
		const noIds = await call("PUT", "/learner/tags", { auth: app.auth, body: { tags: ["x"] } });
		expect(await expectMessage(noIds, 400)).toBe("Invalid request: ids must be an array of strings");
		const noTags = await call("PUT", "/learner/tags", { auth: app.auth, body: { ids: ["ada"] } });
		expect(await expectMessage(noTags, 400)).toBe("Invalid request: tags must be an array of strings");
		const emptyIds = await call("PUT", "/learner/tags", { auth: app.auth, body: { ids: [], tags: ["x"] } });
		expect(await expectMessage(emptyIds, 400)).toBe("Invalid request: ids must hold at least one id");
	});

	it.each(UNUSUAL_IDS)("adds tags to the learner %j exactly as named", async (id) => {
		const app = await createApp();
		await enrol(app, id);
		await expectNoContent(await batch(app, [id], ["x"]));
		expect(await tagsOf(app, "learner", id)).toEqual(["x"]);
	});
});

describe("learner existence", () => {
	it("lasts while any registration names the learner", async () => {
		const app = await createApp();
		const first = await enrol(app, "ada", { learnerTags: ["kept"] });
		const second = await enrol(app, "ada");
		await expectNoContent(await call("DELETE", `/registrations/${first}`, { auth: app.auth }));
		expect(await tagsOf(app, "learner", "ada")).toEqual(["kept"]);
		await expectNoContent(await call("DELETE", `/registrations/${second}`, { auth: app.auth }));
		const response = await call("GET", tagsPath("ada"), { auth: app.auth });
		expect(await expectMessage(response, 404)).toBe("Learner [ada] was not found");
	});

	it("starts again without tags, with room for 1000, when registered after its last registration went", async () => {
		const app = await createApp();
		const { registrationId } = await learnerAtTagLimit(app, "ada");
		await expectNoContent(await call("DELETE", `/registrations/${registrationId}`, { auth: app.auth }));
		await enrol(app, "ada");
		expect(await tagsOf(app, "learner", "ada")).toEqual([]);
		const tags = range(1000, "again-");
		for (let start = 0; start < tags.length; start += 100) await putTags(app, "learner", "ada", tags.slice(start, start + 100));
		expect(await tagsOf(app, "learner", "ada")).toEqual(tags);
	});
});
