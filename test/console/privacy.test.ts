import { describe, expect, it } from "vitest";
import { type AuditEntry, auditHead, auditTrail, chainProblem } from "../support/audit";
import { call } from "../support/client";
import { fetchConsole, get, session, submit } from "../support/console";
import { createApp, MANAGEMENT } from "../support/fixtures";

/**
 * The console's privacy views (SPEC §12): an application's retention policy, set through a confirmation page, and
 * the realm's audit trail with its signed head; the console's own sign-ins, sign-outs and actions are in the trail,
 * the session as their actor.
 */

describe("the console's retention policy view", () => {
	it("sets a policy only once a confirmation page has stated what it will erase, and turns it off", async () => {
		const app = await createApp();
		const s = await session();
		const path = `/applications/${app.appId}/retention`;
		expect(await (await fetchConsole(get(path, s.cookie))).text()).toContain("No retention policy");

		const asked = await submit(s, path, { learnerInactiveDays: "30" });
		expect(asked.status).toBe(200);
		const confirmation = await asked.text();
		expect(confirmation).toContain("will be <strong>erased</strong>");
		expect(confirmation).toContain(app.appId);
		// Nothing is set before the confirmation.
		expect((await call("GET", `/appManagement/applications/${app.appId}/retention`, { auth: MANAGEMENT })).status).toBe(404);

		const confirmed = await submit(s, `${path}/confirm`, { learnerInactiveDays: "30" });
		expect(confirmed.status).toBe(303);
		expect(confirmed.headers.get("Location")).toBe(`/console${path}?done=set`);
		const shown = await (await fetchConsole(get(`${path}?done=set`, s.cookie))).text();
		expect(shown).toContain("Retention policy set");
		expect(shown).toContain("<strong>30</strong> days");
		expect(await (await call("GET", `/appManagement/applications/${app.appId}/retention`, { auth: MANAGEMENT })).json()).toMatchObject({
			learnerInactiveDays: 30,
		});

		const off = await submit(s, `${path}/delete`);
		expect(off.status).toBe(303);
		expect((await call("GET", `/appManagement/applications/${app.appId}/retention`, { auth: MANAGEMENT })).status).toBe(404);
	});

	it("refuses a number of days the API refuses, naming the field", async () => {
		const app = await createApp();
		const s = await session();
		const response = await submit(s, `/applications/${app.appId}/retention`, { learnerInactiveDays: "0" });
		expect(response.status).toBe(400);
		expect(await response.text()).toContain("learnerInactiveDays");
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
