import { zValidator } from "@hono/zod-validator";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getCookie } from "hono/cookie";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import * as z from "zod";
import type { ZodType } from "zod";
import { consoleAuditRecord } from "../audit";
import { isManagementCredentials } from "../auth/middleware";
import { clientKey, failedAttempt, refuseIfThrottled } from "../auth/throttle";
import { config } from "../config";
import { ApiError, unauthorized } from "../errors";
import { LIMITS } from "../limits";
import { log } from "../log";
import { type ApiAnswer, type ApiClient, type ApiFetch, apiClient, jobIdOf, segment } from "./api";
import { consoleFile } from "./assets";
import { privacyViews } from "./audit";
import { appendAudit } from "../db/audit";
import {
	SESSION_COOKIE,
	SESSION_SECONDS,
	type Session,
	csrfToken,
	endSession,
	issueSession,
	readSession,
	sessionCookie,
	validCsrfToken,
} from "./session";
import {
	type ApplicationView,
	ApplicationPage,
	ApplicationsPage,
	type CredentialView,
	DeleteApplicationPage,
	ERASURE_TYPES,
	ErasuresPage,
	ErrorPage,
	type JobView,
	JobPage,
	JobsPage,
	LearnerPage,
	type LearnerView,
	LearnersPage,
	type Notice,
	type RegistrationView,
	SignInPage,
	UsersPage,
	type WebhookView,
	progressOf,
} from "./views";

/**
 * The operator console (SPEC §10) at /console: server-rendered pages whose every action is an in-process call
 * of the API (./api.ts), so the API's rules and messages are the console's. Loaded by src/app.ts on the first
 * console request only: API requests never evaluate this module.
 *
 * Security: sign-in with the realm's management credentials (compared as the API compares them, failures
 * throttled as the API's) gives a 30-minute signed session cookie (./session.ts; HttpOnly, Secure,
 * SameSite=Strict, Path=/console). Every POST must come from this origin (Origin / Sec-Fetch-Site) and carry the
 * session's CSRF token. Every response carries a strict Content-Security-Policy.
 */

interface ConsoleEnv {
	Bindings: Env;
	Variables: { session: Session; csrf: string; api: ApiClient };
}
type ConsoleContext = Context<ConsoleEnv>;

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

const MANAGEMENT = { management: true } as const;
const asApp = (appId: string) => ({ application: appId });

/** The jobs started from the console, newest first, kept in a cookie of their own (the API lists no jobs). */
const JOBS_COOKIE = "console_jobs";
const RECENT_JOBS = 10;
const JOB_ID = /^[A-Za-z0-9.-]{1,64}$/;

const now = () => Math.floor(Date.now() / 1000);

const recentJobs = (c: ConsoleContext) =>
	(getCookie(c, JOBS_COOKIE) ?? "").split(",").filter((id) => JOB_ID.test(id));

function rememberJob(c: ConsoleContext, jobId: string): void {
	const jobs = [jobId, ...recentJobs(c).filter((id) => id !== jobId)].slice(0, RECENT_JOBS);
	c.header("Set-Cookie", `${JOBS_COOKIE}=${jobs.join(",")}; Max-Age=86400; Path=/console; HttpOnly; Secure; SameSite=Strict`, {
		append: true,
	});
}

/** Renders a page (a JSX element) as an HTML document. */
const page = (c: ConsoleContext, element: unknown, status: number = 200) =>
	c.html(`<!doctype html>${String(element)}`, status as ContentfulStatusCode);

const signedIn = (c: ConsoleContext) => ({ csrf: c.var.csrf });

/** A failed API call as the console's own error (onError renders its message with the API's status). */
const apiFailure = (answer: ApiAnswer<unknown>) => new ApiError(answer.status as ContentfulStatusCode, answer.message);

const errorNotice = (answer: ApiAnswer<unknown>): Notice => ({ kind: "error", text: answer.message });

/** The status a page reporting a failed API call answers with: the API's own. */
const statusOf = (answer: ApiAnswer<unknown>) => (answer.ok ? 200 : answer.status);

/** A form body, checked by `schema`; a failure answers 400 with the field's message (onError renders it). */
const form = <T extends ZodType>(schema: T) =>
	zValidator("form", schema, (result) => {
		if (!result.success) {
			const issue = result.error.issues[0];
			throw new ApiError(400, `${issue?.path.join(".") || "form"}: ${issue?.message ?? "invalid"}`);
		}
	});

/** Free text (a name, an email, a URL, a shard): the spaces around it are dropped, as whoever typed it meant. */
const text = (name: string, max = 255) =>
	z.string({ error: `${name} is required` }).trim().min(1, `${name} is required`).max(max, `${name} is at most ${max} characters`);

/**
 * Ids and tags exactly as typed (SPEC §10): never trimmed or normalised, since learner "bob " is not learner "bob".
 * Only an empty field is refused here; length and characters are the API's to judge, and its message is shown.
 */
const exact = (name: string) => z.string({ error: `${name} is required` }).min(1, `${name} is required`);

/** The tags of a comma-separated field: split on commas only (no tag holds one), empty pieces dropped, none trimmed. */
const tagList = (tags: string) => tags.split(",").filter((tag) => tag !== "");

/** The ids of a one-per-line field: split on line breaks only (CRLF, as browsers send a textarea, or LF), empty lines dropped. */
const lineList = (ids: string) => ids.split(/\r?\n/).filter((id) => id !== "");

const checkbox = z.literal("true").optional();

/**
 * Whether a POST comes from a page of this origin. A foreign Origin is refused outright. Browsers send
 * Sec-Fetch-Site (a header no page script can set): only "same-origin" passes. Under this console's
 * Referrer-Policy (no-referrer) Chromium sends its own form posts with `Origin: null`, so a null origin counts
 * only when Sec-Fetch-Site vouches for the request.
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

	router.get("/sign-in", async (c) => {
		if (await readSession(c.env.TOKEN_SIGNING_SECRET, c.env.DB, getCookie(c, SESSION_COOKIE), now())) return c.redirect("/console/applications", 303);
		return page(c, <SignInPage />);
	});

	router.post("/sign-in", form(z.object({ appId: z.string().max(1024).default(""), secretKey: z.string().max(1024).default("") })), async (c) => {
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
			return page(c, <SignInPage notice={{ kind: "error", text: error.message }} />, error.status);
		}
		const { value, session } = await issueSession(c.env.TOKEN_SIGNING_SECRET, now());
		await appendAudit(c.env.DB, [consoleAuditRecord(session.sid, "console.signIn", { sessionId: session.sid })]);
		c.header("Set-Cookie", sessionCookie(value, SESSION_SECONDS));
		return c.redirect("/console/applications", 303);
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
		await next();
	});

	router.post("/sign-out", async (c) => {
		await endSession(c.env.DB, c.var.session, consoleAuditRecord(c.var.session.sid, "console.signOut", { sessionId: c.var.session.sid }));
		c.header("Set-Cookie", sessionCookie("", 0));
		return c.redirect("/console/sign-in", 303);
	});

	router.get("/", (c) => c.redirect("/console/applications", 303));

	// Applications.

	async function listApplications(c: ConsoleContext): Promise<ApplicationView[]> {
		const answer = await c.var.api<{ applications: ApplicationView[] }>(MANAGEMENT, "GET", "/appManagement/applications");
		if (!answer.ok || !answer.body) throw apiFailure(answer);
		return answer.body.applications;
	}

	/** One application with its properties (allowDelete among them). */
	async function findApplication(c: ConsoleContext, appId: string): Promise<ApplicationView> {
		const answer = await c.var.api<ApplicationView>(MANAGEMENT, "GET", `/appManagement/applications/${segment(appId)}`);
		if (answer.status === 404) throw new ApiError(404, `Application [${appId}] was not found`);
		if (!answer.ok || !answer.body) throw apiFailure(answer);
		return answer.body;
	}

	const renderApplications = async (c: ConsoleContext, notice?: Notice, status = 200) =>
		page(
			c,
			<ApplicationsPage
				{...signedIn(c)}
				notice={notice}
				applications={await listApplications(c)}
				shards={config(c.env).shards.map((shard) => shard.name)}
			/>,
			status,
		);

	router.get("/applications", (c) => renderApplications(c));

	router.post("/applications", form(z.object({ name: text("name"), dataRegion: z.enum(["default", "eu"]).default("default") })), async (c) => {
		const answer = await c.var.api<ApplicationView>(MANAGEMENT, "POST", "/appManagement/applications", c.req.valid("form"));
		const notice: Notice = answer.ok && answer.body
			? { kind: "ok", text: `Application ${answer.body.name} created: id ${answer.body.id}, shard ${answer.body.shard}` }
			: errorNotice(answer);
		return renderApplications(c, notice, statusOf(answer));
	});

	router.post("/applications/:appId/move", form(z.object({ shard: text("shard"), allowRegionChange: checkbox })), async (c) => {
		const appId = c.req.param("appId");
		const { shard, allowRegionChange } = c.req.valid("form");
		const answer = await c.var.api(MANAGEMENT, "POST", `/appManagement/applications/${segment(appId)}/move`, {
			shard,
			allowRegionChange: allowRegionChange === "true",
		});
		if (!answer.ok) return renderApplications(c, errorNotice(answer), answer.status);
		return startedJob(c, answer.location);
	});

	router.get("/applications/:appId/delete", async (c) =>
		page(c, <DeleteApplicationPage {...signedIn(c)} app={await findApplication(c, c.req.param("appId"))} />),
	);

	// allowDelete: deletion is refused by the API while it is false; the delete page offers to allow it first.
	router.post("/applications/:appId/allow-delete", form(z.object({ allowDelete: z.enum(["true", "false"]) })), async (c) => {
		const appId = c.req.param("appId");
		const allowDelete = c.req.valid("form").allowDelete === "true";
		const answer = await c.var.api(MANAGEMENT, "PUT", `/appManagement/applications/${segment(appId)}`, { allowDelete });
		if (!answer.ok) return renderApplication(c, appId, { notice: errorNotice(answer), status: answer.status });
		return c.redirect(`/console/applications/${segment(appId)}`, 303);
	});

	router.post("/applications/:appId/delete", async (c) => {
		const appId = c.req.param("appId");
		const answer = await c.var.api(MANAGEMENT, "DELETE", `/appManagement/applications/${segment(appId)}`);
		if (!answer.ok) return renderApplications(c, errorNotice(answer), answer.status);
		return startedJob(c, answer.location);
	});

	// One application: credentials and webhook.

	async function webhookOf(c: ConsoleContext, appId: string): Promise<WebhookView> {
		const answer = await c.var.api<{ url: string; createdDate: string; updatedDate: string }>(
			MANAGEMENT,
			"GET",
			`/appManagement/${segment(appId)}/webhook`,
		);
		if (answer.ok && answer.body) return answer.body;
		// 404: the application has no webhook; anything else (the database unavailable, say) is shown as the API said it.
		if (answer.status === 404) return { none: true };
		return { unavailable: answer.message };
	}

	async function renderApplication(
		c: ConsoleContext,
		appId: string,
		extras: { notice?: Notice; status?: number; newCredential?: { name: string; secret: string }; webhookSecret?: string } = {},
	) {
		const app = await findApplication(c, appId);
		const [credentials, webhook] = await Promise.all([
			c.var.api<{ credentials: CredentialView[] }>(MANAGEMENT, "GET", `/appManagement/${segment(appId)}/credentials`),
			webhookOf(c, appId),
		]);
		if (!credentials.ok || !credentials.body) throw apiFailure(credentials);
		return page(
			c,
			<ApplicationPage
				{...signedIn(c)}
				notice={extras.notice}
				app={app}
				credentials={credentials.body.credentials}
				webhook={webhook}
				newCredential={extras.newCredential}
				webhookSecret={extras.webhookSecret}
			/>,
			extras.status ?? 200,
		);
	}

	router.get("/applications/:appId", (c) => renderApplication(c, c.req.param("appId")));

	router.post("/applications/:appId/credentials", form(z.object({ name: text("name") })), async (c) => {
		const appId = c.req.param("appId");
		const { name } = c.req.valid("form");
		const answer = await c.var.api<{ id: string; name: string; credential: string }>(
			MANAGEMENT,
			"POST",
			`/appManagement/${segment(appId)}/credentials`,
			{ name },
		);
		if (!answer.ok || !answer.body) return renderApplication(c, appId, { notice: errorNotice(answer), status: answer.status });
		return renderApplication(c, appId, {
			notice: { kind: "ok", text: `Credential ${answer.body.name} created (id ${answer.body.id})` },
			newCredential: { name: answer.body.name, secret: answer.body.credential },
		});
	});

	router.post(
		"/applications/:appId/credentials/:credentialId",
		form(z.object({ name: text("name").optional(), active: z.enum(["true", "false"]).optional() })),
		async (c) => {
			const { appId, credentialId } = c.req.param();
			const { name, active } = c.req.valid("form");
			const change = { ...(name !== undefined && { name }), ...(active !== undefined && { active: active === "true" }) };
			const answer = await c.var.api(MANAGEMENT, "PUT", `/appManagement/${segment(appId)}/credentials/${segment(credentialId)}`, change);
			const notice: Notice = answer.ok ? { kind: "ok", text: `Credential ${credentialId} updated` } : errorNotice(answer);
			return renderApplication(c, appId, { notice, status: statusOf(answer) });
		},
	);

	router.post("/applications/:appId/credentials/:credentialId/delete", async (c) => {
		const { appId, credentialId } = c.req.param();
		const answer = await c.var.api(MANAGEMENT, "DELETE", `/appManagement/${segment(appId)}/credentials/${segment(credentialId)}`);
		const notice: Notice = answer.ok ? { kind: "ok", text: `Credential ${credentialId} deleted` } : errorNotice(answer);
		return renderApplication(c, appId, { notice, status: statusOf(answer) });
	});

	router.post("/applications/:appId/webhook", form(z.object({ url: text("url", 2048) })), async (c) => {
		const appId = c.req.param("appId");
		const answer = await c.var.api<{ url: string; signingSecret: string }>(MANAGEMENT, "PUT", `/appManagement/${segment(appId)}/webhook`, {
			url: c.req.valid("form").url,
		});
		if (!answer.ok || !answer.body) return renderApplication(c, appId, { notice: errorNotice(answer), status: answer.status });
		return renderApplication(c, appId, {
			notice: { kind: "ok", text: `Webhook set to ${answer.body.url}` },
			webhookSecret: answer.body.signingSecret,
		});
	});

	router.post("/applications/:appId/webhook/delete", async (c) => {
		const appId = c.req.param("appId");
		const answer = await c.var.api(MANAGEMENT, "DELETE", `/appManagement/${segment(appId)}/webhook`);
		const notice: Notice = answer.ok ? { kind: "ok", text: "Webhook deleted" } : errorNotice(answer);
		return renderApplication(c, appId, { notice, status: statusOf(answer) });
	});

	router.post("/applications/:appId/webhook/test", async (c) => {
		const appId = c.req.param("appId");
		const answer = await c.var.api<{ eventId: string; delivered: boolean; status?: number; error?: string }>(
			MANAGEMENT,
			"POST",
			`/appManagement/${segment(appId)}/webhook/test`,
		);
		if (!answer.ok || !answer.body) return renderApplication(c, appId, { notice: errorNotice(answer), status: answer.status });
		const { eventId, delivered, status, error } = answer.body;
		const outcome = delivered
			? `delivered (the endpoint answered ${status ?? "2xx"})`
			: `not delivered: ${error ?? (status !== undefined ? `the endpoint answered ${status}` : "no answer")}`;
		return renderApplication(c, appId, { notice: { kind: delivered ? "ok" : "error", text: `Test event ${eventId} ${outcome}` } });
	});

	// Realm users.

	async function renderUsers(c: ConsoleContext, notice?: Notice, status = 200) {
		const answer = await c.var.api<{ users: { email: string; role: string }[] }>(MANAGEMENT, "GET", "/appManagement/users");
		if (!answer.ok || !answer.body) throw apiFailure(answer);
		return page(c, <UsersPage {...signedIn(c)} notice={notice} users={answer.body.users} />, status);
	}

	router.get("/users", (c) => renderUsers(c));

	router.post("/users", form(z.object({ email: text("email"), role: text("role") })), async (c) => {
		const { email, role } = c.req.valid("form");
		const answer = await c.var.api(MANAGEMENT, "PUT", `/appManagement/users/${segment(email)}`, { role });
		return renderUsers(c, answer.ok ? { kind: "ok", text: `${email} is now ${role}` } : errorNotice(answer), statusOf(answer));
	});

	router.post("/users/delete", form(z.object({ email: text("email") })), async (c) => {
		const { email } = c.req.valid("form");
		const answer = await c.var.api(MANAGEMENT, "DELETE", `/appManagement/users/${segment(email)}`);
		return renderUsers(c, answer.ok ? { kind: "ok", text: `${email} removed` } : errorNotice(answer), statusOf(answer));
	});

	// Learners of an application, acting as it.

	router.get("/applications/:appId/learners", async (c) => {
		const appId = c.req.param("appId");
		const app = await findApplication(c, appId);
		// As typed (an empty box searches nothing): the API finds "bob " and " padded", not "bob" and "padded".
		const learnerId = c.req.query("learnerId") ?? "";
		const tags = c.req.query("tags") ?? "";
		const more = c.req.query("more");
		let learners: LearnerView[] = [];
		let next: string | undefined;
		let notice: Notice | undefined;
		let status = 200;
		if (learnerId) {
			const answer = await c.var.api<{ learners: LearnerView[] }>(asApp(appId), "GET", `/learner/${segment(learnerId)}/tags`);
			if (answer.ok) return c.redirect(`/console/applications/${segment(appId)}/learners/${segment(learnerId)}`, 303);
			notice = errorNotice(answer);
			status = answer.status;
		} else {
			const query = more ? `?more=${encodeURIComponent(more)}` : tags ? `?tags=${encodeURIComponent(tags)}` : "";
			const answer = await c.var.api<{ learners: LearnerView[]; more?: string }>(asApp(appId), "GET", `/learners${query}`);
			if (answer.ok && answer.body) {
				learners = answer.body.learners;
				next = answer.body.more;
			} else {
				notice = errorNotice(answer);
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
				learners={learners}
				more={next}
				searched={Boolean(learnerId || tags || more)}
			/>,
			status,
		);
	});

	async function renderLearner(c: ConsoleContext, appId: string, learnerId: string, notice?: Notice, status = 200) {
		const app = await findApplication(c, appId);
		const [tags, registrations] = await Promise.all([
			c.var.api<{ tags: string[] }>(asApp(appId), "GET", `/learner/${segment(learnerId)}/tags`),
			c.var.api<{ registrations: RegistrationView[] }>(asApp(appId), "GET", `/registrations?learnerId=${encodeURIComponent(learnerId)}`),
		]);
		if (!tags.ok || !tags.body) throw apiFailure(tags);
		return page(
			c,
			<LearnerPage
				{...signedIn(c)}
				notice={notice ?? (registrations.ok ? undefined : errorNotice(registrations))}
				app={app}
				learnerId={learnerId}
				tags={tags.body.tags}
				registrations={registrations.body?.registrations ?? []}
			/>,
			status,
		);
	}

	router.get("/applications/:appId/learners/:learnerId", (c) => renderLearner(c, c.req.param("appId"), c.req.param("learnerId")));

	for (const [suffix, method, verb] of [
		["tags", "PUT", "added"],
		["tags/delete", "DELETE", "removed"],
	] as const) {
		router.post(`/applications/:appId/learners/:learnerId/${suffix}`, form(z.object({ tags: exact("tags") })), async (c) => {
			const { appId, learnerId } = c.req.param();
			const tags = tagList(c.req.valid("form").tags);
			const answer = await c.var.api(asApp(appId), method, `/learner/${segment(learnerId)}/tags`, { tags });
			const notice: Notice = answer.ok ? { kind: "ok", text: `Tags ${verb}:`, values: tags } : errorNotice(answer);
			return renderLearner(c, appId, learnerId, notice, statusOf(answer));
		});
	}

	// Erasures: each starts a job, whose page follows it.

	async function renderErasures(c: ConsoleContext, notice?: Notice, status = 200) {
		return page(c, <ErasuresPage {...signedIn(c)} notice={notice} applications={await listApplications(c)} />, status);
	}

	router.get("/erasures", (c) => renderErasures(c));

	const erasureQuery = (userEmail: string, suppress: string | undefined) =>
		`?userEmail=${encodeURIComponent(userEmail)}${suppress === "true" ? "&suppress=true" : ""}`;

	router.post(
		"/erasures/learner",
		form(z.object({ appId: exact("appId"), learnerId: exact("learnerId"), userEmail: text("userEmail"), suppress: checkbox })),
		async (c) => {
			const { appId, learnerId, userEmail, suppress } = c.req.valid("form");
			const answer = await c.var.api(asApp(appId), "POST", `/learner/${segment(learnerId)}/delete-information${erasureQuery(userEmail, suppress)}`);
			if (!answer.ok) return renderErasures(c, errorNotice(answer), answer.status);
			return startedJob(c, answer.location);
		},
	);

	router.post(
		"/erasures/bulk",
		form(z.object({ appId: exact("appId"), ids: exact("ids"), userEmail: text("userEmail"), suppress: checkbox })),
		async (c) => {
			const { appId, ids, userEmail, suppress } = c.req.valid("form");
			const answer = await c.var.api(asApp(appId), "POST", `/learners/delete-information${erasureQuery(userEmail, suppress)}`, {
				ids: lineList(ids),
			});
			if (!answer.ok) return renderErasures(c, errorNotice(answer), answer.status);
			return startedJob(c, answer.location);
		},
	);

	router.post("/erasures/realm", form(z.object({ learnerId: exact("learnerId"), userEmail: text("userEmail"), suppress: checkbox })), async (c) => {
		const { learnerId, userEmail, suppress } = c.req.valid("form");
		const answer = await c.var.api(
			MANAGEMENT,
			"POST",
			`/appManagement/learners/${segment(learnerId)}/delete-information${erasureQuery(userEmail, suppress)}`,
		);
		if (!answer.ok) return renderErasures(c, errorNotice(answer), answer.status);
		return startedJob(c, answer.location);
	});

	// Jobs, read with the management credentials (which read any application's job).

	function startedJob(c: ConsoleContext, location: string | null) {
		const jobId = jobIdOf(location);
		rememberJob(c, jobId);
		return c.redirect(`/console/jobs/${segment(jobId)}`, 303);
	}

	const readJob = (c: ConsoleContext, jobId: string) => c.var.api<JobView>(MANAGEMENT, "GET", `/jobs/${segment(jobId)}`);

	router.get("/jobs", async (c) => {
		const jobs = await Promise.all(
			recentJobs(c).map(async (jobId) => {
				const answer = await readJob(c, jobId);
				return answer.ok && answer.body ? answer.body : { id: jobId, message: answer.message };
			}),
		);
		return page(c, <JobsPage {...signedIn(c)} jobs={jobs} />);
	});

	router.get("/jobs/:jobId", async (c) => {
		const answer = await readJob(c, c.req.param("jobId"));
		if (!answer.ok || !answer.body) throw apiFailure(answer);
		return page(c, <JobPage {...signedIn(c)} job={answer.body} />);
	});

	// What the progress bar's script polls.
	router.get("/jobs/:jobId/status", async (c) => {
		const answer = await readJob(c, c.req.param("jobId"));
		if (!answer.ok || !answer.body) return c.json({ message: answer.message }, answer.status as ContentfulStatusCode);
		const job = answer.body;
		return c.json({ status: job.status, ...progressOf(job), receipt: ERASURE_TYPES.includes(job.type) && job.status === "completed" });
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
	router.route("/", privacyViews());

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
		return page(c, <ErrorPage title={title} message={message} signedIn={signedInProps} />, status);
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
