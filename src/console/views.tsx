import type { Child, FC, PropsWithChildren } from "hono/jsx";
import { JobTimelineChart, ShardFillChart, StoredRowsChart, type UsageView, WebhookChart, WriteBudgetChart, number } from "./charts";
import { Checkbox, Field, FormError, type FormState, Select, TextArea } from "./fields";
import { jobTypeWords, waitingWords } from "./words";

export type { FormState };

/** The console's pages: server-rendered, every action a plain form (the one script only adds to them). */

export interface Notice {
	kind: "ok" | "error";
	text: string;
	/** Ids or tags the notice names, shown verbatim after its text. */
	values?: string[] | undefined;
	/** The API's status, for a refusal (the page shows it in words; tests and scripts read it here). */
	status?: number | undefined;
}

/** What every signed-in page needs: the CSRF token its forms carry. */
export interface PageProps {
	csrf: string;
	notice?: Notice | undefined;
}

export interface ApplicationView {
	id: string;
	name: string;
	createDate: string;
	dataRegion: "default" | "eu";
	shard: string;
	/** Known from GET /appManagement/applications/{id} (the list does not carry it). */
	allowDelete?: boolean;
}

export interface CredentialView {
	id: string;
	name: string;
	status: "Enabled" | "Disabled";
	created: string;
}

export interface LearnerView {
	id: string;
	email?: string;
	firstName?: string;
	lastName?: string;
	tags: string[];
	registrationCount: number;
}

export interface RegistrationView {
	id: string;
	createdDate: string;
	course: { id: string };
	learner?: { email?: string; firstName?: string; lastName?: string };
}

export interface JobView {
	id: string;
	type: string;
	status: "queued" | "running" | "completed" | "failed";
	createdDate: string;
	completedDate?: string;
	registrationsAffected: number;
	tagsRemoved?: number;
	message?: string;
	applicationId?: string;
	learnerHash?: string;
	move?: { from: string; to: string; phase: string };
	notification?: { status: string; attempts: number; lastStatus?: number; lastError?: string };
	/** An unfinished update's or erasure's `done` of `total` (GET /jobs/{jobId}). */
	progress?: { done: number; total: number; unit: string };
}

/** One application's usage (GET /appManagement/applications/{childAppId}/usage), as the application's page shows it. */
export interface ApplicationUsageView {
	application: { storedRows: number; rowQuota: number; writesThisMinute: number; writeBudget: number; registrations: number; learners: number };
	jobs: { queued: number; running: number };
}

/** A webhook as GET /appManagement/{childAppId}/webhook shows it, or why it cannot be shown. */
export type WebhookView = { url: string; createdDate: string; updatedDate: string } | { none: true } | { unavailable: string };

export const ERASURE_TYPES = ["deleteAllLearnerData", "deleteLearnersData", "deleteRealmLearnerData"];

/**
 * A job's progress as the bar shows it: a finished job is at 100 %; an unfinished one at the share of its total the
 * API reports done (an update's or erasure's registrations, a bulk erasure's learners), or, for jobs that report no
 * total (a realm-wide erasure, an application's deletion or move), half way while running.
 */
export function progressOf(job: JobView): { percent: number; counts: string } {
	const finished = job.status === "completed" || job.status === "failed";
	const share = job.progress && job.progress.total > 0 ? Math.floor((99 * job.progress.done) / job.progress.total) : null;
	const percent = finished ? 100 : (share ?? (job.status === "running" ? 50 : 0));
	const counts =
		(job.progress && !finished ? `${job.progress.done} of ${job.progress.total} ${job.progress.unit} done; ` : "") +
		`${job.registrationsAffected} registration${job.registrationsAffected === 1 ? "" : "s"} affected` +
		(job.tagsRemoved !== undefined ? `, ${job.tagsRemoved} tag${job.tagsRemoved === 1 ? "" : "s"} removed` : "") +
		(job.message ? ` — ${job.message}` : "");
	return { percent, counts };
}

/** A date as an operator reads it (UTC, to the minute), the exact instant kept in the element. */
export const When: FC<{ iso: string }> = ({ iso }) => <time datetime={iso}>{`${iso.slice(0, 16).replace("T", " ")} UTC`}</time>;

/** What shows nothing at either end of an id: white space, and invisible format characters (U+200B, U+2060…). */
const BLANKS_AT_START = /^[\s\p{Cf}]+/u;
const BLANKS_AT_END = /[\s\p{Cf}]+$/u;

/** A value split into the blanks it starts with, its visible middle, and the blanks it ends with. */
function blanksOf(value: string): { start: string; middle: string; end: string } {
	const start = BLANKS_AT_START.exec(value)?.[0] ?? "";
	const rest = value.slice(start.length);
	const end = BLANKS_AT_END.exec(rest)?.[0] ?? "";
	return { start, middle: rest.slice(0, rest.length - end.length), end };
}

/** Blanks in words: "1 space", "2 spaces", or the code points of any others ("U+00A0"). */
function described(blanks: string): string {
	const characters = [...blanks];
	if (characters.every((character) => character === " ")) return `${characters.length} space${characters.length === 1 ? "" : "s"}`;
	return characters.map((character) => `U+${(character.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`).join(" ");
}

/**
 * An id or a tag exactly as the API holds it (SPEC §10). Learner "bob " is another person than "bob", so every
 * space is kept (white-space in the stylesheet), the blanks at either end are marked, and a note in words says what
 * they are: seen without colour, read by screen readers. The characters themselves stay in the element, so copying
 * the id copies it exactly.
 */
export const Verbatim: FC<{ value: string }> = ({ value }) => {
	const { start, middle, end } = blanksOf(value);
	const note = [
		start && (middle ? `starts with ${described(start)}` : `only ${described(start)}`),
		end && `ends with ${described(end)}`,
	]
		.filter(Boolean)
		.join(", ");
	return (
		<>
			<code class="verbatim">
				{start ? <span class="blank">{start}</span> : null}
				{middle}
				{end ? <span class="blank">{end}</span> : null}
			</code>
			{note ? (
				<>
					{" "}
					<small class="blanks">({note})</small>
				</>
			) : null}
		</>
	);
};

/** Ids or tags, each verbatim, comma-separated. */
export const VerbatimList: FC<{ values: string[] }> = ({ values }) => (
	<>
		{values.map((value, index) => (
			<>
				{index > 0 ? ", " : null}
				<Verbatim value={value} />
			</>
		))}
	</>
);

const Csrf: FC<{ token: string }> = ({ token }) => <input type="hidden" name="csrf" value={token} />;

/** A POST form carrying the session's CSRF token. */
export const PostForm: FC<PropsWithChildren<{ action: string; csrf: string; class?: string; label?: string }>> = (props) => (
	<form method="post" action={props.action} class={props.class} aria-label={props.label}>
		<Csrf token={props.csrf} />
		{props.children}
	</form>
);

/** A table column: its heading (also each cell's label when rows become cards on a narrow screen) and its cell. */
interface Column<T> {
	label: string;
	class?: string;
	cell: (row: T, index: number) => Child;
}

/** A table of rows, one column per entry, that becomes a card per row on a narrow screen (data-label). */
function Table<T>({ rows, columns }: { rows: T[]; columns: Column<T>[] }) {
	return (
		<div class="table">
			<table>
				<thead>
					<tr>
						{columns.map((column) => (
							<th scope="col">{column.label}</th>
						))}
					</tr>
				</thead>
				<tbody>
					{rows.map((row, index) => (
						<tr>
							{columns.map((column) => (
								<td data-label={column.label} class={column.class}>
									{column.cell(row, index)}
								</td>
							))}
						</tr>
					))}
				</tbody>
			</table>
		</div>
	);
}

const NoticeBox: FC<{ notice?: Notice | undefined }> = ({ notice }) =>
	notice ? (
		<p
			class={notice.kind === "error" ? "notice error" : "notice"}
			role={notice.kind === "error" ? "alert" : "status"}
			data-api-status={notice.status === undefined ? undefined : String(notice.status)}
		>
			{notice.text}
			{notice.values ? (
				<>
					{" "}
					<VerbatimList values={notice.values} />
				</>
			) : null}
		</p>
	) : null;

/** A secret shown once, with a copy button the script reveals. */
const Secret: FC<{ id: string; label: string; value: string }> = ({ id, label, value }) => (
	<div class="secret">
		<strong>{label}</strong>
		<output id={id} class="mono">
			{value}
		</output>
		<button type="button" class="secondary" data-copy={id} hidden>
			Copy
		</button>
		<span class="muted">Shown once: store it now. Reloading this page will not show it again.</span>
	</div>
);

// --- Documents and layout -----------------------------------------------------------------------------------------

const Document: FC<PropsWithChildren<{ title: string }>> = ({ title, children }) => (
	<html lang="en">
		<head>
			<meta charset="utf-8" />
			<meta name="viewport" content="width=device-width, initial-scale=1" />
			<title>{`${title} · Learner Service console`}</title>
			<link rel="icon" type="image/svg+xml" href="/console/assets/icon.svg" />
			<link rel="stylesheet" href="/console/assets/console.css" />
			<script src="/console/assets/console.js" defer></script>
		</head>
		<body>{children}</body>
	</html>
);

const NAVIGATION = [
	["/console/overview", "Overview"],
	["/console/applications", "Applications"],
	["/console/users", "Realm users"],
	["/console/erasures", "Erasures"],
	["/console/jobs", "Jobs"],
	["/console/audit", "Audit trail"],
] as const;

/** A signed-in page: navigation, sign-out, the heading (the title unless given) and the page's notice. */
export const Layout: FC<PropsWithChildren<PageProps & { title: string; heading?: Child }>> = ({ title, heading, csrf, notice, children }) => (
	<Document title={title}>
		<header>
			<a class="brand" href="/console/overview">
				Learner Service console
			</a>
			<nav aria-label="Console">
				<ul>
					{NAVIGATION.map(([href, label]) => (
						<li>
							<a href={href}>{label}</a>
						</li>
					))}
				</ul>
			</nav>
			<PostForm action="/console/sign-out" csrf={csrf}>
				<button type="submit">Sign out</button>
			</PostForm>
		</header>
		<main>
			<h1>{heading ?? title}</h1>
			<NoticeBox notice={notice} />
			{children}
		</main>
	</Document>
);

export const SignInPage: FC<{ notice?: Notice | undefined; appId?: string | undefined }> = ({ notice, appId }) => (
	<Document title="Sign in">
		<main class="signin">
			<h1>Sign in to the console</h1>
			<NoticeBox notice={notice} />
			<form method="post" action="/console/sign-in" class="card">
				<p class="muted">Use the realm's management credentials (MANAGEMENT_APP_ID and MANAGEMENT_SECRET_KEY).</p>
				<label for="appId">Management id</label>
				<input id="appId" name="appId" type="text" autocomplete="username" value={appId} required />
				<label for="secretKey">Management secret key</label>
				<input id="secretKey" name="secretKey" type="password" autocomplete="current-password" required />
				<button type="submit">Sign in</button>
			</form>
		</main>
	</Document>
);

export const ErrorPage: FC<{ title: string; message: string; signedIn?: PageProps | undefined; status?: number }> = ({ title, message, signedIn, status }) =>
	signedIn ? (
		<Layout title={title} csrf={signedIn.csrf} notice={{ kind: "error", text: message, status }}>
			<p>
				<a href="/console/overview">Back to the overview</a>
			</p>
		</Layout>
	) : (
		<Document title={title}>
			<main>
				<h1>{title}</h1>
				<p class="notice error" role="alert">
					{message}
				</p>
				<p>
					<a href="/console/sign-in">Sign in</a>
				</p>
			</main>
		</Document>
	);

/** Page numbers for a list the console pages itself (applications, realm users): previous and next links. */
const Pager: FC<{ base: string; query: Record<string, string>; page: number; pages: number }> = ({ base, query, page, pages }) => {
	if (pages <= 1) return null;
	const link = (to: number) => `${base}?${new URLSearchParams({ ...query, page: String(to) }).toString()}`;
	return (
		<nav class="pager" aria-label="Pages">
			{page > 1 ? <a href={link(page - 1)}>Previous page</a> : null}
			<span>
				Page {page} of {pages}
			</span>
			{page < pages ? <a href={link(page + 1)}>Next page</a> : null}
		</nav>
	);
};

// --- Overview -----------------------------------------------------------------------------------------------------

export const OverviewPage: FC<PageProps & { usage: UsageView | null; unavailable?: string | undefined }> = (props) => (
	<Layout title="Overview" csrf={props.csrf} notice={props.notice}>
		{props.usage ? (
			<>
				<ul class="stats" aria-label="The realm in figures">
					<li>
						<strong>{number(props.usage.applications.length)}</strong> applications
					</li>
					<li>
						<strong>{number(props.usage.applications.reduce((sum, app) => sum + app.registrations, 0))}</strong> registrations
					</li>
					<li>
						<strong>{number(props.usage.applications.reduce((sum, app) => sum + app.learners, 0))}</strong> learners
					</li>
					<li>
						<strong>{number(props.usage.jobs.queued + props.usage.jobs.running)}</strong> jobs unfinished now (
						<a href="/console/jobs?status=running">running</a>, <a href="/console/jobs?status=queued">queued</a>)
					</li>
				</ul>
				<div class="charts">
					<StoredRowsChart usage={props.usage} />
					<WriteBudgetChart usage={props.usage} />
					<JobTimelineChart usage={props.usage} />
					<WebhookChart usage={props.usage} />
					<ShardFillChart usage={props.usage} />
				</div>
				<p class="muted">
					As of <When iso={props.usage.generatedDate} />, from GET /api/v2/appManagement/usage.
				</p>
			</>
		) : (
			<p class="notice error" role="alert">
				The usage could not be read: {props.unavailable}
			</p>
		)}
	</Layout>
);

// --- Confirmations ------------------------------------------------------------------------------------------------

/** One line of what a confirmation says will happen: a term and what it is. */
export interface Fact {
	term: string;
	detail: Child;
}

/**
 * A confirmation page (SPEC §10: safe by construction): what will happen, exactly, and one button that does it. The
 * form posts `fields` (hidden) and confirm=true; nothing has happened until it is sent.
 */
export const ConfirmPage: FC<
	PageProps & {
		title: string;
		heading?: Child;
		intro: Child;
		facts: Fact[];
		action: string;
		fields: Record<string, string>;
		button: string;
		cancel: string;
		warning?: Child;
	}
> = (props) => (
	<Layout title={props.title} heading={props.heading} csrf={props.csrf} notice={props.notice}>
		<p>{props.intro}</p>
		<dl class="facts confirm-facts">
			{props.facts.map((fact) => (
				<>
					<dt>{fact.term}</dt>
					<dd>{fact.detail}</dd>
				</>
			))}
		</dl>
		{props.warning ? <p class="warning">{props.warning}</p> : null}
		<PostForm action={props.action} csrf={props.csrf} class="card" label="Confirm">
			{Object.entries(props.fields).map(([name, value]) => (
				<input type="hidden" name={name} value={value} />
			))}
			<input type="hidden" name="confirm" value="true" />
			<div class="actions">
				<button type="submit" class="danger">
					{props.button}
				</button>{" "}
				<a href={props.cancel}>Cancel</a>
			</div>
		</PostForm>
	</Layout>
);

// --- Applications -------------------------------------------------------------------------------------------------

const RegionSelect: FC<{ id: string; form?: FormState | undefined }> = ({ id, form }) => (
	<Select
		id={id}
		name="dataRegion"
		label="Data region"
		form={form}
		options={[
			{ value: "default", label: "default" },
			{ value: "eu", label: "eu (data kept in the EU)" },
		]}
	/>
);

export const ApplicationsPage: FC<
	PageProps & { applications: ApplicationView[]; total: number; q: string; page: number; pages: number; form?: FormState | undefined }
> = (props) => (
	<Layout title="Applications" csrf={props.csrf} notice={props.notice}>
		<PostForm action="/console/applications" csrf={props.csrf} class="card" label="Create an application">
			<h2>Create an application</h2>
			<FormError form={props.form} />
			<Field id="new-app-name" name="name" label="Name" form={props.form} required maxLength={255} />
			<RegionSelect id="new-app-region" form={props.form} />
			<button type="submit">Create application</button>
		</PostForm>
		<h2>All applications</h2>
		<form method="get" action="/console/applications" class="search" aria-label="Search applications">
			<label for="app-search">Name or id contains</label>
			<div class="row">
				<input id="app-search" name="q" type="search" value={props.q} />
				<button type="submit" class="secondary">
					Search
				</button>
			</div>
		</form>
		{props.applications.length === 0 ? (
			<p>{props.q ? "No application matches." : "No applications yet."}</p>
		) : (
			<>
				<p class="muted">
					{props.total} application{props.total === 1 ? "" : "s"}
					{props.q ? " match" : ""}.
				</p>
				<Table
					rows={props.applications}
					columns={[
						{ label: "Name", cell: (app) => <a href={`/console/applications/${app.id}`}>{app.name}</a> },
						{ label: "Id", class: "mono", cell: (app) => app.id },
						{ label: "Region", cell: (app) => app.dataRegion },
						{ label: "Shard", class: "mono", cell: (app) => app.shard },
						{ label: "Created", cell: (app) => <When iso={app.createDate} /> },
						{
							label: "Actions",
							class: "actions",
							cell: (app) => (
								<>
									<a href={`/console/applications/${app.id}`}>Credentials &amp; webhook</a>
									<a href={`/console/applications/${app.id}/learners`}>Learners</a>
									<a href={`/console/jobs?appId=${app.id}`}>Jobs</a>
									<a href={`/console/applications/${app.id}/move`}>Move…</a>
									<a href={`/console/applications/${app.id}/delete`}>Delete…</a>
								</>
							),
						},
					]}
				/>
			</>
		)}
		<Pager base="/console/applications" query={props.q ? { q: props.q } : {}} page={props.page} pages={props.pages} />
	</Layout>
);

/** A shard as the move form offers it. */
export interface ShardChoice {
	name: string;
	region: string;
	open: boolean;
}

export const MovePage: FC<PageProps & { app: ApplicationView; shards: ShardChoice[]; form?: FormState | undefined }> = (props) => {
	const targets = props.shards.filter((shard) => shard.name !== props.app.shard);
	return (
		<Layout title={`Move application ${props.app.name}`} csrf={props.csrf} notice={props.notice}>
			<p>
				Its data is on shard <code>{props.app.shard}</code>, in data region <strong>{props.app.dataRegion}</strong>. A move copies it to another
				shard while the application keeps working; the next page says exactly what will happen before anything does.
			</p>
			<PostForm action={`/console/applications/${props.app.id}/move`} csrf={props.csrf} class="card" label="Move the application">
				<FormError form={props.form} />
				<Select
					id="move-shard"
					name="shard"
					label="Target shard"
					form={props.form}
					options={targets.map((shard) => ({
						value: shard.name,
						label: `${shard.name} (region ${shard.region}${shard.open ? "" : ", closed to new applications"})`,
					}))}
				/>
				<Checkbox
					id="move-region"
					name="allowRegionChange"
					form={props.form}
					label={`Allow the data to leave its region (${props.app.dataRegion}) if the target shard is in another`}
				/>
				<div class="actions">
					<button type="submit">Review the move…</button> <a href="/console/applications">Cancel</a>
				</div>
			</PostForm>
		</Layout>
	);
};

/** The form that sets an application's allowDelete: SCORM Cloud's guard against deleting it by mistake. */
const AllowDeleteForm: FC<{ app: ApplicationView; csrf: string; allow: boolean }> = ({ app, csrf, allow }) => (
	<PostForm action={`/console/applications/${app.id}/allow-delete`} csrf={csrf} class="row" label={allow ? "Allow deletion" : "Guard against deletion"}>
		<input type="hidden" name="allowDelete" value={allow ? "true" : "false"} />
		<button type="submit" class="secondary">
			{allow ? "Allow deletion" : "Guard against deletion"}
		</button>
	</PostForm>
);

/**
 * What the delete page shows instead of a confirmation while the application is guarded (allowDelete: false): the
 * API refuses to delete it, so there is nothing to confirm until deletion is allowed again.
 */
export const GuardedApplicationPage: FC<PageProps & { app: ApplicationView }> = ({ app, csrf, notice }) => (
	<Layout title={`Application ${app.name} is guarded against deletion`} csrf={csrf} notice={notice}>
		<p>
			Deletion is switched off for application <code>{app.id}</code> (its <code>allowDelete</code> is false), so it cannot be deleted, from
			here or through the API. Allowing deletion deletes nothing by itself: deleting it then still needs its own confirmation.
		</p>
		<AllowDeleteForm app={app} csrf={csrf} allow={true} />
		<p>
			<a href={`/console/applications/${app.id}`}>Back to the application</a>
		</p>
	</Layout>
);

const WebhookSection: FC<{ app: ApplicationView; webhook: WebhookView; csrf: string; secret?: string | undefined; form?: FormState | undefined }> = ({
	app,
	webhook,
	csrf,
	secret,
	form,
}) => (
	<section aria-labelledby="webhook-heading">
		<h2 id="webhook-heading">Webhook</h2>
		{"unavailable" in webhook ? (
			<p class="notice error" role="alert">
				The webhook could not be read: {webhook.unavailable}
			</p>
		) : (
			<>
				{"url" in webhook ? (
					<dl class="facts">
						<dt>URL</dt>
						<dd class="mono">{webhook.url}</dd>
						<dt>Created</dt>
						<dd>
							<When iso={webhook.createdDate} />
						</dd>
						<dt>Updated</dt>
						<dd>
							<When iso={webhook.updatedDate} />
						</dd>
					</dl>
				) : (
					<p>No webhook: this application is not told when its jobs finish.</p>
				)}
				{secret ? <Secret id="webhook-secret" label="Signing secret" value={secret} /> : null}
				<PostForm action={`/console/applications/${app.id}/webhook`} csrf={csrf} class="card" label="Set the webhook">
					<FormError form={form} />
					<Field
						id="webhook-url"
						name="url"
						type="url"
						label="Endpoint URL (https:)"
						form={form}
						required
						placeholder="https://example.com/hooks/learner-service"
					/>
					<button type="submit">{"url" in webhook ? "Replace webhook" : "Set webhook"}</button>
				</PostForm>
				{"url" in webhook ? (
					<div class="row">
						<PostForm action={`/console/applications/${app.id}/webhook/test`} csrf={csrf} class="row">
							<button type="submit" class="secondary">
								Send a test event
							</button>
						</PostForm>
						<a class="button danger" href={`/console/applications/${app.id}/webhook/delete`}>
							Delete webhook…
						</a>
					</div>
				) : null}
			</>
		)}
	</section>
);

/** Where a credential's forms post. */
const credentialPath = (appId: string, credential: CredentialView) => `/console/applications/${appId}/credentials/${credential.id}`;

export const ApplicationPage: FC<
	PageProps & {
		app: ApplicationView;
		usage: ApplicationUsageView | { unavailable: string };
		credentials: CredentialView[];
		webhook: WebhookView;
		newCredential?: { name: string; secret: string } | undefined;
		webhookSecret?: string | undefined;
		forms: Record<string, FormState | undefined>;
	}
> = (props) => (
	<Layout title={`Application ${props.app.name}`} csrf={props.csrf} notice={props.notice}>
		<dl class="facts">
			<dt>Id</dt>
			<dd class="mono">{props.app.id}</dd>
			<dt>Data region</dt>
			<dd>{props.app.dataRegion}</dd>
			<dt>Shard</dt>
			<dd class="mono">{props.app.shard}</dd>
			{"application" in props.usage ? (
				<>
					<dt>Registrations</dt>
					<dd>{number(props.usage.application.registrations)}</dd>
					<dt>Learners</dt>
					<dd>{number(props.usage.application.learners)}</dd>
					<dt>Stored rows</dt>
					<dd>
						{number(props.usage.application.storedRows)} of {number(props.usage.application.rowQuota)} (its quota)
					</dd>
					<dt>Writes this minute</dt>
					<dd>
						{number(props.usage.application.writesThisMinute)} of {number(props.usage.application.writeBudget)} rows (its budget)
					</dd>
					<dt>Jobs now</dt>
					<dd>
						{props.usage.jobs.queued} queued, {props.usage.jobs.running} running
					</dd>
				</>
			) : (
				<>
					<dt>Usage</dt>
					<dd>could not be read: {props.usage.unavailable}</dd>
				</>
			)}
			<dt>Deletion</dt>
			<dd>{props.app.allowDelete === false ? "switched off: the application is guarded against deletion (allowDelete: false)" : "allowed"}</dd>
		</dl>
		<AllowDeleteForm app={props.app} csrf={props.csrf} allow={props.app.allowDelete === false} />
		<p class="links">
			<a href={`/console/applications/${props.app.id}/learners`}>Learners of this application</a>
			<a href={`/console/jobs?appId=${props.app.id}`}>Its jobs</a>
			<a href={`/console/applications/${props.app.id}/retention`}>Retention policy</a>
			<a href={`/console/applications/${props.app.id}/move`}>Move…</a>
			<a href={`/console/applications/${props.app.id}/delete`}>Delete…</a>
		</p>
		<h2>Credentials</h2>
		{props.newCredential ? (
			<Secret id="new-secret" label={`Secret of ${props.newCredential.name}:`} value={props.newCredential.secret} />
		) : null}
		<PostForm action={`/console/applications/${props.app.id}/credentials`} csrf={props.csrf} class="card" label="Create a credential">
			<FormError form={props.forms.credential} />
			<Field id="new-credential-name" name="name" label="New credential's name" form={props.forms.credential} required maxLength={255} />
			<button type="submit">Create credential</button>
		</PostForm>
		{props.credentials.length === 0 ? (
			<p>No credentials.</p>
		) : (
			<Table
				rows={props.credentials}
				columns={[
					{
						label: "Name",
						cell: (credential) => (
							<PostForm action={credentialPath(props.app.id, credential)} csrf={props.csrf} class="row" label={`Rename ${credential.name}`}>
								<label class="sr-only" for={`name-${credential.id}`}>
									Name of credential {credential.id}
								</label>
								<input id={`name-${credential.id}`} name="name" type="text" value={credential.name} required maxLength={255} />
								<button type="submit" class="secondary">
									Rename
								</button>
							</PostForm>
						),
					},
					{ label: "Id", class: "mono", cell: (credential) => credential.id },
					{ label: "Status", cell: (credential) => credential.status },
					{ label: "Created", cell: (credential) => <When iso={credential.created} /> },
					{
						label: "Actions",
						class: "actions",
						cell: (credential) => (
							<>
								<PostForm action={credentialPath(props.app.id, credential)} csrf={props.csrf} class="row">
									<input type="hidden" name="active" value={credential.status === "Enabled" ? "false" : "true"} />
									<button type="submit" class="secondary">
										{credential.status === "Enabled" ? "Disable" : "Enable"}
									</button>
								</PostForm>
								<a class="button danger" href={`${credentialPath(props.app.id, credential)}/delete`} aria-label={`Delete credential ${credential.name}`}>
									Delete…
								</a>
							</>
						),
					},
				]}
			/>
		)}
		<WebhookSection app={props.app} webhook={props.webhook} csrf={props.csrf} secret={props.webhookSecret} form={props.forms.webhook} />
		<section aria-labelledby="suppression-heading">
			<h2 id="suppression-heading">Lift a suppression</h2>
			<p class="muted">
				A learner erased with suppression is refused (409) when registered again. Lifting it lets registrations naming that learner id in
				this application be accepted again.
			</p>
			<PostForm action={`/console/applications/${props.app.id}/suppression`} csrf={props.csrf} class="card" label="Lift a suppression">
				<FormError form={props.forms.suppression} />
				<Field
					id="lift-learner"
					name="learnerId"
					label="Learner id (exactly as it was erased; spaces count)"
					form={props.forms.suppression}
					required
				/>
				<button type="submit" class="secondary">
					Review…
				</button>
			</PostForm>
		</section>
	</Layout>
);

// --- Realm users ----------------------------------------------------------------------------------------------------

const ROLES = ["owner", "admin", "member"] as const;

export const UsersPage: FC<
	PageProps & { users: { email: string; role: string }[]; total: number; q: string; page: number; pages: number; form?: FormState | undefined }
> = (props) => (
	<Layout title="Realm users and roles" csrf={props.csrf} notice={props.notice}>
		<p class="muted">Owners and admins may request erasures (their email is the erasure's userEmail).</p>
		<PostForm action="/console/users" csrf={props.csrf} class="card" label="Add or update a realm user">
			<h2>Add or update a user</h2>
			<FormError form={props.form} />
			<Field id="user-email" name="email" type="email" label="Email" form={props.form} required />
			<Select id="user-role" name="role" label="Role" form={props.form} options={ROLES.map((role) => ({ value: role, label: role }))} />
			<button type="submit">Save user</button>
		</PostForm>
		<h2>Users</h2>
		<form method="get" action="/console/users" class="search" aria-label="Search realm users">
			<label for="user-search">Email contains</label>
			<div class="row">
				<input id="user-search" name="q" type="search" value={props.q} />
				<button type="submit" class="secondary">
					Search
				</button>
			</div>
		</form>
		{props.users.length === 0 ? (
			<p>{props.q ? "No realm user matches." : "No realm users."}</p>
		) : (
			<>
				<p class="muted">
					{props.total} user{props.total === 1 ? "" : "s"}
					{props.q ? " match" : ""}.
				</p>
				<Table
					rows={props.users}
					columns={[
						{ label: "Email", class: "mono", cell: (user) => user.email },
						{
							label: "Role",
							cell: (user, index) => (
								<PostForm action="/console/users" csrf={props.csrf} class="row" label={`Role of ${user.email}`}>
									<input type="hidden" name="email" value={user.email} />
									<label class="sr-only" for={`role-${index}`}>
										Role of {user.email}
									</label>
									<select id={`role-${index}`} name="role">
										{ROLES.map((role) => (
											<option value={role} selected={role === user.role}>
												{role}
											</option>
										))}
									</select>
									<button type="submit" class="secondary">
										Change
									</button>
								</PostForm>
							),
						},
						{
							label: "Remove",
							cell: (user) => (
								<a class="button danger" href={`/console/users/delete?${new URLSearchParams({ email: user.email }).toString()}`} aria-label={`Remove ${user.email}`}>
									Remove…
								</a>
							),
						},
					]}
				/>
			</>
		)}
		<Pager base="/console/users" query={props.q ? { q: props.q } : {}} page={props.page} pages={props.pages} />
	</Layout>
);

// --- Learners -------------------------------------------------------------------------------------------------------

const learnerName = (learner: LearnerView) => [learner.firstName, learner.lastName].filter(Boolean).join(" ") || "—";

export const LearnersPage: FC<
	PageProps & {
		app: ApplicationView;
		learnerId: string;
		tags: string;
		tagMatch: string;
		learners: LearnerView[];
		more?: string | undefined;
		searched: boolean;
	}
> = (props) => {
	const base = `/console/applications/${props.app.id}/learners`;
	return (
		<Layout title={`Learners of ${props.app.name}`} csrf={props.csrf} notice={props.notice}>
			<form method="get" action={base} class="card" aria-label="Find learners">
				<div class="grid">
					<div>
						<label for="find-learner">Learner id</label>
						<input id="find-learner" name="learnerId" type="text" value={props.learnerId} />
					</div>
					<div>
						<label for="find-tags">Or tags (comma-separated; spaces are kept)</label>
						<input id="find-tags" name="tags" type="text" value={props.tags} />
						<label for="find-match">Learners with</label>
						<select id="find-match" name="tagMatch">
							<option value="any" selected={props.tagMatch !== "all"}>
								any of these tags
							</option>
							<option value="all" selected={props.tagMatch === "all"}>
								all of these tags
							</option>
						</select>
					</div>
				</div>
				<button type="submit">Find learners</button>
			</form>
			<h2>{props.searched ? "Learners found" : "All learners"}</h2>
			{props.learners.length === 0 ? (
				<p>No learners found.</p>
			) : (
				<Table
					rows={props.learners}
					columns={[
						{
							label: "Learner id",
							cell: (learner) => (
								<a href={`${base}/${encodeURIComponent(learner.id)}`}>
									<Verbatim value={learner.id} />
								</a>
							),
						},
						{ label: "Email", class: "mono", cell: (learner) => learner.email ?? "—" },
						{ label: "Name", cell: (learner) => learnerName(learner) },
						{ label: "Tags", cell: (learner) => <VerbatimList values={learner.tags} /> },
						{ label: "Registrations", cell: (learner) => learner.registrationCount },
					]}
				/>
			)}
			{props.more ? (
				<p>
					<a href={`${base}?more=${encodeURIComponent(props.more)}`}>Next page</a>
				</p>
			) : null}
		</Layout>
	);
};

export const LearnerPage: FC<
	PageProps & {
		app: ApplicationView;
		learnerId: string;
		tags: string[];
		registrations: RegistrationView[];
		forms: Record<string, FormState | undefined>;
	}
> = (props) => {
	const base = `/console/applications/${props.app.id}/learners/${encodeURIComponent(props.learnerId)}`;
	const current = props.registrations[0]?.learner;
	return (
		<Layout
			title={`Learner ${props.learnerId}`}
			heading={
				<>
					Learner <Verbatim value={props.learnerId} />
				</>
			}
			csrf={props.csrf}
			notice={props.notice}
		>
			<p>
				In application <a href={`/console/applications/${props.app.id}/learners`}>{props.app.name}</a>
			</p>
			<h2>Tags</h2>
			{props.tags.length === 0 ? (
				<p>No tags.</p>
			) : (
				<ul class="tags">
					{props.tags.map((tag) => (
						<li>
							<Verbatim value={tag} />
							<PostForm action={`${base}/tags/delete`} csrf={props.csrf} class="row">
								<input type="hidden" name="tags" value={tag} />
								<button type="submit" class="secondary" aria-label={`Remove tag ${tag}`}>
									×
								</button>
							</PostForm>
						</li>
					))}
				</ul>
			)}
			<PostForm action={`${base}/tags`} csrf={props.csrf} class="card" label="Add tags">
				<FormError form={props.forms.tags} />
				<Field id="add-tags" name="tags" label="Add tags (comma-separated; spaces are kept)" form={props.forms.tags} required />
				<button type="submit">Add tags</button>
			</PostForm>
			<h2>Details</h2>
			<PostForm action={`${base}/info`} csrf={props.csrf} class="card" label="Update the learner's details">
				<p class="muted">
					Changes every registration of this learner, as a job (updateLearnerInfo). Fields left empty stay as they are.
					{current ? (
						<>
							{" "}
							Now: {current.email ?? "no email"}, {[current.firstName, current.lastName].filter(Boolean).join(" ") || "no name"}.
						</>
					) : null}
				</p>
				<FormError form={props.forms.info} />
				<Field id="info-email" name="email" type="email" label="Email" form={props.forms.info} />
				<Field id="info-first" name="firstName" label="First name" form={props.forms.info} maxLength={255} />
				<Field id="info-last" name="lastName" label="Last name" form={props.forms.info} maxLength={255} />
				<button type="submit">Update details</button>
			</PostForm>
			<h2>Registrations</h2>
			<Table
				rows={props.registrations}
				columns={[
					{ label: "Registration id", cell: (registration) => <Verbatim value={registration.id} /> },
					{ label: "Course", cell: (registration) => <Verbatim value={registration.course.id} /> },
					{ label: "Created", cell: (registration) => <When iso={registration.createdDate} /> },
				]}
			/>
			<h2>Erase this learner</h2>
			<PostForm action="/console/erasures/learner" csrf={props.csrf} class="card" label="Erase this learner">
				<input type="hidden" name="appId" value={props.app.id} />
				<input type="hidden" name="learnerId" value={props.learnerId} />
				<FormError form={props.forms.eraseLearner} />
				<Field id="erase-email" name="userEmail" type="email" label="Requester's email (a realm owner or admin)" form={props.forms.eraseLearner} required />
				<Checkbox id="erase-suppress" name="suppress" form={props.forms.eraseLearner} label="suppress (refuse this learner id's registrations afterwards)" />
				<button type="submit" class="danger">
					Review the erasure…
				</button>
			</PostForm>
		</Layout>
	);
};

// --- Erasures -------------------------------------------------------------------------------------------------------

const ApplicationSelect: FC<{ id: string; applications: ApplicationView[]; form?: FormState | undefined }> = ({ id, applications, form }) => (
	<Select
		id={id}
		name="appId"
		label="Application"
		form={form}
		required
		options={applications.map((app) => ({ value: app.id, label: `${app.name} (${app.id})` }))}
	/>
);

const Suppress: FC<{ id: string; form?: FormState | undefined }> = ({ id, form }) => (
	<Checkbox id={id} name="suppress" form={form} label="suppress (refuse this learner id's registrations afterwards)" />
);

const Requester: FC<{ id: string; form?: FormState | undefined }> = ({ id, form }) => (
	<Field id={id} name="userEmail" type="email" label="Requester's email (a realm owner or admin)" form={form} required />
);

export const ErasuresPage: FC<PageProps & { applications: ApplicationView[]; forms: Record<string, FormState | undefined> }> = (props) => (
	<Layout title="Erasures" csrf={props.csrf} notice={props.notice}>
		<p class="muted">
			Each erasure is reviewed first: the next page says exactly what will be erased, and nothing is until it is confirmed. It then runs as a
			job, whose page shows the progress and, once completed, the signed receipt.
		</p>
		<div class="grid">
			<PostForm action="/console/erasures/learner" csrf={props.csrf} class="card" label="Erase one learner">
				<h2>One learner in one application</h2>
				<FormError form={props.forms.eraseLearner} />
				<ApplicationSelect id="single-app" applications={props.applications} form={props.forms.eraseLearner} />
				<Field id="single-learner" name="learnerId" label="Learner id" form={props.forms.eraseLearner} required />
				<Requester id="single-email" form={props.forms.eraseLearner} />
				<Suppress id="single-suppress" form={props.forms.eraseLearner} />
				<div class="actions">
					<button type="submit" class="danger">
						Review the erasure…
					</button>
				</div>
			</PostForm>
			<PostForm action="/console/erasures/bulk" csrf={props.csrf} class="card" label="Erase many learners">
				<h2>Many learners in one application</h2>
				<FormError form={props.forms.eraseBulk} />
				<ApplicationSelect id="bulk-app" applications={props.applications} form={props.forms.eraseBulk} />
				<TextArea id="bulk-ids" name="ids" label="Learner ids (one per line; spaces are kept; at most 1000)" form={props.forms.eraseBulk} required />
				<Requester id="bulk-email" form={props.forms.eraseBulk} />
				<Suppress id="bulk-suppress" form={props.forms.eraseBulk} />
				<div class="actions">
					<button type="submit" class="danger">
						Review the erasure…
					</button>
				</div>
			</PostForm>
			<PostForm action="/console/erasures/realm" csrf={props.csrf} class="card" label="Erase a learner everywhere">
				<h2>One learner in every application</h2>
				<FormError form={props.forms.eraseRealm} />
				<Field id="realm-learner" name="learnerId" label="Learner id" form={props.forms.eraseRealm} required />
				<Requester id="realm-email" form={props.forms.eraseRealm} />
				<Suppress id="realm-suppress" form={props.forms.eraseRealm} />
				<div class="actions">
					<button type="submit" class="danger">
						Review the erasure…
					</button>
				</div>
			</PostForm>
		</div>
	</Layout>
);

// --- Jobs -----------------------------------------------------------------------------------------------------------

/** A learner as a job page names it: the id typed in this session, or the HMAC the job keeps (shortened). */
const LearnerOfJob: FC<{ job: JobView; learnerId?: string | undefined }> = ({ job, learnerId }) =>
	learnerId !== undefined ? (
		<>
			<Verbatim value={learnerId} /> <small class="muted">(as typed in this session)</small>
		</>
	) : job.learnerHash ? (
		<>
			<code title={job.learnerHash}>{`${job.learnerHash.slice(0, 16)}…`}</code> <small class="muted">(HMAC of the learner id; the id itself is not kept)</small>
		</>
	) : (
		<>—</>
	);

export const JobPage: FC<
	PageProps & { job: JobView; application?: ApplicationView | undefined; learnerId?: string | undefined; requestedBy?: string | undefined }
> = ({ job, csrf, notice, application, learnerId, requestedBy }) => {
	const { percent, counts } = progressOf(job);
	const finished = job.status === "completed" || job.status === "failed";
	const base = `/console/jobs/${encodeURIComponent(job.id)}`;
	const waiting = waitingWords(job);
	return (
		<Layout title={jobTypeWords(job.type)} csrf={csrf} notice={notice}>
			<section class="card" data-job-status={`${base}/status`} data-finished={String(finished)} aria-live="polite">
				<dl class="facts">
					<dt>Job id</dt>
					<dd class="mono">{job.id}</dd>
					<dt>Type</dt>
					<dd>
						{jobTypeWords(job.type)} <small class="muted">({job.type})</small>
					</dd>
					<dt>Status</dt>
					<dd>
						<span data-field="status" class={`status-${job.status}`}>
							{job.status}
						</span>
					</dd>
					{waiting ? (
						<>
							<dt>Now</dt>
							<dd data-field="waiting">{waiting}</dd>
						</>
					) : null}
					<dt>Application</dt>
					<dd>
						{job.applicationId ? (
							application ? (
								<a href={`/console/applications/${application.id}`}>
									{application.name} <span class="mono">({application.id})</span>
								</a>
							) : (
								<span class="mono">{job.applicationId}</span>
							)
						) : (
							"every application holding the learner (realm-wide)"
						)}
					</dd>
					{job.learnerHash || learnerId !== undefined ? (
						<>
							<dt>Learner</dt>
							<dd>
								<LearnerOfJob job={job} learnerId={learnerId} />
							</dd>
						</>
					) : null}
					{ERASURE_TYPES.includes(job.type) ? (
						<>
							<dt>Requested by</dt>
							<dd>{requestedBy ?? (job.status === "completed" ? "—" : "named on the receipt once it completes")}</dd>
						</>
					) : null}
					{job.move ? (
						<>
							<dt>Shards</dt>
							<dd>
								from <code>{job.move.from}</code> to <code>{job.move.to}</code>
							</dd>
						</>
					) : null}
					<dt>Counts</dt>
					<dd data-field="counts">{counts}</dd>
					<dt>Accepted</dt>
					<dd>
						<When iso={job.createdDate} />
					</dd>
					<dt>Completed</dt>
					<dd>{job.completedDate ? <When iso={job.completedDate} /> : "not yet"}</dd>
					{job.notification ? (
						<>
							<dt>Webhook</dt>
							<dd>
								{job.notification.status} after {job.notification.attempts} attempt{job.notification.attempts === 1 ? "" : "s"}
								{job.notification.lastStatus !== undefined ? ` (last answer ${job.notification.lastStatus})` : ""}
							</dd>
						</>
					) : null}
				</dl>
				<label for="job-progress">Progress</label>
				<progress id="job-progress" max={100} value={percent}>
					{percent} %
				</progress>
			</section>
			{ERASURE_TYPES.includes(job.type) ? (
				<p data-receipt hidden={job.status !== "completed"}>
					<a href={`${base}/receipt`} download={`erasure-receipt-${job.id}.json`}>
						Download the signed receipt
					</a>
				</p>
			) : null}
			{finished ? null : (
				<p data-while-running>
					<a href={base}>Refresh</a> <span class="muted">(the page updates itself when scripts run)</span>
				</p>
			)}
			<p>
				<a href={job.applicationId ? `/console/jobs?appId=${job.applicationId}` : "/console/jobs"}>All jobs{job.applicationId ? " of this application" : ""}</a>
			</p>
		</Layout>
	);
};

/** The filters of the jobs view, as chosen. */
export interface JobFilters {
	appId: string;
	status: string;
	type: string;
}

const JOB_STATUSES = ["queued", "running", "completed", "failed"];

export const JobsPage: FC<
	PageProps & { jobs: JobView[]; filters: JobFilters; applications: ApplicationView[]; more?: string | undefined; paged: boolean }
> = (props) => {
	const names = new Map(props.applications.map((app) => [app.id, app.name]));
	const query = (more: string) =>
		`/console/jobs?${new URLSearchParams({ ...(props.filters.appId && { appId: props.filters.appId }), more }).toString()}`;
	return (
		<Layout title="Jobs" csrf={props.csrf} notice={props.notice}>
			<form method="get" action="/console/jobs" class="card filters" aria-label="Filter jobs">
				<div class="grid">
					<Select
						id="jobs-app"
						name="appId"
						label="Application"
						value={props.filters.appId}
						options={[{ value: "", label: "every application, and realm jobs" }, ...props.applications.map((app) => ({ value: app.id, label: `${app.name} (${app.id})` }))]}
					/>
					<Select
						id="jobs-status"
						name="status"
						label="Status"
						value={props.filters.status}
						options={[{ value: "", label: "any status" }, ...JOB_STATUSES.map((status) => ({ value: status, label: status }))]}
					/>
					<Select
						id="jobs-type"
						name="type"
						label="Type"
						value={props.filters.type}
						options={[
							{ value: "", label: "any type" },
							...["updateLearnerInfo", "deleteAllLearnerData", "deleteLearnersData", "deleteRealmLearnerData", "deleteApplication", "moveApplication"].map(
								(type) => ({ value: type, label: jobTypeWords(type) }),
							),
						]}
					/>
				</div>
				<button type="submit">Show jobs</button>
			</form>
			<p class="muted">
				Newest first, 100 a page, from GET /api/v2/appManagement/jobs. A bulk erasure's learners are not listed one by one: its job stands for them.
				{props.paged ? " A later page: its filters are the first page's." : ""}
			</p>
			{props.jobs.length === 0 ? (
				<p>No jobs.</p>
			) : (
				<Table
					rows={props.jobs}
					columns={[
						{
							label: "Job",
							class: "job",
							cell: (job) => (
								<>
									<a href={`/console/jobs/${encodeURIComponent(job.id)}`}>{jobTypeWords(job.type)}</a>
									<small class="mono id">{job.id}</small>
								</>
							),
						},
						{ label: "Status", class: "status", cell: (job) => <span class={`status-${job.status}`}>{job.status}</span> },
						{
							label: "Application",
							cell: (job) => (job.applicationId ? (names.get(job.applicationId) ?? <span class="mono">{job.applicationId}</span>) : "realm-wide"),
						},
						{ label: "Accepted", cell: (job) => <When iso={job.createdDate} /> },
						{ label: "Completed", cell: (job) => (job.completedDate ? <When iso={job.completedDate} /> : "—") },
					]}
				/>
			)}
			{props.more ? (
				<p>
					<a href={query(props.more)} rel="next">
						Next page
					</a>
				</p>
			) : null}
		</Layout>
	);
};
