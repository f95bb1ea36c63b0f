import { createRoute, z } from "@hono/zod-openapi";
import { requireScope } from "../auth/middleware";
import { createRouter } from "../context";
import { LEARNER_TAGS, TagLimitError, addTags, getTags, removeTags } from "../db/tags";
import { ApiError, badRequest, learnerNotFound } from "../errors";
import { BatchTagsSchema, IdSchema, LIMITS, TagListResponseSchema, TagListSchema } from "../schemas";
import { APP_ROUTE_ERRORS, appSecurity, errors, json, jsonBody } from "./openapi";

const tags = ["LearnerService"];

const LearnerParams = z.object({
	learnerId: IdSchema("learnerId").openapi({ param: { name: "learnerId", in: "path" } }),
});

/** The list without repeats, in first-seen order. */
export const unique = (values: string[]) => [...new Set(values)];

/** 400 naming the owners that would pass the per-learner tag limit. */
export const learnerTagLimit = (error: TagLimitError) =>
	badRequest(
		`Learner${error.ownerIds.length > 1 ? "s" : ""} ${error.ownerIds.map((id) => `[${id}]`).join(", ")} would have more than ${LIMITS.tagsPerLearner} tags (limit: ${LIMITS.tagsPerLearner} tags per learner)`,
	);

async function addOrLimit(...args: Parameters<typeof addTags>): Promise<string[]> {
	try {
		return await addTags(...args);
	} catch (error) {
		if (error instanceof TagLimitError) throw learnerTagLimit(error);
		throw error;
	}
}

const getLearnerTags = createRoute({
	method: "get",
	path: "/learner/{learnerId}/tags",
	tags,
	operationId: "getLearnerTags",
	summary: "Get the tags for this learner, in the order first applied",
	security: appSecurity("read:learner"),
	middleware: [requireScope("read:learner")],
	request: { params: LearnerParams },
	responses: {
		200: json(TagListResponseSchema, "List of tags for this learner"),
		...errors(400, 404, ...APP_ROUTE_ERRORS),
	},
});

const putLearnerTags = createRoute({
	method: "put",
	path: "/learner/{learnerId}/tags",
	tags,
	operationId: "putLearnerTags",
	summary: "Add tags to this learner (set union: existing tags stay, duplicates are ignored)",
	security: appSecurity("write:learner"),
	middleware: [requireScope("write:learner")],
	request: { params: LearnerParams, body: jsonBody(TagListSchema) },
	responses: {
		204: { description: "Tags added" },
		...errors(400, 404, 413, 415, ...APP_ROUTE_ERRORS),
	},
});

const deleteLearnerTags = createRoute({
	method: "delete",
	path: "/learner/{learnerId}/tags",
	tags,
	operationId: "deleteLearnerTags",
	summary: "Remove tags from this learner (tags it does not have are ignored)",
	security: appSecurity("write:learner"),
	middleware: [requireScope("write:learner")],
	request: { params: LearnerParams, body: jsonBody(TagListSchema) },
	responses: {
		204: { description: "Tags removed" },
		...errors(400, 404, 413, 415, ...APP_ROUTE_ERRORS),
	},
});

const putLearnerTagsBatch = createRoute({
	method: "put",
	path: "/learner/tags",
	tags,
	operationId: "putLearnerTagsBatch",
	summary: "Add every tag to every learner, all or nothing",
	description: "If any id is unknown, answers 404 listing the unknown ids and changes nothing.",
	security: appSecurity("write:learner"),
	middleware: [requireScope("write:learner")],
	request: { body: jsonBody(BatchTagsSchema) },
	responses: {
		204: { description: "Tags added to every learner" },
		...errors(400, 404, 413, 415, ...APP_ROUTE_ERRORS),
	},
});

export const learnerRoutes = createRouter()
	.openapi(putLearnerTagsBatch, async (c) => {
		const { ids, tags: batchTags } = c.req.valid("json");
		const unknown = await addOrLimit(c.var.db, LEARNER_TAGS, c.var.auth.appId, unique(ids), unique(batchTags));
		if (unknown.length > 0) {
			throw new ApiError(
				404,
				`Learner${unknown.length > 1 ? "s" : ""} ${unknown.map((id) => `[${id}]`).join(", ")} ${unknown.length > 1 ? "were" : "was"} not found; no tags were added`,
			);
		}
		return c.body(null, 204);
	})
	.openapi(getLearnerTags, async (c) => {
		const { learnerId } = c.req.valid("param");
		const found = await getTags(c.var.db, LEARNER_TAGS, c.var.auth.appId, learnerId);
		if (!found) throw learnerNotFound(learnerId);
		return c.json({ tags: found }, 200);
	})
	.openapi(putLearnerTags, async (c) => {
		const { learnerId } = c.req.valid("param");
		const { tags: added } = c.req.valid("json");
		const unknown = await addOrLimit(c.var.db, LEARNER_TAGS, c.var.auth.appId, [learnerId], unique(added));
		if (unknown.length > 0) throw learnerNotFound(learnerId);
		return c.body(null, 204);
	})
	.openapi(deleteLearnerTags, async (c) => {
		const { learnerId } = c.req.valid("param");
		const { tags: removed } = c.req.valid("json");
		if (!(await removeTags(c.var.db, LEARNER_TAGS, c.var.auth.appId, learnerId, unique(removed)))) {
			throw learnerNotFound(learnerId);
		}
		return c.body(null, 204);
	});
