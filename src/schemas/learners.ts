import * as z from "zod/mini";
import { asClassic } from "./openapi-meta";
import { LIMITS } from "../limits";
import { EmailSchema } from "./learner";
import { IdSchema } from "./text";

/** Learner jobs' and the learner directory's schemas: bulk erasure, the directory, the erasure query. */

export const BulkErasureSchema = asClassic(
	z
		.object({
			ids: z.array(IdSchema("id"), { error: "ids must be an array of learner ids" }).check(
				z.minLength(1, { message: "ids must hold at least one learner id" }),
				z.maxLength(LIMITS.idsPerBatch, { message: `ids must hold at most ${LIMITS.idsPerBatch} learner ids per request` }),
			),
		})
		.openapi("BulkErasureSchema"),
);

/** A learner in the directory (GET /learners): its current details, its tags and how many registrations name it. */
export const LearnerSummarySchema = asClassic(
	z
		.object({
			id: z.string(),
			email: z.optional(z.string()),
			firstName: z.optional(z.string()),
			lastName: z.optional(z.string()),
			tags: z.array(z.string()).check(z.maxLength(LIMITS.tagsPerLearner)),
			registrationCount: z.int().check(z.minimum(1)).openapi({ type: "integer", minimum: 1 }),
		})
		.openapi("LearnerSummarySchema"),
);

export const LearnerListSchema = asClassic(
	z
		.object({ learners: z.array(LearnerSummarySchema).check(z.maxLength(LIMITS.learnersPerPage)), more: z.optional(z.string()) })
		.openapi("LearnerListSchema"),
);

/** The query of an export request (one application, realm-wide): who asks (SPEC §12, the erasure privilege rule). */
export const ExportQuerySchema = asClassic(
	z.object({
		userEmail: z
			.pipe(z.string({ error: "userEmail is required: the email of a realm owner or admin requesting the export" }), EmailSchema)
			.openapi({ param: { name: "userEmail", in: "query", required: true } }),
	}),
);

/** The query of every erasure request (one learner, bulk, realm-wide): who asks, and whether to suppress. */
export const ErasureQuerySchema = asClassic(
	z.object({
		userEmail: z
			.pipe(z.string({ error: "userEmail is required: the email of a realm owner or admin requesting the erasure" }), EmailSchema)
			.openapi({ param: { name: "userEmail", in: "query", required: true } }),
		suppress: z.optional(z.enum(["true", "false"], { error: 'suppress must be "true" or "false"' })).openapi({
			param: { name: "suppress", in: "query" },
			description:
				"true: keep the learner id's HMAC once erased, and refuse any registration naming the learner (409) until " +
				"DELETE /learner/{learnerId}/suppression lifts it. Default false (SCORM Cloud's behaviour).",
		}),
	}),
);
