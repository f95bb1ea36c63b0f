import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "../support/client";
import { fetchConsole, get, post, session, startedJob, submit } from "../support/console";
import { waitForJob } from "../support/expect";
import { MANAGEMENT, createApp, enrol, putTags, realmUser, tagsOf, uniqueValue } from "../support/fixtures";
import { receiver, verifiedTimestamp } from "../support/webhooks";

// What the console's forms do, checked through the API: each action is the API's own, with its rules.

describe("the console's applications view", () => {
	it("deletes an application only after its confirmation page", async () => {
		const s = await session();
		const app = await createApp();
		const confirm = await fetchConsole(get(`/applications/${app.appId}/delete`, s.cookie));
		expect(confirm.status).toBe(200);
		const html = await confirm.text();
		expect(html).toContain(`action="/console/applications/${app.appId}/delete"`);
		// The confirmation page changed nothing.
		expect((await call("GET", "/ping", { auth: app.auth })).status).toBe(200);
		const jobId = startedJob(await submit(s, `/applications/${app.appId}/delete`));
		expect(jobId.startsWith(`${app.appId}.`)).toBe(true);
		expect((await call("GET", "/ping", { auth: app.auth })).status).toBe(401);
	});

	it("honours allowDelete: a guarded application offers no delete button, and is deleted only once allowed and confirmed", async () => {
		const s = await session();
		const app = await createApp();
		// Guarded from the application's page, as the API's PUT.
		const guarded = await submit(s, `/applications/${app.appId}/allow-delete`, { allowDelete: "false" });
		expect(guarded.status).toBe(303);
		const info = await call("GET", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		expect(((await info.json()) as { allowDelete: boolean }).allowDelete).toBe(false);
		const page = await (await fetchConsole(get(`/applications/${app.appId}/delete`, s.cookie))).text();
		expect(page).toContain("allowDelete: false");
		expect(page).not.toContain(`action="/console/applications/${app.appId}/delete"`);
		// A delete posted anyway is the API's refusal, shown, and nothing happens.
		const refused = await submit(s, `/applications/${app.appId}/delete`);
		expect(refused.status).toBe(409);
		expect(await refused.text()).toContain("allowDelete");
		expect((await call("GET", "/ping", { auth: app.auth })).status).toBe(200);
		// Allowed again, the confirmation page is back, and its confirm deletes.
		expect((await submit(s, `/applications/${app.appId}/allow-delete`, { allowDelete: "true" })).status).toBe(303);
		expect(await (await fetchConsole(get(`/applications/${app.appId}/delete`, s.cookie))).text()).toContain(
			`action="/console/applications/${app.appId}/delete"`,
		);
		startedJob(await submit(s, `/applications/${app.appId}/delete`));
		expect((await call("GET", "/ping", { auth: app.auth })).status).toBe(401);
	});

	it("moves an application to another shard as the API's job, and shows the API's refusal of a region change", async () => {
		const s = await session();
		const app = await createApp();
		const listed = (await (await call("GET", "/appManagement/applications", { auth: MANAGEMENT })).json()) as {
			applications: { id: string; shard: string }[];
		};
		const from = listed.applications.find((candidate) => candidate.id === app.appId)?.shard;
		const target = from === "SHARD_1" ? "SHARD_2" : "SHARD_1";
		const refused = await submit(s, `/applications/${app.appId}/move`, { shard: "SHARD_EU_1" });
		expect(refused.status).toBe(400);
		expect(await refused.text()).toContain("needs allowRegionChange: true");
		const jobId = startedJob(await submit(s, `/applications/${app.appId}/move`, { shard: target }));
		expect((await waitForJob(MANAGEMENT, jobId)).status).toBe("completed");
	});
});

describe("the console's credentials view", () => {
	it("creates a credential showing its secret once, renames, disables, enables and deletes it", async () => {
		const s = await session();
		const app = await createApp();
		const created = await submit(s, `/applications/${app.appId}/credentials`, { name: "reporting" });
		expect(created.status).toBe(200);
		const html = await created.text();
		const secret = /<output id="new-secret" class="mono">([\w-]{43})<\/output>/.exec(html)?.[1] ?? "";
		expect(secret).not.toBe("");
		const credentials = async () =>
			((await (await call("GET", `/appManagement/${app.appId}/credentials`, { auth: MANAGEMENT })).json()) as {
				credentials: { id: string; name: string; status: string }[];
			}).credentials;
		const id = (await credentials()).find((credential) => credential.name === "reporting")?.id ?? "";
		const base = `/applications/${app.appId}/credentials/${id}`;
		expect((await submit(s, base, { name: "reports" })).status).toBe(200);
		expect((await submit(s, base, { active: "false" })).status).toBe(200);
		expect((await credentials()).find((credential) => credential.id === id)).toMatchObject({ name: "reports", status: "Disabled" });
		expect((await submit(s, base, { active: "true" })).status).toBe(200);
		expect((await credentials()).find((credential) => credential.id === id)?.status).toBe("Enabled");
		expect((await submit(s, `${base}/delete`)).status).toBe(200);
		expect((await credentials()).map((credential) => credential.id)).not.toContain(id);
		// Shown once: the page opened again does not hold it.
		expect(await (await fetchConsole(get(`/applications/${app.appId}`, s.cookie))).text()).not.toContain(secret);
	});

	it("sets an application's webhook (its secret shown once), tests it, and removes it, through the API", async () => {
		const s = await session();
		const app = await createApp();
		const url = "https://hooks.example.com/console";
		const set = await submit(s, `/applications/${app.appId}/webhook`, { url });
		expect(set.status).toBe(200);
		const page = await set.text();
		const secret = /whsec_[A-Za-z0-9+/]{43}=/.exec(page)?.[0];
		expect(secret).toBeDefined();
		const read = await call("GET", `/appManagement/${app.appId}/webhook`, { auth: MANAGEMENT });
		expect(((await read.json()) as { url: string }).url).toBe(url);
		// Shown once: the page opened again names the URL, not the secret.
		const again = await (await fetchConsole(get(`/applications/${app.appId}`, s.cookie))).text();
		expect(again).toContain(url);
		expect(again).not.toContain(secret);
		// The API's rule, not a second one: plain http to another host is refused, with the API's message.
		const refused = await (await submit(s, `/applications/${app.appId}/webhook`, { url: "http://hooks.example.com/x" })).text();
		expect(refused).toContain("url must use https:");

		// The test button sends a signed event: the in-process API's outbound fetch is the receiver here.
		const hook = receiver(() => 204);
		// Run in this isolate (any binding given), where the receiver stands in for the outbound fetch.
		const tested = await fetchConsole(post(`/applications/${app.appId}/webhook/test`, { csrf: s.csrf }, { cookie: s.cookie }), {
			RATE_LIMITER: env.RATE_LIMITER,
		});
		hook.restore();
		expect(await tested.text()).toMatch(/Test event evt_[0-9a-f]{32} delivered \(the endpoint answered 204\)/);
		expect(hook.received).toHaveLength(1);
		expect(await verifiedTimestamp(secret ?? "", hook.received[0]?.headers, hook.received[0]?.body ?? "")).not.toBeNull();

		expect((await submit(s, `/applications/${app.appId}/webhook/delete`)).status).toBe(200);
		expect((await call("GET", `/appManagement/${app.appId}/webhook`, { auth: MANAGEMENT })).status).toBe(404);
	});
});

describe("the console's realm users view", () => {
	it("adds, changes and removes a realm user", async () => {
		const s = await session();
		const email = `${uniqueValue("operator")}@example.com`;
		const users = async () =>
			((await (await call("GET", "/appManagement/users", { auth: MANAGEMENT })).json()) as { users: { email: string; role: string }[] }).users;
		expect((await submit(s, "/users", { email, role: "member" })).status).toBe(200);
		expect((await users()).find((user) => user.email === email)?.role).toBe("member");
		expect((await submit(s, "/users", { email, role: "owner" })).status).toBe(200);
		expect((await users()).find((user) => user.email === email)?.role).toBe("owner");
		expect((await submit(s, "/users/delete", { email })).status).toBe(200);
		expect((await users()).map((user) => user.email)).not.toContain(email);
	});
});

describe("the console's learners view", () => {
	it("finds a learner by id and by tag, and adds and removes its tags as the application", async () => {
		const s = await session();
		const app = await createApp();
		const learner = uniqueValue("learner");
		const registrationId = await enrol(app, learner);
		await putTags(app, "learner", learner, ["alpha"]);
		const byId = await fetchConsole(get(`/applications/${app.appId}/learners?learnerId=${encodeURIComponent(learner)}`, s.cookie));
		expect(byId.status).toBe(303);
		expect(byId.headers.get("Location")).toBe(`/console/applications/${app.appId}/learners/${encodeURIComponent(learner)}`);
		const byTag = await (await fetchConsole(get(`/applications/${app.appId}/learners?tags=alpha`, s.cookie))).text();
		expect(byTag).toContain(learner);
		const unknown = await fetchConsole(get(`/applications/${app.appId}/learners?learnerId=nobody`, s.cookie));
		expect(unknown.status).toBe(404);
		expect(await unknown.text()).toContain("Learner [nobody] was not found");
		const detail = await (await fetchConsole(get(`/applications/${app.appId}/learners/${encodeURIComponent(learner)}`, s.cookie))).text();
		expect(detail).toContain(registrationId);
		const base = `/applications/${app.appId}/learners/${encodeURIComponent(learner)}`;
		expect((await submit(s, `${base}/tags`, { tags: "beta,gamma" })).status).toBe(200);
		expect(await tagsOf(app, "learner", learner)).toEqual(["alpha", "beta", "gamma"]);
		expect((await submit(s, `${base}/tags/delete`, { tags: "alpha" })).status).toBe(200);
		expect(await tagsOf(app, "learner", learner)).toEqual(["beta", "gamma"]);
	});
});

describe("the console's erasures view", () => {
	it("erases many learners of an application as one job", async () => {
		const s = await session();
		const app = await createApp();
		const [first, second] = [uniqueValue("learner"), uniqueValue("learner")];
		await enrol(app, first);
		await enrol(app, second);
		const email = await realmUser("admin");
		const jobId = startedJob(await submit(s, "/erasures/bulk", { appId: app.appId, ids: `${first}\r\n${second}\n`, userEmail: email }));
		const job = await waitForJob(MANAGEMENT, jobId);
		expect(job).toMatchObject({ type: "deleteLearnersData", status: "completed", registrationsAffected: 2 });
		const status = await fetchConsole(get(`/jobs/${jobId}/status`, s.cookie));
		expect(await status.json()).toEqual({ status: "completed", percent: 100, counts: "2 registrations affected, 0 tags removed", receipt: true });
		const receipt = await fetchConsole(get(`/jobs/${jobId}/receipt`, s.cookie));
		expect(receipt.status).toBe(200);
		expect(((await receipt.json()) as { receipt: { jobId: string } }).receipt.jobId).toBe(jobId);
	});

	it("erases a learner in every application, and refuses a requester who is not an owner or admin with the API's message", async () => {
		const s = await session();
		const [one, two] = [await createApp(), await createApp()];
		const learner = uniqueValue("learner");
		await enrol(one, learner);
		await enrol(two, learner);
		const member = await realmUser("member");
		const refused = await submit(s, "/erasures/realm", { learnerId: learner, userEmail: member });
		expect(refused.status).toBe(403);
		expect(await refused.text()).toContain("does not have sufficient privilege");
		const jobId = startedJob(await submit(s, "/erasures/realm", { learnerId: learner, userEmail: await realmUser("owner") }));
		expect(await waitForJob(MANAGEMENT, jobId)).toMatchObject({ type: "deleteRealmLearnerData", status: "completed", registrationsAffected: 2 });
		const jobs = await (await fetchConsole(get("/jobs", `${s.cookie}; console_jobs=${jobId}`))).text();
		expect(jobs).toContain(jobId);
	});

	it("shows the API's 404 for a learner the application does not hold, and starts nothing", async () => {
		const s = await session();
		const app = await createApp();
		const missing = await submit(s, "/erasures/learner", { appId: app.appId, learnerId: "nobody", userEmail: await realmUser("admin") });
		expect(missing.status).toBe(404);
		expect(await missing.text()).toContain("Learner [nobody] was not found");
		expect(missing.headers.get("Location")).toBeNull();
	});
});
