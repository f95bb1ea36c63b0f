import { z } from "@hono/zod-openapi";
import { SCOPES } from "./auth/scopes";
import { JOB_STATUSES, JOB_TYPES } from "./db/jobs";
import { WEBHOOK_URL_RULE } from "./jobs/webhook-destination";
import { DATA_REGIONS } from "./shards";
import { LIMITS } from "./limits";


// C0 controls, DEL and C1 controls.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
/** The same rule as a JSON Schema `pattern`, so the OpenAPI document states it too. */
const withoutCharacters = (extra = "") => `^[^\\u0000-\\u001f\\u007f-\\u009f${extra}]*$`;
const codePoints = (value: string) => [...value].length;
/**
 * JSON can escape half a surrogate pair (`"\ud800"`), which no UTF-8 column can hold: D1 would store U+FFFD
 * bytes instead, so the value could never be read back, matched or named in a URL.
 */
const isWellFormed = (value: string) => value.isWellFormed();
const notWellFormed = (label: string) => `${label} must be valid Unicode (not half a surrogate pair)`;

/**
 * A string of 1..max characters (Unicode code points, as JSON Schema's maxLength counts them) with no control
 * characters. Used for ids, tags and names.
 */
function boundedText(label: string, max: number, extra?: { pattern: RegExp; message: string; documented: string }) {
	let schema = z
		.string({ error: (issue) => (issue.input === undefined ? `${label} is required` : `${label} must be a string`) })
		.refine((value) => value.length > 0, { message: `${label} must not be empty` })
		.refine((value) => codePoints(value) <= max, { message: `${label} must be at most ${max} characters` })
		.refine((value) => !CONTROL_CHARACTERS.test(value), { message: `${label} must not contain control characters` })
		.refine(isWellFormed, { message: notWellFormed(label) });
	if (extra) {
		const { pattern, message } = extra;
		schema = schema.refine((value) => !pattern.test(value), { message });
	}
	return schema.openapi({ minLength: 1, maxLength: max, pattern: withoutCharacters(extra?.documented) });
}

export const IdSchema = (label: string) => boundedText(label, LIMITS.idLength);

export const TagSchema = boundedText("tag", LIMITS.tagLength, {
	pattern: /,/,
	message: "tag must not contain a comma (tags are filtered as comma-separated lists)",
	documented: ",",
}).openapi({ description: "1-255 characters, no control characters, no comma" });

const tagArray = z
	.array(TagSchema, { error: "tags must be an array of strings" })
	.max(LIMITS.tagsPerRequest, { message: `tags must hold at most ${LIMITS.tagsPerRequest} tags per request` });

export const MessageSchema = z.object({ message: z.string() }).openapi("MessageSchema");

export const TagListSchema = z.object({ tags: tagArray }).openapi("TagListSchema");

/**
 * TagListSchema as GET answers it: an owner holds up to 1000 tags, gathered over many requests of at most 100,
 * so the per-request bound does not apply to the answer.
 */
export const TagListResponseSchema = z
	.object({ tags: z.array(z.string()).max(LIMITS.tagsPerLearner) })
	.openapi("TagListResponseSchema");

export const BatchTagsSchema = z
	.object({
		ids: z
			.array(IdSchema("id"), { error: "ids must be an array of strings" })
			.min(1, { message: "ids must hold at least one id" })
			.max(LIMITS.idsPerBatch, { message: `ids must hold at most ${LIMITS.idsPerBatch} ids per batch` }),
		tags: tagArray,
	})
	.openapi("BatchTagsSchema");

export const BulkErasureSchema = z
	.object({
		ids: z
			.array(IdSchema("id"), { error: "ids must be an array of learner ids" })
			.min(1, { message: "ids must hold at least one learner id" })
			.max(LIMITS.idsPerBatch, { message: `ids must hold at most ${LIMITS.idsPerBatch} learner ids per request` }),
	})
	.openapi("BulkErasureSchema");

const optionalEmail = z
	.string({ error: "email must be a string" })
	.max(LIMITS.emailLength, { message: `email must be at most ${LIMITS.emailLength} characters` })
	.refine((value) => value === "" || z.email().safeParse(value).success, {
		message: "email must be a valid email address (or empty to clear it)",
	})
	.openapi({ maxLength: LIMITS.emailLength, description: "A valid address, or empty to clear it" });

const optionalName = (label: string) =>
	z
		.string({ error: `${label} must be a string` })
		.refine((value) => codePoints(value) <= LIMITS.nameLength, {
			message: `${label} must be at most ${LIMITS.nameLength} characters`,
		})
		.refine((value) => !CONTROL_CHARACTERS.test(value), { message: `${label} must not contain control characters` })
		.refine(isWellFormed, { message: notWellFormed(label) })
		.openapi({ maxLength: LIMITS.nameLength, pattern: withoutCharacters() });

/** LearnerSchema: absent or null fields mean "unchanged" in updateInfo; an empty string clears the field. */
export const LearnerSchema = z
	.object({
		id: IdSchema("learner.id"),
		email: optionalEmail.nullish(),
		firstName: optionalName("firstName").nullish(),
		lastName: optionalName("lastName").nullish(),
	})
	.openapi("LearnerSchema");

export const CreateRegistrationSchema = z
	.object({
		courseId: IdSchema("courseId"),
		registrationId: IdSchema("registrationId"),
		learner: LearnerSchema,
		learnerTags: tagArray.optional(),
		registrationTags: tagArray.optional(),
		courseTags: tagArray.optional(),
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

// --- Application management -------------------------------------------------------------------------

export const ApplicationRequestSchema = z
	.object({
		name: boundedText("name", LIMITS.nameLength),
		dataRegion: z
			.enum(DATA_REGIONS, { error: `dataRegion must be one of: ${DATA_REGIONS.join(", ")}` })
			.optional()
			.openapi({
				description:
					"Where the application's data lives: `eu` places it on a shard created in D1's EU jurisdiction. Default `default`.",
			}),
	})
	.openapi("ApplicationRequestSchema");

export const ApplicationSchema = z
	.object({
		id: z.string(),
		name: z.string(),
		createDate: z.string(),
		dataRegion: z.enum(DATA_REGIONS).openapi({ description: "The region the application's data lives in" }),
		shard: z.string().openapi({ description: "The shard database (D1 binding) holding the application's data" }),
	})
	.openapi("ApplicationSchema");

export const SuppressionListSchema = z
	.object({
		suppressions: z.array(
			z.object({
				learnerHash: z.string().openapi({ description: "HMAC-SHA-256 of `<appId>\\n<learnerId>`, hex; never the learner id" }),
				jobId: z.string().openapi({ description: "The erasure that suppressed the learner" }),
				createdDate: z.string(),
			}),
		),
	})
	.openapi("SuppressionListSchema");

/** The path parameter of the management routes about one application. */
export const ChildAppParams = z.object({
	childAppId: z.string().min(1).max(255).openapi({ param: { name: "childAppId", in: "path" } }),
});

/**
 * The URL's rule depends on a setting (WEBHOOK_ALLOW_LOCALHOST), so the route applies it with the configuration
 * (src/jobs/webhook-destination.ts); here, its type and length.
 */
export const WebhookRequestSchema = z
	.object({
		url: z
			.string({ error: "url must be a string" })
			.max(2048, "url must be at most 2048 characters")
			.openapi({ description: `Where job events are POSTed. ${WEBHOOK_URL_RULE}`, example: "https://lms.example.com/hooks/learner-service" }),
	})
	.openapi("WebhookRequestSchema");

export const WebhookCreatedSchema = z
	.object({
		url: z.string(),
		signingSecret: z.string().openapi({
			description:
				"The secret that signs every delivery (Learner-Service-Signature). Shown only in this answer; each PUT issues a new one, and the old one stops signing at once.",
		}),
	})
	.openapi("WebhookCreatedSchema");

export const WebhookSchema = z
	.object({ url: z.string(), createdDate: z.string(), updatedDate: z.string() })
	.openapi("WebhookSchema");

export const JobEventSchema = z
	.object({
		id: z.string().openapi({ description: "The event's id (evt_ and 32 hex digits): the same on every delivery of it; dedupe by it" }),
		type: z.enum(["job.completed", "job.failed", "webhook.test"]),
		createdDate: z.string().openapi({ description: "When the job ended (when the test was sent, for webhook.test)" }),
		job: JobSchema.optional().openapi({ description: "The job resource as GET /jobs/{jobId} answers it, without notification; absent in webhook.test" }),
	})
	.openapi("JobEventSchema");

export const WebhookTestResultSchema = z
	.object({
		eventId: z.string().openapi({ description: "The test event's id (type webhook.test)" }),
		delivered: z.boolean().openapi({ description: "Whether the webhook answered 2xx within 10 seconds" }),
		status: z.number().int().optional().openapi({ description: "The HTTP status the webhook answered" }),
		error: z
			.string()
			.optional()
			.openapi({ description: "Why there was no HTTP answer (timeout, connection failure), or why the event was not sent (a stored URL the destination rule now refuses)" }),
	})
	.openapi("WebhookTestResultSchema");

export const ApplicationMoveSchema = z
	.object({
		shard: z
			.string({ error: "shard must be a string naming a shard (a D1 binding listed in SHARDS)" })
			.min(1, "shard must name a shard")
			.max(64, "shard must be at most 64 characters"),
		allowRegionChange: z
			.boolean({ error: "allowRegionChange must be a boolean" })
			.optional()
			.openapi({ description: "Required (true) to move the application's data into another region" }),
	})
	.openapi("ApplicationMoveSchema");

export const ApplicationListSchema = z
	.object({ applications: z.array(ApplicationSchema) })
	.openapi("ApplicationListSchema");

export const CredentialRequestSchema = z
	.object({
		name: boundedText("name", LIMITS.nameLength),
		active: z.boolean({ error: "active must be a boolean" }).optional(),
	})
	.openapi("CredentialRequestSchema");

export const CredentialUpdateSchema = z
	.object({
		name: boundedText("name", LIMITS.nameLength).optional(),
		active: z.boolean({ error: "active must be a boolean" }).optional(),
	})
	.refine((body) => body.name !== undefined || body.active !== undefined, {
		message: "Provide name, active, or both",
	})
	.openapi("CredentialUpdateSchema");

const CredentialStatus = z.enum(["Enabled", "Disabled"]);

export const CredentialCreatedSchema = z
	.object({ id: z.string(), name: z.string(), credential: z.string(), status: CredentialStatus })
	.openapi("CredentialCreatedSchema");

export const CredentialSchema = z
	.object({ id: z.string(), name: z.string(), status: CredentialStatus, createDate: z.string() })
	.openapi("CredentialSchema");

export const CredentialListSchema = z
	.object({ credentials: z.array(CredentialSchema) })
	.openapi("CredentialListSchema");

export const EmailSchema = z
	.string()
	.max(LIMITS.emailLength, { message: `email must be at most ${LIMITS.emailLength} characters` })
	.pipe(z.email({ message: "email must be a valid email address" }))
	.openapi({ maxLength: LIMITS.emailLength });

export const RealmUserRole = z.enum(["owner", "admin", "member"], {
	error: 'role must be one of "owner", "admin", "member"',
});

export const RealmUserRequestSchema = z.object({ role: RealmUserRole }).openapi("RealmUserRequestSchema");

export const RealmUserListSchema = z
	.object({ users: z.array(z.object({ email: z.string(), role: RealmUserRole })) })
	.openapi("RealmUserListSchema");

export const TokenRequestSchema = z
	.object({
		scope: z
			.string({ error: "scope is required" })
			.trim()
			.min(1, { message: "scope is required" })
			.openapi({ description: `Space-separated scopes: ${SCOPES.join(", ")}` }),
		expiration: z
			.string()
			.regex(/^\d+$/, { message: "expiration must be a whole number of seconds" })
			.transform(Number)
			.pipe(
				z
					.number()
					.int()
					.min(1, { message: "expiration must be at least 1 second" })
					.max(LIMITS.tokenExpirationMax, {
						message: `expiration must be at most ${LIMITS.tokenExpirationMax} seconds`,
					}),
			)
			.optional()
			.openapi({ type: "integer", minimum: 1, maximum: LIMITS.tokenExpirationMax, default: 300 }),
	})
	.openapi("TokenFormSchema");

export const TokenSchema = z
	.object({ access_token: z.string(), expires_in: z.number().int(), token_type: z.literal("Bearer") })
	.openapi("ApplicationToken");

export const TokenPermissionsRequestSchema = z
	.object({
		permissions: z.object({
			scopes: z
				.array(z.string().max(64), { error: "permissions.scopes must be an array of scope names" })
				.min(1, { message: "permissions.scopes must name at least one scope" })
				.max(SCOPES.length * 4),
			applicationName: z.string().max(LIMITS.nameLength).optional(),
		}),
		expiry: z.iso.datetime({ offset: true, message: "expiry must be an ISO-8601 date-time" }),
	})
	.openapi("TokenRequestSchema");

export const StringResultSchema = z.object({ result: z.string() }).openapi("StringResultSchema");

export const PingSchema = z.object({ apiMessage: z.string(), currentTime: z.string() }).openapi("PingSchema");
export const AboutSchema = z.object({ version: z.string(), distribution: z.string() }).openapi("AboutSchema");

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
