import * as z from "zod/mini";
import { asClassic } from "./openapi-meta";
import { JOB_STATUSES, JOB_TYPES } from "../db/jobs";
import { JOBS_PER_PAGE } from "../db/job-lists";
import { queryDate } from "./query";

/** The job resource and erasure receipts (SPEC §3, §9). */

/** A move's phases as the job resource names them (src/jobs/resource.ts maps the move's own steps onto them). */
export const MOVE_PHASES = ["copying", "catchingUp", "frozen", "lingering", "cleaningUp", "abandoning"] as const;

export const JobSchema = asClassic(
	z
		.object({
			id: z.string(),
			type: z.enum(JOB_TYPES),
			status: z.enum(JOB_STATUSES),
			createdDate: z.string(),
			completedDate: z.optional(z.string()),
			applicationId: z
				.optional(z.string())
				.openapi({ description: "Not in SCORM Cloud: the application the job belongs to; absent for a realm-wide erasure (deleteRealmLearnerData), which spans applications" }),
			learnerHash: z
				.optional(z.string())
				.openapi({
					description:
						"Not in SCORM Cloud: the HMAC-SHA-256 (hex) of the learner id an update or erasure names, as its receipt states it (a realm-wide erasure's is the realm's); never the id",
				}),
			move: z
				.optional(
					z.object({
					from: z.string().openapi({ description: "The shard the application's data leaves" }),
					to: z.string().openapi({ description: "The shard it moves to" }),
					phase: z.enum(MOVE_PHASES).openapi({
						description:
							"copying: rows are copied while the application keeps working; catchingUp: writes made meanwhile are copied again; " +
							"frozen: the application's writes wait (503, Retry-After) while the last are copied, the counts compared and its " +
							"placement flipped; lingering: the old shard's rows are kept a while for isolates that still read there; " +
							"cleaningUp: they are deleted; abandoning: the copy is deleted after a failure",
					}),
					}),
				)
				.openapi({ description: "Not in SCORM Cloud: a move's shards and where it stands (moveApplication only)" }),
			registrationsAffected: z.int().openapi({ type: "integer" }),
			tagsRemoved: z.optional(z.int().openapi({ type: "integer" })),
			message: z.optional(z.string()),
			notification: z
				.optional(
					z.object({
					status: z.enum(["pending", "delivered", "failed"]),
					attempts: z.int().openapi({ type: "integer", description: "Delivery attempts made so far" }),
					lastStatus: z.optional(z.int().openapi({ type: "integer" })).openapi({ description: "The HTTP status the webhook answered the last attempt with" }),
					lastError: z
						.optional(z.string())
						.openapi({
							description:
								"Why the last attempt got no HTTP answer (timeout, connection failure), or why the delivery was given up without one (the webhook removed, its stored URL refused by the destination rule)",
						}),
					}),
				)
				.openapi({
					description:
						"Not in SCORM Cloud (SPEC §8): the delivery of the job's job.completed or job.failed event to its application's webhook. Absent while the job runs and when the application has no webhook.",
				}),
			progress: z
				.optional(
					z.object({
						done: z.int().openapi({ type: "integer" }),
						total: z.int().openapi({ type: "integer" }),
						unit: z.enum(["registrations", "learners"]),
					}),
				)
				.openapi({
					description:
						"Not in SCORM Cloud: how far an unfinished update or erasure has got (registrations of the learner; learners of a bulk erasure). The total is what is known now: a registration created meanwhile adds to it. Absent once the job has finished, and for application deletions, moves and realm-wide erasures.",
				}),
		})
		.openapi("JobSchema"),
);

export const JobListSchema = asClassic(
	z
		.object({
			jobs: z.array(JobSchema),
			more: z.optional(z.string()).openapi({ description: "Paging token for the next page (absent on the last page); it carries the filters" }),
		})
		.openapi("JobListSchema"),
);

export const ErasureReceiptSchema = asClassic(
	z
		.object({
			kind: z.literal("erasure-receipt"),
			version: z.literal(1),
			jobId: z.string(),
			applicationId: z.string(),
			learnerHash: z.nullable(z.string()).openapi({ description: "The job's HMAC-SHA-256 of `<appId>\\n<learnerId>`, hex; never the learner id" }),
			learnerHashes: z
				.optional(z.array(z.string()))
				.openapi({
					description:
						"A bulk erasure's (deleteLearnersData): each learner's HMAC, as learnerHash for one; a realm-wide erasure's " +
						"(deleteRealmLearnerData): the learner's HMAC in each application that held it",
				}),
			erasureJobIds: z
				.optional(z.array(z.string()))
				.openapi({
					description:
						"A bulk or realm-wide erasure's: for each entry of learnerHashes, the erasure job that erased it. A learner whose " +
						"erasure was already under way when this one was asked is named by that job's id (its own receipt states it)",
				}),
			suppressed: z
				.optional(z.boolean())
				.openapi({
					description:
						"A single learner's erasure (deleteAllLearnerData): whether it left the learner suppressed (any request it " +
						"answered asked for suppression)",
				}),
			requestedBy: z.nullable(z.string()).openapi({ description: "The userEmail the erasure was requested with" }),
			requestedDate: z.string(),
			completedDate: z.string(),
			registrationsDeleted: z.int().openapi({ type: "integer" }),
			tagsRemoved: z.int().openapi({ type: "integer" }),
			keyId: z.string().openapi({ description: "The signing key's RFC 7638 thumbprint (the published key's kid)" }),
		})
		.openapi("ErasureReceiptSchema"),
);

export const SignedErasureReceiptSchema = asClassic(
	z
		.object({
			receipt: ErasureReceiptSchema,
			signature: z.string().openapi({
				description:
					"base64url (unpadded) Ed25519 signature over the UTF-8 bytes of the receipt's canonical JSON: no whitespace, every object's keys sorted by UTF-16 code units at every depth, values as JSON.stringify writes them",
			}),
			algorithm: z.literal("Ed25519"),
			keyId: z.string(),
		})
		.openapi("SignedErasureReceiptSchema"),
);

export const ReceiptKeySchema = asClassic(
	z
		.object({
			kty: z.literal("OKP"),
			crv: z.literal("Ed25519"),
			x: z.string(),
			kid: z.string().openapi({ description: "RFC 7638 thumbprint: base64url SHA-256 of {\"crv\",\"kty\",\"x\"} in canonical JSON" }),
			alg: z.literal("EdDSA"),
			use: z.literal("sig"),
		})
		.openapi("ReceiptKeySchema"),
);

// --- Subject-access exports (SPEC §12) --------------------------------------------------------------------------

const ExportedJobSchema = z.object({
	id: z.string(),
	type: z.string(),
	status: z.enum(JOB_STATUSES),
	createdDate: z.string(),
	completedDate: z.optional(z.string()),
});

export const LearnerExportSchema = asClassic(
	z
		.object({
			kind: z.literal("learner-export"),
			version: z.literal(1),
			jobId: z.string(),
			applicationId: z.string(),
			dataRegion: z.enum(["default", "eu"]),
			learnerId: z.string(),
			learnerHash: z.string().openapi({ description: "The HMAC-SHA-256 of `<appId>\\n<learnerId>` the service's job records name the learner by" }),
			requestedBy: z.nullable(z.string()).openapi({ description: "The userEmail the export was requested with" }),
			requestedDate: z.string(),
			exportedDate: z.string().openapi({ description: "When the document was assembled, at the end of the job" }),
			learner: z
				.object({
					id: z.string(),
					email: z.optional(z.string()),
					firstName: z.optional(z.string()),
					lastName: z.optional(z.string()),
					tags: z.array(z.string()).openapi({ description: "The learner's tags, in the order first applied" }),
					registrationCount: z.int().openapi({ type: "integer" }),
					suppressed: z.boolean().openapi({ description: "Whether an erasure's suppression refuses the learner id's registration" }),
				})
				.openapi({ description: "The learner's current details (as GET /learners shows them), its tags and suppression state" }),
			registrations: z
				.array(
					z.object({
						id: z.string(),
						courseId: z.string(),
						instance: z.int().openapi({ type: "integer" }),
						xapiRegistrationId: z.string(),
						createdDate: z.string(),
						updatedDate: z.string(),
						learner: z.object({ id: z.string(), email: z.optional(z.string()), firstName: z.optional(z.string()), lastName: z.optional(z.string()) }),
						tags: z.array(z.string()).openapi({ description: "The registration's tags, in the order first applied" }),
					}),
				)
				.openapi({ description: "Every registration naming the learner, in creation order, with its learner fields and tags" }),
			jobs: z.array(ExportedJobSchema).openapi({ description: "The application's jobs that named the learner (by its HMAC), in id order" }),
			keyId: z.string().openapi({ description: "The signing key's RFC 7638 thumbprint (the published key's kid)" }),
		})
		.openapi("LearnerExportSchema"),
);

const SIGNATURE_DESCRIPTION =
	"base64url (unpadded) Ed25519 signature over the UTF-8 bytes of the document's canonical JSON (as erasure receipts are signed), verifiable with /.well-known/erasure-receipt-key";

export const SignedLearnerExportSchema = asClassic(
	z
		.object({
			document: LearnerExportSchema,
			signature: z.string().openapi({ description: SIGNATURE_DESCRIPTION }),
			algorithm: z.literal("Ed25519"),
			keyId: z.string(),
		})
		.openapi("SignedLearnerExportSchema"),
);

export const RealmLearnerExportSchema = asClassic(
	z
		.object({
			kind: z.literal("learner-export-realm"),
			version: z.literal(1),
			jobId: z.string(),
			learnerId: z.string(),
			learnerHash: z.string().openapi({ description: "The realm-wide HMAC (of `\\n<learnerId>`) realm jobs name the learner by" }),
			requestedBy: z.nullable(z.string()),
			requestedDate: z.string(),
			exportedDate: z.string().openapi({ description: "When this document was assembled (at the request)" }),
			applications: z.array(LearnerExportSchema).openapi({ description: "Each application's export document, as it stored it" }),
			jobs: z.array(ExportedJobSchema).openapi({ description: "The realm jobs (realm-wide erasures and exports) that named the learner" }),
			keyId: z.string(),
		})
		.openapi("RealmLearnerExportSchema"),
);

export const SignedRealmLearnerExportSchema = asClassic(
	z
		.object({
			document: RealmLearnerExportSchema,
			signature: z.string().openapi({ description: SIGNATURE_DESCRIPTION }),
			algorithm: z.literal("Ed25519"),
			keyId: z.string(),
		})
		.openapi("SignedRealmLearnerExportSchema"),
);

export const ExportResponseSchema = asClassic(z.union([SignedLearnerExportSchema, SignedRealmLearnerExportSchema]).openapi("ExportResponseSchema"));

// --- Job lists (not in SCORM Cloud, which lists no jobs; paged as Stripe's lists are) -----------------------

/** The longest `more` a realm listing issues: its filters and one position per database (about 100 bytes each). */
const REALM_MORE_LENGTH = 16_000;

const listFilters = {
	status: z
		.optional(z.enum(JOB_STATUSES, { error: `status must be one of ${JOB_STATUSES.join(", ")}` }))
		.openapi({ param: { name: "status", in: "query" } }),
	type: z
		.optional(z.enum(JOB_TYPES, { error: `type must be one of ${JOB_TYPES.join(", ")}` }))
		.openapi({ param: { name: "type", in: "query" } }),
	since: queryDate("since", "Jobs accepted at or after this time"),
};

export const JobListQuery = asClassic(
	z.object({
		...listFilters,
		more: z
			.optional(z.string().check(z.maxLength(1024)).openapi({ maxLength: 1024 }))
			.openapi({
				param: { name: "more", in: "query" },
				description: `Paging token from the previous page (${JOBS_PER_PAGE} jobs a page); it carries the filters, which win over any sent with it`,
			}),
	}),
);

export const RealmJobListQuery = asClassic(
	z.object({
		appId: z
			.optional(z.string().check(z.minLength(1), z.maxLength(255)).openapi({ minLength: 1, maxLength: 255 }))
			.openapi({ param: { name: "appId", in: "query" }, description: "One application's jobs (its moves included); without it, every job of the realm" }),
		...listFilters,
		more: z
			.optional(z.string().check(z.maxLength(REALM_MORE_LENGTH)).openapi({ maxLength: REALM_MORE_LENGTH }))
			.openapi({
				param: { name: "more", in: "query" },
				description: `Paging token from the previous page (${JOBS_PER_PAGE} jobs a page); it carries the filters, which win over any sent with it`,
			}),
	}),
);
