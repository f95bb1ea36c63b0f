import * as z from "zod/mini";
import { asClassic } from "../schemas/openapi-meta";
import { appendAfter, auditRecord, emailHash } from "../audit";
import { acceptLearnerExport } from "../db/exports";
import { createRouter } from "../context";
import { type LearnerInfoPayload, acceptBulkErasure, acceptLearnerErasure, acceptLearnerUpdate, newJobId } from "../db/jobs";
import { getRealmUserRole } from "../db/realm-users";
import { liftSuppression } from "../db/suppressions";
import { retryTransient } from "../db/retry";
import { type LearnerSummary, TAG_MATCHES, listLearners } from "../db/learners";
import { nowIso } from "../db/types";
import { ApiError, badRequest, exportLimitReached, forbidden, learnerNotFound, notFound } from "../errors";
import { dispatch, jobLocation, learnerHash } from "../jobs/contract";
import { LIMITS } from "../limits";
import { LEARNER_PAGES, type LearnerPageCursor, decodeCursor, encodeCursor, longestToken } from "../paging";
import { BulkErasureSchema, ErasureQuerySchema, ExportQuerySchema, LearnerListSchema, type LearnerSummarySchema } from "../schemas/learners";
import { LearnerSchema } from "../schemas/learner";
import { LearnerParams } from "../schemas/text";
import { IdempotencyHeaders, idempotent } from "../http/idempotency";
import { declareRoute, json, jsonBody } from "../http/route";
import { parseTagFilter } from "../http/tag-filter";
import { unique } from "../http/tag-writes";

const tags = ["LearnerService"];

/**
 * A learner's jobs (updateInfo, erasure, suppression lifts, bulk erasure) and the learner directory (SPEC §3, §8,
 * §9); the tag operations are ./learner-tags.ts.
 */

const jobAccepted = {
	description: "Job durably queued; Location names it (GET it for status)",
	headers: asClassic(z.object({ Location: z.string().openapi({ description: "/api/v2/jobs/{jobId}" }) })),
};

/** The 403 an erasure requested by a realm user who is not an owner or admin gets (SCORM Cloud's wording). */
const ERASURE_PRIVILEGE =
	"The initiating email address does not have sufficient privilege in this application to perform this delete operation (a realm owner or admin is required)";

export const learnerRoutes = createRouter();

learnerRoutes.openapi(
	declareRoute({
		method: "post",
		path: "/learner/{learnerId}/updateInfo",
		tags,
		operationId: "updateLearnerInfo",
		summary: "Update the learner's details on every one of its registrations, asynchronously",
		description:
			"Absent or null fields stay as they are; an empty string clears the field. `id` must equal the path's " +
			"learnerId (renaming is not supported). Updates take effect in the order they were accepted. 409 while " +
			"an erasure of this learner is pending.",
		access: { scope: "write:learner" },
		request: { params: LearnerParams, body: jsonBody(LearnerSchema), headers: IdempotencyHeaders },
		errors: [404, 409, 422],
		responses: { 204: jobAccepted },
	}),
	async (c) => {
		const { learnerId } = c.req.valid("param");
		const body = c.req.valid("json");
		const { id, email, firstName, lastName } = body;
		if (id !== learnerId) {
			throw badRequest(`learner.id [${id}] must equal the learnerId in the path: renaming a learner is not supported`);
		}
		const { appId } = c.var.auth;
		const payload: LearnerInfoPayload = {
			...(email != null && { email }),
			...(firstName != null && { firstName }),
			...(lastName != null && { lastName }),
		};
		return idempotent(c, c.var.db, appId, body, learnerId, async (keyed) => {
			const jobId = newJobId(appId);
			const acceptance = await acceptLearnerUpdate(
				c.var.db,
				{ id: jobId, appId, learnerId, learnerHash: await learnerHash(c.env, appId, learnerId), payload, createdAt: nowIso() },
				c.var.config,
				keyed?.({ status: 204, location: jobLocation(jobId), body: null }, "EXISTS (SELECT 1 FROM jobs WHERE id = ?3)", [jobId]),
			);
			if (acceptance.outcome === "notFound") throw learnerNotFound(learnerId);
			if (acceptance.outcome === "erasing") {
				throw new ApiError(409, `Learner [${learnerId}] is being erased; its details can no longer be updated`);
			}
			await dispatch(c.env, c.var.db, { type: "updateLearnerInfo", jobId: acceptance.jobId });
			return c.body(null, 204, { Location: jobLocation(acceptance.jobId) });
		});
	},
);

learnerRoutes.openapi(
	declareRoute({
		method: "post",
		path: "/learner/{learnerId}/delete-information",
		tags,
		operationId: "deleteAllLearnerData",
		summary: "Erase everything held about this learner in this application (GDPR), asynchronously",
		description:
			"userEmail must be a realm user with role owner or admin. Deletes the learner's registrations with their " +
			"tags, the learner's tags and the payloads of its pending updates; the job keeps only an HMAC of the " +
			"learner id, the requester, times and counts. A request while one is pending returns the same job.",
		access: { scope: "admin" },
		request: { params: LearnerParams, query: ErasureQuerySchema, headers: IdempotencyHeaders },
		errors: [404, 409, 422],
		responses: { 204: jobAccepted },
	}),
	async (c) => {
		const { learnerId } = c.req.valid("param");
		const { userEmail, suppress } = c.req.valid("query");
		const { appId } = c.var.auth;
		// Realm users live in the control database: one read there, then the acceptance on the shard.
		const role = await retryTransient(() => getRealmUserRole(c.env.DB, userEmail));
		const privileged = role === "owner" || role === "admin";
		const hash = await learnerHash(c.env, appId, learnerId);
		// The key's own response (a job's Location) names no learner: it outlives the erasure, so a retry replays it.
		const requester = await emailHash(c.env, userEmail);
		// The request's entry, naming the job the shard records (or the pending one it joins): its record goes into the
		// shard's audit outbox with the acceptance, and is appended to the trail after (docs/privacy.md, "Audit trail").
		const entry = (jobId: string) =>
			auditRecord(c, "learner.erase", { applicationId: appId, learnerHash: hash, jobId, requester, suppress: suppress === "true" });
		return idempotent(c, c.var.db, appId, null, null, async (keyed) => {
			const pending = `FROM jobs WHERE app_id = ?3 AND learner_hash = ?4 AND type = 'deleteAllLearnerData' AND status IN ('queued', 'running')`;
			const acceptance = await acceptLearnerErasure(
				c.var.db,
				{ id: newJobId(appId), appId, learnerId, learnerHash: hash, requestedBy: userEmail, createdAt: nowIso(), suppress: suppress === "true" },
				c.var.config,
				privileged,
				keyed?.(
					{ status: 204, location: { sql: `(SELECT '/api/v2/jobs/' || id ${pending} ORDER BY seq DESC LIMIT 1)` }, body: null },
					`?5 = 1 AND EXISTS (SELECT 1 ${pending})`,
					[appId, hash, privileged ? 1 : 0],
				),
				entry(""),
			);
			if (acceptance.outcome === "forbidden") {
				throw forbidden(ERASURE_PRIVILEGE);
			}
			if (acceptance.outcome === "notFound") throw learnerNotFound(learnerId);
			// Sent again for a pending job too: harmless (the consumer is idempotent) and it repairs a lost send.
			await dispatch(c.env, c.var.db, { type: "deleteAllLearnerData", jobId: acceptance.job.id });
			// The shard has recorded the erasure and its audit record; the realm's audit trail records the request now (or,
			// if this fails, the next sweep does).
			await appendAfter(c, [entry(acceptance.job.id)]);
			return c.body(null, 204, { Location: jobLocation(acceptance.job.id) });
		});
	},
);

learnerRoutes.openapi(
	declareRoute({
		method: "post",
		path: "/learners/delete-information",
		tags,
		operationId: "deleteLearnersData",
		summary: "Erase up to 1000 learners in this application (GDPR), as one job",
		description:
			"Not in SCORM Cloud (SPEC §9). userEmail must be a realm user with role owner or admin. All or nothing: when " +
			"an id names no learner, the answer is 404 listing the unknown ids and nothing is queued. Each learner is " +
			"erased as by POST /learner/{learnerId}/delete-information, one after another; the job's counts add up over " +
			"its learners.",
		access: { scope: "admin" },
		request: { query: ErasureQuerySchema, body: jsonBody(BulkErasureSchema), headers: IdempotencyHeaders },
		errors: [404, 409, 422],
		responses: { 204: jobAccepted },
	}),
	async (c) => {
		const { userEmail, suppress } = c.req.valid("query");
		const body = c.req.valid("json");
		const ids = unique(body.ids);
		const { appId } = c.var.auth;
		const role = await retryTransient(() => getRealmUserRole(c.env.DB, userEmail));
		const mayErase = role === "owner" || role === "admin";
		const learners = await Promise.all(
			ids.map(async (learnerId) => ({ learnerId, learnerHash: await learnerHash(c.env, appId, learnerId) })),
		);
		const requester = await emailHash(c.env, userEmail);
		return idempotent(c, c.var.db, appId, body, null, async (keyed) => {
			const jobId = newJobId(appId);
			// Its learners' HMACs are listed in job_members (and its receipt): the entry counts them.
			const entry = () => auditRecord(c, "learners.erase", { applicationId: appId, jobId, learners: learners.length, requester, suppress: suppress === "true" });
			const acceptance = await acceptBulkErasure(
				c.var.db,
				{
					id: jobId,
					appId,
					learners,
					requestedBy: userEmail,
					createdAt: nowIso(),
					childIds: ids.map(() => newJobId(appId)),
					suppress: suppress === "true",
				},
				c.var.config,
				mayErase,
				keyed?.({ status: 204, location: jobLocation(jobId), body: null }, "EXISTS (SELECT 1 FROM jobs WHERE id = ?3)", [jobId]),
				entry(),
			);
			if (acceptance.outcome === "notFound") {
				const { missing } = acceptance;
				throw notFound(
					`Learner${missing.length > 1 ? "s" : ""} ${missing.map((id) => `[${id}]`).join(", ")} ${missing.length > 1 ? "were" : "was"} not found; nothing was erased`,
				);
			}
			if (acceptance.outcome === "forbidden") throw forbidden(ERASURE_PRIVILEGE);
			await dispatch(c.env, c.var.db, { type: "deleteLearnersData", jobId: acceptance.job.id });
			await appendAfter(c, [entry()]);
			return c.body(null, 204, { Location: jobLocation(acceptance.job.id) });
		});
	},
);

/** The 403 an export requested by a realm user who is not an owner or admin gets (the erasure privilege rule). */
const EXPORT_PRIVILEGE =
	"The initiating email address does not have sufficient privilege in this application to export a learner's data (a realm owner or admin is required)";

learnerRoutes.openapi(
	declareRoute({
		method: "post",
		path: "/learner/{learnerId}/export",
		tags,
		operationId: "exportLearnerData",
		summary: "Export everything held about this learner in this application (GDPR Art. 15/20), asynchronously",
		description:
			"Not in SCORM Cloud (SPEC §12). userEmail must be a realm user with role owner or admin (as for erasure). The job " +
			"gathers, chunk by chunk, every registration naming the learner with its learner fields and registration tags, " +
			"the learner's tags and current details, its suppression state and the jobs that named it (by HMAC), into one " +
			"JSON document signed with the receipt key, fetched with GET /jobs/{jobId}/export for EXPORT_RETENTION_DAYS " +
			"(default 7). A request while one is pending returns the same job; 409 while an erasure of the learner is " +
			"pending. 404 when the learner does not exist, whoever asks. 429 (Retry-After when known) while the application " +
			"holds APP_EXPORT_LIMIT (default 100) exports: queued, running, or completed and not yet expired or erased.",
		access: { scope: "admin" },
		request: { params: LearnerParams, query: ExportQuerySchema, headers: IdempotencyHeaders },
		errors: [404, 409, 422],
		responses: { 204: jobAccepted },
	}),
	async (c) => {
		const { learnerId } = c.req.valid("param");
		const { userEmail } = c.req.valid("query");
		const { appId, shard } = c.var.auth;
		const role = await retryTransient(() => getRealmUserRole(c.env.DB, userEmail));
		const mayExport = role === "owner" || role === "admin";
		const hash = await learnerHash(c.env, appId, learnerId);
		// The export's objects live in the region of the shard holding the application now.
		const region = c.var.config.shards.find((candidate) => candidate.name === shard)?.region ?? "default";
		const requester = await emailHash(c.env, userEmail);
		// As an erasure's: into the shard's audit outbox with the acceptance, then appended to the trail.
		const entry = (jobId: string) => auditRecord(c, "learner.export", { applicationId: appId, learnerHash: hash, jobId, requester });
		return idempotent(c, c.var.db, appId, null, learnerId, async (keyed) => {
			const pending = `FROM jobs WHERE app_id = ?3 AND learner_hash = ?4 AND type = 'exportLearnerData' AND status IN ('queued', 'running')`;
			const acceptance = await acceptLearnerExport(
				c.var.db,
				{ id: newJobId(appId), appId, learnerId, learnerHash: hash, requestedBy: userEmail, region, createdAt: nowIso() },
				c.var.config,
				mayExport,
				keyed?.(
					{ status: 204, location: { sql: `(SELECT '/api/v2/jobs/' || id ${pending} ORDER BY seq DESC LIMIT 1)` }, body: null },
					`?5 = 1 AND EXISTS (SELECT 1 ${pending})`,
					[appId, hash, mayExport ? 1 : 0],
				),
				entry(""),
			);
			if (acceptance.outcome === "notFound") throw learnerNotFound(learnerId);
			if (acceptance.outcome === "forbidden") throw forbidden(EXPORT_PRIVILEGE);
			if (acceptance.outcome === "erasing") {
				throw new ApiError(409, `Learner [${learnerId}] is being erased; there will be nothing to export`);
			}
			if (acceptance.outcome === "limit") {
				throw exportLimitReached(appId, acceptance.limit, acceptance.oldest, c.var.config.exportRetentionMs, Date.now());
			}
			await dispatch(c.env, c.var.db, { type: "exportLearnerData", jobId: acceptance.job.id });
			await appendAfter(c, [entry(acceptance.job.id)]);
			return c.body(null, 204, { Location: jobLocation(acceptance.job.id) });
		});
	},
);

learnerRoutes.openapi(
	declareRoute({
		method: "delete",
		path: "/learner/{learnerId}/suppression",
		tags,
		operationId: "deleteLearnerSuppression",
		summary: "Lift the suppression an erasure left on a learner id, so it may be registered again",
		description:
			"Not in SCORM Cloud (SPEC §9). An erasure asked with suppress=true keeps the learner id's HMAC and refuses " +
			"registrations naming it (409); this lifts that. 404 when the learner is not suppressed in this application; 409 " +
			"while an erasure of the learner is pending (the suppression it asked for holds until it completes).",
		access: { scope: "admin" },
		request: { params: LearnerParams },
		errors: [404, 409],
		responses: { 204: { description: "Lifted" } },
	}),
	async (c) => {
		const { learnerId } = c.req.valid("param");
		const { appId } = c.var.auth;
		const hash = await learnerHash(c.env, appId, learnerId);
		// Its record goes into the shard's audit outbox with the lift, and is appended to the trail after.
		const entry = () => auditRecord(c, "learner.suppression.lift", { applicationId: appId, learnerHash: hash });
		const lifted = await liftSuppression(c.var.db, appId, hash, c.var.config, entry());
		if (lifted === "erasing") {
			throw new ApiError(409, `Learner [${learnerId}] is being erased; its suppression can be lifted once the erasure has completed`);
		}
		if (lifted === "notSuppressed") throw notFound(`Learner [${learnerId}] is not suppressed`);
		await appendAfter(c, [entry()]);
		return c.body(null, 204);
	},
);

// Room for the longest token a first page can lead to: its cursor carries up to 100 tags and a learner id.
const MORE_MAX_LENGTH = longestToken(LIMITS.tagsPerRequest + 1, LIMITS.tagLength, 100);

const DirectoryQuery = asClassic(z.object({
	tags: z
		.optional(z.string())
		.openapi({
			param: { name: "tags", in: "query" },
			description: `Comma-separated, at most ${LIMITS.tagsPerRequest}: learners carrying them (see tagMatch); absent, every learner`,
		}),
	tagMatch: z
		._default(z.enum(TAG_MATCHES, { error: `tagMatch must be ${TAG_MATCHES.map((name) => `"${name}"`).join(" or ")}` }), "any")
		.openapi({
			param: { name: "tagMatch", in: "query" },
			description: "With several tags: learners carrying any of them (default), or all of them",
		}),
	more: z
		.optional(z.string().check(z.maxLength(MORE_MAX_LENGTH)).openapi({ maxLength: MORE_MAX_LENGTH }))
		.openapi({ param: { name: "more", in: "query" }, description: "Paging token from the previous page; it carries the filters" }),
}));

/** The response shape; details never set are left out, as in registrations. */
const presentLearner = (learner: LearnerSummary): z.infer<typeof LearnerSummarySchema> => ({
	id: learner.id,
	...(learner.email !== null && { email: learner.email }),
	...(learner.firstName !== null && { firstName: learner.firstName }),
	...(learner.lastName !== null && { lastName: learner.lastName }),
	tags: learner.tags,
	registrationCount: learner.registrationCount,
});

learnerRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/learners",
		tags,
		operationId: "getLearners",
		summary: `List the application's learners, ${LIMITS.learnersPerPage} per page in learner id order, optionally by tag`,
		description:
			"Not in SCORM Cloud, whose learner tags can be searched only in its reporting product. A learner is listed " +
			"while a registration names it, with its current details (the newest each field was given, by updateInfo " +
			"or a registration), its tags in the order first applied and how many registrations name it. With " +
			"several tags, put the rarest first when tagMatch=all: the first tag drives the search.",
		access: { scope: "read:learner" },
		request: { query: DirectoryQuery },
		responses: { 200: json(LearnerListSchema, "A page of learners; `more` fetches the next") },
	}),
	async (c) => {
		const query = c.req.valid("query");
		const { appId } = c.var.auth;
		const secret = c.env.TOKEN_SIGNING_SECRET;
		let cursor: Omit<LearnerPageCursor, "app" | "after"> & { after?: string };
		if (query.more !== undefined) {
			// The next page's filters are the first page's, carried by its token.
			cursor = await decodeCursor(secret, LEARNER_PAGES, query.more, appId);
		} else {
			const named = parseTagFilter(query.tags);
			cursor = { filter: { tags: named && unique(named), tagMatch: query.tagMatch } };
		}
		const { learners, next } = await listLearners(c.var.db, appId, {
			filter: cursor.filter,
			after: cursor.after,
			limit: LIMITS.learnersPerPage,
		});
		const more =
			next !== undefined ? await encodeCursor(secret, LEARNER_PAGES, { app: appId, filter: cursor.filter, after: next }) : undefined;
		return c.json({ learners: learners.map(presentLearner), ...(more && { more }) }, 200);
	},
);
