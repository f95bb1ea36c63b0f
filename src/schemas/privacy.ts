import * as z from "zod";
import "./openapi-meta";
import { AUDIT_ACTIONS } from "../db/audit";

/** Retention policies and the audit trail (SPEC §12). */

export const RetentionRequestSchema = z
	.object({
		learnerInactiveDays: z
			.number({ error: "learnerInactiveDays must be a whole number of days" })
			.int("learnerInactiveDays must be a whole number of days")
			.min(1, "learnerInactiveDays must be at least 1")
			.max(36500, "learnerInactiveDays must be at most 36500"),
	})
	.openapi("RetentionRequestSchema");

export const RetentionSchema = z
	.object({
		learnerInactiveDays: z.number().int().openapi({ description: "Learners with no write for this many days are erased by the sweeper" }),
		createdDate: z.string(),
		updatedDate: z.string(),
	})
	.openapi("RetentionSchema");

export const AuditEntrySchema = z
	.object({
		seq: z.number().int().openapi({ description: "The entry's place in the chain: 1, 2, … without gaps" }),
		at: z.string().openapi({ description: "When the action was recorded (ISO-8601; never earlier than the entry before)" }),
		actor: z.string().openapi({
			description: "`management`, `application:<appId>`, `console:<sessionId>`, or `retention-policy` (the sweeper enforcing a policy)",
		}),
		action: z.enum(AUDIT_ACTIONS),
		target: z
			.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]))
			.openapi({ description: "The ids the action was about; a learner only by its HMAC, an email only by its HMAC" }),
		requestId: z.string().openapi({ description: "The request's X-Request-Id (a sweep's id for the policy's erasures)" }),
		prevHash: z.string().openapi({ description: "The hash of the entry before (64 zeros before the first)" }),
		hash: z.string().openapi({ description: "SHA-256 (hex) of prevHash followed by the entry's canonical JSON (seq, at, actor, action, target, requestId)" }),
	})
	.openapi("AuditEntrySchema");

export const AuditListSchema = z
	.object({ entries: z.array(AuditEntrySchema), more: z.string().optional() })
	.openapi("AuditListSchema");

export const AuditHeadSchema = z
	.object({
		kind: z.literal("audit-head"),
		version: z.literal(1),
		seq: z.number().int().openapi({ description: "The newest entry's seq (0: no entry yet)" }),
		hash: z.string().openapi({ description: "The newest entry's hash (64 zeros: no entry yet)" }),
		signedDate: z.string(),
		keyId: z.string(),
	})
	.openapi("AuditHeadSchema");

export const SignedAuditHeadSchema = z
	.object({
		head: AuditHeadSchema,
		signature: z.string().openapi({
			description: "base64url Ed25519 signature over the UTF-8 bytes of the head's canonical JSON, with the receipt key (/.well-known/erasure-receipt-key)",
		}),
		algorithm: z.literal("Ed25519"),
		keyId: z.string(),
	})
	.openapi("SignedAuditHeadSchema");
