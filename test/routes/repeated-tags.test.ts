import { describe, expect, it } from "vitest";
import { call } from "../support/client";
import { expectMessage, expectNoContent } from "../support/expect";
import { createApp, range, tagsOf, type TestApp } from "../support/fixtures";

/**
 * A tag, or an owner id, repeated within one request is one tag: stored once and counted once toward the limit
 * of 1000 tags on a learner or a registration (SPEC §3: adding tags is a set union, duplicates ignored). Each
 * test fills an owner to 999 distinct tags with requests that carry every tag twice, then the 1000th distinct
 * tag must still be accepted and the 1001st refused: a count that grew with the repeats would refuse early.
 * Removals repeat the tags they remove: each frees exactly one place, however often it is named.
 */

/** SPEC §3: at most 100 tags in one request, at most 1000 on one owner. */
const PER_REQUEST = 100;
const LIMIT = 1000;

/** Every tag twice: [a, b, …, a, b, …]. */
const twice = (tags: string[]) => [...tags, ...tags];

/** The tags split into requests of `size` distinct tags each. */
function inRequests(tags: string[], size: number): string[][] {
	const requests: string[][] = [];
	for (let start = 0; start < tags.length; start += size) requests.push(tags.slice(start, start + size));
	return requests;
}

/** The tags as full requests in which each tag appears twice (50 distinct tags a request). */
const repeatedRequests = (tags: string[]) => inRequests(tags, PER_REQUEST / 2).map(twice);

/** The 999 distinct tags an owner is filled with, and the one that brings it to the limit. */
const FILL = range(LIMIT - 1, "t");
const LAST = `t${LIMIT - 1}`;

const learnerTagsPath = (learnerId: string) => `/learner/${encodeURIComponent(learnerId)}/tags`;
const registrationTagsPath = (registrationId: string) => `/registrations/${encodeURIComponent(registrationId)}/tags`;

/** POST /registrations, asserting the 204. */
async function register(app: TestApp, registrationId: string, learnerId: string, extra: Record<string, unknown> = {}) {
	const body = { courseId: "course-1", registrationId, learner: { id: learnerId }, ...extra };
	await expectNoContent(await call("POST", "/registrations", { auth: app.auth, body }));
}

/** A tag write, asserting the 204. */
async function write(app: TestApp, method: string, path: string, body: Record<string, unknown>) {
	await expectNoContent(await call(method, path, { auth: app.auth, body }));
}

const learnerLimit = (learnerId: string) =>
	`Learner [${learnerId}] would have more than ${LIMIT} tags (limit: ${LIMIT} tags per learner)`;
const registrationLimit = (registrationId: string) =>
	`Registration [${registrationId}] would have more than ${LIMIT} tags (limit: ${LIMIT} tags per registration)`;

describe("PUT /learner/:learnerId/tags", () => {
	it("counts a tag repeated within one request once: the 1000th distinct tag is accepted, the 1001st refused", async () => {
		const app = await createApp();
		await register(app, "reg-1", "ada");
		for (const tags of repeatedRequests(FILL)) await write(app, "PUT", learnerTagsPath("ada"), { tags });
		expect(await tagsOf(app, "learner", "ada")).toEqual(FILL);

		await write(app, "PUT", learnerTagsPath("ada"), { tags: [LAST, LAST, LAST] });
		const refused = await call("PUT", learnerTagsPath("ada"), { auth: app.auth, body: { tags: ["extra", "extra"] } });
		expect(await expectMessage(refused, 400)).toBe(learnerLimit("ada"));
		expect(await tagsOf(app, "learner", "ada")).toEqual([...FILL, LAST]);
	});
});

describe("DELETE /learner/:learnerId/tags", () => {
	it("frees one place per tag removed, however often the request names it", async () => {
		const app = await createApp();
		await register(app, "reg-1", "ada");
		for (const tags of inRequests([...FILL, LAST], PER_REQUEST)) await write(app, "PUT", learnerTagsPath("ada"), { tags });

		await write(app, "DELETE", learnerTagsPath("ada"), { tags: ["t0", "t0", "t0", "t1", "t1", "absent", "absent"] });
		expect(await tagsOf(app, "learner", "ada")).toEqual([...FILL.slice(2), LAST]);
		await write(app, "PUT", learnerTagsPath("ada"), { tags: ["new-1", "new-2"] });
		const refused = await call("PUT", learnerTagsPath("ada"), { auth: app.auth, body: { tags: ["new-3"] } });
		expect(await expectMessage(refused, 400)).toBe(learnerLimit("ada"));
		expect(await tagsOf(app, "learner", "ada")).toEqual([...FILL.slice(2), LAST, "new-1", "new-2"]);
	});
});

describe("PUT /learner/tags", () => {
	it("counts repeated ids and repeated tags once toward each learner's limit", async () => {
		const app = await createApp();
		await register(app, "reg-1", "ada");
		await register(app, "reg-2", "bob");
		for (const tags of repeatedRequests(FILL)) await write(app, "PUT", "/learner/tags", { ids: ["ada", "bob", "ada"], tags });
		expect(await tagsOf(app, "learner", "ada")).toEqual(FILL);
		expect(await tagsOf(app, "learner", "bob")).toEqual(FILL);

		await write(app, "PUT", "/learner/tags", { ids: ["bob", "ada", "bob", "ada"], tags: [LAST, LAST] });
		const refused = await call("PUT", "/learner/tags", { auth: app.auth, body: { ids: ["ada", "ada"], tags: ["extra"] } });
		expect(await expectMessage(refused, 400)).toBe(learnerLimit("ada"));
		expect(await tagsOf(app, "learner", "ada")).toEqual([...FILL, LAST]);
		expect(await tagsOf(app, "learner", "bob")).toEqual([...FILL, LAST]);
	});
});

describe("PUT /registrations/:registrationId/tags", () => {
	it("counts a tag repeated within one request once: the 1000th distinct tag is accepted, the 1001st refused", async () => {
		const app = await createApp();
		await register(app, "reg-1", "ada");
		for (const tags of repeatedRequests(FILL)) await write(app, "PUT", registrationTagsPath("reg-1"), { tags });
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual(FILL);

		await write(app, "PUT", registrationTagsPath("reg-1"), { tags: [LAST, LAST, LAST] });
		const refused = await call("PUT", registrationTagsPath("reg-1"), { auth: app.auth, body: { tags: ["extra", "extra"] } });
		expect(await expectMessage(refused, 400)).toBe(registrationLimit("reg-1"));
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual([...FILL, LAST]);
	});
});

describe("DELETE /registrations/:registrationId/tags", () => {
	it("frees one place per tag removed, however often the request names it", async () => {
		const app = await createApp();
		await register(app, "reg-1", "ada");
		for (const tags of inRequests([...FILL, LAST], PER_REQUEST)) {
			await write(app, "PUT", registrationTagsPath("reg-1"), { tags });
		}

		await write(app, "DELETE", registrationTagsPath("reg-1"), { tags: ["t0", "t0", "t0", "t1", "t1", "absent", "absent"] });
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual([...FILL.slice(2), LAST]);
		await write(app, "PUT", registrationTagsPath("reg-1"), { tags: ["new-1", "new-2"] });
		const refused = await call("PUT", registrationTagsPath("reg-1"), { auth: app.auth, body: { tags: ["new-3"] } });
		expect(await expectMessage(refused, 400)).toBe(registrationLimit("reg-1"));
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual([...FILL.slice(2), LAST, "new-1", "new-2"]);
	});
});

describe("PUT /registrations/tags", () => {
	it("counts repeated ids and repeated tags once toward each registration's limit", async () => {
		const app = await createApp();
		await register(app, "reg-1", "ada");
		await register(app, "reg-2", "bob");
		for (const tags of repeatedRequests(FILL)) {
			await write(app, "PUT", "/registrations/tags", { ids: ["reg-1", "reg-2", "reg-1"], tags });
		}
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual(FILL);
		expect(await tagsOf(app, "registrations", "reg-2")).toEqual(FILL);

		await write(app, "PUT", "/registrations/tags", { ids: ["reg-2", "reg-1", "reg-2"], tags: [LAST, LAST] });
		const refused = await call("PUT", "/registrations/tags", {
			auth: app.auth,
			body: { ids: ["reg-1", "reg-1"], tags: ["extra"] },
		});
		expect(await expectMessage(refused, 400)).toBe(registrationLimit("reg-1"));
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual([...FILL, LAST]);
		expect(await tagsOf(app, "registrations", "reg-2")).toEqual([...FILL, LAST]);
	});
});

describe("POST /registrations", () => {
	it("counts learner tags repeated within one registration once toward the learner's limit", async () => {
		const app = await createApp();
		for (const [index, learnerTags] of repeatedRequests(FILL).entries()) {
			await register(app, `reg-${index}`, "ada", { learnerTags });
		}
		expect(await tagsOf(app, "learner", "ada")).toEqual(FILL);

		await register(app, "reg-last", "ada", { learnerTags: [LAST, LAST, LAST] });
		const refused = await call("POST", "/registrations", {
			auth: app.auth,
			body: { courseId: "course-1", registrationId: "reg-refused", learner: { id: "ada" }, learnerTags: ["extra", "extra"] },
		});
		expect(await expectMessage(refused, 400)).toBe(learnerLimit("ada"));
		expect(await tagsOf(app, "learner", "ada")).toEqual([...FILL, LAST]);
	});

	it("counts registration tags repeated at creation once toward the registration's limit", async () => {
		const app = await createApp();
		const [first = [], ...rest] = repeatedRequests(FILL);
		await register(app, "reg-1", "ada", { registrationTags: first });
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual(FILL.slice(0, PER_REQUEST / 2));
		for (const tags of rest) await write(app, "PUT", registrationTagsPath("reg-1"), { tags });

		await write(app, "PUT", registrationTagsPath("reg-1"), { tags: [LAST] });
		const refused = await call("PUT", registrationTagsPath("reg-1"), { auth: app.auth, body: { tags: ["extra"] } });
		expect(await expectMessage(refused, 400)).toBe(registrationLimit("reg-1"));
		expect(await tagsOf(app, "registrations", "reg-1")).toEqual([...FILL, LAST]);
	});
});
