import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "../support/client";
import { confirmed, fetchConsole, fieldErrors, follow, get, review, session, startedJob, submit } from "../support/console";
import { waitForJob } from "../support/expect";
import { MANAGEMENT, createApp, enrol, realmUser, uniqueValue } from "../support/fixtures";
import { insertJobs, seedJobId } from "../support/jobs-seed";
import { shardOf } from "../support/seed";

// SPEC §10, "Safe by construction": confirmations, Post/Redirect/Get everywhere, refusals beside their fields, drafts
// that hold nothing readable; the overview drawn as charts; jobs from the API's lists.

describe("Post/Redirect/Get", () => {
	it("answers every console POST, done or refused, with 303 to a page", async () => {
		const s = await session();
		const app = await createApp();
		const learner = uniqueValue("learner");
		await enrol(app, learner);
		const learnerBase = `/applications/${app.appId}/learners/${encodeURIComponent(learner)}`;
		const admin = await realmUser("admin");
		const posts: [string, Record<string, string>][] = [
			["/applications", { name: uniqueValue("prg") }],
			["/applications", { name: "" }],
			[`/applications/${app.appId}/move`, { shard: "SHARD_2" }],
			[`/applications/${app.appId}/move`, { shard: "NOWHERE" }],
			[`/applications/${app.appId}/allow-delete`, { allowDelete: "false" }],
			[`/applications/${app.appId}/delete`, { confirm: "true" }],
			[`/applications/${app.appId}/allow-delete`, { allowDelete: "true" }],
			[`/applications/${app.appId}/credentials`, { name: "" }],
			[`/applications/${app.appId}/webhook`, { url: "ftp://x" }],
			[`/applications/${app.appId}/webhook/test`, {}],
			[`/applications/${app.appId}/suppression`, { learnerId: "never-suppressed" }],
			[`/applications/${app.appId}/retention`, { learnerInactiveDays: "30" }],
			[`/applications/${app.appId}/retention`, { learnerInactiveDays: "0" }],
			[`/applications/${app.appId}/retention/confirm`, { learnerInactiveDays: "30" }],
			[`/applications/${app.appId}/retention/delete`, {}],
			["/users", { email: "", role: "admin" }],
			["/users/delete", { email: "nobody@example.com" }],
			[`${learnerBase}/tags`, { tags: "" }],
			[`${learnerBase}/info`, { email: "", firstName: "", lastName: "" }],
			["/erasures/learner", { appId: app.appId, learnerId: learner, userEmail: admin }],
			["/erasures/bulk", { appId: app.appId, ids: "", userEmail: admin }],
			["/erasures/realm", { learnerId: uniqueValue("nobody"), userEmail: admin }],
			["/confirm", { r: "x".repeat(43), confirm: "true" }],
		];
		for (const [path, fields] of posts) {
			const response = await submit(s, path, fields);
			expect(response.status, `${path} ${JSON.stringify(fields)}`).toBe(303);
			expect(response.headers.get("Location"), path).toMatch(/^\/console\//);
			// The page it leads to (a confirmation page of something gone may lead on, once more, to its list).
			const landed = await follow(s, response);
			expect([200, 303, 404], path).toContain(landed.status);
		}
	});

	it("leads a signed-in operator who opens a POST-only address to the page holding its form", async () => {
		const s = await session();
		const app = await createApp();
		const learner = uniqueValue("learner");
		await enrol(app, learner);
		const learnerBase = `/applications/${app.appId}/learners/${encodeURIComponent(learner)}`;
		for (const [path, page] of [
			["/sign-out", "/console/overview"],
			[`/applications/${app.appId}/allow-delete`, `/console/applications/${app.appId}`],
			[`/applications/${app.appId}/credentials`, `/console/applications/${app.appId}`],
			[`/applications/${app.appId}/credentials/x`, `/console/applications/${app.appId}`],
			[`/applications/${app.appId}/webhook`, `/console/applications/${app.appId}`],
			[`/applications/${app.appId}/webhook/test`, `/console/applications/${app.appId}`],
			[`/applications/${app.appId}/suppression`, `/console/applications/${app.appId}`],
			[`/applications/${app.appId}/retention/confirm`, `/console/applications/${app.appId}/retention`],
			[`/applications/${app.appId}/retention/delete`, `/console/applications/${app.appId}/retention`],
			[`${learnerBase}/tags`, `/console${learnerBase}`],
			[`${learnerBase}/tags/delete`, `/console${learnerBase}`],
			[`${learnerBase}/info`, `/console${learnerBase}`],
			["/erasures/learner", "/console/erasures"],
			["/erasures/bulk", "/console/erasures"],
			["/erasures/realm", "/console/erasures"],
		]) {
			const response = await fetchConsole(get(path ?? "", s.cookie));
			expect(response.status, path).toBe(303);
			expect(response.headers.get("Location"), path).toBe(page);
		}
		// Pages that are their own confirmation answer themselves.
		for (const path of [`/applications/${app.appId}/move`, `/applications/${app.appId}/delete`, `/applications/${app.appId}/retention`, "/users", "/applications"]) {
			expect((await fetchConsole(get(path, s.cookie))).status, path).toBe(200);
		}
	});

	it("keeps every draft sealed: the control database holds no learner id, email or secret in the clear", async () => {
		const s = await session();
		const app = await createApp();
		const learner = uniqueValue("sealed-learner");
		await enrol(app, learner);
		const email = await realmUser("admin");
		await review(s, "/erasures/learner", { appId: app.appId, learnerId: learner, userEmail: email });
		const credential = uniqueValue("credential-name");
		await submit(s, `/applications/${app.appId}/credentials`, { name: credential });
		const { results } = await env.DB.prepare("SELECT * FROM console_drafts").all<Record<string, unknown>>();
		expect(results.length).toBeGreaterThanOrEqual(2);
		const stored = JSON.stringify(results);
		expect(stored).not.toContain(learner);
		expect(stored).not.toContain(email);
		expect(stored).not.toContain(credential);
	});

	it("refuses another session's confirmation: the draft opens for the session that made it only", async () => {
		const [mine, theirs] = [await session(), await session()];
		const app = await createApp();
		const learner = uniqueValue("learner");
		await enrol(app, learner);
		const { token } = await review(mine, "/erasures/learner", { appId: app.appId, learnerId: learner, userEmail: await realmUser("admin") });
		const stolen = await submit(theirs, "/confirm", { r: token, confirm: "true" });
		expect(stolen.headers.get("Location")).toMatch(/^\/console\/jobs\?r=/);
		expect((await call("GET", `/learner/${encodeURIComponent(learner)}/tags`, { auth: app.auth })).status).toBe(200);
		const opened = await fetchConsole(get(`/confirm?r=${token}`, theirs.cookie));
		expect(await (await follow(theirs, opened)).text()).toContain("This confirmation has expired or was carried out already");
	});
});

describe("lifting a suppression", () => {
	it("finds the suppression by the learner id typed, states it, and lifts it only once confirmed", async () => {
		const s = await session();
		const app = await createApp();
		const learner = `${uniqueValue("suppressed")} `;
		await enrol(app, learner);
		const erasure = await call("POST", `/learner/${encodeURIComponent(learner)}/delete-information?userEmail=${encodeURIComponent(await realmUser("admin"))}&suppress=true`, {
			auth: app.auth,
		});
		await waitForJob(app.auth, erasure.headers.get("Location")?.split("/").pop() ?? "");
		const register = () =>
			call("POST", "/registrations", { auth: app.auth, body: { courseId: "c", registrationId: uniqueValue("r"), learner: { id: learner } } });
		expect((await register()).status).toBe(409);
		// The id without its trailing space is not suppressed: refused beside the field.
		const wrong = await follow(s, await submit(s, `/applications/${app.appId}/suppression`, { learnerId: learner.trim() }));
		expect(fieldErrors(await wrong.text()).learnerId).toMatch(/^No learner with exactly this id is suppressed/);
		const { html } = await review(s, `/applications/${app.appId}/suppression`, { learnerId: learner });
		expect(html).toContain('<span class="blank"> </span></code> <small class="blanks">(ends with 1 space)</small>');
		expect((await register()).status).toBe(409);
		const lifted = await confirmed(s, `/applications/${app.appId}/suppression`, { learnerId: learner });
		expect(await (await follow(s, lifted)).text()).toContain("Suppression lifted");
		expect((await register()).status).toBe(204);
	}, 20_000);
});

describe("the overview", () => {
	it("draws the realm's usage as SVG charts, each titled, described and given as a table, without inline style", async () => {
		const s = await session();
		const app = await createApp("overview-app");
		await enrol(app, uniqueValue("learner"), { learnerTags: ["t"] });
		const response = await fetchConsole(get("/overview", s.cookie));
		expect(response.status).toBe(200);
		const html = await response.text();
		for (const chart of ["chart-quota", "chart-budget", "chart-jobs", "chart-webhooks", "chart-shards"]) {
			const figure = new RegExp(`<figure class="chart" id="${chart}"[\\s\\S]*?</figure>`).exec(html)?.[0] ?? "";
			expect(figure, chart).toMatch(/<svg class="chart-svg" viewBox="0 0 340 \d+"[^>]* role="img" aria-labelledby="[^"]+-title [^"]+-desc">/);
			expect(figure, chart).toMatch(/<title id="[^"]+">[^<]+<\/title><desc id="[^"]+">/);
			expect(figure, chart).toContain("<figcaption");
			expect(figure, chart).toContain("<table>");
		}
		expect(html).toContain(">overview-app</td>");
		expect(html).not.toContain("style=");
		expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/);
	});
});

describe("the jobs view", () => {
	it("lists the realm's jobs from the API, filtered by application, status and type, a page at a time", async () => {
		const s = await session();
		const app = await createApp("jobs-view");
		const other = await createApp("jobs-view-other");
		const future = (i: number) => new Date(Date.UTC(2099, 0, 1, 0, 0, i)).toISOString();
		await insertJobs(
			await shardOf(app.appId),
			Array.from({ length: 130 }, (_, i) => ({
				id: seedJobId(app.appId),
				appId: app.appId,
				type: i % 2 === 0 ? ("updateLearnerInfo" as const) : ("deleteAllLearnerData" as const),
				status: i % 3 === 0 ? ("failed" as const) : ("completed" as const),
				createdAt: future(i),
			})),
		);
		await insertJobs(await shardOf(other.appId), [{ id: seedJobId(other.appId), appId: other.appId, type: "updateLearnerInfo", status: "queued", createdAt: future(200) }]);
		const rows = (html: string) => (html.match(/<tr><td data-label="Job"/g) ?? []).length;
		const first = await (await fetchConsole(get(`/jobs?appId=${app.appId}`, s.cookie))).text();
		expect(rows(first)).toBe(100);
		expect(first).toContain("Erasure of one learner");
		expect(first).toContain("Update of a learner&#39;s details");
		const next = /href="(\/console\/jobs\?[^"]+)" rel="next"/.exec(first)?.[1]?.replaceAll("&amp;", "&") ?? "";
		expect(next).toContain("more=");
		const second = await (await fetchConsole(get(next.slice("/console".length), s.cookie))).text();
		expect(rows(second)).toBe(30);
		expect(second).not.toContain('rel="next"');
		const failedUpdates = await (await fetchConsole(get(`/jobs?appId=${app.appId}&status=failed&type=updateLearnerInfo`, s.cookie))).text();
		expect(rows(failedUpdates)).toBe(22);
		const queued = await (await fetchConsole(get(`/jobs?status=queued&appId=${other.appId}`, s.cookie))).text();
		expect(rows(queued)).toBe(1);
		expect(queued).toContain("jobs-view-other");
	});

	it("shows a job's type in words, its application, learner and why it waits; a move's shards and phase", async () => {
		const s = await session();
		const app = await createApp("job-page");
		const learner = uniqueValue("learner");
		await enrol(app, learner);
		const queuedId = seedJobId(app.appId);
		await insertJobs(await shardOf(app.appId), [
			{ id: queuedId, appId: app.appId, type: "deleteAllLearnerData", status: "queued", createdAt: new Date().toISOString(), learnerHash: "cd".repeat(32) },
		]);
		const queued = await (await fetchConsole(get(`/jobs/${queuedId}`, s.cookie))).text();
		expect(queued).toContain("<h1>Erasure of one learner</h1>");
		expect(queued).toContain("Waiting for the queue");
		expect(queued).toContain(">job-page <span class=\"mono\">");
		expect(queued).toContain(`title="${"cd".repeat(32)}"`);
		const moveId = crypto.randomUUID();
		await insertJobs(env.DB, [
			{
				id: moveId,
				appId: app.appId,
				type: "moveApplication",
				status: "running",
				createdAt: new Date().toISOString(),
				payload: JSON.stringify({ from: "SHARD_1", to: "SHARD_2", toRegion: "default", phase: "drain", table: 0, after: null, rounds: 0 }),
			},
		]);
		const move = await (await fetchConsole(get(`/jobs/${moveId}`, s.cookie))).text();
		expect(move).toContain("<h1>Application move</h1>");
		expect(move).toContain("Frozen: the application&#39;s writes wait a few seconds");
		expect(move).toContain("from <code>SHARD_1</code> to <code>SHARD_2</code>");
		// An erasure started in this session names the learner as typed.
		const admin = await realmUser("admin");
		const started = await confirmed(s, "/erasures/learner", { appId: app.appId, learnerId: learner, userEmail: admin });
		const jobId = startedJob(started);
		await waitForJob(MANAGEMENT, jobId);
		const page = await (await follow(s, started)).text();
		expect(page).toContain(`<code class="verbatim">${learner}</code> <small class="muted">(as typed in this session)</small>`);
		expect(page).toContain(admin);
		// Opened without the session's draft, the page names the learner by the HMAC the job keeps.
		const plain = await (await fetchConsole(get(`/jobs/${jobId}`, s.cookie))).text();
		expect(plain).not.toContain(learner);
		expect(plain).toContain("HMAC of the learner id");
	}, 20_000);
});
