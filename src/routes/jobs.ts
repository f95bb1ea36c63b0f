import * as z from "zod";
import "../schemas/openapi-meta";
import { appendAfter, auditRecord } from "../audit";
import type { Context } from "hono";
import { type AppEnv, createRouter } from "../context";
import { placementOf } from "../auth/placements";
import { type Job, bulkMembers, erasureSuppressed, getJob, getJobById, jobHome, jobProgress, realmErasureChildren } from "../db/jobs";
import type { Db } from "../db/types";
import { shardDatabase } from "../shards";
import { ApiError, notFound } from "../errors";
import { jobResource } from "../jobs/resource";
import { ExportGone, realmExportDocument, storedExport } from "../jobs/realm-export";
import { receiptPublicKey, signErasureReceipt } from "../receipts";
import { ExportResponseSchema, JobSchema, ReceiptKeySchema, SignedErasureReceiptSchema } from "../schemas/jobs";
import { declareRoute, json } from "../http/route";

const JobParams = z.object({
	jobId: z.string().min(1).max(64).openapi({ param: { name: "jobId", in: "path" } }),
});

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
			"that is gone: EXPORT_RETENTION_DAYS (default 7) after it completed, or once the learner was erased. Each " +
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
			const stored = await storedExport(c.env, job, retention, Date.now());
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
