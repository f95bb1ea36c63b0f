import * as z from "zod";
import "./openapi-meta";
import { LIMITS } from "../limits";
import { EmailSchema, IdSchema } from "./text";

/** Learner jobs' and the learner directory's schemas: bulk erasure, the directory, the erasure query. */

export const BulkErasureSchema = z
	.object({
		ids: z
			.array(IdSchema("id"), { error: "ids must be an array of learner ids" })
			.min(1, { message: "ids must hold at least one learner id" })
			.max(LIMITS.idsPerBatch, { message: `ids must hold at most ${LIMITS.idsPerBatch} learner ids per request` }),
	})
	.openapi("BulkErasureSchema");

/** A learner in the directory (GET /learners): its current details, its tags and how many registrations name it. */
export const LearnerSummarySchema = z
	.object({
		id: z.string(),
		email: z.string().optional(),
		firstName: z.string().optional(),
		lastName: z.string().optional(),
		tags: z.array(z.string()).max(LIMITS.tagsPerLearner),
		registrationCount: z.number().int().min(1),
	})
	.openapi("LearnerSummarySchema");

export const LearnerListSchema = z
	.object({ learners: z.array(LearnerSummarySchema).max(LIMITS.learnersPerPage), more: z.string().optional() })
	.openapi("LearnerListSchema");

/** The query of every erasure request (one learner, bulk, realm-wide): who asks, and whether to suppress. */
export const ErasureQuerySchema = z.object({
	userEmail: z
		.string({ error: "userEmail is required: the email of a realm owner or admin requesting the erasure" })
		.pipe(EmailSchema)
		.openapi({ param: { name: "userEmail", in: "query", required: true } }),
	suppress: z
		.enum(["true", "false"], { error: 'suppress must be "true" or "false"' })
		.optional()
		.openapi({
			param: { name: "suppress", in: "query" },
			description:
				"true: keep the learner id's HMAC once erased, and refuse any registration naming the learner (409) until " +
				"DELETE /learner/{learnerId}/suppression lifts it. Default false (SCORM Cloud's behaviour).",
		}),
});
