import { describe, expect, it } from "vitest";
import { call } from "../support/client";
import { type ConsoleSession, confirmed, fetchConsole, fieldErrors, follow, formsOf, get, session, startedJob, submit } from "../support/console";
import { waitForJob } from "../support/expect";
import { MANAGEMENT, type TestApp, UNUSUAL_IDS, createApp, enrol, putTags, realmUser, tagsOf, uniqueValue } from "../support/fixtures";

// SPEC §10: ids and tags go to the API exactly as typed or shown, never trimmed or normalised by the console.
// Learner "x " (a trailing space) is not learner "x": each test makes both, acts on one through the console's
// forms, and checks through the API that the other is untouched.

/** The learner's page in the console (its path carries the id percent-encoded). */
const learnerPath = (app: TestApp, learnerId: string) => `/applications/${app.appId}/learners/${encodeURIComponent(learnerId)}`;

const pageOf = async (s: ConsoleSession, path: string) => {
	const response = await fetchConsole(get(path, s.cookie));
	expect(response.status).toBe(200);
	return response.text();
};

/** Whether the registration still exists (GET /registrations/{id}). */
const exists = async (app: TestApp, registrationId: string) => {
	const response = await call("GET", `/registrations/${encodeURIComponent(registrationId)}`, { auth: app.auth });
	expect([200, 404]).toContain(response.status);
	return response.status === 200;
};

const headingOf = (html: string) => /<h1>([\s\S]*?)<\/h1>/.exec(html)?.[1];

describe("GET /console/applications/:appId/learners (the search box)", () => {
	it("opens the learner whose id was typed, spaces and all, not the learner without them", async () => {
		const s = await session();
		const app = await createApp();
		const plain = uniqueValue("bob");
		for (const id of [plain, `${plain} `, ` ${plain}`]) {
			await enrol(app, id);
			const found = await fetchConsole(get(`/applications/${app.appId}/learners?learnerId=${encodeURIComponent(id)}`, s.cookie));
			expect(found.status, JSON.stringify(id)).toBe(303);
			expect(found.headers.get("Location")).toBe(`/console${learnerPath(app, id)}`);
		}
		// Only spaces is an id the API looks for, and does not find here.
		const blank = await fetchConsole(get(`/applications/${app.appId}/learners?learnerId=${encodeURIComponent("   ")}`, s.cookie));
		expect(blank.status).toBe(404);
		expect(await blank.text()).toContain('has no learner with exactly this id (ids are compared exactly: case and spaces count):  <code class="verbatim"><span class="blank">   </span></code>');
	});

	it("finds learners by a tag with its spaces, not by the tag without them", async () => {
		const s = await session();
		const app = await createApp();
		const [spaced, plain] = [uniqueValue("spaced"), uniqueValue("plain")];
		await enrol(app, spaced, { learnerTags: [" padded"] });
		await enrol(app, plain, { learnerTags: ["padded"] });
		const html = await pageOf(s, `/applications/${app.appId}/learners?tags=${encodeURIComponent(" padded")}`);
		expect(html).toContain(spaced);
		expect(html).not.toContain(plain);
		// The box keeps what was typed.
		expect(formsOf(html, `/applications/${app.appId}/learners`)).toEqual([{ learnerId: "", tags: " padded" }]);
	});

	it("carries any id to the learner's page and into its forms intact", async () => {
		const s = await session();
		const app = await createApp();
		for (const id of [...UNUSUAL_IDS, " padded both ", "no-break\u00a0"]) {
			await enrol(app, id);
			const found = await fetchConsole(get(`/applications/${app.appId}/learners?learnerId=${encodeURIComponent(id)}`, s.cookie));
			expect(found.status, id).toBe(303);
			const html = await pageOf(s, (found.headers.get("Location") ?? "").slice("/console".length));
			expect(formsOf(html, "/erasures/learner"), id).toEqual([{ appId: app.appId, learnerId: id }]);
		}
	});
});

describe("POST /console/applications/:appId/learners/:learnerId/tags", () => {
	it("adds the tags split on commas only, each exactly as typed", async () => {
		const s = await session();
		const app = await createApp();
		const learner = uniqueValue("learner");
		await enrol(app, learner);
		const added = await submit(s, `${learnerPath(app, learner)}/tags`, { tags: " padded,plain ,,x" });
		expect(added.status).toBe(303);
		expect(await tagsOf(app, "learner", learner)).toEqual([" padded", "plain ", "x"]);
	});

	it("shows the API's refusal of a tag the API does not take beside the field, keeping what was typed", async () => {
		const s = await session();
		const app = await createApp();
		const learner = uniqueValue("learner");
		await enrol(app, learner);
		const typed = `${"x".repeat(256)}, kept `;
		const refused = await follow(s, await submit(s, `${learnerPath(app, learner)}/tags`, { tags: typed }));
		const html = await refused.text();
		expect(fieldErrors(html)).toEqual({ tags: "A tag is at most 255 characters." });
		expect(formsOf(html, `${learnerPath(app, learner)}/tags`)).toEqual([{ tags: typed }]);
		expect(await tagsOf(app, "learner", learner)).toEqual([]);
	});
});

describe("POST /console/applications/:appId/learners/:learnerId/tags/delete", () => {
	it("removes the tag its button shows, spaces and all, and leaves the tag without them", async () => {
		const s = await session();
		const app = await createApp();
		const learner = uniqueValue("learner");
		await enrol(app, learner);
		await putTags(app, "learner", learner, [" padded", "padded"]);
		const buttons = formsOf(await pageOf(s, learnerPath(app, learner)), `${learnerPath(app, learner)}/tags/delete`);
		expect(buttons).toEqual([{ tags: " padded" }, { tags: "padded" }]);
		const removed = await submit(s, `${learnerPath(app, learner)}/tags/delete`, buttons[0]);
		expect(removed.status).toBe(303);
		expect(await tagsOf(app, "learner", learner)).toEqual(["padded"]);
		// The notice names the tag as removed, its space shown.
		expect(await (await follow(s, removed)).text()).toContain('Tags removed: <code class="verbatim"><span class="blank"> </span>padded</code>');
	});
});

describe("POST /console/erasures", () => {
	it("erases the learner opened in the console, not the learner whose id lacks its trailing space", async () => {
		const s = await session();
		const app = await createApp();
		const plain = uniqueValue("bob");
		const kept = await enrol(app, plain);
		const erased = await enrol(app, `${plain} `);
		const [form] = formsOf(await pageOf(s, learnerPath(app, `${plain} `)), "/erasures/learner");
		expect(form).toEqual({ appId: app.appId, learnerId: `${plain} ` });
		const jobId = startedJob(await confirmed(s, "/erasures/learner", { ...form, userEmail: await realmUser("admin") }));
		expect(await waitForJob(MANAGEMENT, jobId)).toMatchObject({ status: "completed", registrationsAffected: 1 });
		expect(await exists(app, erased)).toBe(false);
		expect(await exists(app, kept)).toBe(true);
	});

	it("erases the ids of a bulk erasure line by line, each exactly as typed", async () => {
		const s = await session();
		const app = await createApp();
		const [first, second] = [uniqueValue("bob"), uniqueValue("ann")];
		const kept = [await enrol(app, first), await enrol(app, second)];
		const erased = [await enrol(app, ` ${first} `), await enrol(app, ` ${second}`)];
		const ids = ` ${first} \r\n\r\n ${second}\n`;
		const jobId = startedJob(await confirmed(s, "/erasures/bulk", { appId: app.appId, ids, userEmail: await realmUser("admin") }));
		expect(await waitForJob(MANAGEMENT, jobId)).toMatchObject({ type: "deleteLearnersData", status: "completed", registrationsAffected: 2 });
		for (const registrationId of erased) expect(await exists(app, registrationId)).toBe(false);
		for (const registrationId of kept) expect(await exists(app, registrationId)).toBe(true);
	});

	it("erases the learner id typed in every application, and no learner whose id lacks its spaces", async () => {
		const s = await session();
		const [one, two] = [await createApp(), await createApp()];
		const plain = uniqueValue("bob");
		const kept = [await enrol(one, plain), await enrol(two, plain)];
		const erased = [await enrol(one, `${plain} `), await enrol(two, `${plain} `)];
		const jobId = startedJob(await confirmed(s, "/erasures/realm", { learnerId: `${plain} `, userEmail: await realmUser("owner") }));
		expect(await waitForJob(MANAGEMENT, jobId)).toMatchObject({ type: "deleteRealmLearnerData", status: "completed", registrationsAffected: 2 });
		expect([await exists(one, erased[0] ?? ""), await exists(two, erased[1] ?? "")]).toEqual([false, false]);
		expect([await exists(one, kept[0] ?? ""), await exists(two, kept[1] ?? "")]).toEqual([true, true]);
	});

	it("takes every id the API takes, and shows the API's refusal of one it does not, starting nothing", async () => {
		const s = await session();
		const app = await createApp();
		const admin = await realmUser("admin");
		// 255 characters, as the API counts them (code points), in 510 UTF-16 code units.
		const longest = "🎓".repeat(255);
		const registrationId = await enrol(app, longest);
		const jobId = startedJob(await confirmed(s, "/erasures/learner", { appId: app.appId, learnerId: longest, userEmail: admin }));
		expect(await waitForJob(MANAGEMENT, jobId)).toMatchObject({ status: "completed", registrationsAffected: 1 });
		expect(await exists(app, registrationId)).toBe(false);
		const refused = await submit(s, "/erasures/learner", { appId: app.appId, learnerId: "x".repeat(256), userEmail: admin });
		expect(refused.headers.get("Location")).toMatch(/^\/console\/erasures\?r=/);
		expect(fieldErrors(await (await follow(s, refused)).text())).toEqual({ learnerId: "A learner id is 1 to 255 characters, without control characters." });
	});
});

describe("the console's pages show ids and tags verbatim", () => {
	it("marks a learner id's leading and trailing blanks on its page, so it is told apart from the id without them", async () => {
		const s = await session();
		const app = await createApp();
		const plain = uniqueValue("bob");
		const registrationId = uniqueValue("registration");
		await enrol(app, plain);
		const registered = await call("POST", "/registrations", {
			auth: app.auth,
			body: { courseId: "course-1", registrationId: `${registrationId} `, learner: { id: `${plain} ` } },
		});
		expect(registered.status).toBe(204);
		await enrol(app, `  ${plain}`);
		await enrol(app, `${plain}\u00a0`);
		expect(headingOf(await pageOf(s, learnerPath(app, plain)))).toBe(`Learner <code class="verbatim">${plain}</code>`);
		const padded = await pageOf(s, learnerPath(app, `${plain} `));
		expect(headingOf(padded)).toBe(
			`Learner <code class="verbatim">${plain}<span class="blank"> </span></code> <small class="blanks">(ends with 1 space)</small>`,
		);
		expect(padded).toContain(`<code class="verbatim">${registrationId}<span class="blank"> </span></code> <small class="blanks">(ends with 1 space)</small>`);
		expect(headingOf(await pageOf(s, learnerPath(app, `  ${plain}`)))).toBe(
			`Learner <code class="verbatim"><span class="blank">  </span>${plain}</code> <small class="blanks">(starts with 2 spaces)</small>`,
		);
		await enrol(app, "  ");
		expect(headingOf(await pageOf(s, learnerPath(app, "  ")))).toBe(
			'Learner <code class="verbatim"><span class="blank">  </span></code> <small class="blanks">(only 2 spaces)</small>',
		);
		expect(headingOf(await pageOf(s, learnerPath(app, `${plain}\u00a0`)))).toBe(
			`Learner <code class="verbatim">${plain}<span class="blank">\u00a0</span></code> <small class="blanks">(ends with U+00A0)</small>`,
		);
	});

	it("marks padded ids and tags in the learners directory", async () => {
		const s = await session();
		const app = await createApp();
		const plain = uniqueValue("bob");
		await enrol(app, plain, { learnerTags: ["padded"] });
		await enrol(app, `${plain} `, { learnerTags: ["padded "] });
		const html = await pageOf(s, `/applications/${app.appId}/learners`);
		expect(html).toContain(`<a href="/console${learnerPath(app, plain)}"><code class="verbatim">${plain}</code></a>`);
		expect(html).toContain(
			`<a href="/console${learnerPath(app, `${plain} `)}"><code class="verbatim">${plain}<span class="blank"> </span></code> <small class="blanks">(ends with 1 space)</small></a>`,
		);
		expect(html).toContain('<code class="verbatim">padded<span class="blank"> </span></code> <small class="blanks">(ends with 1 space)</small>');
	});
});
