import * as z from "zod/mini";
import { asClassic } from "../schemas/openapi-meta";
import { createRouter } from "../context";
import {
	DATETIME_FILTERS,
	ErasurePendingError,
	REGISTRATION_ORDERS,
	type Registration,
	SuppressedError,
	createRegistration,
	deleteRegistration,
	getRegistration,
	listRegistrations,
} from "../db/registrations";
import { LEARNER_TAGS, REGISTRATION_TAGS, TagLimitError, getTags, removeTags } from "../db/tags";
import { type Db, nowIso } from "../db/types";
import { ApiError, badRequest, registrationNotFound } from "../errors";
import { learnerHash } from "../jobs/contract";
import { REGISTRATION_PAGES, type RegistrationPageCursor, decodeCursor, encodeCursor, longestToken } from "../paging";
import { CreateRegistrationSchema, RegistrationListSchema, RegistrationSchema } from "../schemas/registrations";
import { queryDate, queryFlag } from "../schemas/query";
import { BatchTagsSchema, IdSchema, TagListResponseSchema, TagListSchema } from "../schemas/text";
import { LIMITS } from "../limits";
import { IdempotencyHeaders, idempotent } from "../http/idempotency";
import { bodilessErrors, declareRoute, json, jsonBody, securityOf } from "../http/route";
import { parseTagFilter } from "../http/tag-filter";
import { addTagsOr4xx, tagLimitExceeded, unique } from "../http/tag-writes";

const tags = ["RegistrationService"];

const RegistrationParams = asClassic(
	z.object({
		registrationId: IdSchema("registrationId").openapi({ param: { name: "registrationId", in: "path" } }),
	}),
);

const MORE_LENGTH = longestToken(LIMITS.tagsPerRequest + 3, LIMITS.tagLength, 400);

const ListQuery = asClassic(z.object({
	courseId: z.optional(IdSchema("courseId")).openapi({ param: { name: "courseId", in: "query" } }),
	learnerId: z.optional(IdSchema("learnerId")).openapi({ param: { name: "learnerId", in: "query" } }),
	since: queryDate("since"),
	until: queryDate("until"),
	datetimeFilter: z
		._default(z.enum(DATETIME_FILTERS, { error: `datetimeFilter must be ${DATETIME_FILTERS.map((name) => `"${name}"`).join(" or ")}` }), "created")
		.openapi({ param: { name: "datetimeFilter", in: "query" }, description: "The date since and until bound" }),
	tags: z
		.optional(z.string())
		.openapi({ param: { name: "tags", in: "query" }, description: "Comma-separated; registrations with any of them" }),
	orderBy: z
		._default(z.enum(REGISTRATION_ORDERS, { error: `orderBy must be one of ${REGISTRATION_ORDERS.join(", ")}` }), "created_desc")
		.openapi({
			param: { name: "orderBy", in: "query" },
			description: "By creation or last-update date, oldest or newest first; equal dates in creation order",
		}),
	filter: z
		.optional(z.string())
		.openapi({ param: { name: "filter", in: "query" }, description: "Not supported (a text search would read every registration): answers 400" }),
	filterBy: z
		.optional(z.string())
		.openapi({
			param: { name: "filterBy", in: "query" },
			description: "The field filter searches; ignored without filter (Rustici's PHP client always sends registration_id)",
		}),
	includeTotalCount: queryFlag("includeTotalCount"),
	// Its cursor carries the filters: up to 100 tags, a course id and a learner id, besides the last registration's id,
	// dates and pk.
	more: z
		.optional(z.string().check(z.maxLength(MORE_LENGTH)).openapi({ maxLength: MORE_LENGTH }))
		.openapi({ param: { name: "more", in: "query" }, description: "Paging token from the previous page" }),
}));

/** The response shape; learner fields never set are left out. */
function present(registration: Registration): z.infer<typeof RegistrationSchema> {
	const { learner } = registration;
	return {
		id: registration.id,
		instance: registration.instance,
		xapiRegistrationId: registration.xapiRegistrationId,
		createdDate: registration.createdAt,
		updated: registration.updatedAt,
		registrationCompletion: "UNKNOWN",
		registrationSuccess: "UNKNOWN",
		totalSecondsTracked: 0,
		course: { id: registration.courseId },
		learner: {
			id: learner.id,
			...(learner.email !== null && { email: learner.email }),
			...(learner.firstName !== null && { firstName: learner.firstName }),
			...(learner.lastName !== null && { lastName: learner.lastName }),
		},
		tags: registration.tags,
	};
}

/**
 * Whether the application's existing registration is what this request would have created, so the request is a
 * retry of the one that did (its reply lost): the same course and learner, the same learner details and
 * registration tags, and the learner still carrying the learner tags asked for. Read only on a duplicate id.
 */
async function isRetryOf(db: Db, appId: string, body: z.infer<typeof CreateRegistrationSchema>): Promise<boolean> {
	const existing = await getRegistration(db, appId, body.registrationId);
	if (!existing) return false;
	const { learner } = existing;
	const sameSet = (stored: string[], asked: string[] = []) => {
		const wanted = new Set(asked);
		return stored.length === wanted.size && stored.every((tag) => wanted.has(tag));
	};
	if (
		existing.courseId !== body.courseId ||
		learner.id !== body.learner.id ||
		learner.email !== (body.learner.email ?? null) ||
		learner.firstName !== (body.learner.firstName ?? null) ||
		learner.lastName !== (body.learner.lastName ?? null) ||
		!sameSet(existing.tags, body.registrationTags)
	) {
		return false;
	}
	const learnerTags = new Set((await getTags(db, LEARNER_TAGS, appId, learner.id)) ?? []);
	return (body.learnerTags ?? []).every((tag) => learnerTags.has(tag));
}

export const registrationRoutes = createRouter();

registrationRoutes.openapi(
	declareRoute({
		method: "post",
		path: "/registrations",
		tags,
		operationId: "createRegistration",
		summary: "Create a registration; its learner comes into existence with it",
		description:
			"A retry of a request that created the registration (the same id, course, learner details and tags, " +
			"nothing changed since) answers 204 again without writing; any other request for an existing id answers 400. " +
			"A learner erased with suppression, or whose erasure is still pending (it would delete the registration), " +
			"cannot be registered: 409, naming which.",
		access: { scope: "write:registration" },
		request: { body: jsonBody(CreateRegistrationSchema), headers: IdempotencyHeaders },
		errors: [409, 422],
		responses: { 204: { description: "Registration created (or this exact request had created it)" } },
	}),
	async (c) => {
		const body = c.req.valid("json");
		const { appId } = c.var.auth;
		return idempotent(c, c.var.db, appId, body, body.learner.id, async (keyed) => {
			const xapiRegistrationId = crypto.randomUUID();
			try {
				const created = await createRegistration(
					c.var.db,
					appId,
					{
						id: body.registrationId,
						courseId: body.courseId,
						learner: body.learner,
						xapiRegistrationId,
						learnerHash: await learnerHash(c.env, appId, body.learner.id),
						learnerTags: unique(body.learnerTags ?? []),
						registrationTags: unique(body.registrationTags ?? []),
						createdAt: nowIso(),
					},
					c.var.config,
					keyed?.(
						{ status: 204, location: null, body: null },
						"EXISTS (SELECT 1 FROM registrations WHERE app_id = ?3 AND id = ?4 AND xapi_registration_id = ?5)",
						[appId, body.registrationId, xapiRegistrationId],
					),
				);
				if (!created && !(await isRetryOf(c.var.db, appId, body))) {
					throw badRequest(`Registration with id [${body.registrationId}] already exists`);
				}
			} catch (error) {
				if (error instanceof TagLimitError) throw tagLimitExceeded(LEARNER_TAGS, error.ownerIds);
				if (error instanceof SuppressedError) {
					throw new ApiError(
						409,
						`Learner [${error.learnerId}]: learner erased and suppressed; it cannot be registered again until the suppression is lifted (DELETE /learner/{learnerId}/suppression)`,
					);
				}
				if (error instanceof ErasurePendingError) {
					const job = error.jobId ? ` (job [${error.jobId}], GET /jobs/${error.jobId})` : "";
					throw new ApiError(409, `Learner [${error.learnerId}] is being erased${job}: it cannot be registered until that erasure completes`);
				}
				throw error;
			}
			return c.body(null, 204);
		});
	},
);

registrationRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/registrations",
		tags,
		operationId: "getRegistrations",
		summary: `List registrations, ${LIMITS.registrationsPerPage} per page, in creation order`,
		access: { scope: "read:registration" },
		request: { query: ListQuery },
		responses: {
			200: {
				...json(RegistrationListSchema, "A page of registrations; `more` fetches the next"),
				headers: asClassic(
					z.object({
						"X-Total-Count": z
							.optional(z.string())
							.openapi({ description: "How many registrations match, with includeTotalCount=true (first page only)" }),
					}),
				),
			},
		},
	}),
	async (c) => {
		const query = c.req.valid("query");
		const { appId } = c.var.auth;
		const secret = c.env.TOKEN_SIGNING_SECRET;
		if (query.filter !== undefined) {
			// Ignoring it would silently answer with every registration. filterBy alone names the field of no search:
			// the PHP client sends its default with every call.
			throw badRequest("filter (text search) is not supported; filter with courseId, learnerId, tags, since and until");
		}
		let cursor: Omit<RegistrationPageCursor, "app" | "after"> & { after?: RegistrationPageCursor["after"] };
		if (query.more !== undefined) {
			cursor = await decodeCursor(secret, REGISTRATION_PAGES, query.more, appId);
		} else {
			cursor = {
				filter: {
					courseId: query.courseId,
					learnerId: query.learnerId,
					datetimeFilter: query.datetimeFilter,
					since: query.since,
					until: query.until,
					tags: parseTagFilter(query.tags),
				},
				order: query.orderBy,
			};
		}
		const pageSize = LIMITS.registrationsPerPage;
		// One row past the page tells whether another page exists, without a count.
		const { registrations, total } = await listRegistrations(c.var.db, appId, {
			filter: cursor.filter,
			order: cursor.order,
			position: cursor.after,
			limit: pageSize + 1,
			// As SCORM Cloud: the total is given on the first page only.
			count: query.includeTotalCount === true && query.more === undefined,
		});
		const page = registrations.slice(0, pageSize);
		const last = page.at(-1);
		const more =
			registrations.length > pageSize && last
				? await encodeCursor(secret, REGISTRATION_PAGES, { ...cursor, app: appId, after: { pk: last.pk, id: last.id, createdAt: last.createdAt, updatedAt: last.updatedAt } })
				: undefined;
		if (total !== undefined) c.header("X-Total-Count", String(total));
		return c.json({ registrations: page.map(present), ...(more && { more }) }, 200);
	},
);

registrationRoutes.openapi(
	declareRoute({
		method: "put",
		path: "/registrations/tags",
		tags,
		operationId: "putRegistrationTagsBatch",
		summary: "Add every tag to every registration, all or nothing",
		access: { scope: "write:registration" },
		request: { body: jsonBody(BatchTagsSchema) },
		errors: [404],
		responses: { 204: { description: "Tags added" } },
	}),
	async (c) => {
		const { ids, tags: batchTags } = c.req.valid("json");
		await addTagsOr4xx(c.var.db, REGISTRATION_TAGS, c.var.auth.appId, ids, batchTags, c.var.config);
		return c.body(null, 204);
	},
);

registrationRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/registrations/{registrationId}",
		tags,
		// SCORM Cloud's names: GET is getRegistrationProgress, HEAD (registrationExists below) is getRegistration.
		operationId: "getRegistrationProgress",
		summary: "Get a registration",
		access: { scope: "read:registration" },
		request: { params: RegistrationParams },
		errors: [404],
		responses: { 200: json(RegistrationSchema, "The registration") },
	}),
	async (c) => {
		const { registrationId } = c.req.valid("param");
		const registration = await getRegistration(c.var.db, c.var.auth.appId, registrationId);
		if (!registration) throw registrationNotFound(registrationId);
		return c.json(present(registration), 200);
	},
);

registrationRoutes.openapi(
	declareRoute({
		method: "delete",
		path: "/registrations/{registrationId}",
		tags,
		operationId: "deleteRegistration",
		summary: "Delete a registration (its learner goes with its last registration)",
		access: { scope: "delete:registration" },
		request: { params: RegistrationParams },
		errors: [404],
		responses: { 204: { description: "Deleted" } },
	}),
	async (c) => {
		const { registrationId } = c.req.valid("param");
		if (!(await deleteRegistration(c.var.db, c.var.auth.appId, registrationId, c.var.config))) {
			throw registrationNotFound(registrationId);
		}
		return c.body(null, 204);
	},
);

registrationRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/registrations/{registrationId}/tags",
		tags,
		operationId: "getRegistrationTags",
		summary: "Get the tags of a registration, in the order first applied",
		access: { scope: "read:registration" },
		request: { params: RegistrationParams },
		errors: [404],
		responses: { 200: json(TagListResponseSchema, "Tags") },
	}),
	async (c) => {
		const { registrationId } = c.req.valid("param");
		const found = await getTags(c.var.db, REGISTRATION_TAGS, c.var.auth.appId, registrationId);
		if (!found) throw registrationNotFound(registrationId);
		return c.json({ tags: found }, 200);
	},
);

registrationRoutes.openapi(
	declareRoute({
		method: "put",
		path: "/registrations/{registrationId}/tags",
		tags,
		operationId: "putRegistrationTags",
		summary: "Add tags to a registration (set union)",
		access: { scope: "write:registration" },
		request: { params: RegistrationParams, body: jsonBody(TagListSchema) },
		errors: [404],
		responses: { 204: { description: "Tags added" } },
	}),
	async (c) => {
		const { registrationId } = c.req.valid("param");
		const { tags: added } = c.req.valid("json");
		await addTagsOr4xx(c.var.db, REGISTRATION_TAGS, c.var.auth.appId, [registrationId], added, c.var.config, () =>
			registrationNotFound(registrationId),
		);
		return c.body(null, 204);
	},
);

registrationRoutes.openapi(
	declareRoute({
		method: "delete",
		path: "/registrations/{registrationId}/tags",
		tags,
		operationId: "deleteRegistrationTags",
		summary: "Remove tags from a registration (tags it does not have are ignored)",
		access: { scope: "write:registration" },
		request: { params: RegistrationParams, body: jsonBody(TagListSchema) },
		errors: [404],
		responses: { 204: { description: "Tags removed" } },
	}),
	async (c) => {
		const { registrationId } = c.req.valid("param");
		const { tags: removed } = c.req.valid("json");
		if (!(await removeTags(c.var.db, REGISTRATION_TAGS, c.var.auth.appId, registrationId, unique(removed), c.var.config))) {
			throw registrationNotFound(registrationId);
		}
		return c.body(null, 204);
	},
);

// HEAD is answered by the GET handler (Hono runs GET routes for HEAD and drops the body); it is documented on
// its own because SCORM Cloud's clients call it as getRegistration, to test whether a registration exists.
registrationRoutes.openAPIRegistry.registerPath({
	method: "head",
	path: "/registrations/{registrationId}",
	tags,
	operationId: "getRegistration",
	summary: "Whether the registration exists",
	security: securityOf({ scope: "read:registration" }),
	request: { params: RegistrationParams },
	responses: {
		200: { description: "The registration exists" },
		...bodilessErrors({ scope: "read:registration" }, [404]),
		404: { description: "No such registration" },
	},
});
