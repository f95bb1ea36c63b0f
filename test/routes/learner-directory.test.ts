import { describe, expect, it } from "vitest";
import { call } from "../support/client";
import { expectMessage, expectNoContent } from "../support/expect";
import { createApp, enrol, putTags, range, realmUser, type TestApp } from "../support/fixtures";
import { acceptErasure, acceptUpdate, drain } from "../support/queue";
import { seedRegistrations, tagLearners } from "../support/seed";

interface LearnerEntry {
	id: string;
	email?: string;
	firstName?: string;
	lastName?: string;
	tags: string[];
	registrationCount: number;
}

interface DirectoryPage {
	learners: LearnerEntry[];
	more?: string;
}

/** GET /learners with the query (`?…` or nothing), asserting the 200. */
async function directory(app: TestApp, query = ""): Promise<DirectoryPage> {
	const response = await call("GET", `/learners${query}`, { auth: app.auth });
	expect(response.status).toBe(200);
	return (await response.json()) as DirectoryPage;
}

/** Every learner id the listing gives, following `more` from page to page; and the size of each page. */
async function everyPage(app: TestApp, query: string): Promise<{ ids: string[]; pages: number[] }> {
	const ids: string[] = [];
	const pages: number[] = [];
	let page = await directory(app, query);
	for (;;) {
		ids.push(...page.learners.map((learner) => learner.id));
		pages.push(page.learners.length);
		if (page.more === undefined) return { ids, pages };
		page = await directory(app, `?more=${encodeURIComponent(page.more)}`);
	}
}

/** String order by code unit: the byte order of UTF-8 for the ids used here, which is the directory's. */
const inIdOrder = (ids: string[]) => [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

const NOT_OURS = "more is not a paging token issued by this API for this application";

describe("GET /learners", () => {
	it("lists every learner of the application by id, with its details, tags in the order first applied and registration count", async () => {
		const app = await createApp();
		await enrol(app, { id: "grace", email: "grace@example.com", firstName: "Grace", lastName: "Hopper" }, { learnerTags: ["navy", "cobol"] });
		await enrol(app, { id: "ada", firstName: "Ada" });
		await enrol(app, { id: "ada", firstName: "Ada" }, { learnerTags: ["math"] });
		await putTags(app, "learner", "ada", ["engines", "math", "analysis"]);
		await enrol(app, "edsger");
		expect(await directory(app)).toEqual({
			learners: [
				{ id: "ada", firstName: "Ada", tags: ["math", "engines", "analysis"], registrationCount: 2 },
				{ id: "edsger", tags: [], registrationCount: 1 },
				{
					id: "grace",
					email: "grace@example.com",
					firstName: "Grace",
					lastName: "Hopper",
					tags: ["navy", "cobol"],
					registrationCount: 1,
				},
			],
		});
	});

	it("answers an empty list to an application without learners, and to a tag no learner carries", async () => {
		const app = await createApp();
		expect(await directory(app)).toEqual({ learners: [] });
		await enrol(app, "ada", { learnerTags: ["math"] });
		expect(await directory(app, "?tags=nobody")).toEqual({ learners: [] });
	});

	it("lists every learner when tags names none", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["math"] });
		await enrol(app, "grace");
		expect(await directory(app, "?tags=,,")).toEqual(await directory(app));
		expect((await directory(app, "?tags=")).learners.map((learner) => learner.id)).toEqual(["ada", "grace"]);
	});

	it("lists only the learners carrying the one tag named, with all their tags", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["math", "engines"] });
		await enrol(app, "grace", { learnerTags: ["navy"] });
		await enrol(app, "alan", { learnerTags: ["engines", "math"] });
		await enrol(app, "edsger");
		expect(await directory(app, "?tags=math")).toEqual({
			learners: [
				{ id: "ada", tags: ["math", "engines"], registrationCount: 1 },
				{ id: "alan", tags: ["engines", "math"], registrationCount: 1 },
			],
		});
		// Tags are exact, case-sensitive strings.
		expect(await directory(app, "?tags=Math")).toEqual({ learners: [] });
	});

	it("with several tags lists the learners carrying any of them by default, each once", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["math", "engines"] });
		await enrol(app, "grace", { learnerTags: ["navy"] });
		await enrol(app, "alan", { learnerTags: ["engines"] });
		await enrol(app, "edsger", { learnerTags: ["structured"] });
		const expected = {
			learners: [
				{ id: "ada", tags: ["math", "engines"], registrationCount: 1 },
				{ id: "alan", tags: ["engines"], registrationCount: 1 },
				{ id: "grace", tags: ["navy"], registrationCount: 1 },
			],
		};
		expect(await directory(app, "?tags=math,engines,navy")).toEqual(expected);
		expect(await directory(app, "?tags=navy,math,engines,navy&tagMatch=any")).toEqual(expected);
	});

	it("with tagMatch=all lists the learners carrying every tag named", async () => {
		const app = await createApp();
		await enrol(app, "ada", { learnerTags: ["math", "engines", "poetry"] });
		await enrol(app, "grace", { learnerTags: ["math", "navy"] });
		await enrol(app, "alan", { learnerTags: ["engines", "math"] });
		await enrol(app, "edsger", { learnerTags: ["engines"] });
		expect(await directory(app, "?tags=engines,math&tagMatch=all")).toEqual({
			learners: [
				{ id: "ada", tags: ["math", "engines", "poetry"], registrationCount: 1 },
				{ id: "alan", tags: ["engines", "math"], registrationCount: 1 },
			],
		});
		expect(await directory(app, "?tags=math,engines,navy&tagMatch=all")).toEqual({ learners: [] });
		expect(await directory(app, "?tags=navy&tagMatch=all")).toEqual({
			learners: [{ id: "grace", tags: ["math", "navy"], registrationCount: 1 }],
		});
	});

	it("orders learners by id, byte by byte: upper case before lower, digits as text, non-ASCII last", async () => {
		const app = await createApp();
		for (const id of ["b", "é", "a", "B", "10", "9", "a b", "A"]) await enrol(app, id, { learnerTags: ["all"] });
		const expected = ["10", "9", "A", "B", "a", "a b", "b", "é"];
		expect((await directory(app)).learners.map((learner) => learner.id)).toEqual(expected);
		expect((await directory(app, "?tags=all")).learners.map((learner) => learner.id)).toEqual(expected);
		expect((await directory(app, "?tags=all,none")).learners.map((learner) => learner.id)).toEqual(expected);
	});

	describe("paging", () => {
		/** 250 learners, "learner-0" … "learner-249", each with one registration; some tagged. */
		async function manyLearners(app: TestApp): Promise<string[]> {
			const learners = await seedRegistrations(app.appId, "many", 250);
			await tagLearners(app.appId, learners, ["every"]);
			await tagLearners(app.appId, learners.filter((_, i) => i % 2 === 0), ["even"]);
			await tagLearners(app.appId, learners.filter((_, i) => i % 3 === 0), ["third"]);
			return learners;
		}

		it("serves 100 learners a page, and the pages hold every learner once, in order", async () => {
			const app = await createApp();
			const learners = await manyLearners(app);
			const listing = await everyPage(app, "");
			expect(listing.pages).toEqual([100, 100, 50]);
			expect(listing.ids).toEqual(inIdOrder(learners));
		});

		it.each([
			["one tag", "?tags=every", () => true],
			["any of several tags", "?tags=third,even", (i: number) => i % 2 === 0 || i % 3 === 0],
			["all of several tags", "?tags=even,third&tagMatch=all", (i: number) => i % 6 === 0],
			["all of several tags, the rarer first", "?tags=third,every,even&tagMatch=all", (i: number) => i % 6 === 0],
		])("pages through the learners with %s, missing none and repeating none", async (_name, query, carries) => {
			const app = await createApp();
			const learners = await manyLearners(app);
			const listing = await everyPage(app, query);
			expect(listing.ids).toEqual(inIdOrder(learners.filter((_, i) => carries(i))));
			expect(listing.pages.slice(0, -1).every((size) => size === 100)).toBe(true);
		});

		it("gives no more token when the last page is exactly full", async () => {
			const app = await createApp();
			await seedRegistrations(app.appId, "full", 100);
			const page = await directory(app);
			expect(page.learners).toHaveLength(100);
			expect(page.more).toBeUndefined();
		});

		it("carries the first page's filters in more: the token alone brings the next page, whatever else is asked", async () => {
			const app = await createApp();
			const learners = await manyLearners(app);
			const first = await directory(app, "?tags=even");
			expect(first.more).toEqual(expect.any(String));
			expect(first.more).not.toContain("even");
			const second = await directory(app, `?tags=third&tagMatch=all&more=${encodeURIComponent(first.more ?? "")}`);
			const even = inIdOrder(learners.filter((_, i) => i % 2 === 0));
			expect(second.learners.map((learner) => learner.id)).toEqual(even.slice(100));
			expect(second.more).toBeUndefined();
		});

		it("pages on after the last learner served, whatever was added or removed since", async () => {
			const app = await createApp();
			const learners = await seedRegistrations(app.appId, "late", 150);
			const first = await directory(app);
			// The first page's first learner goes (late-learner-0 holds late-reg-0), a learner after it comes.
			expect(first.learners[0]?.id).toBe("late-learner-0");
			await expectNoContent(await call("DELETE", "/registrations/late-reg-0", { auth: app.auth }));
			await enrol(app, "zz-late-learner");
			const second = await directory(app, `?more=${encodeURIComponent(first.more ?? "")}`);
			expect(second.learners.map((learner) => learner.id)).toEqual([...inIdOrder(learners).slice(100), "zz-late-learner"]);
		});
	});

	describe("current details", () => {
		it("shows what updateInfo set once its job has run, and the earlier details until then", async () => {
			const app = await createApp();
			await enrol(app, { id: "ada", email: "ada@old.example", firstName: "Ada", lastName: "Byron" });
			await enrol(app, { id: "ada", email: "ada@old.example", firstName: "Ada", lastName: "Byron" });
			const update = await acceptUpdate(app, { id: "ada", email: "ada@new.example", lastName: "Lovelace" });
			expect(await directory(app)).toEqual({
				learners: [{ id: "ada", email: "ada@old.example", firstName: "Ada", lastName: "Byron", tags: [], registrationCount: 2 }],
			});
			await drain(update);
			expect(await directory(app)).toEqual({
				learners: [{ id: "ada", email: "ada@new.example", firstName: "Ada", lastName: "Lovelace", tags: [], registrationCount: 2 }],
			});
		});

		it("shows an empty field that updateInfo cleared", async () => {
			const app = await createApp();
			await enrol(app, { id: "ada", email: "ada@example.com", firstName: "Ada" });
			await drain(await acceptUpdate(app, { id: "ada", email: "" }));
			expect(await directory(app)).toEqual({
				learners: [{ id: "ada", email: "", firstName: "Ada", tags: [], registrationCount: 1 }],
			});
		});

		it("shows the details of a newer registration, and keeps a field it does not give", async () => {
			const app = await createApp();
			await enrol(app, { id: "ada", email: "ada@old.example", firstName: "Ada", lastName: "Byron" });
			await drain(await acceptUpdate(app, { id: "ada", firstName: "Augusta" }));
			await enrol(app, { id: "ada", email: "ada@new.example", lastName: "Lovelace" });
			expect(await directory(app)).toEqual({
				learners: [
					{ id: "ada", email: "ada@new.example", firstName: "Augusta", lastName: "Lovelace", tags: [], registrationCount: 2 },
				],
			});
		});

		it("keeps the newer update's details whatever order the two updates run in", async () => {
			const app = await createApp();
			await enrol(app, { id: "ada", email: "ada@first.example" });
			const older = await acceptUpdate(app, { id: "ada", email: "ada@older.example" });
			const newer = await acceptUpdate(app, { id: "ada", email: "ada@newer.example" });
			await drain(newer);
			await drain(older);
			expect(await directory(app)).toEqual({
				learners: [{ id: "ada", email: "ada@newer.example", tags: [], registrationCount: 1 }],
			});
		});
	});

	describe("learners that no longer exist", () => {
		it("leaves out an erased learner, once the erasure has run", async () => {
			const app = await createApp();
			await enrol(app, { id: "ada", email: "ada@example.com" }, { learnerTags: ["math"] });
			await enrol(app, "ada");
			await enrol(app, "grace", { learnerTags: ["math"] });
			await drain(await acceptErasure(app, "ada", await realmUser("admin")));
			const grace = { id: "grace", tags: ["math"], registrationCount: 1 };
			expect(await directory(app)).toEqual({ learners: [grace] });
			expect(await directory(app, "?tags=math")).toEqual({ learners: [grace] });
			expect(await directory(app, "?tags=math,other")).toEqual({ learners: [grace] });
		});

		it("leaves out a learner whose last registration was deleted, and counts the registrations left", async () => {
			const app = await createApp();
			const first = await enrol(app, "ada", { learnerTags: ["math"] });
			const second = await enrol(app, "ada");
			await enrol(app, "grace", { learnerTags: ["math"] });
			await expectNoContent(await call("DELETE", `/registrations/${encodeURIComponent(first)}`, { auth: app.auth }));
			expect((await directory(app)).learners.map(({ id, registrationCount }) => ({ id, registrationCount }))).toEqual([
				{ id: "ada", registrationCount: 1 },
				{ id: "grace", registrationCount: 1 },
			]);
			await expectNoContent(await call("DELETE", `/registrations/${encodeURIComponent(second)}`, { auth: app.auth }));
			const grace = { id: "grace", tags: ["math"], registrationCount: 1 };
			expect(await directory(app)).toEqual({ learners: [grace] });
			expect(await directory(app, "?tags=math")).toEqual({ learners: [grace] });
		});
	});

	it("lists this application's learners only, whoever else holds the same ids and tags", async () => {
		const app = await createApp();
		const other = await createApp();
		await enrol(other, { id: "ada", email: "ada@other.example" }, { learnerTags: ["math"] });
		await enrol(other, "grace", { learnerTags: ["math"] });
		await enrol(app, "ada", { learnerTags: ["math"] });
		const ours = { learners: [{ id: "ada", tags: ["math"], registrationCount: 1 }] };
		expect(await directory(app)).toEqual(ours);
		expect(await directory(app, "?tags=math")).toEqual(ours);
		expect(await directory(app, "?tags=math,navy")).toEqual(ours);
		expect(await directory(app, "?tags=math,math&tagMatch=all")).toEqual(ours);
	});

	describe("invalid input", () => {
		it("answers 400 naming tagMatch when it is neither any nor all", async () => {
			const app = await createApp();
			for (const value of ["ALL", "some", ""]) {
				const response = await call("GET", `/learners?tags=a,b&tagMatch=${value}`, { auth: app.auth });
				expect(await expectMessage(response, 400)).toBe('Invalid request: tagMatch must be "any" or "all"');
			}
		});

		it("answers 400 naming the problem to a tag no tag may be, and to more than 100 tags", async () => {
			const app = await createApp();
			const cases: [string, string][] = [
				["a%00b", "tags: tag must not contain control characters"],
				["x".repeat(256), "tags: tag must be at most 255 characters"],
				[range(101, "t").join(","), "tags: tags must name at most 100 tags"],
			];
			for (const [tags, message] of cases) {
				const response = await call("GET", `/learners?tags=${tags}`, { auth: app.auth });
				expect(await expectMessage(response, 400)).toBe(message);
			}
		});

		it("answers 400 to an altered or invented more token", async () => {
			const app = await createApp();
			await seedRegistrations(app.appId, "tamper", 101);
			const { more = "" } = await directory(app);
			const [payload = "", signature = ""] = more.split(".");
			const cursor = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as { after: string };
			cursor.after = "";
			const altered = btoa(JSON.stringify(cursor)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
			for (const token of [`${altered}.${signature}`, `${payload}.${signature.slice(1)}0`, "garbage", `${more}.x`, "."]) {
				const response = await call("GET", `/learners?more=${encodeURIComponent(token)}`, { auth: app.auth });
				expect(await expectMessage(response, 400)).toBe(NOT_OURS);
			}
		});

		it("answers 400 to a more token of GET /registrations, and GET /registrations to one of GET /learners", async () => {
			const app = await createApp();
			await seedRegistrations(app.appId, "crossed", 101);
			const registrations = await call("GET", "/registrations", { auth: app.auth });
			expect(registrations.status).toBe(200);
			const { more: registrationsMore = "" } = (await registrations.json()) as { more?: string };
			const { more: learnersMore = "" } = await directory(app);
			expect(registrationsMore).not.toBe("");
			expect(learnersMore).not.toBe("");
			const here = await call("GET", `/learners?more=${encodeURIComponent(registrationsMore)}`, { auth: app.auth });
			expect(await expectMessage(here, 400)).toBe(NOT_OURS);
			const there = await call("GET", `/registrations?more=${encodeURIComponent(learnersMore)}`, { auth: app.auth });
			expect(await expectMessage(there, 400)).toBe(NOT_OURS);
		});

		it("answers 400 to a more token issued to another application, showing none of its learners", async () => {
			const app = await createApp();
			const other = await createApp();
			await seedRegistrations(app.appId, "theirs", 101);
			const { more = "" } = await directory(app);
			const response = await call("GET", `/learners?more=${encodeURIComponent(more)}`, { auth: other.auth });
			expect(await expectMessage(response, 400)).toBe(NOT_OURS);
		});
	});
});
