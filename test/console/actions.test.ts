import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "../support/client";
import { confirmed, fetchConsole, fieldErrors, follow, get, post, review, session, startedJob, submit } from "../support/console";
import { waitForJob } from "../support/expect";
import { MANAGEMENT, createApp, enrol, putTags, realmUser, tagsOf, uniqueValue } from "../support/fixtures";
import { receiver, verifiedTimestamp } from "../support/webhooks";

// What the console's forms do, checked through the API: each action is the API's own, with its rules; every POST
// answers 303 to a page, and what it did (or why not) is shown there.

const credentialsOf = async (appId: string) =>
	((await (await call("GET", `/appManagement/${appId}/credentials`, { auth: MANAGEMENT })).json()) as {
		credentials: { id: string; name: string; status: string }[];
	}).credentials;

describe("the console's applications view", () => {
	it("deletes an application only after its confirmation page, which says what it holds", async () => {
		const s = await session();
		const app = await createApp();
		await enrol(app, uniqueValue("learner"));
		const confirm = await fetchConsole(get(`/applications/${app.appId}/delete`, s.cookie));
		expect(confirm.status).toBe(200);
		const html = await confirm.text();
		expect(html).toContain(`action="/console/applications/${app.appId}/delete"`);
		expect(html).toContain("1 registration of 1 learner, 0 tag rows");
		// The confirmation page changed nothing, and a POST without its confirm=true only leads back to it.
		expect((await call("GET", "/ping", { auth: app.auth })).status).toBe(200);
		const unconfirmed = await submit(s, `/applications/${app.appId}/delete`);
		expect(unconfirmed.headers.get("Location")).toBe(`/console/applications/${app.appId}/delete`);
		expect((await call("GET", "/ping", { auth: app.auth })).status).toBe(200);
		const jobId = startedJob(await submit(s, `/applications/${app.appId}/delete`, { confirm: "true" }));
		expect(jobId.startsWith(`${app.appId}.`)).toBe(true);
		expect((await call("GET", "/ping", { auth: app.auth })).status).toBe(401);
	});

	it("honours allowDelete: a guarded application offers no delete button, and is deleted only once allowed and confirmed", async () => {
		const s = await session();
		const app = await createApp();
		// Guarded from the application's page, as the API's PUT; the page it leads to says so.
		const guarded = await submit(s, `/applications/${app.appId}/allow-delete`, { allowDelete: "false" });
		expect(guarded.headers.get("Location") ?? "").toMatch(new RegExp(`^/console/applications/${app.appId}\\?r=`));
		expect(await (await follow(s, guarded)).text()).toContain("Deletion switched off");
		const info = await call("GET", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		expect(((await info.json()) as { allowDelete: boolean }).allowDelete).toBe(false);
		const page = await (await fetchConsole(get(`/applications/${app.appId}/delete`, s.cookie))).text();
		expect(page).toContain("guarded against deletion");
		expect(page).not.toContain(`action="/console/applications/${app.appId}/delete"`);
		expect(page).toContain(`action="/console/applications/${app.appId}/allow-delete"`);
		// A confirmed delete posted anyway is the API's refusal, in the console's words, and nothing happens.
		const refused = await submit(s, `/applications/${app.appId}/delete`, { confirm: "true" });
		expect(refused.status).toBe(303);
		const refusal = await (await follow(s, refused)).text();
		expect(refusal).toContain('data-api-status="409"');
		expect(refusal).toContain("Deletion is switched off for this application");
		expect(refusal).not.toContain("PUT /appManagement");
		expect((await call("GET", "/ping", { auth: app.auth })).status).toBe(200);
		// Opened with GET, the allow-delete address leads to the application's page.
		expect((await fetchConsole(get(`/applications/${app.appId}/allow-delete`, s.cookie))).headers.get("Location")).toBe(`/console/applications/${app.appId}`);
		// Allowed again, the confirmation page is back, and its confirm deletes.
		expect((await submit(s, `/applications/${app.appId}/allow-delete`, { allowDelete: "true" })).status).toBe(303);
		expect(await (await fetchConsole(get(`/applications/${app.appId}/delete`, s.cookie))).text()).toContain(
			`action="/console/applications/${app.appId}/delete"`,
		);
		startedJob(await submit(s, `/applications/${app.appId}/delete`, { confirm: "true" }));
		expect((await call("GET", "/ping", { auth: app.auth })).status).toBe(401);
	});

	it("moves an application after confirming its shards, and puts the API's region refusal beside the checkbox", async () => {
		const s = await session();
		const app = await createApp();
		const listed = (await (await call("GET", "/appManagement/applications", { auth: MANAGEMENT })).json()) as {
			applications: { id: string; shard: string }[];
		};
		const from = listed.applications.find((candidate) => candidate.id === app.appId)?.shard;
		const target = from === "SHARD_1" ? "SHARD_2" : "SHARD_1";
		const { html } = await review(s, `/applications/${app.appId}/move`, { shard: "SHARD_EU_1" });
		expect(html).toContain(`shard ${from}, region default`);
		expect(html).toContain("shard SHARD_EU_1, region eu");
		// Confirmed without allowing the region change: the API refuses, and the form comes back with the reason.
		const refused = await confirmed(s, `/applications/${app.appId}/move`, { shard: "SHARD_EU_1" });
		expect(refused.headers.get("Location")).toMatch(new RegExp(`^/console/applications/${app.appId}/move\\?r=`));
		const form = await (await follow(s, refused)).text();
		expect(fieldErrors(form)).toEqual({
			allowRegionChange:
				"SHARD_EU_1 is in data region eu and this application's data is in default: tick this box to let its data change region, or choose a shard of region default.",
		});
		expect(form).toContain('<option value="SHARD_EU_1" selected="">');
		const jobId = startedJob(await confirmed(s, `/applications/${app.appId}/move`, { shard: target }));
		expect((await waitForJob(MANAGEMENT, jobId)).status).toBe("completed");
	});

	it("finds applications by name and pages them", async () => {
		const s = await session();
		const tag = uniqueValue("findme");
		for (let i = 0; i < 27; i++) await createApp(`${tag}-${i}`);
		const first = await (await fetchConsole(get(`/applications?q=${encodeURIComponent(tag.toUpperCase())}`, s.cookie))).text();
		expect(first).toContain("27 applications match.");
		expect(first).toContain("Page 1 of 2");
		const second = await (await fetchConsole(get(`/applications?q=${encodeURIComponent(tag)}&page=2`, s.cookie))).text();
		expect((second.match(new RegExp(`>${tag}-\\d+</a>`, "g")) ?? []).length).toBe(2);
	});
});

describe("the console's credentials view", () => {
	it("shows a new credential's secret once: reloading its page shows it no more, and creates nothing", async () => {
		const s = await session();
		const app = await createApp();
		const created = await submit(s, `/applications/${app.appId}/credentials`, { name: "reporting" });
		expect(created.status).toBe(303);
		const location = (created.headers.get("Location") ?? "").slice("/console".length);
		const html = await (await fetchConsole(get(location, s.cookie))).text();
		const secret = /<output id="new-secret" class="mono">([\w-]{43})<\/output>/.exec(html)?.[1] ?? "";
		expect(secret).not.toBe("");
		expect((await credentialsOf(app.appId)).length).toBe(2);
		// The same page again (a reload): the secret is gone, and no credential was made.
		const reloaded = await (await fetchConsole(get(location, s.cookie))).text();
		expect(reloaded).not.toContain(secret);
		expect(reloaded).toContain("result was already shown, or has expired: it is shown only once");
		expect((await credentialsOf(app.appId)).length).toBe(2);
		// Another session cannot open it either.
		expect(await (await fetchConsole(get(location, (await session()).cookie))).text()).not.toContain(secret);
	});

	it("renames, disables, enables, and deletes a credential after its confirmation page", async () => {
		const s = await session();
		const app = await createApp();
		expect((await submit(s, `/applications/${app.appId}/credentials`, { name: "reporting" })).status).toBe(303);
		const id = (await credentialsOf(app.appId)).find((credential) => credential.name === "reporting")?.id ?? "";
		const base = `/applications/${app.appId}/credentials/${id}`;
		expect((await submit(s, base, { name: "reports" })).status).toBe(303);
		expect((await submit(s, base, { active: "false" })).status).toBe(303);
		expect((await credentialsOf(app.appId)).find((credential) => credential.id === id)).toMatchObject({ name: "reports", status: "Disabled" });
		expect((await submit(s, base, { active: "true" })).status).toBe(303);
		expect((await credentialsOf(app.appId)).find((credential) => credential.id === id)?.status).toBe("Enabled");
		const confirmation = await (await fetchConsole(get(`${base}/delete`, s.cookie))).text();
		expect(confirmation).toContain("Delete credential reports?");
		expect((await submit(s, `${base}/delete`)).headers.get("Location")).toBe(`/console${base}/delete`);
		expect((await credentialsOf(app.appId)).map((credential) => credential.id)).toContain(id);
		const deleted = await submit(s, `${base}/delete`, { confirm: "true" });
		expect(await (await follow(s, deleted)).text()).toContain(`Credential ${id} deleted`);
		expect((await credentialsOf(app.appId)).map((credential) => credential.id)).not.toContain(id);
	});

	it("sets an application's webhook (its secret shown once), tests it, and removes it after confirming", async () => {
		const s = await session();
		const app = await createApp();
		const url = "https://hooks.example.com/console";
		const set = await follow(s, await submit(s, `/applications/${app.appId}/webhook`, { url }));
		const page = await set.text();
		const secret = /whsec_[A-Za-z0-9+/]{43}=/.exec(page)?.[0];
		expect(secret).toBeDefined();
		const read = await call("GET", `/appManagement/${app.appId}/webhook`, { auth: MANAGEMENT });
		expect(((await read.json()) as { url: string }).url).toBe(url);
		// Shown once: the page opened again names the URL, not the secret.
		const again = await (await fetchConsole(get(`/applications/${app.appId}`, s.cookie))).text();
		expect(again).toContain(url);
		expect(again).not.toContain(secret);
		// The API's rule, not a second one: plain http to another host is refused, in the console's words, beside the field.
		const refused = await (await follow(s, await submit(s, `/applications/${app.appId}/webhook`, { url: "http://hooks.example.com/x" }))).text();
		expect(fieldErrors(refused)).toEqual({
			url: "The webhook's URL must start with https: (a plain http URL is allowed only to this machine in development).",
		});
		expect(refused).toContain('value="http://hooks.example.com/x"');

		// The test button sends a signed event: the in-process API's outbound fetch is the receiver here.
		const hook = receiver(() => 204);
		// Run in this isolate (any binding given), where the receiver stands in for the outbound fetch.
		const tested = await fetchConsole(post(`/applications/${app.appId}/webhook/test`, { csrf: s.csrf }, { cookie: s.cookie }), {
			RATE_LIMITER: env.RATE_LIMITER,
		});
		hook.restore();
		expect(await (await follow(s, tested)).text()).toMatch(/Test event evt_[0-9a-f]{32} delivered \(the endpoint answered 204\)/);
		expect(hook.received).toHaveLength(1);
		expect(await verifiedTimestamp(secret ?? "", hook.received[0]?.headers, hook.received[0]?.body ?? "")).not.toBeNull();

		expect(await (await fetchConsole(get(`/applications/${app.appId}/webhook/delete`, s.cookie))).text()).toContain(url);
		expect((await submit(s, `/applications/${app.appId}/webhook/delete`, { confirm: "true" })).status).toBe(303);
		expect((await call("GET", `/appManagement/${app.appId}/webhook`, { auth: MANAGEMENT })).status).toBe(404);
	});
});

describe("the console's realm users view", () => {
	it("adds and changes a realm user, and removes it after its confirmation page", async () => {
		const s = await session();
		const email = `${uniqueValue("operator")}@example.com`;
		const users = async () =>
			((await (await call("GET", "/appManagement/users", { auth: MANAGEMENT })).json()) as { users: { email: string; role: string }[] }).users;
		expect((await submit(s, "/users", { email, role: "member" })).status).toBe(303);
		expect((await users()).find((user) => user.email === email)?.role).toBe("member");
		expect((await submit(s, "/users", { email, role: "owner" })).status).toBe(303);
		expect((await users()).find((user) => user.email === email)?.role).toBe("owner");
		const confirmation = await (await fetchConsole(get(`/users/delete?email=${encodeURIComponent(email)}`, s.cookie))).text();
		expect(confirmation).toContain("It may no longer request erasures");
		expect((await submit(s, "/users/delete", { email })).status).toBe(303);
		expect((await users()).map((user) => user.email)).toContain(email);
		expect((await submit(s, "/users/delete", { email, confirm: "true" })).status).toBe(303);
		expect((await users()).map((user) => user.email)).not.toContain(email);
	});

	it("finds realm users by email and pages them", async () => {
		const s = await session();
		const tag = uniqueValue("pager");
		for (let i = 0; i < 26; i++) await submit(s, "/users", { email: `${tag}-${i}@example.com`, role: "member" });
		const page = await (await fetchConsole(get(`/users?q=${encodeURIComponent(tag)}`, s.cookie))).text();
		expect(page).toContain("26 users match.");
		expect(page).toContain("Page 1 of 2");
	});
});

describe("the console's learners view", () => {
	it("finds a learner by id and by tags (any or all), shows its email, and adds and removes its tags as the application", async () => {
		const s = await session();
		const app = await createApp();
		const learner = uniqueValue("learner");
		const other = uniqueValue("other");
		const registrationId = await enrol(app, { id: learner, email: "ada@example.com" });
		await enrol(app, other);
		await putTags(app, "learner", learner, ["alpha", "beta"]);
		await putTags(app, "learner", other, ["alpha"]);
		const byId = await fetchConsole(get(`/applications/${app.appId}/learners?learnerId=${encodeURIComponent(learner)}`, s.cookie));
		expect(byId.status).toBe(303);
		expect(byId.headers.get("Location")).toBe(`/console/applications/${app.appId}/learners/${encodeURIComponent(learner)}`);
		const byAny = await (await fetchConsole(get(`/applications/${app.appId}/learners?tags=alpha,beta&tagMatch=any`, s.cookie))).text();
		expect(byAny).toContain(learner);
		expect(byAny).toContain(other);
		expect(byAny).toContain("ada@example.com");
		const byAll = await (await fetchConsole(get(`/applications/${app.appId}/learners?tags=alpha,beta&tagMatch=all`, s.cookie))).text();
		expect(byAll).toContain(learner);
		expect(byAll).not.toContain(other);
		const unknown = await fetchConsole(get(`/applications/${app.appId}/learners?learnerId=nobody`, s.cookie));
		expect(unknown.status).toBe(404);
		expect(await unknown.text()).toContain("has no learner with exactly this id");
		const detail = await (await fetchConsole(get(`/applications/${app.appId}/learners/${encodeURIComponent(learner)}`, s.cookie))).text();
		expect(detail).toContain(registrationId);
		const base = `/applications/${app.appId}/learners/${encodeURIComponent(learner)}`;
		expect((await submit(s, `${base}/tags`, { tags: "gamma" })).status).toBe(303);
		expect(await tagsOf(app, "learner", learner)).toEqual(["alpha", "beta", "gamma"]);
		expect((await submit(s, `${base}/tags/delete`, { tags: "alpha" })).status).toBe(303);
		expect(await tagsOf(app, "learner", learner)).toEqual(["beta", "gamma"]);
	});

	it("updates a learner's details as a job, leaving the fields left empty", async () => {
		const s = await session();
		const app = await createApp();
		const learner = uniqueValue("learner");
		const registrationId = await enrol(app, { id: learner, email: "old@example.com", firstName: "Ada" });
		const base = `/applications/${app.appId}/learners/${encodeURIComponent(learner)}`;
		const answer = await submit(s, `${base}/info`, { email: "new@example.com", firstName: "", lastName: "Lovelace" });
		expect(answer.headers.get("Location")).toMatch(new RegExp(`^/console${base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\?r=`));
		const shown = await (await follow(s, answer)).text();
		const jobId = /Update queued as job ([^:]+):/.exec(shown)?.[1] ?? "";
		await waitForJob(app.auth, jobId);
		const registration = (await (await call("GET", `/registrations/${encodeURIComponent(registrationId)}`, { auth: app.auth })).json()) as {
			learner: Record<string, string>;
		};
		expect(registration.learner).toEqual({ id: learner, email: "new@example.com", firstName: "Ada", lastName: "Lovelace" });
		// A refused email comes back beside its field, the other fields as typed.
		const refused = await (await follow(s, await submit(s, `${base}/info`, { email: "not-an-email", firstName: "", lastName: "Byron" }))).text();
		expect(fieldErrors(refused)).toEqual({ email: "Enter a valid email address, or leave the field empty." });
		expect(refused).toContain('value="Byron"');
	}, 20_000);
});

describe("the console's erasures view", () => {
	it("erases many learners of an application as one job, after a confirmation naming each and counting their registrations", async () => {
		const s = await session();
		const app = await createApp("bulk-target");
		const [first, second] = [uniqueValue("learner"), uniqueValue("learner")];
		await enrol(app, first);
		await enrol(app, first);
		await enrol(app, second);
		const email = await realmUser("admin");
		const { html, token } = await review(s, "/erasures/bulk", { appId: app.appId, ids: `${first}\r\n${second}\n`, userEmail: email });
		expect(html).toContain("Erase 2 learners?");
		expect(html).toContain(first);
		expect(html).toContain("3 will be erased");
		// Nothing has started yet.
		expect((await call("GET", `/learner/${first}/tags`, { auth: app.auth })).status).toBe(200);
		const jobId = startedJob(await submit(s, "/confirm", { r: token, confirm: "true" }));
		// The same confirmation again (a resent form) does nothing.
		const again = await submit(s, "/confirm", { r: token, confirm: "true" });
		expect(await (await follow(s, again)).text()).toContain("This confirmation has expired or was carried out already: nothing was done again.");
		const job = await waitForJob(MANAGEMENT, jobId);
		expect(job).toMatchObject({ type: "deleteLearnersData", status: "completed", registrationsAffected: 3 });
		const status = await fetchConsole(get(`/jobs/${jobId}/status`, s.cookie));
		expect(await status.json()).toEqual({ status: "completed", percent: 100, counts: "3 registrations affected, 0 tags removed", waiting: null, receipt: true });
		const receipt = await fetchConsole(get(`/jobs/${jobId}/receipt`, s.cookie));
		expect(receipt.status).toBe(200);
		expect(((await receipt.json()) as { receipt: { jobId: string } }).receipt.jobId).toBe(jobId);
	}, 20_000);

	it("erases a learner in every application after naming them, and refuses a requester who is not an owner or admin beside the field", async () => {
		const s = await session();
		const [one, two] = [await createApp("realm-one"), await createApp("realm-two")];
		const learner = uniqueValue("learner");
		await enrol(one, learner);
		await enrol(two, learner);
		const member = await realmUser("member");
		const refused = await submit(s, "/erasures/realm", { learnerId: learner, userEmail: member });
		expect(refused.headers.get("Location")).toMatch(/^\/console\/erasures\?r=/);
		const form = await (await follow(s, refused)).text();
		expect(fieldErrors(form)).toEqual({ userEmail: "This email is not a realm owner or admin: only they may request an erasure (see Realm users)." });
		expect(form).toContain(`value="${member}"`);
		const owner = await realmUser("owner");
		const { html, token } = await review(s, "/erasures/realm", { learnerId: learner, userEmail: owner });
		expect(html).toContain("realm-one");
		expect(html).toContain("realm-two");
		expect(html).toContain("Erase in 2 applications");
		const jobId = startedJob(await submit(s, "/confirm", { r: token, confirm: "true" }));
		expect(await waitForJob(MANAGEMENT, jobId)).toMatchObject({ type: "deleteRealmLearnerData", status: "completed", registrationsAffected: 2 });
		// The job page names the learner as typed in this session, and the requester.
		const jobPage = await (await fetchConsole(get(`/jobs/${encodeURIComponent(jobId)}`, s.cookie))).text();
		expect(jobPage).toContain("<h1>Realm-wide erasure</h1>");
		expect(jobPage).toContain(owner);
		const listed = await (await fetchConsole(get("/jobs?type=deleteRealmLearnerData", s.cookie))).text();
		expect(listed).toContain(jobId);
	}, 20_000);

	it("refuses, beside the learner id, a learner the application does not hold, starting nothing", async () => {
		const s = await session();
		const app = await createApp();
		const missing = await submit(s, "/erasures/learner", { appId: app.appId, learnerId: "nobody", userEmail: await realmUser("admin") });
		expect(missing.headers.get("Location")).toMatch(/^\/console\/erasures\?r=/);
		const form = await (await follow(s, missing)).text();
		expect(fieldErrors(form).learnerId).toMatch(/has no learner with exactly this id/);
		expect(form).toContain('id="single-learner" name="learnerId" type="text" value="nobody"');
	});
});
