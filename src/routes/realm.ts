import * as z from "zod/mini";
import { asClassic } from "../schemas/openapi-meta";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { createRouter } from "../context";
import { listApplications } from "../db/applications";
import { retryTransient } from "../db/retry";
import {
	type DatabaseUsage,
	type FinishedJobs,
	type StorageUsage,
	type UsageApplication,
	learnerRegistrations,
	realmPlacements,
	usageApplication,
	usageOf,
} from "../db/usage";
import { appNotFound, learnerNotFound } from "../errors";
import { declareRoute, json } from "../http/route";
import { ChildAppParams } from "../schemas/management";
import { ApplicationUsageSchema, LearnerHoldersSchema, RealmUsageSchema } from "../schemas/realm";
import { IdSchema } from "../schemas/text";
import { shardDatabase } from "../shards";

/**
 * Realm-wide reads for operators (not in SCORM Cloud; the console's overview and confirmation pages are drawn from
 * them): usage against the limits and the capacity plan, and which applications hold a learner. Every figure comes
 * from a counter or an index range: what each costs is in the route's description and docs/api.md ("Usage").
 */

const tags = ["ApplicationManagement"];

/**
 * The capacity plan's measured figures (docs/shards.md, "Capacity plan": `npm run capacity` on the shard schema):
 * bytes on disk per registration and per tag row (learner 216, registration 247: their mean), index entries included,
 * and what the plan fills a shard to (80 % of D1's 10 GB per database, counting GB as 10⁹ bytes).
 */
export const CAPACITY_PLAN = { bytesPerRegistration: 634, bytesPerTagRow: 232, shardCapacityBytes: 8_000_000_000 } as const;

const HOUR_MS = 3_600_000;

/** The start of the first of the 24 hours counted: the hour 23 hours before the current one. */
const firstHour = (nowMs: number) => Math.floor(nowMs / HOUR_MS) * HOUR_MS - 23 * HOUR_MS;

/** Jobs finished per hour (completed, failed), unfinished now, and their events' deliveries, from each database's usage. */
function activity(usages: DatabaseUsage[], nowMs: number) {
	const first = firstHour(nowMs);
	const since = new Date(first).toISOString();
	const hours = Array.from({ length: 24 }, (_, i) => ({ hour: new Date(first + i * HOUR_MS).toISOString(), completed: 0, failed: 0 }));
	const deliveries = { since, delivered: 0, failed: 0, pending: 0, noWebhook: 0 };
	let queued = 0;
	let running = 0;
	const add = (entry: FinishedJobs) => {
		const bucket = hours[Math.floor((Date.parse(`${entry.hour}:00:00.000Z`) - first) / HOUR_MS)];
		if (bucket) bucket[entry.status] += entry.count;
		if (entry.notify === null) deliveries.noWebhook += entry.count;
		else if (entry.notify === "delivered" || entry.notify === "failed") deliveries[entry.notify] += entry.count;
		// "new": the event waits for its application's webhook to be looked up; as good as pending.
		else deliveries.pending += entry.count;
	};
	for (const usage of usages) {
		usage.finished.forEach(add);
		queued += usage.unfinished.queued;
		running += usage.unfinished.running;
	}
	return { jobs: { since, hours, queued, running }, webhookDeliveries: deliveries };
}

/** An application's entry: its counters (zero when its shard holds no row for it yet) against the limits in force. */
function applicationEntry(c: Context<AppEnv>, app: UsageApplication, storage: StorageUsage | undefined) {
	return {
		id: app.id,
		name: app.name,
		dataRegion: app.dataRegion,
		shard: app.shard,
		storedRows: storage?.storedRows ?? 0,
		rowQuota: c.var.config.rowQuota,
		writesThisMinute: storage?.writesThisMinute ?? 0,
		writeBudget: c.var.config.writeBudget,
		registrations: storage?.registrations ?? 0,
		learners: storage?.learners ?? 0,
	};
}

/** A shard's database for reads. */
const readShard = (env: Env, name: string) => shardDatabase(env, name).withSession("first-unconstrained");

export const realmRoutes = createRouter();

realmRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/appManagement/usage",
		tags,
		operationId: "getRealmUsage",
		summary: "The realm's usage: each application against its quota and write budget, jobs and webhook deliveries over 24 hours, shard fill",
		description:
			"Not in SCORM Cloud. Each live application's stored rows against APP_ROW_QUOTA, the rows its writes touched this " +
			"minute against APP_WRITE_BUDGET, its registrations and learners (counters kept by triggers); the jobs that " +
			"finished in each of the last 24 hours (completed, failed) and those queued or running now; what became of " +
			"those jobs' webhook events; and each shard's applications, stored rows and estimated bytes against the capacity " +
			"plan's figure per shard. D1 calls: 2 on the control database at once (every application and the moves under " +
			"way; its realm jobs), then 1 per shard, all at once. Rows read: one per application (applications table) plus " +
			"one storage row per application on its shard (two for one moving: both shards); one index entry per job " +
			"finished in the last 24 hours and per job unfinished now; nothing grows with registrations or tags.",
		access: "management",
		responses: { 200: json(RealmUsageSchema, "The realm's usage") },
	}),
	async (c) => {
		const nowMs = Date.now();
		const since = new Date(firstHour(nowMs)).toISOString();
		const [{ applications, moves }, realmJobs] = await Promise.all([
			realmPlacements(c.var.db),
			usageOf(c.var.db, { jobsOf: null, storageOf: null }, since, nowMs),
		]);
		const shards = c.var.config.shards;
		const byShard = await Promise.all(
			shards.map((shard) => {
				// Jobs of the applications placed there (a moving application's are counted where it is placed, not on
				// both shards); storage of those and of any moving in or out (its rows are on both).
				const placed = applications.filter((app) => app.shard === shard.name).map((app) => app.id);
				const moving = moves.filter((move) => move.from === shard.name || move.to === shard.name).map((move) => move.appId);
				return usageOf(readShard(c.env, shard.name), { jobsOf: placed, storageOf: [...new Set([...placed, ...moving])] }, since, nowMs);
			}),
		);
		const storageOf = new Map<string, StorageUsage>();
		shards.forEach((shard, i) => {
			for (const row of byShard[i]?.storage ?? []) {
				if (applications.find((app) => app.id === row.appId)?.shard === shard.name) storageOf.set(row.appId, row);
			}
		});
		const live = applications.filter((app) => !app.deleted);
		return c.json(
			{
				generatedDate: new Date(nowMs).toISOString(),
				applications: live.map((app) => applicationEntry(c, app, storageOf.get(app.id))),
				...activity([realmJobs, ...byShard], nowMs),
				shards: shards.map((shard, i) => {
					const rows = byShard[i]?.storage ?? [];
					const storedRows = rows.reduce((sum, row) => sum + row.storedRows, 0);
					const registrations = rows.reduce((sum, row) => sum + row.registrations, 0);
					return {
						name: shard.name,
						region: shard.region,
						open: shard.open,
						applications: live.filter((app) => app.shard === shard.name).length,
						storedRows,
						registrations,
						estimatedBytes:
							registrations * CAPACITY_PLAN.bytesPerRegistration + Math.max(0, storedRows - registrations) * CAPACITY_PLAN.bytesPerTagRow,
						capacityBytes: CAPACITY_PLAN.shardCapacityBytes,
					};
				}),
				capacityPlan: CAPACITY_PLAN,
			},
			200,
		);
	},
);

realmRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/appManagement/applications/{childAppId}/usage",
		tags,
		operationId: "getApplicationUsage",
		summary: "One application's usage: stored rows, write budget, registrations, learners, jobs and webhook deliveries over 24 hours",
		description:
			"Not in SCORM Cloud. As GET /appManagement/usage for one application. D1 calls: 3 (the application, then its " +
			"shard and the control database's moves of it at once). Rows read: its application row, its storage row, one " +
			"index entry per job of it finished in the last 24 hours or unfinished now. 404 for an unknown or deleted application.",
		access: "management",
		request: { params: ChildAppParams },
		errors: [404],
		responses: { 200: json(ApplicationUsageSchema, "The application's usage") },
	}),
	async (c) => {
		const { childAppId } = c.req.valid("param");
		const nowMs = Date.now();
		const since = new Date(firstHour(nowMs)).toISOString();
		const app = await usageApplication(c.var.db, childAppId);
		if (!app || app.deleted) throw appNotFound(childAppId);
		const [moves, own] = await Promise.all([
			usageOf(c.var.db, { jobsOf: [childAppId], storageOf: null }, since, nowMs),
			usageOf(readShard(c.env, app.shard), { jobsOf: [childAppId], storageOf: [childAppId] }, since, nowMs),
		]);
		return c.json(
			{
				generatedDate: new Date(nowMs).toISOString(),
				application: applicationEntry(c, app, own.storage[0]),
				...activity([moves, own], nowMs),
			},
			200,
		);
	},
);

const RealmLearnerParams = asClassic(z.object({ learnerId: IdSchema("learnerId").openapi({ param: { name: "learnerId", in: "path" } }) }));

realmRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/appManagement/learners/{learnerId}/applications",
		tags,
		operationId: "getLearnerApplications",
		summary: "The applications holding a learner, with its registrations in each: what a realm-wide erasure would touch",
		description:
			"Not in SCORM Cloud. Every live application whose registrations name the learner (ids compared exactly), with how " +
			"many: the applications a realm-wide erasure asked now would erase it in. 404 when none holds it. D1 calls: 1 on " +
			"the control database (the applications), then 1 per shard, at once; rows read: one per application, plus the " +
			"learner's registrations (an index range per application).",
		access: "management",
		request: { params: RealmLearnerParams },
		errors: [404],
		responses: { 200: json(LearnerHoldersSchema, "The applications holding the learner, oldest first") },
	}),
	async (c) => {
		const { learnerId } = c.req.valid("param");
		const applications = await retryTransient(() => listApplications(c.var.db));
		const counts = await Promise.all(
			c.var.config.shards.map((shard) =>
				learnerRegistrations(
					readShard(c.env, shard.name),
					applications.filter((app) => app.shard === shard.name).map((app) => app.id),
					learnerId,
				),
			),
		);
		const holders = applications.flatMap((app) => {
			const registrations = counts.map((found) => found.get(app.id)).find((count) => count !== undefined);
			return registrations ? [{ id: app.id, name: app.name, dataRegion: app.dataRegion, shard: app.shard, registrations }] : [];
		});
		if (holders.length === 0) throw learnerNotFound(learnerId);
		return c.json({ applications: holders }, 200);
	},
);
