import { zValidator } from "@hono/zod-validator";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import * as z from "zod/mini";

import { ApiError } from "../errors";
import { LIMITS } from "../limits";
import { type ApiAnswer, jobIdOf, segment } from "./api";
import { type ConsoleContext, type RefusalRule, generalWords, noticeOf, redirect } from "./flow";
import type { ApplicationView } from "./views";

/** What the console's route modules share: callers, form fields, the applications, a started job's page. */

export const MANAGEMENT = { management: true } as const;
export const asApp = (appId: string) => ({ application: appId });

/** "1 registration", "2 registrations". */
export const counted = (count: number, noun: string) => `${count} ${noun}${count === 1 ? "" : "s"}`;

/** A form body, checked by `schema`; a failure answers 400 with the field's message (onError renders it). */
export const form = <T extends z.ZodMiniType>(schema: T) =>
	zValidator("form", schema, (result) => {
		if (!result.success) {
			const issue = result.error.issues[0];
			throw new ApiError(400, `${issue?.path.join(".") || "form"}: ${issue?.message ?? "invalid"}`);
		}
	});

/** Free text (a name, an email, a URL, a shard): the spaces around it are dropped, as whoever typed it meant. */
export const tidy = (value: string | undefined) => (value ?? "").trim();

/**
 * Ids and tags exactly as typed (SPEC §10): never trimmed or normalised, since learner "bob " is not learner "bob".
 * Length and characters are the API's to judge.
 */
export const field = z._default(z.string().check(z.maxLength(LIMITS.bodyBytes)), "");

/** The tags of a comma-separated field: split on commas only (no tag holds one), empty pieces dropped, none trimmed. */
export const tagList = (tags: string) => tags.split(",").filter((tag) => tag !== "");

/** The ids of a one-per-line field: split on line breaks only (CRLF, as browsers send a textarea, or LF), empty lines dropped. */
export const lineList = (ids: string) => ids.split(/\r?\n/).filter((id) => id !== "");

/** A failed API call as the console's own error (onError renders it, in general words, with the API's status). */
export const apiFailure = (answer: ApiAnswer<unknown>) => new ApiError(answer.status as ContentfulStatusCode, generalWords(answer));

/** Requester refusals every erasure shares: the API's and the console's review (who is an owner or admin). */
export const REQUESTER_RULES: RefusalRule[] = [
	{ status: 403, field: "userEmail", text: "This email is not a realm owner or admin: only they may request an erasure (see Realm users)." },
	{ status: 400, match: /userEmail/, field: "userEmail", text: "Enter the requester's email address." },
];

export const LEARNER_ID_RULE: RefusalRule = {
	status: 400,
	match: /learnerId/,
	field: "learnerId",
	text: "A learner id is 1 to 255 characters, without control characters.",
};
/** The most days a retention policy may name (the API's bound: 100 years). */
export const MAX_INACTIVE_DAYS = 36_500;

/** Why a retention policy's number of days is refused, in the console's words. */
export const DAYS_REFUSAL = `Type a whole number of days from 1 to ${MAX_INACTIVE_DAYS.toLocaleString("en")} (100 years).`;

/** The page of an application's retention policy (./audit.tsx). */
export const retentionPath = (appId: string) => `/console/applications/${segment(appId)}/retention`;

/** What every signed-in page needs: its forms' CSRF token and the notice its draft holds. */
export const signedIn = (c: ConsoleContext) => ({ csrf: c.var.csrf, notice: noticeOf(c) });

/** The realm's live applications (GET /appManagement/applications). */
export async function listApplications(c: ConsoleContext): Promise<ApplicationView[]> {
	const answer = await c.var.api<{ applications: ApplicationView[] }>(MANAGEMENT, "GET", "/appManagement/applications");
	if (!answer.ok || !answer.body) throw apiFailure(answer);
	return answer.body.applications;
}

/**
 * One live application with its properties, allowDelete among them (GET /appManagement/applications/{id}), or a
 * 404 the console's error page shows.
 */
export async function findApplication(c: ConsoleContext, appId: string): Promise<ApplicationView> {
	const answer = await c.var.api<ApplicationView>(MANAGEMENT, "GET", `/appManagement/applications/${segment(appId)}`);
	if (answer.status === 404) throw new ApiError(404, `There is no application ${appId} (or it was deleted)`);
	if (!answer.ok || !answer.body) throw apiFailure(answer);
	return answer.body;
}

/** Goes to the page of the job a Location names, handing it what the operator typed (the job keeps neither). */
export function startedJob(c: ConsoleContext, location: string | null, typed: { learnerId?: string; requestedBy?: string }) {
	return redirect(c, `/console/jobs/${segment(jobIdOf(location))}`, typed.learnerId || typed.requestedBy ? typed : undefined, { once: false });
}

