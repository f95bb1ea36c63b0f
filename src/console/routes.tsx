import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getCookie } from "hono/cookie";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import * as z from "zod/mini";
import { consoleAuditRecord } from "../audit";
import { isManagementCredentials } from "../auth/middleware";
import { clientKey, failedAttempt, refuseIfThrottled } from "../auth/throttle";
import { config } from "../config";
import { ApiError, unauthorized } from "../errors";
import { learnerHash } from "../jobs/contract";
import { LIMITS } from "../limits";
import { log } from "../log";
import { type ApiFetch, apiClient, jobIdOf, segment } from "./api";
import { consoleFile } from "./assets";
import { privacyRoutes } from "./audit";
import { appendAudit } from "../db/audit";
import type { UsageView } from "./charts";
import { confirmation, confirmationRoutes } from "./confirmations";
import { openDraft } from "./drafts";
import { erasureRoutes } from "./erasures";
import {
	type ConsoleContext,
	type ConsoleEnv,
	type PageDraft,
	type RefusalRule,
	done,
	formOf,
	generalWords,
	noticeOf,
	page,
	redirect,
	refusalOf,
	refused,
} from "./flow";
import {
	MANAGEMENT,
	apiFailure,
	asApp,
	counted,
	field,
	findApplication,
	form,
	listApplications,
	signedIn,
	startedJob,
	tagList,
	tidy,
} from "./shared";
import {
	SESSION_COOKIE,
	SESSION_SECONDS,
	csrfToken,
	endSession,
	issueSession,
	readSession,
	sessionCookie,
	validCsrfToken,
} from "./session";
import {
	type ApplicationUsageView,
	type ApplicationView,
	ApplicationPage,
	ApplicationsPage,
	ConfirmPage,
	type CredentialView,
	ERASURE_TYPES,
	ErrorPage,
	type Fact,
	GuardedApplicationPage,
	type JobView,
	JobPage,
	JobsPage,
	LearnerPage,
	type LearnerView,
	LearnersPage,
	MovePage,
	OverviewPage,
	type RegistrationView,
	SignInPage,
	UsersPage,
	type WebhookView,
	progressOf,
} from "./views";
import { waitingWords } from "./words";

/**
 * The operator console (SPEC §10) at /console: server-rendered pages whose every action is an in-process call
 * of the API (./api.ts), so the API's rules are the console's. Loaded by src/app.ts on the first console request
 * only: API requests never evaluate this module.
 *
 * Safe by construction: every POST answers 303 to a GET page (./flow.ts), so reloading never repeats an action; a
 * result is shown once; a refused form comes back with what was typed and the reason beside the field, in the
 * console's words; and every irreversible or costly action (erasures, moves, deletions, lifting a suppression) first
 * shows a page saying exactly what will happen, and happens only when that page's button is pressed.
 *
 * Security: sign-in with the realm's management credentials (compared as the API compares them, failures
 * throttled as the API's) gives a 30-minute signed session cookie (./session.ts; HttpOnly, Secure,
 * SameSite=Strict, Path=/console). Every POST must come from this origin (Origin / Sec-Fetch-Site) and carry the
 * session's CSRF token. Every response carries a strict Content-Security-Policy.
 */

/** The policy of every console response: this origin only, no inline script or style, no framing. */
export const CONSOLE_CSP = [
	"default-src 'none'",
	"script-src 'self'",
	"style-src 'self'",
	"img-src 'self'",
	"form-action 'self'",
	"frame-ancestors 'none'",
	"base-uri 'none'",
	"connect-src 'self'",
].join("; ");

const now = () => Math.floor(Date.now() / 1000);

/** Lists the console pages itself (the API answers them whole): rows a page. */
const ROWS_PER_PAGE = 25;

/**
 * Whether a POST comes from a page of this origin. A foreign Origin is refused outright. Browsers send
 * Sec-Fetch-Site (a header no page script can set): only "same-origin" passes. Under this console's
 * Referrer-Policy (no-referrer) Chromium sends its own form posts with `Origin: null`, so a null origin counts
 * only when Sec-Fetch-Site vouches for it.
 */
function fromThisOrigin(c: ConsoleContext): boolean {
	const origin = c.req.header("Origin");
	if (origin !== undefined && origin !== "null" && origin !== new URL(c.req.url).origin) return false;
	const site = c.req.header("Sec-Fetch-Site");
	if (site !== undefined) return site === "same-origin";
	return origin !== "null";
}

/** The one console path a script reads (the job page's poll): it answers JSON, never a redirect. */
const isStatusPoll = (path: string) => /^\/console\/jobs\/[^/]+\/status$/.test(path);

const SIGNED_OUT_MESSAGE = "Your console session has ended or was never started: sign in again";

export function consoleRoutes(apiFetch: ApiFetch) {
	const router = new Hono<ConsoleEnv>().basePath("/console");

	// The headers of every console response, pages and files alike.
	router.use("*", async (c, next) => {
		await next();
		c.header("Content-Security-Policy", CONSOLE_CSP);
		c.header("X-Content-Type-Options", "nosniff");
		c.header("Referrer-Policy", "no-referrer");
		c.header("X-Frame-Options", "DENY");
		if (!c.res.headers.has("Cache-Control")) c.header("Cache-Control", "no-store");
	});
	router.use(
		"*",
		bodyLimit({
			maxSize: LIMITS.bodyBytes,
			onError: () => {
				throw new ApiError(413, `The form exceeds the limit of ${LIMITS.bodyBytes} bytes (1 MiB)`);
			},
		}),
	);
	// Cross-origin POSTs are refused before anything else is looked at (CSRF, first line).
	router.use("*", async (c, next) => {
		if (c.req.method === "POST" && !fromThisOrigin(c)) {
			throw new ApiError(403, "This form was not sent from a page of this console; nothing was changed");
		}
		await next();
	});

	router.get("/assets/:file", (c) => {
		const file = consoleFile(c.req.param("file"));
		if (!file) throw new ApiError(404, "The console has no such file");
		return c.body(file.body, 200, { "Content-Type": file.type, "Cache-Control": "no-cache" });
	});

	// Signing in and out. A refused sign-in comes back with the id typed (never the secret) and why, in the URL:
	// nothing of it is secret, and there is no session yet to seal a draft under.

	router.get("/sign-in", async (c) => {
		if (await readSession(c.env.TOKEN_SIGNING_SECRET, c.env.DB, getCookie(c, SESSION_COOKIE), now())) return c.redirect("/console/overview", 303);
		const refusedAs = c.req.query("refused");
		const wait = c.req.query("retry");
		const notice =
			refusedAs === "throttled"
				? { kind: "error" as const, text: `Too many failed sign-ins from here: try again in ${wait ?? "a few"} seconds.`, status: 429 }
				: refusedAs !== undefined
					? { kind: "error" as const, text: "That management id and secret key do not match: check both and try again.", status: 401 }
					: c.req.query("signed-out") !== undefined
						? { kind: "ok" as const, text: "You are signed out. The session has ended everywhere: its cookie opens nothing any more." }
						: undefined;
		return page(c, <SignInPage notice={notice} appId={c.req.query("appId")} />);
	});

	router.post("/sign-in", form(z.object({ appId: z._default(z.string().check(z.maxLength(1024)), ""), secretKey: z._default(z.string().check(z.maxLength(1024)), "") })), async (c) => {
		const { appId, secretKey } = c.req.valid("form");
		// Throttled as the management API's failures are: per client address only.
		const keys = { client: clientKey(c.req.raw.headers) };
		try {
			refuseIfThrottled(keys);
			if (!(await isManagementCredentials(c.env, appId, secretKey))) {
				throw await failedAttempt(c.env, keys, unauthorized("Invalid management id or secret key"));
			}
		} catch (error) {
			if (!(error instanceof ApiError)) throw error;
			const query = new URLSearchParams({ refused: error.status === 429 ? "throttled" : "credentials", appId });
			const retry = error.headers?.["Retry-After"];
			if (retry) query.set("retry", retry);
			return c.redirect(`/console/sign-in?${query.toString()}`, 303);
		}
		const { value, session } = await issueSession(c.env.TOKEN_SIGNING_SECRET, now());
		await appendAudit(c.env.DB, [consoleAuditRecord(session.sid, "console.signIn", { sessionId: session.sid })]);
		c.header("Set-Cookie", sessionCookie(value, SESSION_SECONDS));
		return c.redirect("/console/overview", 303);
	});

	// Everything below needs a session: pages redirect to sign-in, the rest answer 401; POSTs need the CSRF token.
	router.use("*", async (c, next) => {
		const session = await readSession(c.env.TOKEN_SIGNING_SECRET, c.env.DB, getCookie(c, SESSION_COOKIE), now());
		if (!session) {
			if (c.req.method === "GET" && !isStatusPoll(c.req.path)) return c.redirect("/console/sign-in", 303);
			throw new ApiError(401, SIGNED_OUT_MESSAGE);
		}
		if (c.req.method === "POST") {
			const body = await c.req.parseBody();
			const token = typeof body.csrf === "string" ? body.csrf : undefined;
			if (!(await validCsrfToken(c.env.TOKEN_SIGNING_SECRET, session, token))) {
				throw new ApiError(403, "This form's security token is missing or belongs to another session; reload the page and try again");
			}
		}
		c.set("session", session);
		c.set("csrf", await csrfToken(c.env.TOKEN_SIGNING_SECRET, session));
		c.set("api", apiClient(apiFetch, c.env, executionContextOf(c), session.sid));
		c.set("draft", null);
		c.set("draftGone", false);
		// A page handed a draft by the POST that led to it (./flow.ts): opened here, once.
		const token = c.req.method === "GET" ? c.req.query("r") : undefined;
		if (token !== undefined) {
			const draft = await openDraft<PageDraft>(c.env.DB, session, token, { take: false });
			c.set("draft", draft);
			c.set("draftGone", draft === null);
		}
		await next();
	});

	/**
	 * A POST-only path opened with GET (a bookmark, a reload after the session ended, a typed URL): the page holding
	 * its form, never "Not found".
	 */
	const formPage = (path: string, to: (c: ConsoleContext) => string) => router.get(path, (c) => c.redirect(to(c), 303));

	router.post("/sign-out", async (c) => {
		await endSession(c.env.DB, c.var.session, consoleAuditRecord(c.var.session.sid, "console.signOut", { sessionId: c.var.session.sid }));
		c.header("Set-Cookie", sessionCookie("", 0));
		return c.redirect("/console/sign-in?signed-out", 303);
	});
	formPage("/sign-out", () => "/console/overview");

	router.get("/", (c) => c.redirect("/console/overview", 303));

	// The overview (SPEC §10): the realm's usage, drawn.

	router.get("/overview", async (c) => {
		const answer = await c.var.api<UsageView>(MANAGEMENT, "GET", "/appManagement/usage");
		return page(
			c,
			<OverviewPage {...signedIn(c)} usage={answer.ok ? answer.body : null} unavailable={answer.ok ? undefined : generalWords(answer)} />,
			answer.ok ? 200 : answer.status,
		);
	});

	// Applications.

	/** The page of a list the console pages itself: rows matching `q` (case-insensitive), 25 a page. */
	function pageOfList<T>(rows: T[], text: (row: T) => string, q: string, pageNumber: number) {
		const needle = q.toLowerCase();
		const matching = needle ? rows.filter((row) => text(row).toLowerCase().includes(needle)) : rows;
		const pages = Math.max(1, Math.ceil(matching.length / ROWS_PER_PAGE));
		const current = Math.min(Math.max(1, pageNumber), pages);
		return { rows: matching.slice((current - 1) * ROWS_PER_PAGE, current * ROWS_PER_PAGE), total: matching.length, page: current, pages };
	}

	router.get("/applications", async (c) => {
		const q = c.req.query("q") ?? "";
		const listed = pageOfList(await listApplications(c), (app) => `${app.name} ${app.id}`, q, Number(c.req.query("page") ?? 1) || 1);
		return page(
			c,
			<ApplicationsPage {...signedIn(c)} applications={listed.rows} total={listed.total} q={q} page={listed.page} pages={listed.pages} form={formOf(c, "createApplication")} />,
		);
	});

	router.post("/applications", form(z.object({ name: field, dataRegion: field })), async (c) => {
		const values = c.req.valid("form");
		const answer = await c.var.api<ApplicationView>(MANAGEMENT, "POST", "/appManagement/applications", {
			name: tidy(values.name),
			dataRegion: values.dataRegion || "default",
		});
		if (!answer.ok || !answer.body) {
			return refused(
				c,
				"/console/applications",
				"createApplication",
				refusalOf(answer, values, [
					{ status: 400, match: /name/, field: "name", text: "Give the application a name of 1 to 255 characters, without control characters." },
					{ status: 400, match: /dataRegion/, field: "dataRegion", text: "Choose a data region: default or eu." },
					{ status: 503, match: /shard/, field: "dataRegion", text: "No shard of this region takes new applications: the operator must open or add one (SHARDS)." },
				]),
			);
		}
		return done(c, "/console/applications", {
			kind: "ok",
			text: `Application ${answer.body.name} created: id ${answer.body.id}, shard ${answer.body.shard}`,
		});
	});

	/** The page of the application a path names. */
	const applicationPath = (c: ConsoleContext) => `/console/applications/${segment(c.req.param("appId") ?? "")}`;

	// Moving an application: the form, its review, then the confirmation page.

	const shardChoices = (c: ConsoleContext) => config(c.env).shards.map((shard) => ({ name: shard.name, region: shard.region, open: shard.open }));

	router.get("/applications/:appId/move", async (c) => {
		const app = await findApplication(c, c.req.param("appId"));
		return page(c, <MovePage {...signedIn(c)} app={app} shards={shardChoices(c)} form={formOf(c, "move")} />);
	});

	router.post("/applications/:appId/move", form(z.object({ shard: field, allowRegionChange: field })), async (c) => {
		const app = await findApplication(c, c.req.param("appId"));
		const values = c.req.valid("form");
		const target = shardChoices(c).find((shard) => shard.name === tidy(values.shard));
		const back = `/console/applications/${segment(app.id)}/move`;
		if (!target) return refused(c, back, "move", { values, errors: { shard: "Choose the shard to move the application to." } });
		return confirmation(c, {
			kind: "move",
			appId: app.id,
			appName: app.name,
			from: app.shard,
			fromRegion: app.dataRegion,
			to: target.name,
			toRegion: target.region,
			allowRegionChange: values.allowRegionChange === "true",
		});
	});

	// Deleting an application: its confirmation page says what it holds.

	router.get("/applications/:appId/delete", async (c) => {
		const app = await findApplication(c, c.req.param("appId"));
		// Guarded (allowDelete: false): the API would refuse, so there is nothing to confirm until deletion is allowed.
		if (app.allowDelete === false) return page(c, <GuardedApplicationPage {...signedIn(c)} app={app} />);
		const [usage, credentials] = await Promise.all([
			c.var.api<ApplicationUsageView>(MANAGEMENT, "GET", `/appManagement/applications/${segment(app.id)}/usage`),
			c.var.api<{ credentials: CredentialView[] }>(MANAGEMENT, "GET", `/appManagement/${segment(app.id)}/credentials`),
		]);
		const counts = usage.body?.application;
		const facts: Fact[] = [
			{ term: "Application", detail: `${app.name} (${app.id})` },
			{ term: "Shard", detail: `${app.shard}, region ${app.dataRegion}` },
			{
				term: "Deleted with it",
				detail: counts
					? `${counted(counts.registrations, "registration")} of ${counted(counts.learners, "learner")}, ${counted(counts.storedRows - counts.registrations, "tag row")}, and every job it holds`
					: `every registration, tag and job it holds (${generalWords(usage)})`,
			},
			{
				term: "Credentials",
				detail: `${credentials.body ? counted(credentials.body.credentials.length, "credential") : "all its credentials"} stop working at once, and the tokens they minted with them`,
			},
		];
		return page(
			c,
			<ConfirmPage
				{...signedIn(c)}
				title={`Delete application ${app.name}?`}
				intro="A job deletes the application's data chunk by chunk. This cannot be undone."
				facts={facts}
				action={`/console/applications/${segment(app.id)}/delete`}
				fields={{}}
				button={`Delete ${app.name}`}
				cancel={`/console/applications/${segment(app.id)}`}
			/>,
		);
	});

	// allowDelete: while it is false the API refuses to delete the application; setting it deletes nothing.
	router.post("/applications/:appId/allow-delete", form(z.object({ allowDelete: z.enum(["true", "false"]) })), async (c) => {
		const allowDelete = c.req.valid("form").allowDelete === "true";
		const answer = await c.var.api(MANAGEMENT, "PUT", `/appManagement/applications/${segment(c.req.param("appId"))}`, { allowDelete });
		return done(
			c,
			applicationPath(c),
			answer.ok
				? {
						kind: "ok",
						text: allowDelete
							? "Deletion allowed: the application can be deleted now, after its own confirmation."
							: "Deletion switched off: the application cannot be deleted until it is allowed again.",
					}
				: { kind: "error", status: answer.status, text: answer.status === 404 ? "There is no such application any more (deleted already?)." : generalWords(answer) },
		);
	});
	formPage("/applications/:appId/allow-delete", applicationPath);

	router.post("/applications/:appId/delete", form(z.object({ confirm: field })), async (c) => {
		const appId = c.req.param("appId");
		const confirmPage = `/console/applications/${segment(appId)}/delete`;
		if (c.req.valid("form").confirm !== "true") return c.redirect(confirmPage, 303);
		const answer = await c.var.api(MANAGEMENT, "DELETE", `/appManagement/applications/${segment(appId)}`);
		if (!answer.ok) {
			const text =
				answer.status === 409 && /allowDelete/.test(answer.message)
					? "Deletion is switched off for this application (it is guarded against deletion): allow deletion on its page first. Nothing was deleted."
					: answer.status === 409
						? "The application is being moved between shards: delete it once the move's job has finished."
						: answer.status === 404
							? "There is no such application any more (deleted already?)."
							: generalWords(answer);
			return redirect(c, answer.status === 404 ? "/console/applications" : confirmPage, { notice: { kind: "error", text, status: answer.status } });
		}
		return startedJob(c, answer.location, {});
	});

	// One application: its usage, credentials, webhook and suppressions.

	async function webhookOf(c: ConsoleContext, appId: string): Promise<WebhookView> {
		const answer = await c.var.api<{ url: string; createdDate: string; updatedDate: string }>(MANAGEMENT, "GET", `/appManagement/${segment(appId)}/webhook`);
		if (answer.ok && answer.body) return answer.body;
		// 404: the application has no webhook; anything else (the database unavailable, say) is shown in words.
		if (answer.status === 404) return { none: true };
		return { unavailable: generalWords(answer) };
	}

	router.get("/applications/:appId", async (c) => {
		const app = await findApplication(c, c.req.param("appId"));
		const [credentials, webhook, usage] = await Promise.all([
			c.var.api<{ credentials: CredentialView[] }>(MANAGEMENT, "GET", `/appManagement/${segment(app.id)}/credentials`),
			webhookOf(c, app.id),
			c.var.api<ApplicationUsageView>(MANAGEMENT, "GET", `/appManagement/applications/${segment(app.id)}/usage`),
		]);
		if (!credentials.ok || !credentials.body) throw apiFailure(credentials);
		const secret = c.var.draft?.secret;
		return page(
			c,
			<ApplicationPage
				{...signedIn(c)}
				app={app}
				usage={usage.ok && usage.body ? usage.body : { unavailable: generalWords(usage) }}
				credentials={credentials.body.credentials}
				webhook={webhook}
				newCredential={secret?.kind === "credential" ? { name: secret.name, secret: secret.value } : undefined}
				webhookSecret={secret?.kind === "webhook" ? secret.value : undefined}
				forms={{ credential: formOf(c, "credential"), webhook: formOf(c, "webhook"), suppression: formOf(c, "suppression") }}
			/>,
		);
	});

	router.post("/applications/:appId/credentials", form(z.object({ name: field })), async (c) => {
		const appId = c.req.param("appId");
		const values = c.req.valid("form");
		const answer = await c.var.api<{ id: string; name: string; credential: string }>(MANAGEMENT, "POST", `/appManagement/${segment(appId)}/credentials`, {
			name: tidy(values.name),
		});
		if (!answer.ok || !answer.body) {
			return refused(
				c,
				applicationPath(c),
				"credential",
				refusalOf(answer, values, [
					{ status: 400, match: /name/, field: "name", text: "Give the credential a name of 1 to 255 characters, without control characters." },
					{ status: 404, field: "form", text: "This application no longer exists." },
				]),
			);
		}
		// The secret is shown once: the draft holding it is deleted as the page reads it.
		return done(
			c,
			applicationPath(c),
			{ kind: "ok", text: `Credential ${answer.body.name} created (id ${answer.body.id})` },
			{ secret: { kind: "credential", name: answer.body.name, value: answer.body.credential } },
		);
	});
	formPage("/applications/:appId/credentials", applicationPath);

	router.post("/applications/:appId/credentials/:credentialId", form(z.object({ name: z.optional(z.string().check(z.maxLength(1024))), active: z.optional(z.enum(["true", "false"])) })), async (c) => {
		const { credentialId } = c.req.param();
		const { name, active } = c.req.valid("form");
		const change = { ...(name !== undefined && { name: tidy(name) }), ...(active !== undefined && { active: active === "true" }) };
		const answer = await c.var.api(MANAGEMENT, "PUT", `/appManagement/${segment(c.req.param("appId"))}/credentials/${segment(credentialId)}`, change);
		const what = active === undefined ? "renamed" : active === "true" ? "enabled" : "disabled: it stops working within 60 seconds everywhere";
		return done(
			c,
			applicationPath(c),
			answer.ok
				? { kind: "ok", text: `Credential ${credentialId} ${what}` }
				: {
						kind: "error",
						status: answer.status,
						text: answer.status === 400 ? "A credential's name is 1 to 255 characters, without control characters: it was not renamed." : generalWords(answer),
					},
		);
	});
	formPage("/applications/:appId/credentials/:credentialId", applicationPath);

	router.get("/applications/:appId/credentials/:credentialId/delete", async (c) => {
		const { appId, credentialId } = c.req.param();
		const app = await findApplication(c, appId);
		const answer = await c.var.api<{ credentials: CredentialView[] }>(MANAGEMENT, "GET", `/appManagement/${segment(appId)}/credentials`);
		const credential = answer.body?.credentials.find((candidate) => candidate.id === credentialId);
		if (!credential) throw new ApiError(404, `Application ${app.name} has no credential ${credentialId} (deleted already?)`);
		return page(
			c,
			<ConfirmPage
				{...signedIn(c)}
				title={`Delete credential ${credential.name}?`}
				intro="Whoever uses this credential is refused from now on. This cannot be undone: a new credential has a new secret."
				facts={[
					{ term: "Credential", detail: `${credential.name} (${credential.id}), ${credential.status.toLowerCase()}` },
					{ term: "Application", detail: `${app.name} (${app.id})` },
					{ term: "Effect", detail: "Requests with its secret fail at once; tokens it minted stop within 60 seconds everywhere" },
				]}
				action={`/console/applications/${segment(appId)}/credentials/${segment(credentialId)}/delete`}
				fields={{}}
				button={`Delete credential ${credential.name}`}
				cancel={applicationPath(c)}
			/>,
		);
	});

	router.post("/applications/:appId/credentials/:credentialId/delete", form(z.object({ confirm: field })), async (c) => {
		const { appId, credentialId } = c.req.param();
		if (c.req.valid("form").confirm !== "true") return c.redirect(`${applicationPath(c)}/credentials/${segment(credentialId)}/delete`, 303);
		const answer = await c.var.api(MANAGEMENT, "DELETE", `/appManagement/${segment(appId)}/credentials/${segment(credentialId)}`);
		return done(
			c,
			applicationPath(c),
			answer.ok
				? { kind: "ok", text: `Credential ${credentialId} deleted` }
				: { kind: "error", status: answer.status, text: answer.status === 404 ? `There is no credential ${credentialId} any more (deleted already?).` : generalWords(answer) },
		);
	});

	router.post("/applications/:appId/webhook", form(z.object({ url: field })), async (c) => {
		const values = c.req.valid("form");
		const answer = await c.var.api<{ url: string; signingSecret: string }>(MANAGEMENT, "PUT", `/appManagement/${segment(c.req.param("appId"))}/webhook`, {
			url: tidy(values.url),
		});
		if (!answer.ok || !answer.body) {
			return refused(
				c,
				applicationPath(c),
				"webhook",
				refusalOf(answer, values, [
					{ status: 400, match: /https/, field: "url", text: "The webhook's URL must start with https: (a plain http URL is allowed only to this machine in development)." },
					{
						status: 400,
						match: /public|private|loopback|localhost|local|internal|reserved|literal|address/i,
						field: "url",
						text: "The webhook's URL must reach a public host: not this machine, a private network, or a reserved name or address.",
					},
					{ status: 400, match: /url/, field: "url", text: "Give the webhook's full URL, starting with https:." },
				]),
			);
		}
		return done(c, applicationPath(c), { kind: "ok", text: `Webhook set to ${answer.body.url}` }, { secret: { kind: "webhook", name: "", value: answer.body.signingSecret } });
	});
	formPage("/applications/:appId/webhook", applicationPath);

	router.post("/applications/:appId/webhook/test", async (c) => {
		const answer = await c.var.api<{ eventId: string; delivered: boolean; status?: number; error?: string }>(
			MANAGEMENT,
			"POST",
			`/appManagement/${segment(c.req.param("appId"))}/webhook/test`,
		);
		if (!answer.ok || !answer.body) return done(c, applicationPath(c), { kind: "error", status: answer.status, text: generalWords(answer) });
		const { eventId, delivered, status, error } = answer.body;
		const outcome = delivered
			? `delivered (the endpoint answered ${status ?? "2xx"})`
			: `not delivered: ${error ?? (status !== undefined ? `the endpoint answered ${status}` : "no answer")}`;
		return done(c, applicationPath(c), { kind: delivered ? "ok" : "error", text: `Test event ${eventId} ${outcome}` });
	});
	formPage("/applications/:appId/webhook/test", applicationPath);

	router.get("/applications/:appId/webhook/delete", async (c) => {
		const app = await findApplication(c, c.req.param("appId"));
		const webhook = await webhookOf(c, app.id);
		if (!("url" in webhook)) return done(c, applicationPath(c), { kind: "error", text: "This application has no webhook to delete." });
		return page(
			c,
			<ConfirmPage
				{...signedIn(c)}
				title={`Delete the webhook of ${app.name}?`}
				intro="The application is no longer told when its jobs finish. Setting a webhook again issues a new signing secret."
				facts={[
					{ term: "Webhook", detail: <span class="mono">{webhook.url}</span> },
					{ term: "Application", detail: `${app.name} (${app.id})` },
					{ term: "Events", detail: "Jobs that end from now on send none; deliveries still being retried are given up" },
				]}
				action={`/console/applications/${segment(app.id)}/webhook/delete`}
				fields={{}}
				button="Delete the webhook"
				cancel={applicationPath(c)}
			/>,
		);
	});

	router.post("/applications/:appId/webhook/delete", form(z.object({ confirm: field })), async (c) => {
		if (c.req.valid("form").confirm !== "true") return c.redirect(`${applicationPath(c)}/webhook/delete`, 303);
		const answer = await c.var.api(MANAGEMENT, "DELETE", `/appManagement/${segment(c.req.param("appId"))}/webhook`);
		return done(
			c,
			applicationPath(c),
			answer.ok ? { kind: "ok", text: "Webhook deleted" } : { kind: "error", status: answer.status, text: answer.status === 404 ? "There is no webhook any more (deleted already?)." : generalWords(answer) },
		);
	});

	// Lifting a suppression: reviewed, then confirmed. The review finds the learner's suppression among the
	// application's (which the API lists by HMAC): the console computes the HMAC as the API does.

	router.post("/applications/:appId/suppression", form(z.object({ learnerId: field })), async (c) => {
		const app = await findApplication(c, c.req.param("appId"));
		const values = c.req.valid("form");
		if (values.learnerId === "") return refused(c, applicationPath(c), "suppression", { values, errors: { learnerId: "Type the learner id whose suppression to lift." } });
		const answer = await c.var.api<{ suppressions: { learnerHash: string; jobId: string; createdDate: string }[] }>(
			MANAGEMENT,
			"GET",
			`/appManagement/${segment(app.id)}/suppressions`,
		);
		if (!answer.ok || !answer.body) return refused(c, applicationPath(c), "suppression", refusalOf(answer, values, []));
		const hash = await learnerHash(c.env, app.id, values.learnerId);
		const found = answer.body.suppressions.find((suppression) => suppression.learnerHash === hash);
		if (!found) {
			return refused(c, applicationPath(c), "suppression", {
				values,
				errors: { learnerId: `No learner with exactly this id is suppressed in ${app.name} (ids are compared exactly: case and spaces count).` },
				status: 404,
			});
		}
		return confirmation(c, { kind: "liftSuppression", appId: app.id, appName: app.name, learnerId: values.learnerId, since: found.createdDate, jobId: found.jobId });
	});
	formPage("/applications/:appId/suppression", applicationPath);

	// Realm users: searched and paged here (the API lists them whole).

	router.get("/users", async (c) => {
		const answer = await c.var.api<{ users: { email: string; role: string }[] }>(MANAGEMENT, "GET", "/appManagement/users");
		if (!answer.ok || !answer.body) throw apiFailure(answer);
		const q = c.req.query("q") ?? "";
		const listed = pageOfList(answer.body.users, (user) => user.email, q, Number(c.req.query("page") ?? 1) || 1);
		return page(
			c,
			<UsersPage {...signedIn(c)} users={listed.rows} total={listed.total} q={q} page={listed.page} pages={listed.pages} form={formOf(c, "user")} />,
		);
	});

	router.post("/users", form(z.object({ email: field, role: field })), async (c) => {
		const values = c.req.valid("form");
		const email = tidy(values.email);
		const answer = await c.var.api(MANAGEMENT, "PUT", `/appManagement/users/${segment(email)}`, { role: values.role });
		if (!answer.ok) {
			return refused(
				c,
				"/console/users",
				"user",
				refusalOf(answer, values, [
					{ status: 400, match: /role/, field: "role", text: "Choose a role: owner, admin or member." },
					{ status: 400, field: "email", text: "Enter a valid email address." },
				]),
			);
		}
		return done(c, "/console/users", { kind: "ok", text: `${email} is now ${values.role}` });
	});

	router.get("/users/delete", async (c) => {
		const email = c.req.query("email") ?? "";
		const answer = await c.var.api<{ users: { email: string; role: string }[] }>(MANAGEMENT, "GET", "/appManagement/users");
		const user = answer.body?.users.find((candidate) => candidate.email.toLowerCase() === email.toLowerCase());
		if (!user) return done(c, "/console/users", { kind: "error", text: `There is no realm user ${email} (removed already?).`, status: 404 });
		const owners = answer.body?.users.filter((candidate) => candidate.role === "owner").length ?? 0;
		return page(
			c,
			<ConfirmPage
				{...signedIn(c)}
				title={`Remove ${user.email}?`}
				intro="The realm user is removed. Adding the email again later makes it a user again, with the role then given."
				facts={[
					{ term: "User", detail: <span class="mono">{user.email}</span> },
					{ term: "Role", detail: user.role },
					{
						term: "Effect",
						detail:
							user.role === "member"
								? "Nothing it could do before changes: members may not request erasures"
								: `It may no longer request erasures${user.role === "owner" && owners === 1 ? "; it is the realm's only owner" : ""}`,
					},
				]}
				action="/console/users/delete"
				fields={{ email: user.email }}
				button={`Remove ${user.email}`}
				cancel="/console/users"
			/>,
		);
	});

	router.post("/users/delete", form(z.object({ email: field, confirm: field })), async (c) => {
		const { email, confirm } = c.req.valid("form");
		if (confirm !== "true") return c.redirect(`/console/users/delete?${new URLSearchParams({ email }).toString()}`, 303);
		const answer = await c.var.api(MANAGEMENT, "DELETE", `/appManagement/users/${segment(email)}`);
		return done(
			c,
			"/console/users",
			answer.ok
				? { kind: "ok", text: `${email} removed` }
				: { kind: "error", status: answer.status, text: answer.status === 404 ? `There is no realm user ${email} any more (removed already?).` : generalWords(answer) },
		);
	});

	// Learners of an application, acting as it.

	router.get("/applications/:appId/learners", async (c) => {
		const appId = c.req.param("appId");
		const app = await findApplication(c, appId);
		// As typed (an empty box searches nothing): the API finds "bob " and " padded", not "bob" and "padded".
		const learnerId = c.req.query("learnerId") ?? "";
		const tags = c.req.query("tags") ?? "";
		const tagMatch = c.req.query("tagMatch") === "all" ? "all" : "any";
		const more = c.req.query("more");
		let learners: LearnerView[] = [];
		let next: string | undefined;
		let notice = noticeOf(c);
		let status = 200;
		if (learnerId) {
			const answer = await c.var.api(asApp(appId), "GET", `/learner/${segment(learnerId)}/tags`);
			if (answer.ok) return c.redirect(`/console/applications/${segment(appId)}/learners/${segment(learnerId)}`, 303);
			notice = {
				kind: "error",
				status: answer.status,
				text: answer.status === 404 ? `${app.name} has no learner with exactly this id (ids are compared exactly: case and spaces count): ` : generalWords(answer),
				...(answer.status === 404 && { values: [learnerId] }),
			};
			status = answer.status;
		} else {
			const query = more ? `?more=${encodeURIComponent(more)}` : tags ? `?tags=${encodeURIComponent(tags)}&tagMatch=${tagMatch}` : "";
			const answer = await c.var.api<{ learners: LearnerView[]; more?: string }>(asApp(appId), "GET", `/learners${query}`);
			if (answer.ok && answer.body) {
				learners = answer.body.learners;
				next = answer.body.more;
			} else {
				notice = { kind: "error", status: answer.status, text: generalWords(answer) };
				status = answer.status;
			}
		}
		return page(
			c,
			<LearnersPage
				{...signedIn(c)}
				notice={notice}
				app={app}
				learnerId={learnerId}
				tags={tags}
				tagMatch={tagMatch}
				learners={learners}
				more={next}
				searched={Boolean(learnerId || tags || more)}
			/>,
			status,
		);
	});

	const learnerPath = (c: ConsoleContext) => `/console/applications/${segment(c.req.param("appId") ?? "")}/learners/${segment(c.req.param("learnerId") ?? "")}`;

	router.get("/applications/:appId/learners/:learnerId", async (c) => {
		const { appId, learnerId } = c.req.param();
		const app = await findApplication(c, appId);
		const [tags, registrations] = await Promise.all([
			c.var.api<{ tags: string[] }>(asApp(appId), "GET", `/learner/${segment(learnerId)}/tags`),
			c.var.api<{ registrations: RegistrationView[] }>(asApp(appId), "GET", `/registrations?learnerId=${encodeURIComponent(learnerId)}`),
		]);
		if (!tags.ok || !tags.body) {
			if (tags.status === 404) throw new ApiError(404, `${app.name} has no learner with exactly this id (erased, or its registrations deleted)`);
			throw apiFailure(tags);
		}
		return page(
			c,
			<LearnerPage
				{...signedIn(c)}
				notice={noticeOf(c) ?? (registrations.ok ? undefined : { kind: "error", text: generalWords(registrations) })}
				app={app}
				learnerId={learnerId}
				tags={tags.body.tags}
				registrations={registrations.body?.registrations ?? []}
				forms={{ tags: formOf(c, "tags"), info: formOf(c, "info"), eraseLearner: formOf(c, "eraseLearner") }}
			/>,
		);
	});

	const TAG_RULES: RefusalRule[] = [
		{ status: 400, match: /at most 255 characters/, field: "tags", text: "A tag is at most 255 characters." },
		{ status: 400, match: /comma/, field: "tags", text: "A tag cannot hold a comma: commas separate the tags typed here." },
		{ status: 400, match: /control characters/, field: "tags", text: "A tag cannot hold control characters." },
		{ status: 400, match: /at most 100 tags/, field: "tags", text: "At most 100 tags at once." },
		{ status: 400, match: /1000 tags|tag limit/i, field: "tags", text: "A learner holds at most 1000 tags: remove some first." },
		{ status: 400, match: /tag/, field: "tags", text: "Type one tag or more, separated by commas." },
		{ status: 404, field: "form", text: "This learner no longer exists in this application (erased, or its registrations deleted)." },
	];

	for (const [suffix, method, verb] of [
		["tags", "PUT", "added"],
		["tags/delete", "DELETE", "removed"],
	] as const) {
		router.post(`/applications/:appId/learners/:learnerId/${suffix}`, form(z.object({ tags: field })), async (c) => {
			const { appId, learnerId } = c.req.param();
			const values = c.req.valid("form");
			const tags = tagList(values.tags);
			if (tags.length === 0) return refused(c, learnerPath(c), "tags", { values, errors: { tags: "Type one tag or more, separated by commas." } });
			const answer = await c.var.api(asApp(appId), method, `/learner/${segment(learnerId)}/tags`, { tags });
			if (!answer.ok) return refused(c, learnerPath(c), "tags", refusalOf(answer, values, TAG_RULES));
			return done(c, learnerPath(c), { kind: "ok", text: `Tags ${verb}:`, values: tags });
		});
		formPage(`/applications/:appId/learners/:learnerId/${suffix}`, learnerPath);
	}

	router.post("/applications/:appId/learners/:learnerId/info", form(z.object({ email: field, firstName: field, lastName: field })), async (c) => {
		const { appId, learnerId } = c.req.param();
		const values = c.req.valid("form");
		// Fields left empty stay as they are (the API leaves out what is absent).
		const change = {
			id: learnerId,
			...(tidy(values.email) && { email: tidy(values.email) }),
			...(values.firstName.trim() && { firstName: values.firstName.trim() }),
			...(values.lastName.trim() && { lastName: values.lastName.trim() }),
		};
		if (Object.keys(change).length === 1) return refused(c, learnerPath(c), "info", { values, errors: { form: "Type the details to change: fields left empty stay as they are." } });
		const answer = await c.var.api(asApp(appId), "POST", `/learner/${segment(learnerId)}/updateInfo`, change);
		if (!answer.ok) {
			return refused(
				c,
				learnerPath(c),
				"info",
				refusalOf(answer, values, [
					{ status: 400, match: /email/, field: "email", text: "Enter a valid email address, or leave the field empty." },
					{ status: 400, match: /firstName/, field: "firstName", text: "A first name is at most 255 characters." },
					{ status: 400, match: /lastName/, field: "lastName", text: "A last name is at most 255 characters." },
					{ status: 409, field: "form", text: "This learner is being erased: its details can no longer change." },
					{ status: 404, field: "form", text: "This learner no longer exists in this application." },
				]),
			);
		}
		const jobId = jobIdOf(answer.location);
		return done(c, learnerPath(c), { kind: "ok", text: `Update queued as job ${jobId}: every registration of this learner gets the new details shortly.` });
	});
	formPage("/applications/:appId/learners/:learnerId/info", learnerPath);

	// Erasures (reviewed, then confirmed) and the confirmation page of every reviewed action.
	erasureRoutes(router, formPage);
	confirmationRoutes(router, formPage);

	// Jobs: the realm's list (GET /appManagement/jobs), and one job's page. Jobs and receipts are read with the
	// management credentials, which read any application's job.

	const readJob = (c: ConsoleContext, jobId: string) => c.var.api<JobView>(MANAGEMENT, "GET", `/jobs/${segment(jobId)}`);

	router.get("/jobs", async (c) => {
		const filters = { appId: c.req.query("appId") ?? "", status: c.req.query("status") ?? "", type: c.req.query("type") ?? "" };
		const more = c.req.query("more");
		const query = new URLSearchParams(
			more ? { more } : Object.fromEntries(Object.entries(filters).filter(([, value]) => value !== "")),
		).toString();
		const [jobs, applications] = await Promise.all([
			c.var.api<{ jobs: JobView[]; more?: string }>(MANAGEMENT, "GET", `/appManagement/jobs${query ? `?${query}` : ""}`),
			listApplications(c),
		]);
		const notice = noticeOf(c) ?? (jobs.ok ? undefined : { kind: "error" as const, status: jobs.status, text: generalWords(jobs) });
		return page(
			c,
			<JobsPage
				{...signedIn(c)}
				notice={notice}
				jobs={jobs.body?.jobs ?? []}
				filters={filters}
				applications={applications}
				more={jobs.body?.more}
				paged={more !== undefined}
			/>,
			jobs.ok ? 200 : jobs.status,
		);
	});

	router.get("/jobs/:jobId", async (c) => {
		const answer = await readJob(c, c.req.param("jobId"));
		if (!answer.ok || !answer.body) throw apiFailure(answer);
		const job = answer.body;
		const [applications, receipt] = await Promise.all([
			job.applicationId ? listApplications(c) : Promise.resolve([]),
			// The requester is on the receipt (the job resource holds no email).
			ERASURE_TYPES.includes(job.type) && job.status === "completed" && !c.var.draft?.requestedBy
				? c.var.api<{ receipt: { requestedBy: string | null } }>(MANAGEMENT, "GET", `/jobs/${segment(job.id)}/receipt`)
				: Promise.resolve(null),
		]);
		return page(
			c,
			<JobPage
				{...signedIn(c)}
				job={job}
				application={applications.find((app) => app.id === job.applicationId)}
				learnerId={c.var.draft?.learnerId}
				requestedBy={c.var.draft?.requestedBy ?? receipt?.body?.receipt.requestedBy ?? undefined}
			/>,
		);
	});

	// What the progress bar's script polls.
	router.get("/jobs/:jobId/status", async (c) => {
		const answer = await readJob(c, c.req.param("jobId"));
		if (!answer.ok || !answer.body) return c.json({ message: generalWords(answer) }, answer.status as ContentfulStatusCode);
		const job = answer.body;
		return c.json({
			status: job.status,
			...progressOf(job),
			waiting: waitingWords(job),
			receipt: ERASURE_TYPES.includes(job.type) && job.status === "completed",
		});
	});

	router.get("/jobs/:jobId/receipt", async (c) => {
		const jobId = c.req.param("jobId");
		const answer = await c.var.api(MANAGEMENT, "GET", `/jobs/${segment(jobId)}/receipt`);
		if (!answer.ok) throw apiFailure(answer);
		return c.body(JSON.stringify(answer.body, null, 2), 200, {
			"Content-Type": "application/json; charset=utf-8",
			"Content-Disposition": `attachment; filename="erasure-receipt-${jobId.replace(/[^A-Za-z0-9.-]/g, "_")}.json"`,
		});
	});

	// Retention policies and the audit trail (SPEC §12): ./audit.tsx.
	privacyRoutes(router, formPage);

	router.notFound((c) => page(c, <ErrorPage title="Not found" message="The console has no such page" />, 404));

	router.onError(async (error, c) => {
		const session = c.var.session;
		const known = error instanceof ApiError ? error : null;
		if (!known) log(c.env, "error", { msg: "console error", error: error instanceof Error ? error.name : typeof error });
		const status = known?.status ?? 500;
		const message = known?.message ?? "The console met an internal error; it was logged";
		if (isStatusPoll(c.req.path)) return c.json({ message }, status as ContentfulStatusCode);
		const title = status === 401 ? "Signed out" : status === 403 ? "Refused" : status === 404 ? "Not found" : "Something went wrong";
		const signedInProps = session ? { csrf: c.var.csrf } : undefined;
		return page(c, <ErrorPage title={title} message={message} signedIn={signedInProps} status={status} />, status);
	});

	return router;
}

/** The request's execution context, when it has one (tests may call without). */
function executionContextOf(c: ConsoleContext): ConsoleContext["executionCtx"] | undefined {
	try {
		return c.executionCtx;
	} catch {
		return undefined;
	}
}
