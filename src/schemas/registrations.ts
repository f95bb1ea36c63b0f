import * as z from "zod";
import "./openapi-meta";
import { LearnerSchema } from "./learner";
import { IdSchema, PathIdSchema, tagArray } from "./text";

/** Registrations' schemas (SPEC §4). */

export const CreateRegistrationSchema = z
	.object({
		courseId: IdSchema("courseId"),
		registrationId: PathIdSchema("registrationId"),
		learner: LearnerSchema,
		learnerTags: z.optional(tagArray),
		registrationTags: z.optional(tagArray),
		courseTags: z.optional(tagArray),
	})
	.openapi("CreateRegistrationSchema");

export const RegistrationSchema = z
	.object({
		id: z.string(),
		instance: z.number().int(),
		xapiRegistrationId: z.string(),
		createdDate: z.string(),
		updated: z.string(),
		registrationCompletion: z.literal("UNKNOWN"),
		registrationSuccess: z.literal("UNKNOWN"),
		totalSecondsTracked: z.number(),
		course: z.object({ id: z.string() }),
		learner: z.object({
			id: z.string(),
			email: z.string().optional(),
			firstName: z.string().optional(),
			lastName: z.string().optional(),
		}),
		tags: z.array(z.string()),
	})
	.openapi("RegistrationSchema");

export const RegistrationListSchema = z
	.object({ registrations: z.array(RegistrationSchema), more: z.string().optional() })
	.openapi("RegistrationListSchema");
