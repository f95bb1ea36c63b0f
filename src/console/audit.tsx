import { zValidator } from "@hono/zod-validator";
import { type Context, Hono } from "hono";
import type { FC, PropsWithChildren } from "hono/jsx";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import * as z from "zod";
import { ApiError } from "../errors";
import type { ApiAnswer, ApiClient } from "./api";
import { segment } from "./api";
import type { Session } from "./session";
import { Layout, type Notice } from "./views";

/**
 * The console's privacy views (SPEC §12): each application's retention policy, and the realm's audit trail with its
 * signed head and a download of the whole chain for scripts/verify-audit.mjs. Mounted by ./routes.tsx behind its
 * session, CSRF and origin checks; every action is the API's, called in-process as the signed-in session.
 */

interface PrivacyConsoleEnv {
	Bindings: Env;
	Variables: { session: Session; csrf: string; api: ApiClient };
}
type PrivacyContext = Context<PrivacyConsoleEnv>;

const MANAGEMENT = { management: true } as const;

interface RetentionView {
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

const page = (c: PrivacyContext, element: unknown, status = 200) => c.html(`<!doctype html>${String(element)}`, status as ContentfulStatusCode);

const failure = (answer: ApiAnswer<unknown>) => new ApiError(answer.status as ContentfulStatusCode, answer.message);

/** A POST form carrying the session's CSRF token. */
const Form: FC<PropsWithChildren<{ action: string; csrf: string; class?: string; label?: string }>> = (props) => (
	<form method="post" action={props.action} class={props.class} aria-label={props.label}>
		<input type="hidden" name="csrf" value={props.csrf} />
		{props.children}
	</form>
);

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

const RetentionPage: FC<{ csrf: string; notice?: Notice | undefined; appId: string; policy: RetentionView | null; days?: string }> = (props) => (
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
				<Form action={`/console/applications/${segment(props.appId)}/retention/delete`} csrf={props.csrf} label="Turn retention off">
					<button type="submit" class="secondary">
						Turn retention off
					</button>
				</Form>
			</section>
		) : (
			<p>No retention policy: this application's learners are kept until they are erased.</p>
		)}
		<Form action={`/console/applications/${segment(props.appId)}/retention`} csrf={props.csrf} class="card" label="Set the retention policy">
			<h2>{props.policy ? "Change the policy" : "Set a policy"}</h2>
			<label for="learnerInactiveDays">Erase learners with no write for this many days</label>
			<input id="learnerInactiveDays" name="learnerInactiveDays" type="number" min="1" max="36500" required value={props.days ?? ""} />
			<button type="submit">Continue</button>
		</Form>
	</Layout>
);

/** What setting a policy will do, stated before it is done (SPEC §10: safe by construction). */
const ConfirmRetentionPage: FC<{ csrf: string; appId: string; days: number }> = (props) => (
	<Layout title="Confirm the retention policy" csrf={props.csrf}>
		<p>
			From the next sweep on, every learner of application <Mono value={props.appId} /> with no write (a registration created or
			deleted, tags, an update) for <strong>{props.days}</strong> days will be <strong>erased</strong>: registrations, tags and
			details, at most 100 a sweep, as erasures requested by <Mono value="retention-policy" />. Erased data cannot be brought back.
		</p>
		<Form action={`/console/applications/${segment(props.appId)}/retention/confirm`} csrf={props.csrf} label="Confirm the retention policy">
			<input type="hidden" name="learnerInactiveDays" value={String(props.days)} />
			<button type="submit" class="danger">
				Erase learners inactive for {props.days} days
			</button>
		</Form>
		<p>
			<a href={`/console/applications/${segment(props.appId)}/retention`}>Cancel</a>
		</p>
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

const daysField = z.object({ learnerInactiveDays: z.coerce.number().int().min(1).max(36500) });

const form = <T extends z.ZodType>(schema: T) =>
	zValidator("form", schema, (result) => {
		if (!result.success) throw new ApiError(400, `learnerInactiveDays: ${result.error.issues[0]?.message ?? "invalid"}`);
	});

/** The notices a redirect back to the retention page names (Post/Redirect/Get). */
const DONE: Record<string, Notice> = {
	set: { kind: "ok", text: "Retention policy set" },
	off: { kind: "ok", text: "Retention turned off" },
};

/** The views, as a router ./routes.tsx mounts under /console. */
export function privacyViews() {
	const router = new Hono<PrivacyConsoleEnv>();

	async function policyOf(c: PrivacyContext, appId: string): Promise<RetentionView | null> {
		const answer = await c.var.api<RetentionView>(MANAGEMENT, "GET", `/appManagement/applications/${segment(appId)}/retention`);
		if (answer.ok && answer.body) return answer.body;
		// 404 for the application itself fails the page; 404 for a policy means none.
		if (answer.status === 404 && /no retention policy/.test(answer.message)) return null;
		throw failure(answer);
	}

	router.get("/applications/:appId/retention", async (c) => {
		const appId = c.req.param("appId");
		return page(c, <RetentionPage csrf={c.var.csrf} notice={DONE[c.req.query("done") ?? ""]} appId={appId} policy={await policyOf(c, appId)} />);
	});

	router.post("/applications/:appId/retention", form(daysField), async (c) => {
		const appId = c.req.param("appId");
		await policyOf(c, appId);
		return page(c, <ConfirmRetentionPage csrf={c.var.csrf} appId={appId} days={c.req.valid("form").learnerInactiveDays} />);
	});

	router.post("/applications/:appId/retention/confirm", form(daysField), async (c) => {
		const appId = c.req.param("appId");
		const answer = await c.var.api(MANAGEMENT, "PUT", `/appManagement/applications/${segment(appId)}/retention`, {
			learnerInactiveDays: c.req.valid("form").learnerInactiveDays,
		});
		if (!answer.ok) {
			const policy = await policyOf(c, appId);
			return page(c, <RetentionPage csrf={c.var.csrf} notice={{ kind: "error", text: answer.message }} appId={appId} policy={policy} />, answer.status);
		}
		return c.redirect(`/console/applications/${segment(appId)}/retention?done=set`, 303);
	});

	router.post("/applications/:appId/retention/delete", async (c) => {
		const appId = c.req.param("appId");
		const answer = await c.var.api(MANAGEMENT, "DELETE", `/appManagement/applications/${segment(appId)}/retention`);
		if (!answer.ok && answer.status !== 404) throw failure(answer);
		return c.redirect(`/console/applications/${segment(appId)}/retention?done=off`, 303);
	});

	router.get("/audit", async (c) => {
		const more = c.req.query("more");
		const action = c.req.query("action") ?? "";
		const since = c.req.query("since") ?? "";
		const query = more ? `?more=${encodeURIComponent(more)}` : `?${new URLSearchParams({ ...(action && { action }), ...(since && { since }) })}`;
		const [entries, head] = await Promise.all([
			c.var.api<{ entries: AuditEntryView[]; more?: string }>(MANAGEMENT, "GET", `/appManagement/audit${query}`),
			c.var.api<SignedHeadView>(MANAGEMENT, "GET", "/appManagement/audit/head"),
		]);
		const notice: Notice | undefined = entries.ok ? undefined : { kind: "error", text: entries.message };
		return page(
			c,
			<AuditPage
				csrf={c.var.csrf}
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
		if (!answer.ok) throw failure(answer);
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
			if (!answer.ok || !answer.body) throw failure(answer);
			entries.push(...answer.body.entries);
			more = answer.body.more;
		} while (more);
		return c.body(JSON.stringify({ entries }, null, 2), 200, {
			"Content-Type": "application/json; charset=utf-8",
			"Content-Disposition": 'attachment; filename="audit-chain.json"',
		});
	});

	return router;
}
