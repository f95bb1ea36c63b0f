import * as z from "zod/mini";
import { asClassic } from "./openapi-meta";
import { WEBHOOK_URL_RULE } from "../jobs/webhook-destination";
import { JobSchema } from "./jobs";

/** Webhooks' schemas and the event a webhook receives (SPEC §8). */

/**
 * The URL's rule depends on a setting (WEBHOOK_ALLOW_LOCALHOST), so the route applies it with the configuration
 * (src/jobs/webhook-destination.ts); here, its type and length.
 */
export const WebhookRequestSchema = asClassic(
	z
		.object({
			url: z
				.string({ error: "url must be a string" })
				.check(z.maxLength(2048, "url must be at most 2048 characters"))
				.openapi({ maxLength: 2048, description: `Where job events are POSTed. ${WEBHOOK_URL_RULE}`, example: "https://lms.example.com/hooks/learner-service" }),
		})
		.openapi("WebhookRequestSchema"),
);

export const WebhookCreatedSchema = asClassic(
	z
		.object({
			url: z.string(),
			signingSecret: z.string().openapi({
				description:
					"The secret that signs every delivery (Standard Webhooks: whsec_ and the base64 of 32 random bytes, the HMAC key). Shown only in this answer; each PUT issues a new one, and the old one stops signing at once.",
				example: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw5P0oQUEZ3rs=",
			}),
		})
		.openapi("WebhookCreatedSchema"),
);

export const WebhookSchema = asClassic(
	z
		.object({ url: z.string(), createdDate: z.string(), updatedDate: z.string() })
		.openapi("WebhookSchema"),
);

export const JobEventSchema = asClassic(
	z
		.object({
			id: z.string().openapi({ description: "The event's id (evt_ and 32 hex digits): the same on every delivery of it; dedupe by it" }),
			type: z.enum(["job.completed", "job.failed", "webhook.test"]),
			createdDate: z.string().openapi({ description: "When the job ended (when the test was sent, for webhook.test)" }),
			// The job resource as GET /jobs/{jobId} answers it, without notification; absent in webhook.test. (A reference
			// to JobSchema in the document: a description here would inline it.)
			job: z.optional(JobSchema),
		})
		.openapi("JobEventSchema"),
);

export const WebhookTestResultSchema = asClassic(
	z
		.object({
			eventId: z.string().openapi({ description: "The test event's id (type webhook.test)" }),
			delivered: z.boolean().openapi({ description: "Whether the webhook answered 2xx within 10 seconds" }),
			status: z.optional(z.int().openapi({ type: "integer" })).openapi({ description: "The HTTP status the webhook answered" }),
			error: z
				.optional(z.string())
				.openapi({ description: "Why there was no HTTP answer (timeout, connection failure), or why the event was not sent (a stored URL the destination rule now refuses)" }),
		})
		.openapi("WebhookTestResultSchema"),
);
