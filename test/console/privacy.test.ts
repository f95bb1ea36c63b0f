import { describe, expect, it } from "vitest";
import { type AuditEntry, auditHead, auditTrail, chainProblem } from "../support/audit";
import { call } from "../support/client";
import { fetchConsole, fieldErrors, follow, formsOf, get, review, session, submit } from "../support/console";
import { createApp, MANAGEMENT } from "../support/fixtures";

/**
 * The console's privacy views (SPEC §12): an application's retention policy, set through a confirmation page (and,
 * like every console form, Post/Redirect/Get: a refusal beside its field, a result shown once), and
 * the realm's audit trail with its signed head; the console's own sign-ins, sign-outs and actions are in the trail,
 * the session as their actor.
 */

describe("the console's retention policy view", () => {
	const policy = async (appId: string) => call("GET", `/appManagement/applications/${appId}/retention`, { auth: MANAGEMENT });
	const retentionSets = async (appId: string) =>
		(await auditTrail("?action=application.retention.set")).filter((entry) => entry.target.applicationId === appId).length;

	it("sets a policy only from its confirmation page, which states what it will erase; reloads and resends repeat nothing", async () => {
		const app = await createApp("retention-console");
		const s = await session();
		const path = `/applications/${app.appId}/retention`;
		expect(await (await fetchConsole(get(path, s.cookie))).text()).toContain("No retention policy");

		const { html, token } = await review(s, path, { learnerInactiveDays: "30" });
		expect(html).toContain("Erase the learners of retention-console inactive for 30 days?");
		expect(html).toContain(`retention-console (${app.appId})`);
		expect(html).toContain("no policy: learners are kept until erased");
		expect(html).toContain("Erased data cannot be brought back");
		expect(formsOf(html, "/confirm")).toEqual([{ r: token, confirm: "true" }]);
		// Nothing is set before the confirmation, however often its page is opened.
		expect((await fetchConsole(get(`/confirm?r=${token}`, s.cookie))).status).toBe(200);
		expect((await policy(app.appId)).status).toBe(404);

		const confirmed = await submit(s, "/confirm", { r: token, confirm: "true" });
		expect(confirmed.status).toBe(303);
		expect(confirmed.headers.get("Location")).toMatch(new RegExp(`^/console${path}\\?r=`));
		const shown = await (await follow(s, confirmed)).text();
		expect(shown).toContain("Retention policy set: learners with no write for 30 days are erased from the next sweep on.");
		expect(shown).toContain("<strong>30</strong> days");
		expect(await (await policy(app.appId)).json()).toMatchObject({ learnerInactiveDays: 30 });
		// The result is shown once; pressing the button again (a resent form) finds its confirmation carried out.
		expect(await (await follow(s, confirmed)).text()).toContain("it is shown only once");
		const again = await follow(s, await submit(s, "/confirm", { r: token, confirm: "true" }));
		expect(await again.text()).toContain("This confirmation has expired or was carried out already");
		expect(await retentionSets(app.appId)).toBe(1);

		// Changing it says what it replaces.
		const change = await review(s, path, { learnerInactiveDays: "7" });
		expect(change.html).toContain("30 days, which this replaces (learners inactive for less time than before are erased too)");

		const off = await submit(s, `${path}/delete`);
		expect(off.status).toBe(303);
		expect(off.headers.get("Location")).toMatch(new RegExp(`^/console${path}\\?r=`));
		expect(await (await follow(s, off)).text()).toContain("Retention turned off");
		expect((await policy(app.appId)).status).toBe(404);
		expect(await (await follow(s, await submit(s, `${path}/delete`))).text()).toContain("Retention was already off");
		// The policy reviewed before it was turned off is still only a draft: nothing was set by the review.
		expect((await policy(app.appId)).status).toBe(404);
		expect(await retentionSets(app.appId)).toBe(1);
	});

	it("refuses a number of days beside the field, keeping what was typed, and sets nothing", async () => {
		const app = await createApp();
		const s = await session();
		const path = `/applications/${app.appId}/retention`;
		for (const typed of ["0", "36501", "abc", "1.5", ""]) {
			const response = await submit(s, path, { learnerInactiveDays: typed });
			expect(response.status, typed).toBe(303);
			expect(response.headers.get("Location"), typed).toMatch(new RegExp(`^/console${path}\\?r=`));
			const page = await follow(s, response);
			expect(page.status).toBe(200);
			const html = await page.text();
			expect(fieldErrors(html), typed).toEqual({ learnerInactiveDays: "Type a whole number of days from 1 to 36,500 (100 years)." });
			expect(formsOf(html, path)).toEqual([{ learnerInactiveDays: typed }]);
		}
		expect((await policy(app.appId)).status).toBe(404);
	});

	it("says so when the application is gone by the time the policy is confirmed, and when an older page's confirmation is sent", async () => {
		const app = await createApp();
		const s = await session();
		const path = `/applications/${app.appId}/retention`;
		const stale = await follow(s, await submit(s, `${path}/confirm`, { learnerInactiveDays: "30" }));
		expect(await stale.text()).toContain("This confirmation is from an older page and has expired: nothing was set.");
		expect((await policy(app.appId)).status).toBe(404);

		const { token } = await review(s, path, { learnerInactiveDays: "30" });
		expect((await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT })).status).toBe(204);
		const confirmed = await submit(s, "/confirm", { r: token, confirm: "true" });
		expect(confirmed.headers.get("Location")).toMatch(/^\/console\/applications\?r=/);
		const html = await (await follow(s, confirmed)).text();
		expect(html).toContain(`There is no application ${app.appId} any more (deleted meanwhile?): no policy was set.`);
		expect(html).toContain('data-api-status="404"');
	});
});

describe("the console's audit trail view", () => {
	it("shows the entries and the signed head, the session's sign-in, actions and sign-out recorded with it as actor", async () => {
		const s = await session();
		const created = await submit(s, "/applications", { name: "from the console" });
		expect(created.status).toBe(303);
		const page = await fetchConsole(get("/audit", s.cookie));
		expect(page.status).toBe(200);
		const html = await page.text();
		expect(html).toContain("Signed head");
		expect(html).toContain("console.signIn");
		expect(html).toContain("application.create");

		const signOut = await submit(s, "/sign-out");
		expect(signOut.status).toBe(303);
		const entries = await auditTrail();
		const ours = entries.filter((entry) => entry.actor.startsWith("console:") && entry.actor === entries.findLast((e) => e.action === "console.signOut")?.actor);
		expect(ours.map((entry: AuditEntry) => entry.action)).toEqual(["console.signIn", "application.create", "console.signOut"]);
	});

	it("downloads the whole chain and the signed head, which verify", async () => {
		const s = await session();
		const chain = await fetchConsole(get("/audit/chain.json", s.cookie));
		expect(chain.status).toBe(200);
		expect(chain.headers.get("Content-Disposition")).toBe('attachment; filename="audit-chain.json"');
		const { entries } = (await chain.json()) as { entries: AuditEntry[] };
		const head = await fetchConsole(get("/audit/head.json", s.cookie));
		expect(head.status).toBe(200);
		const signed = (await head.json()) as Awaited<ReturnType<typeof auditHead>>;
		// The head was fetched after the chain: it may name later entries (this session's own pages' calls add none).
		const all = await auditTrail();
		expect(all.slice(0, entries.length)).toEqual(entries);
		expect(await chainProblem(all.slice(0, signed.head.seq), signed)).toBeNull();
	});
});
