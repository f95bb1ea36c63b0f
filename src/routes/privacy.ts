import * as z from "zod/mini";
import { asClassic } from "../schemas/openapi-meta";
import { auditRecord, emailHash, sealAudit, signedAuditHead } from "../audit";
import { createRouter } from "../context";
import { AUDIT_ACTIONS, listAudit } from "../db/audit";
import { exportRoom, recordRealmExport, retentionCutoff } from "../db/exports";
import { claimStep, getJobById } from "../db/jobs";
import { getRealmUserRole } from "../db/realm-users";
import { type RetentionPolicy, deleteRetentionPolicy, getRetentionPolicy, putRetentionPolicy } from "../db/retention";
import { retryTransient } from "../db/retry";
import { nowIso } from "../db/types";
import { ApiError, appNotFound, exportLimitReached, forbidden, learnerNotFound, notFound } from "../errors";
import { IdempotencyHeaders, idempotent } from "../http/idempotency";
import { declareRoute, json, jsonBody } from "../http/route";
import { dispatch, jobLocation, learnerHash } from "../jobs/contract";
import { realmHolders } from "../jobs/realm-erasure";
import { fanOutExports } from "../jobs/realm-export";
import { describeFault, log } from "../log";
import { AUDIT_PAGES, decodeCursor, encodeCursor, longestToken } from "../paging";
import { ExportQuerySchema } from "../schemas/learners";
import { ChildAppParams } from "../schemas/management";
import { AuditListSchema, RetentionRequestSchema, RetentionSchema, SignedAuditHeadSchema } from "../schemas/privacy";
import { queryDate } from "../schemas/query";
import { IdSchema } from "../schemas/text";
import { shardDatabase } from "../shards";

/**
 * Privacy beyond erasure (SPEC §12), on the management API: realm-wide exports, each application's retention policy,
 * and the audit trail with its signed head. An application's own export is ./learners.ts; documents are fetched at
 * GET /jobs/{jobId}/export (./jobs.ts).
 */

const tags = ["ApplicationManagement"];

const RealmLearnerParams = asClassic(z.object({ learnerId: IdSchema("learnerId").openapi({ param: { name: "learnerId", in: "path" } }) }));

/** The 403 a realm-wide export requested by a realm user who is not an owner or admin gets. */
const EXPORT_PRIVILEGE =
	"The initiating email address does not have sufficient privilege in this realm to export a learner's data (a realm owner or admin is required)";

/** Audit entries per page. */
const AUDIT_PAGE = 100;

export const privacyRoutes = createRouter();

privacyRoutes.openapi(
	declareRoute({
		method: "post",
		path: "/appManagement/learners/{learnerId}/export",
		tags,
		operationId: "exportLearnerDataEverywhere",
		summary: "Export a learner from every application of the realm (GDPR Art. 15/20), as one realm job",
		description:
			"Not in SCORM Cloud (SPEC §12). userEmail must be a realm user with role owner or admin. One export per " +
			"application that holds the learner, on whichever shard it lives (each document kept in its application's " +
			"region), followed by a realm job (GET /jobs/{jobId} with the management credentials); once it has completed, " +
			"GET /jobs/{jobId}/export answers the realm's document, made of each application's. 404 when no application " +
			"holds the learner, whoever asks. 429 (Retry-After when known) when one of them holds APP_EXPORT_LIMIT exports " +
			"(default 100), naming it; one that reaches its limit while the job asks them fails the realm job, saying so. " +
			"409, naming them, while an erasure of the learner is pending in any of them; one accepted while the job asks " +
			"them ends the realm job without a document, its message naming the applications.",
		access: "management",
		request: { params: RealmLearnerParams, query: ExportQuerySchema, headers: IdempotencyHeaders },
		errors: [403, 404, 409, 422],
		responses: {
			204: {
				description: "Realm export started; Location names the realm job",
				headers: asClassic(z.object({ Location: z.string().openapi({ description: "/api/v2/jobs/{jobId}" }) })),
			},
		},
	}),
	async (c) => {
		const { learnerId } = c.req.valid("param");
		const { userEmail } = c.req.valid("query");
		const control = c.var.db;
		// As the realm-wide erasure: the key first, the realm job recorded (with its audit entry) before any application
		// is asked, then the applications asked now, and what this request does not get to, the job's first step does.
		return idempotent(
			c,
			control,
			"",
			null,
			null,
			async (keyed) => {
				const [role, holders] = await Promise.all([retryTransient(() => getRealmUserRole(control, userEmail)), realmHolders(c.env, control, learnerId)]);
				if (holders.length === 0) throw learnerNotFound(learnerId);
				if (role !== "owner" && role !== "admin") throw forbidden(EXPORT_PRIVILEGE);
				// An application where the learner's erasure is pending, or holding its limit of exports, would leave the
				// realm's document (whole or not at all) unmade: refused now, before anything is recorded. One where either
				// happens meanwhile ends the realm job without a document, saying which.
				const rooms = await exportRooms(c.env, holders, learnerId, c.var.config.exportLimit, retentionCutoff(Date.now(), c.var.config.exportRetentionMs));
				if (rooms.erasing.length > 0) throw realmExportWhileErasing(learnerId, rooms.erasing);
				const { full } = rooms;
				if (full) throw exportLimitReached(full.appId, c.var.config.exportLimit, full.oldest, c.var.config.exportRetentionMs, Date.now());
				const jobId = crypto.randomUUID();
				const realmHash = await learnerHash(c.env, "", learnerId);
				const applications = holders.map((holder) => holder.appId);
				await recordRealmExport(
					control,
					{ id: jobId, learnerId, learnerHash: realmHash, requestedBy: userEmail, holders: applications, createdAt: nowIso() },
					keyed?.({ status: 204, location: jobLocation(jobId), body: null }, "EXISTS (SELECT 1 FROM jobs WHERE id = ?3)", [jobId]),
					auditRecord(c, "learner.exportEverywhere", { jobId, learnerHash: realmHash, requester: await emailHash(c.env, userEmail), applications }),
				);
				try {
					const job = await retryTransient(() => getJobById(control, jobId));
					const lease = crypto.randomUUID();
					if (job && (await retryTransient(() => claimStep(control, job, lease, nowIso())))) await fanOutExports(c.env, control, job, lease);
				} catch (error) {
					log(c.env, "warn", { msg: "realm export's applications left to its job", requestId: c.var.requestId, jobId, ...describeFault(error) });
				}
				await dispatch(c.env, control, { type: "exportLearnerData", jobId });
				return c.body(null, 204, { Location: jobLocation(jobId) });
			},
			{ consultFirst: true },
		);
	},
);

/** The 409 of a realm-wide export asked while the learner's erasure is pending in some of its applications. */
const realmExportWhileErasing = (learnerId: string, appIds: string[]) =>
	new ApiError(
		409,
		`Learner [${learnerId}] is being erased in application${appIds.length === 1 ? "" : "s"} ${appIds.join(", ")}; ` +
			"the realm's export (whole or not at all) cannot be made: ask again once the erasure has completed",
	);

/**
 * The applications holding the learner where its erasure is pending, and the first that holds its limit of exports
 * with none of the learner's pending (which a new request would join): one statement per shard holding the learner,
 * the shards at once. `cutoff`: exports completed before it have expired and hold no place.
 */
async function exportRooms(
	env: Env,
	holders: { appId: string; shard: string }[],
	learnerId: string,
	limit: number,
	cutoff: string,
): Promise<{ erasing: string[]; full: { appId: string; oldest: string | null } | null }> {
	const byShard = Map.groupBy(holders, (holder) => holder.shard);
	const rooms = await Promise.all(
		[...byShard].map(async ([shard, apps]) =>
			exportRoom(
				shardDatabase(env, shard),
				await Promise.all(apps.map(async ({ appId }) => ({ appId, learnerHash: await learnerHash(env, appId, learnerId) }))),
				limit,
				cutoff,
			),
		),
	);
	const roomOf = (appId: string) => rooms.map((found) => found.get(appId)).find((found) => found !== undefined);
	const erasing = holders.filter((holder) => roomOf(holder.appId)?.erasing).map((holder) => holder.appId);
	const full = holders.find((holder) => {
		const room = roomOf(holder.appId);
		return room !== undefined && room.held >= limit && !room.pending;
	});
	return { erasing, full: full ? { appId: full.appId, oldest: roomOf(full.appId)?.oldest ?? null } : null };
}

const RETENTION_PATH = "/appManagement/applications/{childAppId}/retention";

const presentPolicy = (policy: RetentionPolicy) => ({
	learnerInactiveDays: policy.learnerInactiveDays,
	createdDate: policy.createdAt,
	updatedDate: policy.updatedAt,
});

privacyRoutes.openapi(
	declareRoute({
		method: "put",
		path: RETENTION_PATH,
		tags,
		operationId: "setRetentionPolicy",
		summary: "Set an application's retention policy: learners with no write for that many days are erased",
		description:
			"Not in SCORM Cloud (SPEC §12); off unless set. Every sweep (5 minutes) erases up to 100 of the application's " +
			"learners whose last write (a registration created or deleted, tags, an update accepted) is older than " +
			"learnerInactiveDays, longest inactive first: each as an ordinary erasure (deleteAllLearnerData) requested by " +
			"`retention-policy`, without suppression, with its receipt, its webhook event and an audit entry.",
		access: "management",
		request: { params: ChildAppParams, body: jsonBody(RetentionRequestSchema) },
		errors: [404],
		responses: { 200: json(RetentionSchema, "The policy in force") },
	}),
	async (c) => {
		const { childAppId } = c.req.valid("param");
		const { learnerInactiveDays } = c.req.valid("json");
		const audit = auditRecord(c, "application.retention.set", { applicationId: childAppId, learnerInactiveDays });
		const policy = await putRetentionPolicy(c.var.db, childAppId, learnerInactiveDays, nowIso(), audit);
		if (!policy) throw appNotFound(childAppId);
		return c.json(presentPolicy(policy), 200);
	},
);

privacyRoutes.openapi(
	declareRoute({
		method: "get",
		path: RETENTION_PATH,
		tags,
		operationId: "getRetentionPolicy",
		summary: "An application's retention policy (404 when it has none: retention is off)",
		access: "management",
		request: { params: ChildAppParams },
		errors: [404],
		responses: { 200: json(RetentionSchema, "The policy in force") },
	}),
	async (c) => {
		const { childAppId } = c.req.valid("param");
		const policy = await getRetentionPolicy(c.var.db, childAppId);
		if (policy === "no-application") throw appNotFound(childAppId);
		if (!policy) throw notFound(`Application [${childAppId}] has no retention policy: its learners are kept until erased`);
		return c.json(presentPolicy(policy), 200);
	},
);

privacyRoutes.openapi(
	declareRoute({
		method: "delete",
		path: RETENTION_PATH,
		tags,
		operationId: "deleteRetentionPolicy",
		summary: "Remove an application's retention policy (retention off); erasures it started go on",
		access: "management",
		request: { params: ChildAppParams },
		errors: [404],
		responses: { 204: { description: "Removed" } },
	}),
	async (c) => {
		const { childAppId } = c.req.valid("param");
		if (await deleteRetentionPolicy(c.var.db, childAppId, auditRecord(c, "application.retention.delete", { applicationId: childAppId }))) {
			return c.body(null, 204);
		}
		const policy = await getRetentionPolicy(c.var.db, childAppId);
		throw policy === "no-application" ? appNotFound(childAppId) : notFound(`Application [${childAppId}] has no retention policy`);
	},
);

// Room for the longest token a first page leads to: a date and an action name, and a seq.
const AUDIT_MORE_MAX_LENGTH = longestToken(2, 64, 100);

const AuditQuery = asClassic(z.object({
	since: queryDate("since", "Entries recorded at or after this time"),
	action: z
		.optional(z.enum(AUDIT_ACTIONS, { error: `action must be one of ${AUDIT_ACTIONS.join(", ")}` }))
		.openapi({ param: { name: "action", in: "query" }, description: "Entries of this action only" }),
	more: z
		.optional(z.string().check(z.maxLength(AUDIT_MORE_MAX_LENGTH)).openapi({ maxLength: AUDIT_MORE_MAX_LENGTH }))
		.openapi({ param: { name: "more", in: "query" }, description: "Paging token from the previous page; it carries the filters" }),
}));

privacyRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/appManagement/audit",
		tags,
		operationId: "getAuditTrail",
		summary: `The realm's audit trail, oldest first, ${AUDIT_PAGE} entries a page`,
		description:
			"Not in SCORM Cloud (SPEC §12). Every management and privacy action (applications, credentials, realm users, " +
			"webhooks, moves, retention changes, erasures, exports and their downloads, suppression lifts, console sign-ins " +
			"and sign-outs) as a hash chain: each entry's hash is SHA-256 of the previous entry's hash followed by its own " +
			"canonical JSON. Entries name learners and emails by HMAC only. Verify a downloaded chain against a signed head " +
			"(GET /appManagement/audit/head) with scripts/verify-audit.mjs.",
		access: "management",
		request: { query: AuditQuery },
		responses: { 200: json(AuditListSchema, "A page of entries; `more` fetches the next") },
	}),
	async (c) => {
		const query = c.req.valid("query");
		const secret = c.env.TOKEN_SIGNING_SECRET;
		const cursor =
			query.more !== undefined
				? await decodeCursor(secret, AUDIT_PAGES, query.more, "")
				: { app: "", filter: { ...(query.since !== undefined && { since: query.since }), ...(query.action !== undefined && { action: query.action }) }, after: 0 };
		// Entries are hashed into the chain before they are shown: a page never shows an entry without its hash.
		await sealAudit(c.var.db);
		const action = AUDIT_ACTIONS.find((name) => name === cursor.filter.action);
		const rows = await listAudit(c.var.db, {
			after: cursor.after,
			...(cursor.filter.since !== undefined && { since: cursor.filter.since }),
			...(action !== undefined && { action }),
			limit: AUDIT_PAGE + 1,
		});
		const page = rows.slice(0, AUDIT_PAGE).filter((row) => row.hash !== null && row.prevHash !== null);
		const last = page.at(-1);
		const more = rows.length > AUDIT_PAGE && last ? await encodeCursor(secret, AUDIT_PAGES, { ...cursor, after: last.seq }) : undefined;
		const entries = page.map((row) => ({
			seq: row.seq,
			at: row.at,
			actor: row.actor,
			action: row.action,
			target: JSON.parse(row.target) as Record<string, string | number | boolean | string[]>,
			requestId: row.requestId,
			prevHash: row.prevHash ?? "",
			hash: row.hash ?? "",
		}));
		return c.json({ entries, ...(more && { more }) }, 200);
	},
);

privacyRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/appManagement/audit/head",
		tags,
		operationId: "getAuditHead",
		summary: "The audit trail's newest entry (seq and hash), signed with the receipt key",
		description:
			"Not in SCORM Cloud (SPEC §12). Keep the heads you fetch: a chain downloaded later must still contain each of " +
			"them (the same hash at the same seq), which proves that nothing up to them was rewritten. The signature is " +
			"Ed25519 over the head's canonical JSON, verifiable with /.well-known/erasure-receipt-key.",
		access: "management",
		responses: { 200: json(SignedAuditHeadSchema, "The signed head") },
	}),
	async (c) => {
		const signed = await signedAuditHead(c.var.db, c.var.config.receiptSigningKey);
		return c.json({ head: signed.head, signature: signed.signature, algorithm: "Ed25519" as const, keyId: signed.keyId }, 200);
	},
);
