import type { Context, Hono } from "hono";
import type { BlankSchema } from "hono/types";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ApiAnswer, ApiClient } from "./api";
import { saveDraft } from "./drafts";
import type { Session } from "./session";
import type { FormState, Notice } from "./views";

/**
 * How the console answers (SPEC §10: Post/Redirect/Get): every POST answers 303 to a GET page, handing it what to
 * show through a draft (./drafts.ts) — a result shown once, a refused form's input with the reason beside each
 * field, an action awaiting its confirmation — so reloading a page never repeats an action.
 */

export interface ConsoleEnv {
	Bindings: Env;
	Variables: {
		session: Session;
		csrf: string;
		api: ApiClient;
		/** The draft the page's `?r=` names, opened; null when there is none. */
		draft: PageDraft | null;
		/** The page was given a draft that is gone: shown once already, or expired. */
		draftGone: boolean;
	};
}
export type ConsoleContext = Context<ConsoleEnv>;
export type ConsoleRouter = Hono<ConsoleEnv, BlankSchema, "/console">;
/** Registers a GET for a POST-only path, leading to the page that holds its form (./routes.tsx). */
export type FormPage = (path: string, to: (c: ConsoleContext) => string) => void;

/** What a redirect hands its page. */
export interface PageDraft {
	notice?: Notice;
	/** Refused forms, by name, with what was typed and why each field was refused. */
	forms?: Record<string, FormState>;
	/** A secret shown once: a new credential's, or a webhook's signing secret. */
	secret?: { kind: "credential" | "webhook"; name: string; value: string };
	/** A job page: the learner id and requester the operator typed in this session (the job keeps neither). */
	learnerId?: string;
	requestedBy?: string;
	/** An action awaiting its confirmation (./routes.tsx, the confirmation page). */
	confirm?: Confirmation;
}

/** An action awaiting its confirmation, with what the confirmation page says of it (read when it was reviewed). */
export type Confirmation =
	| {
			kind: "eraseLearner";
			appId: string;
			appName: string;
			learnerId: string;
			userEmail: string;
			suppress: boolean;
			registrations: number;
			tags: number;
	  }
	| {
			kind: "eraseBulk";
			appId: string;
			appName: string;
			ids: string[];
			userEmail: string;
			suppress: boolean;
			/** Registrations of each learner counted before the confirmation (the first COUNTED_IDS). */
			counted: { id: string; registrations: number }[];
	  }
	| {
			kind: "eraseRealm";
			learnerId: string;
			userEmail: string;
			suppress: boolean;
			holders: { id: string; name: string; shard: string; registrations: number }[];
	  }
	| { kind: "move"; appId: string; appName: string; from: string; fromRegion: string; to: string; toRegion: string; allowRegionChange: boolean }
	| { kind: "liftSuppression"; appId: string; appName: string; learnerId: string; since: string; jobId: string }
	| {
			kind: "setRetention";
			appId: string;
			appName: string;
			days: number;
			/** The policy in force when it was reviewed (its days), or null for none. */
			current: number | null;
	  };

/** Renders a page (a JSX element) as an HTML document. */
export const page = (c: ConsoleContext, element: unknown, status: number = 200) =>
	c.html(`<!doctype html>${String(element)}`, status as ContentfulStatusCode);

/**
 * Answers a POST with 303 to `path`, handing it `draft` when there is one. A draft holding a result (`once`) is
 * shown once: reloading the page it leads to finds it gone.
 */
export async function redirect(c: ConsoleContext, path: string, draft?: PageDraft, options: { once: boolean } = { once: true }): Promise<Response> {
	if (!draft) return c.redirect(path, 303);
	const token = await saveDraft(c.env.DB, c.var.session, draft, { once: options.once });
	return c.redirect(`${path}${path.includes("?") ? "&" : "?"}r=${token}`, 303);
}

/** A result, shown once on the page it leads to. */
export const done = (c: ConsoleContext, path: string, notice: Notice, extra: PageDraft = {}) => redirect(c, path, { notice, ...extra }, { once: true });

/** A refused form: back to its page with what was typed and why (kept until it expires, so a reload shows it again). */
export const refused = (c: ConsoleContext, path: string, name: string, form: FormState) =>
	redirect(c, path, { forms: { [name]: form } }, { once: false });

/** The notice a page shows: its draft's, or that the draft is gone. */
export function noticeOf(c: ConsoleContext): Notice | undefined {
	if (c.var.draft?.notice) return c.var.draft.notice;
	if (c.var.draftGone) {
		return {
			kind: "ok",
			text: "This page's result was already shown, or has expired: it is shown only once, and reloading a page never repeats its action.",
		};
	}
	return undefined;
}

/** A refused form of the page's draft, by name. */
export const formOf = (c: ConsoleContext, name: string): FormState | undefined => c.var.draft?.forms?.[name];

/** A rule turning an API refusal into a sentence beside a field: the status, and a pattern of the API's message. */
export interface RefusalRule {
	status?: number;
	match?: RegExp;
	/** The field the sentence goes beside ("form": none in particular). */
	field: string;
	text: string;
}

/** Seconds the API asked to wait (Retry-After), for a sentence. */
const retryAfter = (answer: ApiAnswer<unknown>) => answer.headers.get("Retry-After");

/** A refusal no rule names, in general words (the API's own message is kept as its detail). */
export function generalWords(answer: ApiAnswer<unknown>): string {
	switch (answer.status) {
		case 429:
			return `Too much at once for this application just now: try again in ${retryAfter(answer) ?? "a few"} seconds. Nothing was done. (${answer.message})`;
		case 503:
			return `The service could not do this just now (its database is busy, or the application is moving between shards): try again in ${retryAfter(answer) ?? "a few"} seconds. Nothing was done.`;
		default:
			return `The service refused this: ${answer.message}`;
	}
}

/**
 * The form refused by `answer`, with what was typed: the first rule matching the answer puts its sentence beside its
 * field; otherwise the general words go at the top of the form.
 */
export function refusalOf(answer: ApiAnswer<unknown>, values: Record<string, string>, rules: RefusalRule[]): FormState {
	const rule = rules.find(
		(candidate) => (candidate.status === undefined || candidate.status === answer.status) && (!candidate.match || candidate.match.test(answer.message)),
	);
	return { values, errors: rule ? { [rule.field]: rule.text } : { form: generalWords(answer) }, status: answer.status };
}
