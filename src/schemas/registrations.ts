import * as z from "zod/mini";
import { asClassic } from "./openapi-meta";
import { LearnerSchema } from "./learner";
import { IdSchema, PathIdSchema, tagArray } from "./text";

/** Registrations' schemas (SPEC §4). */

export const CreateRegistrationSchema = asClassic(
	z.object({
		courseId: IdSchema("courseId"),
		registrationId: PathIdSchema("registrationId"),
		learner: LearnerSchema,
		learnerTags: z.optional(tagArray),
		registrationTags: z.optional(tagArray),
		courseTags: z.optional(tagArray),
	}).openapi("CreateRegistrationSchema"),
);

export const RegistrationSchema = asClassic(
	z.object({
		id: z.string(),
		instance: z.int().openapi({ type: "integer" }),
		xapiRegistrationId: z.string(),
		createdDate: z.string(),
		updated: z.string(),
		registrationCompletion: z.literal("UNKNOWN"),
		registrationSuccess: z.literal("UNKNOWN"),
		totalSecondsTracked: z.number(),
		course: z.object({ id: z.string() }),
		learner: z.object({
			id: z.string(),
			email: z.optional(z.string()),
			firstName: z.optional(z.string()),
			lastName: z.optional(z.string()),
		}),
		tags: z.array(z.string()),
	}).openapi("RegistrationSchema"),
);

export const RegistrationListSchema = asClassic(
	z.object({ registrations: z.array(RegistrationSchema), more: z.optional(z.string()) }).openapi("RegistrationListSchema"),
);
