import { z } from "@hono/zod-openapi";
import { createRouter } from "../context";
import { type LearnerInfoPayload, acceptLearnerErasure, acceptLearnerUpdate } from "../db/jobs";
import { LEARNER_TAGS, getTags, removeTags } from "../db/tags";
import { nowIso } from "../db/types";
import { ApiError, badRequest, forbidden, learnerNotFound } from "../errors";
import { dispatch, jobLocation, learnerHash } from "../jobs/contract";
import { BatchTagsSchema, EmailSchema, IdSchema, LearnerSchema, TagListResponseSchema, TagListSchema } from "../schemas";
import { declareRoute, json, jsonBody } from "../http/route";
import { addTagsOr4xx, unique } from "../http/tag-writes";

const tags = ["LearnerService"];

const LearnerParams = z.object({
	learnerId: IdSchema("learnerId").openapi({ param: { name: "learnerId", in: "path" } }),
});

const jobAccepted = {
	description: "Job durably queued; Location names it (GET it for status)",
	headers: z.object({ Location: z.string().openapi({ description: "/api/v2/jobs/{jobId}" }) }),
};

const DeleteQuery = z.object({
	userEmail: z
		.string({ error: "userEmail is required: the email of a realm owner or admin requesting the erasure" })
		.pipe(EmailSchema)
		.openapi({ param: { name: "userEmail", in: "query", required: true } }),
});

export const learnerRoutes = createRouter();

learnerRoutes.openapi(
	declareRoute({
		method: "put",
		path: "/learner/tags",
		tags,
		operationId: "putLearnerTagsBatch",
		summary: "Add every tag to every learner, all or nothing",
		description: "If any id is unknown, answers 404 listing the unknown ids and changes nothing.",
		access: { scope: "write:learner" },
		request: { body: jsonBody(BatchTagsSchema) },
		errors: [404],
		responses: { 204: { description: "Tags added to every learner" } },
	}),
	async (c) => {
		const { ids, tags: batchTags } = c.req.valid("json");
		await addTagsOr4xx(c.var.db, LEARNER_TAGS, c.var.auth.appId, ids, batchTags, c.var.config);
		return c.body(null, 204);
	},
);

learnerRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/learner/{learnerId}/tags",
		tags,
		operationId: "getLearnerTags",
		summary: "Get the tags for this learner, in the order first applied",
		access: { scope: "read:learner" },
		request: { params: LearnerParams },
		errors: [404],
		responses: { 200: json(TagListResponseSchema, "List of tags for this learner") },
	}),
	async (c) => {
		const { learnerId } = c.req.valid("param");
		const found = await getTags(c.var.db, LEARNER_TAGS, c.var.auth.appId, learnerId);
		if (!found) throw learnerNotFound(learnerId);
		return c.json({ tags: found }, 200);
	},
);

learnerRoutes.openapi(
	declareRoute({
		method: "put",
		path: "/learner/{learnerId}/tags",
		tags,
		operationId: "putLearnerTags",
		summary: "Add tags to this learner (set union: existing tags stay, duplicates are ignored)",
		access: { scope: "write:learner" },
		request: { params: LearnerParams, body: jsonBody(TagListSchema) },
		errors: [404],
		responses: { 204: { description: "Tags added" } },
	}),
	async (c) => {
		const { learnerId } = c.req.valid("param");
		const { tags: added } = c.req.valid("json");
		await addTagsOr4xx(c.var.db, LEARNER_TAGS, c.var.auth.appId, [learnerId], added, c.var.config, () =>
			learnerNotFound(learnerId),
		);
		return c.body(null, 204);
	},
);

learnerRoutes.openapi(
	declareRoute({
		method: "delete",
		path: "/learner/{learnerId}/tags",
		tags,
		operationId: "deleteLearnerTags",
		summary: "Remove tags from this learner (tags it does not have are ignored)",
		access: { scope: "write:learner" },
		request: { params: LearnerParams, body: jsonBody(TagListSchema) },
		errors: [404],
		responses: { 204: { description: "Tags removed" } },
	}),
	async (c) => {
		const { learnerId } = c.req.valid("param");
		const { tags: removed } = c.req.valid("json");
		if (!(await removeTags(c.var.db, LEARNER_TAGS, c.var.auth.appId, learnerId, unique(removed), c.var.config))) {
			throw learnerNotFound(learnerId);
		}
		return c.body(null, 204);
	},
);

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
		request: { params: LearnerParams, body: jsonBody(LearnerSchema) },
		errors: [404, 409],
		responses: { 204: jobAccepted },
	}),
	async (c) => {
		const { learnerId } = c.req.valid("param");
		const { id, email, firstName, lastName } = c.req.valid("json");
		if (id !== learnerId) {
			throw badRequest(`learner.id [${id}] must equal the learnerId in the path: renaming a learner is not supported`);
		}
		const { appId } = c.var.auth;
		const payload: LearnerInfoPayload = {
			...(email != null && { email }),
			...(firstName != null && { firstName }),
			...(lastName != null && { lastName }),
		};
		const acceptance = await acceptLearnerUpdate(c.var.db, {
			id: crypto.randomUUID(),
			appId,
			learnerId,
			learnerHash: await learnerHash(c.env, appId, learnerId),
			payload,
			createdAt: nowIso(),
		}, c.var.config);
		if (acceptance.outcome === "notFound") throw learnerNotFound(learnerId);
		if (acceptance.outcome === "erasing") {
			throw new ApiError(409, `Learner [${learnerId}] is being erased; its details can no longer be updated`);
		}
		await dispatch(c.env, c.var.db, { type: "updateLearnerInfo", jobId: acceptance.jobId });
		return c.body(null, 204, { Location: jobLocation(acceptance.jobId) });
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
		request: { params: LearnerParams, query: DeleteQuery },
		errors: [404],
		responses: { 204: jobAccepted },
	}),
	async (c) => {
		const { learnerId } = c.req.valid("param");
		const { userEmail } = c.req.valid("query");
		const { appId } = c.var.auth;
		const acceptance = await acceptLearnerErasure(c.var.db, {
			id: crypto.randomUUID(),
			appId,
			learnerId,
			learnerHash: await learnerHash(c.env, appId, learnerId),
			requestedBy: userEmail,
			createdAt: nowIso(),
		}, c.var.config);
		if (acceptance.outcome === "forbidden") {
			throw forbidden(
				"The initiating email address does not have sufficient privilege in this application to perform this delete operation (a realm owner or admin is required)",
			);
		}
		if (acceptance.outcome === "notFound") throw learnerNotFound(learnerId);
		// Sent again for a pending job too: harmless (the consumer is idempotent) and it repairs a lost send.
		await dispatch(c.env, c.var.db, { type: "deleteAllLearnerData", jobId: acceptance.job.id });
		return c.body(null, 204, { Location: jobLocation(acceptance.job.id) });
	},
);
