import * as z from "zod/mini";
import { asClassic } from "./openapi-meta";
import { DATA_REGIONS } from "../shards";

/** Realm-wide reads for operators (not in SCORM Cloud): usage against the limits and the capacity plan, and where a learner is held. */

export const ApplicationUsageEntrySchema = asClassic(
	z
		.object({
			id: z.string(),
			name: z.string(),
			dataRegion: z.enum(DATA_REGIONS),
			shard: z.string().openapi({ description: "The shard its placement names" }),
			storedRows: z.int().openapi({ type: "integer", description: "Registrations, learner tags and registration tags it stores (the quota's unit)" }),
			rowQuota: z.int().openapi({ type: "integer", description: "APP_ROW_QUOTA: the rows it may store" }),
			writesThisMinute: z.int().openapi({ type: "integer", description: "Rows its writes touched in the current minute (a batch costs ids × tags)" }),
			writeBudget: z.int().openapi({ type: "integer", description: "APP_WRITE_BUDGET: the rows its writes may touch per minute" }),
			registrations: z.int().openapi({ type: "integer" }),
			learners: z.int().openapi({ type: "integer", description: "Distinct learner ids its registrations name" }),
		})
		.openapi("ApplicationUsageEntrySchema"),
);

export const JobActivitySchema = asClassic(
	z
		.object({
			since: z.string().openapi({ description: "The start of the first hour counted (the hour 23 hours before the current one)" }),
			hours: z
				.array(z.object({ hour: z.string().openapi({ description: "The hour's start (UTC)" }), completed: z.int().openapi({ type: "integer" }), failed: z.int().openapi({ type: "integer" }) }))
				.openapi({ description: "24 entries, oldest first, the current hour last: jobs that finished in each (a bulk erasure counts once)" }),
			queued: z.int().openapi({ type: "integer", description: "Jobs waiting for a worker now" }),
			running: z.int().openapi({ type: "integer", description: "Jobs under way now" }),
		})
		.openapi("JobActivitySchema"),
);

export const WebhookDeliveriesSchema = asClassic(
	z
		.object({
			since: z.string(),
			delivered: z.int().openapi({ type: "integer" }),
			failed: z.int().openapi({ type: "integer", description: "Given up after 24 hours of retries" }),
			pending: z.int().openapi({ type: "integer", description: "Still being delivered (retried with growing delays)" }),
			noWebhook: z.int().openapi({ type: "integer", description: "Jobs whose application had no webhook when they ended" }),
		})
		.openapi({
			description: "What became of the events of the jobs that finished since `since` (one event per job; a bulk erasure's children have none)",
		}),
);

export const ShardUsageSchema = asClassic(
	z
		.object({
			name: z.string(),
			region: z.enum(DATA_REGIONS),
			open: z.boolean().openapi({ description: "Whether new applications are placed there" }),
			applications: z.int().openapi({ type: "integer", description: "Live applications placed there" }),
			storedRows: z.int().openapi({ type: "integer", description: "Rows stored there, every application's (one moving in or out counts on both shards)" }),
			registrations: z.int().openapi({ type: "integer" }),
			estimatedBytes: z.int().openapi({ type: "integer", description: "registrations × bytesPerRegistration + the other stored rows × bytesPerTagRow (capacityPlan); jobs and keys not counted" }),
			capacityBytes: z.int().openapi({ type: "integer", description: "The capacity plan's figure per shard (capacityPlan.shardCapacityBytes)" }),
		})
		.openapi("ShardUsageSchema"),
);

export const CapacityPlanSchema = asClassic(
	z
		.object({
			bytesPerRegistration: z.int().openapi({ type: "integer", description: "Measured (docs/shards.md, Capacity plan): a registration with its index entries" }),
			bytesPerTagRow: z.int().openapi({ type: "integer", description: "Measured: a learner or registration tag with its index entries (their mean)" }),
			shardCapacityBytes: z.int().openapi({ type: "integer", description: "What the plan fills a shard to: 80 % of D1's 10 GB per database" }),
		})
		.openapi("CapacityPlanSchema"),
);

export const RealmUsageSchema = asClassic(
	z
		.object({
			generatedDate: z.string(),
			applications: z.array(ApplicationUsageEntrySchema).openapi({ description: "Every live application, oldest first" }),
			jobs: JobActivitySchema,
			webhookDeliveries: WebhookDeliveriesSchema,
			shards: z.array(ShardUsageSchema),
			capacityPlan: CapacityPlanSchema,
		})
		.openapi("RealmUsageSchema"),
);

export const ApplicationUsageSchema = asClassic(
	z
		.object({
			generatedDate: z.string(),
			application: ApplicationUsageEntrySchema,
			jobs: JobActivitySchema,
			webhookDeliveries: WebhookDeliveriesSchema,
		})
		.openapi("ApplicationUsageSchema"),
);

export const LearnerHoldersSchema = asClassic(
	z
		.object({
			applications: z.array(
				z.object({
					id: z.string(),
					name: z.string(),
					dataRegion: z.enum(DATA_REGIONS),
					shard: z.string(),
					registrations: z.int().openapi({ type: "integer", description: "The learner's registrations there" }),
				}),
			),
		})
		.openapi("LearnerHoldersSchema"),
);
