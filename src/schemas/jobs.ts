import * as z from "zod";
import "./openapi-meta";
import { JOB_STATUSES, JOB_TYPES } from "../db/jobs";

/** The job resource and erasure receipts (SPEC §3, §9). */

export const JobSchema = z
	.object({
		id: z.string(),
		type: z.enum(JOB_TYPES),
		status: z.enum(JOB_STATUSES),
		createdDate: z.string(),
		completedDate: z.string().optional(),
		registrationsAffected: z.number().int(),
		tagsRemoved: z.number().int().optional(),
		message: z.string().optional(),
		notification: z
			.object({
				status: z.enum(["pending", "delivered", "failed"]),
				attempts: z.number().int().openapi({ description: "Delivery attempts made so far" }),
				lastStatus: z.number().int().optional().openapi({ description: "The HTTP status the webhook answered the last attempt with" }),
				lastError: z
					.string()
					.optional()
					.openapi({
						description:
							"Why the last attempt got no HTTP answer (timeout, connection failure), or why the delivery was given up without one (the webhook removed, its stored URL refused by the destination rule)",
					}),
			})
			.optional()
			.openapi({
				description:
					"Not in SCORM Cloud (SPEC §8): the delivery of the job's job.completed or job.failed event to its application's webhook. Absent while the job runs and when the application has no webhook.",
			}),
		progress: z
			.object({
				done: z.number().int(),
				total: z.number().int(),
				unit: z.enum(["registrations", "learners"]),
			})
			.optional()
			.openapi({
				description:
					"Not in SCORM Cloud: how far an unfinished update or erasure has got (registrations of the learner; learners of a bulk erasure). The total is what is known now: a registration created meanwhile adds to it. Absent once the job has finished, and for application deletions, moves and realm-wide erasures.",
			}),
	})
	.openapi("JobSchema");

export const ErasureReceiptSchema = z
	.object({
		kind: z.literal("erasure-receipt"),
		version: z.literal(1),
		jobId: z.string(),
		applicationId: z.string(),
		learnerHash: z.string().nullable().openapi({ description: "The job's HMAC-SHA-256 of `<appId>\\n<learnerId>`, hex; never the learner id" }),
		learnerHashes: z
			.array(z.string())
			.optional()
			.openapi({
				description:
					"A bulk erasure's (deleteLearnersData): each learner's HMAC, as learnerHash for one; a realm-wide erasure's " +
					"(deleteRealmLearnerData): the learner's HMAC in each application that held it",
			}),
		erasureJobIds: z
			.array(z.string())
			.optional()
			.openapi({
				description:
					"A bulk or realm-wide erasure's: for each entry of learnerHashes, the erasure job that erased it. A learner whose " +
					"erasure was already under way when this one was asked is named by that job's id (its own receipt states it)",
			}),
		suppressed: z
			.boolean()
			.optional()
			.openapi({
				description:
					"A single learner's erasure (deleteAllLearnerData): whether it left the learner suppressed (any request it " +
					"answered asked for suppression)",
			}),
		requestedBy: z.string().nullable().openapi({ description: "The userEmail the erasure was requested with" }),
		requestedDate: z.string(),
		completedDate: z.string(),
		registrationsDeleted: z.number().int(),
		tagsRemoved: z.number().int(),
		keyId: z.string().openapi({ description: "The signing key's RFC 7638 thumbprint (the published key's kid)" }),
	})
	.openapi("ErasureReceiptSchema");

export const SignedErasureReceiptSchema = z
	.object({
		receipt: ErasureReceiptSchema,
		signature: z.string().openapi({
			description:
				"base64url (unpadded) Ed25519 signature over the UTF-8 bytes of the receipt's canonical JSON: no whitespace, every object's keys sorted by UTF-16 code units at every depth, values as JSON.stringify writes them",
		}),
		algorithm: z.literal("Ed25519"),
		keyId: z.string(),
	})
	.openapi("SignedErasureReceiptSchema");

export const ReceiptKeySchema = z
	.object({
		kty: z.literal("OKP"),
		crv: z.literal("Ed25519"),
		x: z.string(),
		kid: z.string().openapi({ description: "RFC 7638 thumbprint: base64url SHA-256 of {\"crv\",\"kty\",\"x\"} in canonical JSON" }),
		alg: z.literal("EdDSA"),
		use: z.literal("sig"),
	})
	.openapi("ReceiptKeySchema");
