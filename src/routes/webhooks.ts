import * as z from "zod/mini";
import { asClassic } from "../schemas/openapi-meta";
import { appendAfter, auditRecord } from "../audit";
import { toHex } from "../auth/crypto";
import { createRouter } from "../context";
import { markWebhookPossible } from "../db/app-storage";
import { findPlacement } from "../db/applications";
import { retryTransient } from "../db/retry";
import { type Db, nowIso } from "../db/types";
import { deleteWebhook, getWebhook, putWebhook } from "../db/webhooks";
import { ApiError, appNotFound, badRequest, notFound } from "../errors";
import { newSigningSecret, openSecret, sealSecret } from "../jobs/webhook-secret";
import { webhookUrlProblem } from "../jobs/webhook-destination";
import { isDelivered, postEvent, unsendable } from "../jobs/webhooks";
import { ChildAppParams } from "../schemas/management";
import { JobEventSchema, WebhookCreatedSchema, WebhookRequestSchema, WebhookSchema, WebhookTestResultSchema } from "../schemas/webhooks";
import { declareRoute, json, jsonBody } from "../http/route";
import { shardDatabase } from "../shards";

/**
 * Webhooks (SPEC §8, not in SCORM Cloud): an application's endpoint for job.completed and job.failed events, set
 * and read with the management credentials. Delivery: src/jobs/webhooks.ts.
 */

const tags = ["ApplicationManagement"];
const PATH = "/appManagement/{childAppId}/webhook";

const noWebhook = (appId: string) => notFound(`Application [${appId}] has no webhook`);

export const webhookRoutes = createRouter();

// What the service POSTs to a webhook (OpenAPI 3.1 `webhooks`): src/jobs/webhooks.ts sends it.
webhookRoutes.openAPIRegistry.registerWebhook({
	method: "post",
	path: "jobEvent",
	operationId: "jobEvent",
	// The receiver authenticates the service by the signature, not by credentials.
	security: [],
	tags,
	summary: "A job of the application ended: POSTed to its webhook",
	description:
		"Sent for every job of the application that completes or fails, and by POST .../webhook/test. Signed as the " +
		"Standard Webhooks specification says (https://www.standardwebhooks.com), so any of its libraries verifies it " +
		"with the signing secret (`new Webhook(secret).verify(body, headers)`): webhook-signature is " +
		"v1,<base64 HMAC-SHA-256 of \"<webhook-id>.<webhook-timestamp>.<body>\"> under the key the secret's base64 " +
		"(after whsec_) encodes. Check it before trusting the body, and reject a timestamp far from now (the libraries " +
		"allow 5 minutes). A 2xx within 10 s delivers the event; anything else is retried (30 s doubling, up to every " +
		"4 hours) for 24 hours. At least once: dedupe by webhook-id (the event id). A secret issued before this scheme " +
		"(whsec_ and 43 base64url characters) also gets the former Learner-Service-Signature and Learner-Service-Event-Id headers.",
	request: {
		headers: asClassic(z.object({
			"webhook-id": z.string().openapi({ description: "The event's id, as in the body: dedupe by it", example: "evt_0f9d4c2a6b8e4f1a9c3d5e7f1a2b3c4d" }),
			"webhook-timestamp": z.string().openapi({ description: "When this attempt was signed, unix seconds", example: "1764583200" }),
			"webhook-signature": z.string().openapi({
				description: 'v1, then the base64 HMAC-SHA-256 of "<webhook-id>.<webhook-timestamp>.<body>" under the secret\'s key',
				example: "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
			}),
		})),
		body: jsonBody(JobEventSchema),
	},
	responses: { 200: { description: "Any 2xx delivers the event; anything else (a redirect too) is retried" } },
});

webhookRoutes.openapi(
	declareRoute({
		method: "put",
		path: PATH,
		tags,
		operationId: "setWebhook",
		summary: "Set an application's webhook; answers its new signing secret, once",
		description:
			"Not in SCORM Cloud (SPEC §8). Every job of the application that ends (each type) is POSTed to the URL as " +
			'{ "id": eventId, "type": "job.completed" | "job.failed", "createdDate", "job": <the job resource> }, signed ' +
			"as Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature; see the jobEvent webhook): any Standard " +
			"Webhooks library verifies it with the signing secret. A 2xx within 10 s delivers it; otherwise it is retried with exponential backoff for 24 hours. " +
			"Deliveries are at least once: dedupe by event id. PUT again to change the URL; each PUT issues a new secret. " +
			"The URL must be https: to a public destination (see the url field); a URL refused by that rule is answered 400 naming url.",
		access: "management",
		request: { params: ChildAppParams, body: jsonBody(WebhookRequestSchema) },
		errors: [404],
		responses: { 200: json(WebhookCreatedSchema, "The webhook and its signing secret (shown only here)") },
	}),
	async (c) => {
		const { childAppId } = c.req.valid("param");
		const { url } = c.req.valid("json");
		const problem = webhookUrlProblem(url, { allowLocalhost: c.var.config.webhookAllowLocalhost });
		if (problem) throw badRequest(problem);
		// First, on its shard: the application's jobs' ends create events to deliver from here on, so none ending once
		// this answer is given is missed (src/db/app-storage.ts, markWebhookPossible).
		const placement = await retryTransient(() => findPlacement(c.var.db, childAppId));
		if (!placement || placement.deletedAt !== null) throw appNotFound(childAppId);
		if ((await retryTransient(() => markWebhookPossible(shardDatabase(c.env, placement.shard), childAppId))) === "moving") {
			throw new ApiError(503, `Application ${childAppId} is moving between shards; retry after 2 seconds (nothing was written)`, {
				"Retry-After": "2",
			});
		}
		const secret = newSigningSecret();
		const sealed = await sealSecret(c.env.LEARNER_HASH_KEY, childAppId, secret);
		const audit = auditRecord(c, "webhook.set", { applicationId: childAppId });
		if (!(await putWebhook(c.var.db, childAppId, url, sealed, nowIso(), audit))) throw appNotFound(childAppId);
		return c.json({ url, signingSecret: secret }, 200);
	},
);

/** A live application's webhook, or 404 naming what is missing. */
async function liveWebhook(db: Db, appId: string) {
	const [placement, webhook] = await Promise.all([retryTransient(() => findPlacement(db, appId)), getWebhook(db, appId)]);
	if (!placement || placement.deletedAt !== null) throw appNotFound(appId);
	if (!webhook) throw noWebhook(appId);
	return webhook;
}

webhookRoutes.openapi(
	declareRoute({
		method: "get",
		path: PATH,
		tags,
		operationId: "getWebhook",
		summary: "An application's webhook (without its secret)",
		access: "management",
		request: { params: ChildAppParams },
		errors: [404],
		responses: { 200: json(WebhookSchema, "The webhook") },
	}),
	async (c) => {
		const webhook = await liveWebhook(c.var.db, c.req.valid("param").childAppId);
		return c.json({ url: webhook.url, createdDate: webhook.createdAt, updatedDate: webhook.updatedAt }, 200);
	},
);

webhookRoutes.openapi(
	declareRoute({
		method: "delete",
		path: PATH,
		tags,
		operationId: "deleteWebhook",
		summary: "Remove an application's webhook (deliveries under way are given up)",
		access: "management",
		request: { params: ChildAppParams },
		errors: [404],
		responses: { 204: { description: "Removed" } },
	}),
	async (c) => {
		const { childAppId } = c.req.valid("param");
		if (await deleteWebhook(c.var.db, childAppId, auditRecord(c, "webhook.delete", { applicationId: childAppId }))) return c.body(null, 204);
		const placement = await retryTransient(() => findPlacement(c.var.db, childAppId));
		throw !placement || placement.deletedAt !== null ? appNotFound(childAppId) : noWebhook(childAppId);
	},
);

webhookRoutes.openapi(
	declareRoute({
		method: "post",
		path: `${PATH}/test`,
		tags,
		operationId: "testWebhook",
		summary: "Send a signed test event (type webhook.test, no job) to the webhook now, and answer how it went",
		description:
			"A stored URL that the destination rule (PUT's url) now refuses is not fetched: the answer says why, with delivered false.",
		access: "management",
		request: { params: ChildAppParams },
		errors: [404],
		responses: { 200: json(WebhookTestResultSchema, "The attempt: delivered (2xx within 10 s) or not, and why") },
	}),
	async (c) => {
		const { childAppId } = c.req.valid("param");
		const webhook = await liveWebhook(c.var.db, childAppId);
		const secret = await openSecret(c.env.LEARNER_HASH_KEY, childAppId, webhook.sealedSecret);
		if (!secret) throw notFound(`Application [${childAppId}]'s webhook secret does not open: set the webhook again (PUT)`);
		const eventId = `evt_${toHex(crypto.getRandomValues(new Uint8Array(16)))}`;
		// Recorded before the request leaves: a test POSTs to a URL of the operator's choosing.
		await appendAfter(c, [auditRecord(c, "webhook.test", { applicationId: childAppId, eventId })]);
		// Never a request to a URL the rule refuses: this route answers the status it got, which would probe there.
		const refusal = unsendable(c.env, webhook.url);
		if (refusal) return c.json({ eventId, delivered: false, error: refusal }, 200);
		const outcome = await postEvent(webhook.url, secret, { id: eventId, type: "webhook.test", createdDate: nowIso() }, Date.now());
		return c.json(
			{
				eventId,
				delivered: isDelivered(outcome),
				...(outcome.status !== null && { status: outcome.status }),
				...(outcome.error !== null && { error: outcome.error }),
			},
			200,
		);
	},
);
