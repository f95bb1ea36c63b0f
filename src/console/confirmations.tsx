import * as z from "zod/mini";
import { segment } from "./api";
import { openDraft } from "./drafts";
import { type Confirmation, type ConsoleContext, type ConsoleRouter, type FormPage, type PageDraft, done, page, redirect, refusalOf, refused } from "./flow";
import { DAYS_REFUSAL, LEARNER_ID_RULE, MANAGEMENT, REQUESTER_RULES, asApp, field, form, retentionPath, signedIn, startedJob } from "./shared";
import { ConfirmPage, Verbatim, VerbatimList, When } from "./views";

/**
 * Confirmations (SPEC §10: every irreversible or costly action needs an explicit confirm): an action reviewed by its
 * form's POST is sealed in a draft (./drafts.ts) and shown by GET /confirm — exactly what will happen — and carried
 * out, once, by the page's button (POST /confirm). What is carried out is the draft's action, as the page showed it,
 * not what a resent form says; its draft is deleted as it is read, so a second press does nothing.
 */

/** Hands a reviewed action to its confirmation page. */
export async function confirmation(c: ConsoleContext, confirm: Confirmation): Promise<Response> {
	return redirect(c, "/console/confirm", { confirm }, { once: false });
}

export function confirmationRoutes(router: ConsoleRouter, formPage: FormPage): void {
	router.get("/confirm", async (c) => {
		const confirm = c.var.draft?.confirm;
		if (!confirm) return done(c, "/console/overview", { kind: "error", text: "This confirmation has expired or was carried out already: nothing was done again." });
		const token = c.req.query("r") ?? "";
		return page(c, <ConfirmPage {...signedIn(c)} {...confirmationPage(confirm)} action="/console/confirm" fields={{ r: token }} />);
	});

	router.post("/confirm", form(z.object({ r: field, confirm: field })), async (c) => {
		const { r, confirm } = c.req.valid("form");
		if (confirm !== "true") return c.redirect(`/console/confirm?r=${encodeURIComponent(r)}`, 303);
		// Taken as it is read: a second press of the button (or a resent form) finds nothing to do.
		const draft = await openDraft<PageDraft>(c.env.DB, c.var.session, r, { take: true });
		if (!draft?.confirm) return done(c, "/console/jobs", { kind: "error", text: "This confirmation has expired or was carried out already: nothing was done again." });
		return carryOut(c, draft.confirm);
	});
	formPage("/confirm", (c) => (c.req.query("r") ? `/console/confirm?r=${encodeURIComponent(c.req.query("r") ?? "")}` : "/console/overview"));

	/** What a confirmation page says. */
	function confirmationPage(confirm: Confirmation) {
		const suppression = (suppress: boolean) =>
			suppress ? "Yes: registrations naming this learner id are refused afterwards, until the suppression is lifted" : "No";
		const irreversible = "This cannot be undone. Once it completes, a signed receipt states what was erased.";
		switch (confirm.kind) {
			case "eraseLearner":
				return {
					title: "Erase this learner?",
					heading: (
						<>
							Erase learner <Verbatim value={confirm.learnerId} />?
						</>
					),
					intro: `Every registration of this learner in ${confirm.appName}, with its tags and the learner's tags, is deleted by a job.`,
					facts: [
						{ term: "Application", detail: `${confirm.appName} (${confirm.appId})` },
						{ term: "Learner id", detail: <Verbatim value={confirm.learnerId} /> },
						{ term: "Registrations", detail: `${confirm.registrations} will be erased (as counted now; any registered before the job ends go too)` },
						{ term: "Learner tags", detail: `${confirm.tags} will be removed` },
						{ term: "Requested by", detail: confirm.userEmail },
						{ term: "Suppress", detail: suppression(confirm.suppress) },
					],
					warning: irreversible,
					button: "Erase the learner",
					cancel: "/console/erasures",
				};
			case "eraseBulk": {
				const counted = confirm.counted.reduce((sum, entry) => sum + entry.registrations, 0);
				const uncounted = confirm.ids.length - confirm.counted.length;
				return {
					title: `Erase ${confirm.ids.length} learners?`,
					intro: `One job erases each of these learners in ${confirm.appName}, all or nothing: if one is not a learner there when the job is asked, none is erased.`,
					facts: [
						{ term: "Application", detail: `${confirm.appName} (${confirm.appId})` },
						{ term: "Learners", detail: <VerbatimList values={confirm.ids} /> },
						{
							term: "Registrations",
							detail:
								uncounted === 0
									? `${counted} will be erased (as counted now)`
									: `${counted} of the first ${confirm.counted.length} learners (as counted now); the other ${uncounted} are counted by the job as it goes`,
						},
						{ term: "Requested by", detail: confirm.userEmail },
						{ term: "Suppress", detail: suppression(confirm.suppress) },
					],
					warning: irreversible,
					button: `Erase ${confirm.ids.length} learners`,
					cancel: "/console/erasures",
				};
			}
			case "eraseRealm":
				return {
					title: "Erase this learner everywhere?",
					heading: (
						<>
							Erase learner <Verbatim value={confirm.learnerId} /> in every application?
						</>
					),
					intro: `The learner is erased in each application holding it now (${confirm.holders.length}), on whichever shard it lives; a realm job follows them.`,
					facts: [
						{ term: "Learner id", detail: <Verbatim value={confirm.learnerId} /> },
						...confirm.holders.map((holder) => ({
							term: holder.name,
							detail: `${holder.registrations} registration${holder.registrations === 1 ? "" : "s"} (application ${holder.id}, shard ${holder.shard})`,
						})),
						{ term: "Requested by", detail: confirm.userEmail },
						{ term: "Suppress", detail: suppression(confirm.suppress) },
					],
					warning: irreversible,
					button: `Erase in ${confirm.holders.length} application${confirm.holders.length === 1 ? "" : "s"}`,
					cancel: "/console/erasures",
				};
			case "move":
				return {
					title: `Move ${confirm.appName}?`,
					intro:
						"A job copies the application's rows to the target shard while it keeps working, then refuses its writes for a few seconds (503, Retry-After) while it copies the last ones, compares the counts and flips its placement; the old shard's rows are deleted after that.",
					facts: [
						{ term: "Application", detail: `${confirm.appName} (${confirm.appId})` },
						{ term: "From", detail: `shard ${confirm.from}, region ${confirm.fromRegion}` },
						{ term: "To", detail: `shard ${confirm.to}, region ${confirm.toRegion}` },
						{
							term: "Region",
							detail:
								confirm.fromRegion === confirm.toRegion
									? "unchanged"
									: `changes from ${confirm.fromRegion} to ${confirm.toRegion}${confirm.allowRegionChange ? " (allowed)" : ": not allowed on the previous page, so the service will refuse it"}`,
						},
					],
					button: `Move to ${confirm.to}`,
					cancel: `/console/applications/${segment(confirm.appId)}/move`,
				};
			case "liftSuppression":
				return {
					title: "Lift this suppression?",
					heading: (
						<>
							Lift the suppression of <Verbatim value={confirm.learnerId} />?
						</>
					),
					intro: `Registrations naming this learner id in ${confirm.appName} are accepted again, as a new learner.`,
					facts: [
						{ term: "Application", detail: `${confirm.appName} (${confirm.appId})` },
						{ term: "Learner id", detail: <Verbatim value={confirm.learnerId} /> },
						{
							term: "Suppressed",
							detail: (
								<>
									since <When iso={confirm.since} />, by erasure <a href={`/console/jobs/${segment(confirm.jobId)}`}>{confirm.jobId}</a>
								</>
							),
						},
					],
					button: "Lift the suppression",
					cancel: `/console/applications/${segment(confirm.appId)}`,
				};
			case "setRetention":
				return {
					title: "Set this retention policy?",
					heading: (
						<>
							Erase the learners of {confirm.appName} inactive for {confirm.days} days?
						</>
					),
					intro:
						"From the next sweep on, every learner of this application with no write (a registration created or deleted, tags, an update) for this many days is erased: registrations, tags and details.",
					facts: [
						{ term: "Application", detail: `${confirm.appName} (${confirm.appId})` },
						{ term: "Policy", detail: `erase learners with no write for ${confirm.days} day${confirm.days === 1 ? "" : "s"}` },
						{
							term: "In force now",
							detail:
								confirm.current === null
									? "no policy: learners are kept until erased"
									: `${confirm.current} days, which this replaces${confirm.days < confirm.current ? " (learners inactive for less time than before are erased too)" : ""}`,
						},
						{
							term: "Each sweep",
							detail:
								"every 5 minutes, at most 100 learners of this application, longest inactive first, each by an ordinary erasure requested by retention-policy, with its receipt, not suppressed",
						},
					],
					warning: "Erased data cannot be brought back. Turning the policy off later stops further erasures; it does not undo those done.",
					button: `Erase learners inactive for ${confirm.days} days`,
					cancel: retentionPath(confirm.appId),
				};
		}
	}

	/** Carries out a confirmed action through the API; a refusal goes back to its form, with what was typed. */
	async function carryOut(c: ConsoleContext, confirm: Confirmation): Promise<Response> {
		const erasureQuery = (userEmail: string, suppress: boolean) => `?userEmail=${encodeURIComponent(userEmail)}${suppress ? "&suppress=true" : ""}`;
		switch (confirm.kind) {
			case "eraseLearner": {
				const answer = await c.var.api(asApp(confirm.appId), "POST", `/learner/${segment(confirm.learnerId)}/delete-information${erasureQuery(confirm.userEmail, confirm.suppress)}`);
				const values = { appId: confirm.appId, learnerId: confirm.learnerId, userEmail: confirm.userEmail, suppress: String(confirm.suppress) };
				if (!answer.ok) {
					return refused(
						c,
						"/console/erasures",
						"eraseLearner",
						refusalOf(answer, values, [
							{ status: 404, match: /Learner/, field: "learnerId", text: `${confirm.appName} has no learner with exactly this id any more (erased or deleted meanwhile?).` },
							...REQUESTER_RULES,
							LEARNER_ID_RULE,
						]),
					);
				}
				return startedJob(c, answer.location, { learnerId: confirm.learnerId, requestedBy: confirm.userEmail });
			}
			case "eraseBulk": {
				const answer = await c.var.api(asApp(confirm.appId), "POST", `/learners/delete-information${erasureQuery(confirm.userEmail, confirm.suppress)}`, { ids: confirm.ids });
				const values = { appId: confirm.appId, ids: confirm.ids.join("\n"), userEmail: confirm.userEmail, suppress: String(confirm.suppress) };
				if (!answer.ok) {
					const unknown = answer.status === 404 ? [...answer.message.matchAll(/\[([^\]]*)\]/g)].map((match) => match[1] ?? "") : [];
					return refused(
						c,
						"/console/erasures",
						"eraseBulk",
						unknown.length > 0
							? { values, errors: { ids: `Not learners of ${confirm.appName} (any more): ${unknown.map((id) => JSON.stringify(id)).join(", ")}. Nothing was erased.` }, status: 404 }
							: refusalOf(answer, values, [...REQUESTER_RULES, { status: 400, match: /ids/, field: "ids", text: "Give 1 to 1000 learner ids, one per line, each 1 to 255 characters." }]),
					);
				}
				return startedJob(c, answer.location, { requestedBy: confirm.userEmail });
			}
			case "eraseRealm": {
				const answer = await c.var.api(
					MANAGEMENT,
					"POST",
					`/appManagement/learners/${segment(confirm.learnerId)}/delete-information${erasureQuery(confirm.userEmail, confirm.suppress)}`,
				);
				const values = { learnerId: confirm.learnerId, userEmail: confirm.userEmail, suppress: String(confirm.suppress) };
				if (!answer.ok) {
					return refused(
						c,
						"/console/erasures",
						"eraseRealm",
						refusalOf(answer, values, [
							{ status: 404, field: "learnerId", text: "No application holds a learner with exactly this id any more (erased or deleted meanwhile?)." },
							...REQUESTER_RULES,
							LEARNER_ID_RULE,
						]),
					);
				}
				return startedJob(c, answer.location, { learnerId: confirm.learnerId, requestedBy: confirm.userEmail });
			}
			case "move": {
				const answer = await c.var.api(MANAGEMENT, "POST", `/appManagement/applications/${segment(confirm.appId)}/move`, {
					shard: confirm.to,
					allowRegionChange: confirm.allowRegionChange,
				});
				const values = { shard: confirm.to, allowRegionChange: String(confirm.allowRegionChange) };
				if (!answer.ok) {
					return refused(
						c,
						`/console/applications/${segment(confirm.appId)}/move`,
						"move",
						refusalOf(answer, values, [
							{
								status: 400,
								match: /allowRegionChange/,
								field: "allowRegionChange",
								text: `${confirm.to} is in data region ${confirm.toRegion} and this application's data is in ${confirm.fromRegion}: tick this box to let its data change region, or choose a shard of region ${confirm.fromRegion}.`,
							},
							{ status: 409, match: /already/, field: "shard", text: "The application is on this shard already, or a move of it to another shard is under way (see its jobs)." },
							{ status: 409, match: /closed/, field: "shard", text: "This shard is closed to new applications: choose an open one." },
							{ status: 404, field: "form", text: "This application no longer exists." },
						]),
					);
				}
				return startedJob(c, answer.location, {});
			}
			case "liftSuppression": {
				const answer = await c.var.api(asApp(confirm.appId), "DELETE", `/learner/${segment(confirm.learnerId)}/suppression`);
				const back = `/console/applications/${segment(confirm.appId)}`;
				if (!answer.ok) {
					return refused(
						c,
						back,
						"suppression",
						refusalOf(answer, { learnerId: confirm.learnerId }, [
							{ status: 404, field: "learnerId", text: "This learner id is not suppressed any more (lifted meanwhile?)." },
						]),
					);
				}
				return done(c, back, { kind: "ok", text: "Suppression lifted: registrations naming this learner id are accepted again:", values: [confirm.learnerId] });
			}
			case "setRetention": {
				const answer = await c.var.api(MANAGEMENT, "PUT", `/appManagement/applications/${segment(confirm.appId)}/retention`, {
					learnerInactiveDays: confirm.days,
				});
				const back = retentionPath(confirm.appId);
				if (answer.status === 404) {
					return done(c, "/console/applications", { kind: "error", status: 404, text: `There is no application ${confirm.appId} any more (deleted meanwhile?): no policy was set.` });
				}
				if (!answer.ok) {
					return refused(
						c,
						back,
						"retention",
						refusalOf(answer, { learnerInactiveDays: String(confirm.days) }, [{ status: 400, match: /learnerInactiveDays/, field: "learnerInactiveDays", text: DAYS_REFUSAL }]),
					);
				}
				return done(c, back, {
					kind: "ok",
					text: `Retention policy set: learners with no write for ${confirm.days} days are erased from the next sweep on.`,
				});
			}
		}
	}
}
