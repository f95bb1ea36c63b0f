import * as z from "zod/mini";
import { asClassic } from "../schemas/openapi-meta";
import { appendAfter, auditRecord } from "../audit";
import type { Context } from "hono";
import { type AppEnv, createRouter } from "../context";
import { placementOf } from "../auth/placements";
import { findPlacement } from "../db/applications";
import { retryTransient } from "../db/retry";
import { JOBS_PER_PAGE, type JobListFilter, type JobListPosition, listJobs, placementsOf } from "../db/job-lists";
import { JOB_STATUSES, JOB_TYPES, type Job, bulkMembers, erasureSuppressed, getJob, getJobById, jobHome, jobProgress, realmErasureChildren } from "../db/jobs";
import type { Db } from "../db/types";
import { shardDatabase } from "../shards";
import { ApiError, appNotFound, notFound } from "../errors";
import { jobResource } from "../jobs/resource";
import { ExportGone, realmExportDocument, storedExport } from "../jobs/realm-export";
import { type Listing, decodeCursor, encodeCursor } from "../paging";
import { receiptPublicKey, signErasureReceipt } from "../receipts";
import {
	ExportResponseSchema,
	JobListQuery,
	JobListSchema,
	JobSchema,
	RealmJobListQuery,
	ReceiptKeySchema,
	SignedErasureReceiptSchema,
} from "../schemas/jobs";
import { declareRoute, json } from "../http/route";

const JobParams = asClassic(
	z.object({
		jobId: z.string().check(z.minLength(1), z.maxLength(64)).openapi({ minLength: 1, maxLength: 64, param: { name: "jobId", in: "path" } }),
	}),
);

/**
 * The job, read as the caller may see it: any application's with the management credentials, else only the
 * caller's own (another application's job does not exist for it). 404 when there is none.
 */
async function findJob(c: Context<AppEnv>, jobId: string): Promise<{ job: Job; db: Db }> {
	const found = c.var.management ? await findAnyJob(c, jobId) : { db: c.var.db, job: await getJob(c.var.db, c.var.auth.appId, jobId) };
	if (!found?.job) throw notFound(`Job [${jobId}] was not found`);
	return { job: found.job, db: found.db };
}

/**
 * Any application's job, for the management credentials: a realm job (a move) in the control database, else on
 * the shard its id names through its application's placement (cached in the isolate like a credential's).
 */
async function findAnyJob(c: Context<AppEnv>, jobId: string): Promise<{ job: Job | null; db: Db } | null> {
	const home = jobHome(jobId);
	if (home === null) return null;
	if (home === "control") return { job: await getJobById(c.var.db, jobId), db: c.var.db };
	const shard = await placementOf(c.env.DB, home.appId);
	if (!shard) return null;
	const db = shardDatabase(c.env, shard).withSession("first-unconstrained");
	return { job: await getJobById(db, jobId), db };
}

export const jobRoutes = createRouter();

jobRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/jobs/{jobId}",
		tags: ["Jobs"],
		operationId: "getJob",
		summary: "Status of an asynchronous job (learner info update, GDPR erasure, application deletion)",
		access: { scope: "read:learner", orManagement: true },
		request: { params: JobParams },
		errors: [404],
		responses: { 200: json(JobSchema, "The job") },
	}),
	async (c) => {
		const { job, db } = await findJob(c, c.req.valid("param").jobId);
		// Realm jobs (the control database) report no progress of their own.
		const progress = jobHome(job.id) === "control" ? null : await jobProgress(db, job);
		return c.json(jobResource(job, { notification: true, progress }), 200);
	},
);

// Job lists (SPEC §10; SCORM Cloud lists no jobs): newest first, signed `more` tokens carrying the filters, as
// registration paging. A bulk erasure's children are left out: the bulk job stands for them.

const position = z.object({ createdAt: z.string(), id: z.string() });
const filterShape = {
	status: z.optional(z.enum(JOB_STATUSES)),
	type: z.optional(z.enum(JOB_TYPES)),
	since: z.optional(z.string()),
};

/** Where an application's job list stopped: its filters and the last job served. */
interface JobPageCursor {
	app: string;
	filter: Omit<JobListFilter, "appId">;
	after: JobListPosition;
}

/** GET /jobs: bound to the application that asked. */
const JOB_PAGES: Listing<JobPageCursor> = {
	domain: "job-paging",
	shape: z.object({ app: z.string(), filter: z.object(filterShape), after: position }),
};

/**
 * Where the realm's job list stopped: its filters and each database's position (binding name: the last job served
 * of the merged list, from which that database's next page starts; null once it has nothing more to give).
 */
interface RealmJobPageCursor {
	/** Always "": the realm's (management) listing. */
	app: string;
	filter: JobListFilter;
	positions: Record<string, JobListPosition | null>;
}

/** GET /appManagement/jobs: signed under a domain of its own (a token of one listing answers 400 on the other). */
const REALM_JOB_PAGES: Listing<RealmJobPageCursor> = {
	domain: "realm-job-paging",
	shape: z.object({
		app: z.string(),
		filter: z.object({ appId: z.optional(z.string()), ...filterShape }),
		positions: z.record(z.string(), z.nullable(position)),
	}),
};

const listed = (job: Job) => jobResource(job, { notification: true });

jobRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/jobs",
		tags: ["Jobs"],
		operationId: "getJobs",
		summary: "The application's jobs, newest first",
		description:
			`Not in SCORM Cloud, which lists no jobs. The calling application's jobs (updates, erasures, bulk erasures), newest ` +
			`first (by acceptance time, then id), ${JOBS_PER_PAGE} a page, optionally of one status or type or accepted since a ` +
			"time. A bulk erasure's children (one erasure per learner, run by it) are left out: the bulk job stands for them. " +
			"`more` is signed, bound to the application and carries the first page's filters. One D1 call; a page reads about " +
			"as many rows as it returns (an index range per filter), except with both status and type, where the range of one " +
			"is read until the page holds enough jobs of the other.",
		access: { scope: "read:learner" },
		request: { query: JobListQuery },
		responses: { 200: json(JobListSchema, "A page of jobs; `more` fetches the next") },
	}),
	async (c) => {
		const query = c.req.valid("query");
		const { appId } = c.var.auth;
		const secret = c.env.TOKEN_SIGNING_SECRET;
		const cursor: Omit<JobPageCursor, "after"> & { after: JobListPosition | null } = query.more
			? await decodeCursor(secret, JOB_PAGES, query.more, appId)
			: { app: appId, filter: { status: query.status, type: query.type, since: query.since }, after: null };
		const jobs = await listJobs(c.var.db, { ...cursor.filter, appId }, cursor.after, JOBS_PER_PAGE + 1);
		const page = jobs.slice(0, JOBS_PER_PAGE);
		const last = page.at(-1);
		const more =
			jobs.length > JOBS_PER_PAGE && last
				? await encodeCursor(secret, JOB_PAGES, { app: appId, filter: cursor.filter, after: { createdAt: last.createdAt, id: last.id } })
				: undefined;
		return c.json({ jobs: page.map(listed), ...(more && { more }) }, 200);
	},
);

/** Newest first: by acceptance time, then id (the order of every database's listing indexes). */
const newestFirst = (a: Job, b: Job) =>
	a.createdAt === b.createdAt ? (a.id < b.id ? 1 : a.id > b.id ? -1 : 0) : a.createdAt < b.createdAt ? 1 : -1;

jobRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/appManagement/jobs",
		tags: ["Jobs"],
		operationId: "getRealmJobs",
		summary: "The realm's jobs, newest first: every application's, moves and realm-wide erasures included",
		description:
			`Not in SCORM Cloud. Every job of the realm, newest first, ${JOBS_PER_PAGE} a page: each shard's jobs of its ` +
			"applications and the control database's realm jobs (moves, realm-wide erasures), merged. `appId` keeps one " +
			"application's (on its shard, with its moves); status, type and since as GET /jobs. A bulk erasure's children are " +
			"left out. `more` is signed and holds each database's position, so the next page reads each database from where " +
			"the merged page stopped, and no more a database that has nothing left. D1 calls: one per database (the control " +
			"database and every shard, at once); with appId, the application's placement (cached in the isolate) then two at " +
			"once. Each database's page reads about as many rows as it returns, as GET /jobs; a page reads at most " +
			`${JOBS_PER_PAGE + 1} jobs of each database. 404 for an unknown appId.`,
		access: "management",
		request: { query: RealmJobListQuery },
		errors: [404],
		responses: { 200: json(JobListSchema, "A page of jobs; `more` fetches the next") },
	}),
	async (c) => {
		const query = c.req.valid("query");
		const secret = c.env.TOKEN_SIGNING_SECRET;
		const cursor: RealmJobPageCursor | null = query.more ? await decodeCursor(secret, REALM_JOB_PAGES, query.more, "") : null;
		const filter: JobListFilter = cursor?.filter ?? { appId: query.appId, status: query.status, type: query.type, since: query.since };
		// The databases to read: the control database (realm jobs), and every shard or the application's.
		let shards = c.var.config.shards.map((shard) => shard.name);
		if (filter.appId !== undefined) {
			const shard = await placementOf(c.env.DB, filter.appId);
			if (!shard) throw appNotFound(filter.appId);
			shards = [shard];
		}
		const databases = ["DB", ...shards];
		const pages = await Promise.all(
			databases.map(async (name) => {
				const at = cursor ? cursor.positions[name] : undefined;
				// Nothing more there (null), or a database the cursor did not know (added since): nothing older to show.
				if (cursor && !at) return { name, jobs: [] as Job[] };
				const db = name === "DB" ? c.var.db : shardDatabase(c.env, name).withSession("first-unconstrained");
				return { name, jobs: await listJobs(db, filter, at ?? null, JOBS_PER_PAGE + 1) };
			}),
		);
		const candidates = pages.flatMap((page) => page.jobs.map((job) => ({ job, database: page.name }))).sort((a, b) => newestFirst(a.job, b.job));
		const served = await withoutCopies(c, candidates);
		const page = served.slice(0, JOBS_PER_PAGE);
		const last = page.at(-1)?.job;
		let more: string | undefined;
		if (served.length > JOBS_PER_PAGE && last) {
			// Every job newer than the last one served was served (each database gave its newest JOBS_PER_PAGE + 1):
			// each database goes on from there, unless all it gave was served and it had no more.
			const stop: JobListPosition = { createdAt: last.createdAt, id: last.id };
			const positions = Object.fromEntries(
				pages.map(({ name, jobs }) => {
					const finishedBefore = cursor !== null && !cursor.positions[name];
					const allServed = jobs.length <= JOBS_PER_PAGE && jobs.every((job) => newestFirst(job, last) <= 0);
					return [name, finishedBefore || allServed ? null : stop];
				}),
			);
			more = await encodeCursor(secret, REALM_JOB_PAGES, { app: "", filter, positions });
		}
		return c.json({ jobs: page.map((entry) => listed(entry.job)), ...(more && { more }) }, 200);
	},
);

/**
 * The candidates without the second copy of a job: while an application moves, its jobs are on both shards for a
 * while (copied, then deleted from the old one). The copy on the shard its placement names now is the one kept.
 */
async function withoutCopies(c: Context<AppEnv>, candidates: { job: Job; database: string }[]): Promise<{ job: Job; database: string }[]> {
	const seen = new Map<string, { job: Job; database: string }[]>();
	for (const candidate of candidates) seen.set(candidate.job.id, [...(seen.get(candidate.job.id) ?? []), candidate]);
	const copied = [...seen.values()].filter((copies) => copies.length > 1);
	if (copied.length === 0) return candidates;
	const placements = await placementsOf(c.var.db, [...new Set(copied.map((copies) => copies[0]?.job.appId ?? ""))]);
	return candidates.filter((candidate) => {
		const copies = seen.get(candidate.job.id) ?? [];
		if (copies.length < 2) return true;
		const current = copies.find((copy) => copy.database === placements.get(copy.job.appId)) ?? copies[0];
		return candidate === current;
	});
}

// Signed erasure receipts (SPEC §9) and the public key that verifies them (src/receipts.ts).
jobRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/jobs/{jobId}/receipt",
		tags: ["Jobs"],
		operationId: "getJobReceipt",
		summary: "Signed receipt of a completed erasure (deleteAllLearnerData)",
		description:
			"A completed erasure's receipt: job, application, the learner id's HMAC (never the id), requester, dates and " +
			"counts, with an Ed25519 signature over the UTF-8 bytes of the receipt's canonical JSON (no whitespace; " +
			"object keys sorted by UTF-16 code units at every depth), verifiable with the key at " +
			"/.well-known/erasure-receipt-key. 404 for an unknown job, another application's, and a job of another " +
			"type (only erasures have receipts); 409 for an erasure that has not completed (queued, running or failed).",
		access: { scope: "read:learner", orManagement: true },
		request: { params: JobParams },
		errors: [404, 409],
		responses: { 200: json(SignedErasureReceiptSchema, "The receipt and its signature") },
	}),
	async (c) => {
		const { jobId } = c.req.valid("param");
		const { job, db } = await findJob(c, jobId);
		if (job.type !== "deleteAllLearnerData" && job.type !== "deleteLearnersData" && job.type !== "deleteRealmLearnerData") {
			throw notFound(`Job [${jobId}] is not an erasure (deleteAllLearnerData, deleteLearnersData, deleteRealmLearnerData): only erasures have receipts`);
		}
		if (job.status !== "completed" || job.completedAt === null) {
			throw new ApiError(409, `Erasure [${jobId}] is ${job.status}: a receipt is issued once it has completed`);
		}
		// A bulk erasure's receipt names each of its learners' HMACs, a realm-wide erasure's each application's HMAC
		// of the learner (its own learnerHash is the realm's); both name the erasure job that erased each.
		const members =
			job.type === "deleteLearnersData"
				? await bulkMembers(db, job.id)
				: job.type === "deleteRealmLearnerData"
					? realmErasureChildren(job).map((child) => ({ learnerHash: child.learnerHash, jobId: child.jobId }))
					: null;
		const parts = members
			? { learnerHashes: members.map((member) => member.learnerHash), erasureJobIds: members.map((member) => member.jobId) }
			: { suppressed: erasureSuppressed(job) };
		const signed = await signErasureReceipt(c.var.config.receiptSigningKey, { ...job, completedAt: job.completedAt }, parts);
		return c.json({ receipt: signed.receipt, signature: signed.signature, algorithm: "Ed25519" as const, keyId: signed.keyId }, 200);
	},
);

// Subject-access exports' documents (SPEC §12): src/jobs/export.ts makes them, src/jobs/realm-export.ts a realm's.
jobRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/jobs/{jobId}/export",
		tags: ["Jobs"],
		operationId: "getJobExport",
		summary: "The signed document of a completed export (exportLearnerData)",
		description:
			"Not in SCORM Cloud (SPEC §12). An application's export: `{ document, signature, algorithm, keyId }`, the " +
			"document holding everything the service kept naming the learner in that application, signed with Ed25519 over " +
			"its canonical JSON as erasure receipts are (the key at /.well-known/erasure-receipt-key). A realm-wide export " +
			"(management credentials): the realm's document, holding each application's. 409 until the export has completed " +
			"(queued, running, failed); 404 for an unknown job, another application's, a job of another type, and an export " +
			"that is gone: EXPORT_RETENTION_DAYS (default 7) after it completed, or once the learner's erasure or the " +
			"application's deletion was accepted (a realm's: in any of its applications). Each " +
			"download is recorded in the audit trail.",
		access: { scope: "admin", orManagement: true },
		request: { params: JobParams },
		errors: [404, 409],
		responses: { 200: json(ExportResponseSchema, "The signed export document") },
	}),
	async (c) => {
		const { jobId } = c.req.valid("param");
		const { job, db } = await findJob(c, jobId);
		if (job.type !== "exportLearnerData") throw notFound(`Job [${jobId}] is not an export (exportLearnerData)`);
		if (job.status !== "completed") {
			throw new ApiError(409, `Export [${jobId}] is ${job.status}: its document can be fetched once it has completed`);
		}
		const gone = (why: string) => notFound(`The document of export [${jobId}] is gone: ${why}`);
		const retention = c.var.config.exportRetentionMs;
		let body: z.infer<typeof ExportResponseSchema>;
		if (jobHome(job.id) === "control") {
			try {
				body = await realmExportDocument(c.env, db, job, retention, Date.now());
			} catch (error) {
				if (error instanceof ExportGone) throw gone(error.message);
				throw error;
			}
		} else {
			// The management credentials reach any application's export: not one whose deletion the control database has
			// accepted, even before the deletion's shard half has fenced it there (one more D1 call, theirs alone).
			if (c.var.management) {
				const placement = await retryTransient(() => findPlacement(c.env.DB, job.appId));
				if (!placement || placement.deletedAt !== null) throw gone("its application's deletion was accepted");
			}
			const stored = await storedExport(c.env, db, job, retention, Date.now());
			if (!stored) throw gone("its learner was erased, or its retention passed");
			body = stored;
		}
		await appendAfter(c, [auditRecord(c, "export.download", { jobId, ...(jobHome(job.id) !== "control" && { applicationId: job.appId }) })]);
		c.header("Cache-Control", "no-store");
		return c.json(body, 200);
	},
);

jobRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/.well-known/erasure-receipt-key",
		tags: ["Jobs"],
		operationId: "getErasureReceiptKey",
		summary: "The public key (JWK) that verifies erasure receipts",
		description: "The Ed25519 public key as a JWK (RFC 8037); its kid is the RFC 7638 thumbprint, the receipts' keyId.",
		access: "public",
		responses: { 200: json(ReceiptKeySchema, "The public JWK") },
	}),
	async (c) => c.json(await receiptPublicKey(c.var.config.receiptSigningKey), 200),
);
