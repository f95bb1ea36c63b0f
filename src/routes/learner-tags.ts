import { createRouter } from "../context";
import { LEARNER_TAGS, getTags, removeTags } from "../db/tags";
import { learnerNotFound } from "../errors";
import { declareRoute, json, jsonBody } from "../http/route";
import { addTagsOr4xx, unique } from "../http/tag-writes";
import { BatchTagsSchema, LearnerParams, TagListResponseSchema, TagListSchema } from "../schemas/text";

/**
 * The learner tag operations (SPEC §3): the hot path, kept apart from the learner's jobs and the directory so that an
 * isolate serving them builds only these routes and their schemas (SPEC §6: cold start).
 */

const tags = ["LearnerService"];

export const learnerTagRoutes = createRouter();

learnerTagRoutes.openapi(
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

learnerTagRoutes.openapi(
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

learnerTagRoutes.openapi(
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

learnerTagRoutes.openapi(
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
