import * as z from "zod/mini";
import { LIMITS } from "../limits";
import { type ApiAnswer, segment } from "./api";
import { confirmation } from "./confirmations";
import { type ConsoleContext, type ConsoleRouter, type FormPage, formOf, page, refusalOf, refused } from "./flow";
import { LEARNER_ID_RULE, MANAGEMENT, asApp, field, form, lineList, listApplications, signedIn, tidy } from "./shared";
import { ErasuresPage } from "./views";

/**
 * The console's erasures (SPEC §10): the three forms (one learner, many learners, one learner everywhere), each
 * reviewed here — what the API says it would erase, refusals beside their fields before anything is asked — and then
 * confirmed on the page ./confirmations.tsx shows, which alone asks the API for the erasure.
 */

/** A bulk erasure's learners whose registrations the confirmation page counts (one API call each). */
export const COUNTED_IDS = 100;

export function erasureRoutes(router: ConsoleRouter, formPage: FormPage): void {
	// Erasures: each is reviewed (what the API says it would erase), then confirmed, then started as a job.

	router.get("/erasures", async (c) =>
		page(
			c,
			<ErasuresPage
				{...signedIn(c)}
				applications={await listApplications(c)}
				forms={{ eraseLearner: formOf(c, "eraseLearner"), eraseBulk: formOf(c, "eraseBulk"), eraseRealm: formOf(c, "eraseRealm") }}
			/>,
		),
	);

	/** Whether the email is a realm owner or admin (the API judges again when the erasure is asked). */
	async function privileged(c: ConsoleContext, email: string): Promise<boolean> {
		const answer = await c.var.api<{ users: { email: string; role: string }[] }>(MANAGEMENT, "GET", "/appManagement/users");
		const user = answer.body?.users.find((candidate) => candidate.email.toLowerCase() === email.toLowerCase());
		return user?.role === "owner" || user?.role === "admin";
	}

	/** A learner's registrations in an application (GET /registrations?learnerId= with its total): null when it has none. */
	async function registrationsOf(c: ConsoleContext, appId: string, learnerId: string): Promise<number | ApiAnswer<unknown> | null> {
		const answer = await c.var.api(asApp(appId), "GET", `/registrations?learnerId=${encodeURIComponent(learnerId)}&includeTotalCount=true`);
		if (!answer.ok) return answer;
		const total = Number(answer.headers.get("X-Total-Count") ?? 0);
		return total > 0 ? total : null;
	}

	const erasureForm = z.object({ appId: field, learnerId: field, ids: field, userEmail: field, suppress: field });
	const notPrivileged = "This email is not a realm owner or admin: only they may request an erasure (see Realm users).";

	router.post("/erasures/learner", form(erasureForm), async (c) => {
		const { appId, learnerId, userEmail, suppress } = c.req.valid("form");
		const values = { appId, learnerId, userEmail, suppress };
		const back = (errors: Record<string, string>, status?: number) => refused(c, "/console/erasures", "eraseLearner", { values, errors, status });
		if (!learnerId) return back({ learnerId: "Type the id of the learner to erase." });
		if (!tidy(userEmail)) return back({ userEmail: "Type the requester's email: a realm owner or admin." });
		const app = (await listApplications(c)).find((candidate) => candidate.id === appId);
		if (!app) return back({ appId: "Choose the application the learner is in." });
		const [registrations, tags, allowed] = await Promise.all([
			registrationsOf(c, appId, learnerId),
			c.var.api<{ tags: string[] }>(asApp(appId), "GET", `/learner/${segment(learnerId)}/tags`),
			privileged(c, tidy(userEmail)),
		]);
		if (registrations === null) {
			return back({ learnerId: `${app.name} has no learner with exactly this id (ids are compared exactly: case and spaces count).` }, 404);
		}
		if (typeof registrations !== "number") return refused(c, "/console/erasures", "eraseLearner", refusalOf(registrations, values, [LEARNER_ID_RULE]));
		if (!allowed) return back({ userEmail: notPrivileged }, 403);
		return confirmation(c, {
			kind: "eraseLearner",
			appId,
			appName: app.name,
			learnerId,
			userEmail: tidy(userEmail),
			suppress: suppress === "true",
			registrations,
			tags: tags.body?.tags.length ?? 0,
		});
	});

	router.post("/erasures/bulk", form(erasureForm), async (c) => {
		const { appId, ids: typed, userEmail, suppress } = c.req.valid("form");
		const values = { appId, ids: typed, userEmail, suppress };
		const back = (errors: Record<string, string>, status?: number) => refused(c, "/console/erasures", "eraseBulk", { values, errors, status });
		const ids = [...new Set(lineList(typed))];
		if (ids.length === 0) return back({ ids: "Type the learner ids to erase, one per line." });
		if (ids.length > LIMITS.idsPerBatch) return back({ ids: `At most ${LIMITS.idsPerBatch} learners in one erasure: these are ${ids.length}.` });
		if (!tidy(userEmail)) return back({ userEmail: "Type the requester's email: a realm owner or admin." });
		const app = (await listApplications(c)).find((candidate) => candidate.id === appId);
		if (!app) return back({ appId: "Choose the application the learners are in." });
		if (!(await privileged(c, tidy(userEmail)))) return back({ userEmail: notPrivileged }, 403);
		// The first COUNTED_IDS learners are counted (one call each, a few at a time); the API checks them all again.
		const counted: { id: string; registrations: number }[] = [];
		const unknown: string[] = [];
		const first = ids.slice(0, COUNTED_IDS);
		for (let start = 0; start < first.length; start += 8) {
			const found = await Promise.all(first.slice(start, start + 8).map(async (id) => ({ id, registrations: await registrationsOf(c, appId, id) })));
			for (const entry of found) {
				if (entry.registrations === null || typeof entry.registrations !== "number") unknown.push(entry.id);
				else counted.push({ id: entry.id, registrations: entry.registrations });
			}
		}
		if (unknown.length > 0) {
			return back({ ids: `Not learners of ${app.name} (ids are compared exactly: case and spaces count): ${unknown.map((id) => JSON.stringify(id)).join(", ")}` }, 404);
		}
		return confirmation(c, { kind: "eraseBulk", appId, appName: app.name, ids, userEmail: tidy(userEmail), suppress: suppress === "true", counted });
	});

	router.post("/erasures/realm", form(erasureForm), async (c) => {
		const { learnerId, userEmail, suppress } = c.req.valid("form");
		const values = { learnerId, userEmail, suppress };
		const back = (errors: Record<string, string>, status?: number) => refused(c, "/console/erasures", "eraseRealm", { values, errors, status });
		if (!learnerId) return back({ learnerId: "Type the id of the learner to erase." });
		if (!tidy(userEmail)) return back({ userEmail: "Type the requester's email: a realm owner or admin." });
		const [holders, allowed] = await Promise.all([
			c.var.api<{ applications: { id: string; name: string; shard: string; registrations: number }[] }>(
				MANAGEMENT,
				"GET",
				`/appManagement/learners/${segment(learnerId)}/applications`,
			),
			privileged(c, tidy(userEmail)),
		]);
		if (!holders.ok || !holders.body) {
			return refused(
				c,
				"/console/erasures",
				"eraseRealm",
				refusalOf(holders, values, [
					{ status: 404, field: "learnerId", text: "No application holds a learner with exactly this id (ids are compared exactly: case and spaces count)." },
					LEARNER_ID_RULE,
				]),
			);
		}
		if (!allowed) return back({ userEmail: notPrivileged }, 403);
		return confirmation(c, { kind: "eraseRealm", learnerId, userEmail: tidy(userEmail), suppress: suppress === "true", holders: holders.body.applications });
	});
	for (const kind of ["learner", "bulk", "realm"]) formPage(`/erasures/${kind}`, () => "/console/erasures");
}
