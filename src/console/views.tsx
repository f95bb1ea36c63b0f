import type { Child, FC, PropsWithChildren } from "hono/jsx";

/** The console's pages: server-rendered, every action a plain form (the one script only adds to them). */

export interface Notice {
	kind: "ok" | "error";
	text: string;
	/** Ids or tags the notice names, shown verbatim after its text. */
	values?: string[];
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
	/** An unfinished update's or erasure's `done` of `total` (GET /jobs/{jobId}). */
	progress?: { done: number; total: number; unit: string };
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
const When: FC<{ iso: string }> = ({ iso }) => <time datetime={iso}>{`${iso.slice(0, 16).replace("T", " ")} UTC`}</time>;

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
const VerbatimList: FC<{ values: string[] }> = ({ values }) => (
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
const PostForm: FC<PropsWithChildren<{ action: string; csrf: string; class?: string; label?: string }>> = (props) => (
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
		<p class={notice.kind === "error" ? "notice error" : "notice"} role={notice.kind === "error" ? "alert" : "status"}>
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
		<span class="muted">Shown once: store it now.</span>
	</div>
);

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

/** A signed-in page: navigation, sign-out, the heading (the title unless given) and the page's notice. */
export const Layout: FC<PropsWithChildren<PageProps & { title: string; heading?: Child }>> = ({ title, heading, csrf, notice, children }) => (
	<Document title={title}>
		<header>
			<a class="brand" href="/console/applications">
				Learner Service console
			</a>
			<nav aria-label="Console">
				<ul>
					<li>
						<a href="/console/applications">Applications</a>
					</li>
					<li>
						<a href="/console/users">Realm users</a>
					</li>
					<li>
						<a href="/console/erasures">Erasures</a>
					</li>
					<li>
						<a href="/console/jobs">Recent jobs</a>
					</li>
					<li>
						<a href="/console/audit">Audit trail</a>
					</li>
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

export const SignInPage: FC<{ notice?: Notice | undefined }> = ({ notice }) => (
	<Document title="Sign in">
		<main class="signin">
			<h1>Sign in to the console</h1>
			<NoticeBox notice={notice} />
			<form method="post" action="/console/sign-in" class="card">
				<p class="muted">Use the realm's management credentials (MANAGEMENT_APP_ID and MANAGEMENT_SECRET_KEY).</p>
				<label for="appId">Management id</label>
				<input id="appId" name="appId" type="text" autocomplete="username" required />
				<label for="secretKey">Management secret key</label>
				<input id="secretKey" name="secretKey" type="password" autocomplete="current-password" required />
				<button type="submit">Sign in</button>
			</form>
		</main>
	</Document>
);

export const ErrorPage: FC<{ title: string; message: string; signedIn?: PageProps | undefined }> = ({ title, message, signedIn }) =>
	signedIn ? (
		<Layout title={title} csrf={signedIn.csrf} notice={{ kind: "error", text: message }}>
			<p>
				<a href="/console/applications">Back to the applications</a>
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

const RegionSelect: FC<{ id: string }> = ({ id }) => (
	<select id={id} name="dataRegion">
		<option value="default">default</option>
		<option value="eu">eu (data kept in the EU)</option>
	</select>
);

export const ApplicationsPage: FC<PageProps & { applications: ApplicationView[]; shards: string[] }> = (props) => (
	<Layout title="Applications" csrf={props.csrf} notice={props.notice}>
		<PostForm action="/console/applications" csrf={props.csrf} class="card" label="Create an application">
			<h2>Create an application</h2>
			<label for="new-app-name">Name</label>
			<input id="new-app-name" name="name" type="text" required maxLength={255} />
			<label for="new-app-region">Data region</label>
			<RegionSelect id="new-app-region" />
			<button type="submit">Create application</button>
		</PostForm>
		<h2>All applications</h2>
		{props.applications.length === 0 ? (
			<p>No applications yet.</p>
		) : (
			<Table
				rows={props.applications}
				columns={[
					{ label: "Name", cell: (app) => <a href={`/console/applications/${app.id}`}>{app.name}</a> },
					{ label: "Id", class: "mono", cell: (app) => app.id },
					{ label: "Region", cell: (app) => app.dataRegion },
					{ label: "Shard", class: "mono", cell: (app) => app.shard },
					{ label: "Created", cell: (app) => <When iso={app.createDate} /> },
					{
						label: "Move to shard",
						cell: (app) => (
							<PostForm action={`/console/applications/${app.id}/move`} csrf={props.csrf} class="row" label={`Move ${app.name}`}>
								<label class="inline" for={`move-${app.id}`}>
									Shard
								</label>
								<select id={`move-${app.id}`} name="shard">
									{props.shards
										.filter((shard) => shard !== app.shard)
										.map((shard) => (
											<option value={shard}>{shard}</option>
										))}
								</select>
								<label class="inline">
									<input type="checkbox" name="allowRegionChange" value="true" /> allow region change
								</label>
								<button type="submit" class="secondary">
									Move
								</button>
							</PostForm>
						),
					},
					{
						label: "Actions",
						class: "actions",
						cell: (app) => (
							<>
								<a href={`/console/applications/${app.id}`}>Credentials &amp; webhook</a>
								<a href={`/console/applications/${app.id}/learners`}>Learners</a>
								<a href={`/console/applications/${app.id}/delete`}>Delete…</a>
							</>
						),
					},
				]}
			/>
		)}
	</Layout>
);

/** The form that sets an application's allowDelete (SCORM Cloud's guard against deleting it by mistake). */
const AllowDeleteForm: FC<{ app: ApplicationView; csrf: string; allow: boolean }> = ({ app, csrf, allow }) => (
	<PostForm action={`/console/applications/${app.id}/allow-delete`} csrf={csrf} class="row" label={allow ? "Allow deletion" : "Guard against deletion"}>
		<input type="hidden" name="allowDelete" value={allow ? "true" : "false"} />
		<button type="submit" class="secondary">
			{allow ? "Allow deletion (allowDelete: true)" : "Guard against deletion (allowDelete: false)"}
		</button>
	</PostForm>
);

export const DeleteApplicationPage: FC<PageProps & { app: ApplicationView }> = ({ app, csrf, notice }) =>
	app.allowDelete === false ? (
		<Layout title={`Application ${app.name} is guarded against deletion`} csrf={csrf} notice={notice}>
			<p>
				Application <code>{app.id}</code> has <code>allowDelete: false</code>: the API refuses to delete it until it is
				set back to true. Allowing deletion deletes nothing by itself; deleting it then needs its own confirmation.
			</p>
			<AllowDeleteForm app={app} csrf={csrf} allow={true} />
			<p>
				<a href={`/console/applications/${app.id}`}>Back to the application</a>
			</p>
		</Layout>
	) : (
		<Layout title={`Delete application ${app.name}?`} csrf={csrf} notice={notice}>
			<p>
				Application <code>{app.id}</code> and every registration, learner tag and job it holds will be deleted. Its
				credentials stop working at once. This cannot be undone.
			</p>
			<PostForm action={`/console/applications/${app.id}/delete`} csrf={csrf} class="card" label="Confirm deletion">
				<button type="submit" class="danger">
					Delete {app.name}
				</button>{" "}
				<a href="/console/applications">Cancel</a>
			</PostForm>
		</Layout>
	);

const WebhookSection: FC<{ app: ApplicationView; webhook: WebhookView; csrf: string; secret?: string | undefined }> = ({
	app,
	webhook,
	csrf,
	secret,
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
					<label for="webhook-url">Endpoint URL (https:)</label>
					<input id="webhook-url" name="url" type="url" required placeholder="https://example.com/hooks/learner-service" />
					<button type="submit">{"url" in webhook ? "Replace webhook" : "Set webhook"}</button>
				</PostForm>
				{"url" in webhook ? (
					<div class="row">
						<PostForm action={`/console/applications/${app.id}/webhook/test`} csrf={csrf} class="row">
							<button type="submit" class="secondary">
								Send a test event
							</button>
						</PostForm>
						<PostForm action={`/console/applications/${app.id}/webhook/delete`} csrf={csrf} class="row">
							<button type="submit" class="danger">
								Delete webhook
							</button>
						</PostForm>
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
		credentials: CredentialView[];
		webhook: WebhookView;
		newCredential?: { name: string; secret: string } | undefined;
		webhookSecret?: string | undefined;
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
			<dt>Deletion</dt>
			<dd>{props.app.allowDelete === false ? "guarded (allowDelete: false)" : "allowed (allowDelete: true)"}</dd>
		</dl>
		<AllowDeleteForm app={props.app} csrf={props.csrf} allow={props.app.allowDelete === false} />
		<p>
			<a href={`/console/applications/${props.app.id}/learners`}>Learners of this application</a> ·{" "}
			<a href={`/console/applications/${props.app.id}/retention`}>Retention policy</a>
		</p>
		<h2>Credentials</h2>
		{props.newCredential ? (
			<Secret id="new-secret" label={`Secret of ${props.newCredential.name}:`} value={props.newCredential.secret} />
		) : null}
		<PostForm action={`/console/applications/${props.app.id}/credentials`} csrf={props.csrf} class="card" label="Create a credential">
			<label for="new-credential-name">New credential's name</label>
			<input id="new-credential-name" name="name" type="text" required maxLength={255} />
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
								<PostForm action={`${credentialPath(props.app.id, credential)}/delete`} csrf={props.csrf} class="row">
									<button type="submit" class="danger" aria-label={`Delete credential ${credential.name}`}>
										Delete
									</button>
								</PostForm>
							</>
						),
					},
				]}
			/>
		)}
		<WebhookSection app={props.app} webhook={props.webhook} csrf={props.csrf} secret={props.webhookSecret} />
	</Layout>
);

const ROLES = ["owner", "admin", "member"] as const;

export const UsersPage: FC<PageProps & { users: { email: string; role: string }[] }> = (props) => (
	<Layout title="Realm users and roles" csrf={props.csrf} notice={props.notice}>
		<p class="muted">Owners and admins may request erasures (their email is the erasure's userEmail).</p>
		<PostForm action="/console/users" csrf={props.csrf} class="card" label="Add or update a realm user">
			<h2>Add or update a user</h2>
			<label for="user-email">Email</label>
			<input id="user-email" name="email" type="email" required />
			<label for="user-role">Role</label>
			<select id="user-role" name="role">
				{ROLES.map((role) => (
					<option value={role}>{role}</option>
				))}
			</select>
			<button type="submit">Save user</button>
		</PostForm>
		<h2>Users</h2>
		{props.users.length === 0 ? (
			<p>No realm users.</p>
		) : (
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
							<PostForm action="/console/users/delete" csrf={props.csrf} class="row">
								<input type="hidden" name="email" value={user.email} />
								<button type="submit" class="danger" aria-label={`Remove ${user.email}`}>
									Remove
								</button>
							</PostForm>
						),
					},
				]}
			/>
		)}
	</Layout>
);

const learnerName = (learner: LearnerView) => [learner.firstName, learner.lastName].filter(Boolean).join(" ") || "—";

export const LearnersPage: FC<
	PageProps & { app: ApplicationView; learnerId: string; tags: string; learners: LearnerView[]; more?: string | undefined; searched: boolean }
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
	PageProps & { app: ApplicationView; learnerId: string; tags: string[]; registrations: RegistrationView[] }
> = (props) => {
	const base = `/console/applications/${props.app.id}/learners/${encodeURIComponent(props.learnerId)}`;
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
				<label for="add-tags">Add tags (comma-separated; spaces are kept)</label>
				<input id="add-tags" name="tags" type="text" required />
				<button type="submit">Add tags</button>
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
				<label for="erase-email">Requester's email (a realm owner or admin)</label>
				<input id="erase-email" name="userEmail" type="email" required />
				<button type="submit" class="danger">
					Erase learner
				</button>
			</PostForm>
		</Layout>
	);
};

const ApplicationSelect: FC<{ id: string; applications: ApplicationView[] }> = ({ id, applications }) => (
	<select id={id} name="appId" required>
		{applications.map((app) => (
			<option value={app.id}>
				{app.name} ({app.id})
			</option>
		))}
	</select>
);

const Suppress: FC = () => (
	<label class="inline">
		<input type="checkbox" name="suppress" value="true" /> suppress (refuse this learner id's registrations afterwards)
	</label>
);

const Requester: FC<{ id: string }> = ({ id }) => (
	<>
		<label for={id}>Requester's email (a realm owner or admin)</label>
		<input id={id} name="userEmail" type="email" required />
	</>
);

export const ErasuresPage: FC<PageProps & { applications: ApplicationView[] }> = (props) => (
	<Layout title="Erasures" csrf={props.csrf} notice={props.notice}>
		<p class="muted">Each erasure runs as a job; its page shows the progress and, once completed, the signed receipt.</p>
		<div class="grid">
			<PostForm action="/console/erasures/learner" csrf={props.csrf} class="card" label="Erase one learner">
				<h2>One learner in one application</h2>
				<label for="single-app">Application</label>
				<ApplicationSelect id="single-app" applications={props.applications} />
				<label for="single-learner">Learner id</label>
				<input id="single-learner" name="learnerId" type="text" required />
				<Requester id="single-email" />
				<Suppress />
				<div class="actions">
					<button type="submit" class="danger">
						Erase learner
					</button>
				</div>
			</PostForm>
			<PostForm action="/console/erasures/bulk" csrf={props.csrf} class="card" label="Erase many learners">
				<h2>Many learners in one application</h2>
				<label for="bulk-app">Application</label>
				<ApplicationSelect id="bulk-app" applications={props.applications} />
				<label for="bulk-ids">Learner ids (one per line; spaces are kept; at most 1000)</label>
				<textarea id="bulk-ids" name="ids" required></textarea>
				<Requester id="bulk-email" />
				<Suppress />
				<div class="actions">
					<button type="submit" class="danger">
						Erase learners
					</button>
				</div>
			</PostForm>
			<PostForm action="/console/erasures/realm" csrf={props.csrf} class="card" label="Erase a learner everywhere">
				<h2>One learner in every application</h2>
				<label for="realm-learner">Learner id</label>
				<input id="realm-learner" name="learnerId" type="text" required />
				<Requester id="realm-email" />
				<Suppress />
				<div class="actions">
					<button type="submit" class="danger">
						Erase everywhere
					</button>
				</div>
			</PostForm>
		</div>
	</Layout>
);

export const JobPage: FC<PageProps & { job: JobView }> = ({ job, csrf, notice }) => {
	const { percent, counts } = progressOf(job);
	const finished = job.status === "completed" || job.status === "failed";
	const base = `/console/jobs/${encodeURIComponent(job.id)}`;
	return (
		<Layout title={`Job ${job.type}`} csrf={csrf} notice={notice}>
			<section class="card" data-job-status={`${base}/status`} data-finished={String(finished)} aria-live="polite">
				<dl class="facts">
					<dt>Job id</dt>
					<dd class="mono">{job.id}</dd>
					<dt>Status</dt>
					<dd>
						<span data-field="status" class={`status-${job.status}`}>
							{job.status}
						</span>
					</dd>
					<dt>Counts</dt>
					<dd data-field="counts">{counts}</dd>
					<dt>Started</dt>
					<dd>
						<When iso={job.createdDate} />
					</dd>
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
		</Layout>
	);
};

export const JobsPage: FC<PageProps & { jobs: (JobView | { id: string; message: string })[] }> = (props) => (
	<Layout title="Recent jobs" csrf={props.csrf} notice={props.notice}>
		<p class="muted">The jobs started from this browser's console sessions, newest first (the API has no job list).</p>
		{props.jobs.length === 0 ? (
			<p>No jobs started from the console yet.</p>
		) : (
			<div class="table">
				<table>
					<thead>
						<tr>
							<th scope="col">Job</th>
							<th scope="col">Type</th>
							<th scope="col">Status</th>
							<th scope="col">Started</th>
						</tr>
					</thead>
					<tbody>
						{props.jobs.map((job) =>
							"type" in job ? (
								<tr>
									<td data-label="Job">
										<a class="mono" href={`/console/jobs/${encodeURIComponent(job.id)}`}>
											{job.id}
										</a>
									</td>
									<td data-label="Type">{job.type}</td>
									<td data-label="Status" class={`status-${job.status}`}>{job.status}</td>
									<td data-label="Started">
										<When iso={job.createdDate} />
									</td>
								</tr>
							) : (
								<tr>
									<td data-label="Job" class="mono">{job.id}</td>
									<td data-label="Error" colspan={3}>{job.message}</td>
								</tr>
							),
						)}
					</tbody>
				</table>
			</div>
		)}
	</Layout>
);
