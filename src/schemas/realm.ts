import * as z from "zod";
import "./openapi-meta";
import { DATA_REGIONS } from "../shards";

/** Realm-wide reads for operators (not in SCORM Cloud): usage against the limits and the capacity plan, and where a learner is held. */

export const ApplicationUsageEntrySchema = z
	.object({
		id: z.string(),
		name: z.string(),
		dataRegion: z.enum(DATA_REGIONS),
		shard: z.string().openapi({ description: "The shard its placement names" }),
		storedRows: z.number().int().openapi({ description: "Registrations, learner tags and registration tags it stores (the quota's unit)" }),
		rowQuota: z.number().int().openapi({ description: "APP_ROW_QUOTA: the rows it may store" }),
		writesThisMinute: z.number().int().openapi({ description: "Rows its writes touched in the current minute (a batch costs ids × tags)" }),
		writeBudget: z.number().int().openapi({ description: "APP_WRITE_BUDGET: the rows its writes may touch per minute" }),
		registrations: z.number().int(),
		learners: z.number().int().openapi({ description: "Distinct learner ids its registrations name" }),
	})
	.openapi("ApplicationUsageEntrySchema");

export const JobActivitySchema = z
	.object({
		since: z.string().openapi({ description: "The start of the first hour counted (the hour 23 hours before the current one)" }),
		hours: z
			.array(z.object({ hour: z.string().openapi({ description: "The hour's start (UTC)" }), completed: z.number().int(), failed: z.number().int() }))
			.openapi({ description: "24 entries, oldest first, the current hour last: jobs that finished in each (a bulk erasure counts once)" }),
		queued: z.number().int().openapi({ description: "Jobs waiting for a worker now" }),
		running: z.number().int().openapi({ description: "Jobs under way now" }),
	})
	.openapi("JobActivitySchema");

export const WebhookDeliveriesSchema = z
	.object({
		since: z.string(),
		delivered: z.number().int(),
		failed: z.number().int().openapi({ description: "Given up after 24 hours of retries" }),
		pending: z.number().int().openapi({ description: "Still being delivered (retried with growing delays)" }),
		noWebhook: z.number().int().openapi({ description: "Jobs whose application had no webhook when they ended" }),
	})
	.openapi({
		description: "What became of the events of the jobs that finished since `since` (one event per job; a bulk erasure's children have none)",
	});

export const ShardUsageSchema = z
	.object({
		name: z.string(),
		region: z.enum(DATA_REGIONS),
		open: z.boolean().openapi({ description: "Whether new applications are placed there" }),
		applications: z.number().int().openapi({ description: "Live applications placed there" }),
		storedRows: z.number().int().openapi({ description: "Rows stored there, every application's (one moving in or out counts on both shards)" }),
		registrations: z.number().int(),
		estimatedBytes: z
			.number()
			.int()
			.openapi({ description: "registrations × bytesPerRegistration + the other stored rows × bytesPerTagRow (capacityPlan); jobs and keys not counted" }),
		capacityBytes: z.number().int().openapi({ description: "The capacity plan's figure per shard (capacityPlan.shardCapacityBytes)" }),
	})
	.openapi("ShardUsageSchema");

export const CapacityPlanSchema = z
	.object({
		bytesPerRegistration: z.number().int().openapi({ description: "Measured (docs/shards.md, Capacity plan): a registration with its index entries" }),
		bytesPerTagRow: z.number().int().openapi({ description: "Measured: a learner or registration tag with its index entries (their mean)" }),
		shardCapacityBytes: z.number().int().openapi({ description: "What the plan fills a shard to: 80 % of D1's 10 GB per database" }),
	})
	.openapi("CapacityPlanSchema");

export const RealmUsageSchema = z
	.object({
		generatedDate: z.string(),
		applications: z.array(ApplicationUsageEntrySchema).openapi({ description: "Every live application, oldest first" }),
		jobs: JobActivitySchema,
		webhookDeliveries: WebhookDeliveriesSchema,
		shards: z.array(ShardUsageSchema),
		capacityPlan: CapacityPlanSchema,
	})
	.openapi("RealmUsageSchema");

export const ApplicationUsageSchema = z
	.object({
		generatedDate: z.string(),
		application: ApplicationUsageEntrySchema,
		jobs: JobActivitySchema,
		webhookDeliveries: WebhookDeliveriesSchema,
	})
	.openapi("ApplicationUsageSchema");

export const LearnerHoldersSchema = z
	.object({
		applications: z.array(
			z.object({
				id: z.string(),
				name: z.string(),
				dataRegion: z.enum(DATA_REGIONS),
				shard: z.string(),
				registrations: z.number().int().openapi({ description: "The learner's registrations there" }),
			}),
		),
	})
	.openapi("LearnerHoldersSchema");
