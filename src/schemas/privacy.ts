import * as z from "zod/mini";
import { asClassic } from "./openapi-meta";
import { AUDIT_ACTIONS } from "../db/audit";

/** Retention policies and the audit trail (SPEC §12). */

export const RetentionRequestSchema = asClassic(
	z
		.object({
			learnerInactiveDays: z
				.int({ error: "learnerInactiveDays must be a whole number of days" })
				.check(z.minimum(1, "learnerInactiveDays must be at least 1"), z.maximum(36500, "learnerInactiveDays must be at most 36500"))
				.openapi({ type: "integer", minimum: 1, maximum: 36500 }),
		})
		.openapi("RetentionRequestSchema"),
);

export const RetentionSchema = asClassic(
	z
		.object({
			learnerInactiveDays: z.int().openapi({ type: "integer", description: "Learners with no write for this many days are erased by the sweeper" }),
			createdDate: z.string(),
			updatedDate: z.string(),
		})
		.openapi("RetentionSchema"),
);

export const AuditEntrySchema = asClassic(
	z
		.object({
			seq: z.int().openapi({ type: "integer", description: "The entry's place in the chain: 1, 2, … without gaps" }),
			at: z.string().openapi({ description: "When the action was recorded (ISO-8601; never earlier than the entry before)" }),
			actor: z.string().openapi({
				description: "`management`, `application:<appId>`, `console:<sessionId>`, or `retention-policy` (the sweeper enforcing a policy)",
			}),
			action: z.enum(AUDIT_ACTIONS),
			target: z
				.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]))
				.openapi({
					// The generator reads a record's value schema from the method-chaining build only: stated here.
					additionalProperties: { anyOf: [{ type: "string" }, { type: "number" }, { type: "boolean" }, { type: "array", items: { type: "string" } }] },
					description: "The ids the action was about; a learner only by its HMAC, an email only by its HMAC",
				}),
			requestId: z.string().openapi({ description: "The request's X-Request-Id (a sweep's id for the policy's erasures)" }),
			prevHash: z.string().openapi({ description: "The hash of the entry before (64 zeros before the first)" }),
			hash: z.string().openapi({ description: "SHA-256 (hex) of prevHash followed by the entry's canonical JSON (seq, at, actor, action, target, requestId)" }),
		})
		.openapi("AuditEntrySchema"),
);

export const AuditListSchema = asClassic(
	z
		.object({ entries: z.array(AuditEntrySchema), more: z.optional(z.string()) })
		.openapi("AuditListSchema"),
);

export const AuditHeadSchema = asClassic(
	z
		.object({
			kind: z.literal("audit-head"),
			version: z.literal(1),
			seq: z.int().openapi({ type: "integer", description: "The newest entry's seq (0: no entry yet)" }),
			hash: z.string().openapi({ description: "The newest entry's hash (64 zeros: no entry yet)" }),
			signedDate: z.string(),
			keyId: z.string(),
		})
		.openapi("AuditHeadSchema"),
);

export const SignedAuditHeadSchema = asClassic(
	z
		.object({
			head: AuditHeadSchema,
			signature: z.string().openapi({
				description: "base64url Ed25519 signature over the UTF-8 bytes of the head's canonical JSON, with the receipt key (/.well-known/erasure-receipt-key)",
			}),
			algorithm: z.literal("Ed25519"),
			keyId: z.string(),
		})
		.openapi("SignedAuditHeadSchema"),
);
