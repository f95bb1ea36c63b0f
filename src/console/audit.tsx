import type { FC } from "hono/jsx";
import * as z from "zod/mini";
import { ApiError } from "../errors";
import { segment } from "./api";
import { confirmation } from "./confirmations";
import { Field, FormError, type FormState } from "./fields";
import { type ConsoleContext, type ConsoleRouter, type FormPage, done, formOf, generalWords, noticeOf, page, refused } from "./flow";
import { DAYS_REFUSAL, MANAGEMENT, MAX_INACTIVE_DAYS, apiFailure, field, findApplication, form, retentionPath, signedIn, tidy } from "./shared";
import { Layout, type Notice, PostForm } from "./views";

/**
 * The console's privacy views (SPEC §12): each application's retention policy, and the realm's audit trail with its
 * signed head and a download of the whole chain for scripts/verify-audit.mjs. Registered by ./routes.tsx behind its
 * session, CSRF and origin checks; every action is the API's, called in-process as the signed-in session.
 *
 * The retention forms follow the console's rules (./flow.ts): every POST answers 303 to a GET page; a refused form
 * comes back with what was typed and why, beside the field; setting a policy — which erases learners from the next
 * sweep on — is reviewed here and carried out only by its confirmation page's button (./confirmations.tsx).
 */

export interface RetentionView {
	learnerInactiveDays: number;
	createdDate: string;
	updatedDate: string;
}

interface AuditEntryView {
	seq: number;
	at: string;
	actor: string;
	action: string;
	target: Record<string, unknown>;
	requestId: string;
	prevHash: string;
	hash: string;
}

interface SignedHeadView {
	head: { seq: number; hash: string; signedDate: string; keyId: string };
	signature: string;
}

const Mono: FC<{ value: string }> = ({ value }) => <code class="mono">{value}</code>;

/** A hash or another long id, shortened on the page; the whole value in its title. */
const Short: FC<{ value: string }> = ({ value }) => (value.length > 24 ? <span title={value}>{`${value.slice(0, 16)}…`}</span> : <>{value}</>);

/** An entry's target as one `name: value` line per id (the page must not scroll sideways for a hash). */
const Target: FC<{ target: Record<string, unknown> }> = ({ target }) => (
	<>
		{Object.entries(target).map(([name, value]) => (
			<div>
				{name}: {Array.isArray(value) ? value.map((item) => <Short value={String(item)} />) : <Short value={String(value)} />}
			</div>
		))}
	</>
);

const RetentionPage: FC<{
	csrf: string;
	notice?: Notice | undefined;
	appId: string;
	policy: RetentionView | null;
	form?: FormState | undefined;
}> = (props) => (
	<Layout title={`Retention policy of ${props.appId}`} csrf={props.csrf} notice={props.notice}>
		<p>
			<a href={`/console/applications/${segment(props.appId)}`}>Back to the application</a>
		</p>
		{props.policy ? (
			<section class="card" aria-label="Policy in force">
				<h2>In force</h2>
				<p>
					Learners with no write for <strong>{props.policy.learnerInactiveDays}</strong> days are erased by the sweeper (at most 100 a
					sweep, every 5 minutes), each by an ordinary erasure requested by <Mono value="retention-policy" />, with its receipt.
				</p>
				<p class="muted">
					Set {props.policy.createdDate}, last changed {props.policy.updatedDate}.
				</p>
				<PostForm action={`${retentionPath(props.appId)}/delete`} csrf={props.csrf} label="Turn retention off">
					<button type="submit" class="secondary">
						Turn retention off
					</button>
				</PostForm>
			</section>
		) : (
			<p>No retention policy: this application's learners are kept until they are erased.</p>
		)}
		<PostForm action={retentionPath(props.appId)} csrf={props.csrf} class="card" label="Set the retention policy">
			<h2>{props.policy ? "Change the policy" : "Set a policy"}</h2>
			<FormError form={props.form} />
			<Field
				id="learnerInactiveDays"
				name="learnerInactiveDays"
				label="Erase learners with no write for this many days"
				hint="Nothing is erased yet: the next page states what the policy will do, and asks you to confirm it."
				inputMode="numeric"
				maxLength={6}
				required
				form={props.form}
			/>
			<button type="submit">Continue</button>
		</PostForm>
	</Layout>
);

const AuditPage: FC<{
	csrf: string;
	notice?: Notice | undefined;
	entries: AuditEntryView[];
	head: SignedHeadView | null;
	action: string;
	since: string;
	more?: string | undefined;
}> = (props) => (
	<Layout title="Audit trail" csrf={props.csrf} notice={props.notice}>
		{props.head ? (
			<section class="card" aria-label="Signed head">
				<h2>Signed head</h2>
				<p>
					Entry <strong>{props.head.head.seq}</strong>, hash <Mono value={props.head.head.hash} />, signed {props.head.head.signedDate} with key{" "}
					<Mono value={props.head.head.keyId} />.
				</p>
				<p>
					<a href="/console/audit/head.json">Download the signed head</a> · <a href="/console/audit/chain.json">Download the chain</a> —
					check them with <Mono value="node scripts/verify-audit.mjs chain.json head.json key.json" />.
				</p>
			</section>
		) : null}
		<form method="get" action="/console/audit" class="card" aria-label="Filter the trail">
			<label for="action">Action</label>
			<input id="action" name="action" type="text" value={props.action} />
			<label for="since">Since (ISO-8601)</label>
			<input id="since" name="since" type="text" value={props.since} />
			<button type="submit">Filter</button>
		</form>
		{props.entries.length === 0 ? (
			<p>No entries.</p>
		) : (
			<div class="table">
				<table>
					<thead>
						<tr>
							<th scope="col">Seq</th>
							<th scope="col">At</th>
							<th scope="col">Actor</th>
							<th scope="col">Action</th>
							<th scope="col">Target</th>
							<th scope="col">Hash</th>
						</tr>
					</thead>
					<tbody>
						{props.entries.map((entry) => (
							<tr>
								<td>{entry.seq}</td>
								<td>{entry.at}</td>
								<td class="mono">
									<Short value={entry.actor} />
								</td>
								<td class="mono">{entry.action}</td>
								<td class="mono">
									<Target target={entry.target} />
								</td>
								<td class="mono" title={entry.hash}>
									{entry.hash.slice(0, 16)}…
								</td>
							</tr>
						))}
					</tbody>
				</table>
			</div>
		)}
		{props.more ? (
			<p>
				<a href={`/console/audit?more=${encodeURIComponent(props.more)}`}>Next page</a>
			</p>
		) : null}
	</Layout>
);

/** The days a form typed, as a whole number the API takes, or null. */
export function daysOf(typed: string): number | null {
	const text = tidy(typed);
	if (!/^[0-9]{1,6}$/.test(text)) return null;
	const days = Number(text);
	return days >= 1 && days <= MAX_INACTIVE_DAYS ? days : null;
}

/** The policy in force (null: none), or a 404 the console's error page shows when the application is gone. */
export async function policyOf(c: ConsoleContext, appId: string): Promise<RetentionView | null> {
	const answer = await c.var.api<RetentionView>(MANAGEMENT, "GET", `/appManagement/applications/${segment(appId)}/retention`);
	if (answer.ok && answer.body) return answer.body;
	// 404 for a policy means none; 404 for the application itself fails the page.
	if (answer.status === 404 && /no retention policy/.test(answer.message)) return null;
	if (answer.status === 404) throw new ApiError(404, `There is no application ${appId} (or it was deleted)`);
	throw apiFailure(answer);
}

/** The routes, registered on the console's router (./routes.tsx). */
export function privacyRoutes(router: ConsoleRouter, formPage: FormPage): void {
	const back = (c: ConsoleContext) => retentionPath(c.req.param("appId") ?? "");

	router.get("/applications/:appId/retention", async (c) => {
		const appId = c.req.param("appId");
		return page(
			c,
			<RetentionPage csrf={c.var.csrf} notice={noticeOf(c)} appId={appId} policy={await policyOf(c, appId)} form={formOf(c, "retention")} />,
		);
	});

	// Setting (or changing) the policy: reviewed here, then the confirmation page, whose button alone asks the API.
	router.post("/applications/:appId/retention", form(z.object({ learnerInactiveDays: field })), async (c) => {
		const values = c.req.valid("form");
		const days = daysOf(values.learnerInactiveDays);
		if (days === null) return refused(c, back(c), "retention", { values, errors: { learnerInactiveDays: DAYS_REFUSAL } });
		const app = await findApplication(c, c.req.param("appId"));
		const current = await policyOf(c, app.id);
		return confirmation(c, { kind: "setRetention", appId: app.id, appName: app.name, days, current: current?.learnerInactiveDays ?? null });
	});

	// Where the confirmation page posted before confirmations were sealed in drafts: a form of an older page sets
	// nothing (only a confirmation page's draft does), and leads back to the policy's page.
	router.post("/applications/:appId/retention/confirm", async (c) =>
		done(c, back(c), {
			kind: "error",
			text: "This confirmation is from an older page and has expired: nothing was set. Set the policy again below; the next page asks you to confirm it.",
		}),
	);

	// Turning retention off erases nothing (learners are kept until erased): done at once, its result shown once.
	router.post("/applications/:appId/retention/delete", async (c) => {
		const appId = c.req.param("appId");
		const answer = await c.var.api(MANAGEMENT, "DELETE", `/appManagement/applications/${segment(appId)}/retention`);
		if (answer.ok) {
			return done(c, back(c), { kind: "ok", text: "Retention turned off: this application's learners are kept until they are erased. Erasures it already started go on." });
		}
		if (answer.status === 404 && /no retention policy/.test(answer.message)) {
			return done(c, back(c), { kind: "ok", text: "Retention was already off: there was no policy to turn off." });
		}
		if (answer.status === 404) return done(c, "/console/applications", { kind: "error", status: 404, text: `There is no application ${appId} any more (deleted?).` });
		return done(c, back(c), { kind: "error", status: answer.status, text: generalWords(answer) });
	});

	for (const suffix of ["retention/confirm", "retention/delete"]) formPage(`/applications/:appId/${suffix}`, back);

	router.get("/audit", async (c) => {
		const more = c.req.query("more");
		const action = c.req.query("action") ?? "";
		const since = c.req.query("since") ?? "";
		const query = more ? `?more=${encodeURIComponent(more)}` : `?${new URLSearchParams({ ...(action && { action }), ...(since && { since }) })}`;
		const [entries, head] = await Promise.all([
			c.var.api<{ entries: AuditEntryView[]; more?: string }>(MANAGEMENT, "GET", `/appManagement/audit${query}`),
			c.var.api<SignedHeadView>(MANAGEMENT, "GET", "/appManagement/audit/head"),
		]);
		const notice: Notice | undefined = noticeOf(c) ?? (entries.ok ? undefined : { kind: "error", status: entries.status, text: entries.message });
		return page(
			c,
			<AuditPage
				{...signedIn(c)}
				notice={notice}
				entries={entries.body?.entries ?? []}
				head={head.ok ? head.body : null}
				action={action}
				since={since}
				more={entries.body?.more}
			/>,
			entries.ok ? 200 : entries.status,
		);
	});

	router.get("/audit/head.json", async (c) => {
		const answer = await c.var.api(MANAGEMENT, "GET", "/appManagement/audit/head");
		if (!answer.ok) throw apiFailure(answer);
		return c.body(JSON.stringify(answer.body, null, 2), 200, {
			"Content-Type": "application/json; charset=utf-8",
			"Content-Disposition": 'attachment; filename="audit-head.json"',
		});
	});

	// Every page, in order: what the verification script reads.
	router.get("/audit/chain.json", async (c) => {
		const entries: AuditEntryView[] = [];
		let more: string | undefined;
		do {
			const answer = await c.var.api<{ entries: AuditEntryView[]; more?: string }>(
				MANAGEMENT,
				"GET",
				`/appManagement/audit${more ? `?more=${encodeURIComponent(more)}` : ""}`,
			);
			if (!answer.ok || !answer.body) throw apiFailure(answer);
			entries.push(...answer.body.entries);
			more = answer.body.more;
		} while (more);
		return c.body(JSON.stringify({ entries }, null, 2), 200, {
			"Content-Type": "application/json; charset=utf-8",
			"Content-Disposition": 'attachment; filename="audit-chain.json"',
		});
	});
}
