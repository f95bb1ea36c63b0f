import { z } from "@hono/zod-openapi";
import { createRouter } from "../context";
import { getJob, getJobById } from "../db/jobs";
import { ApiError, notFound } from "../errors";
import { declareRoute, json } from "../http/route";
import { receiptPublicKey, signErasureReceipt } from "../receipts";
import { ReceiptKeySchema, SignedErasureReceiptSchema } from "../schemas";

/** Signed erasure receipts (SPEC §9) and the public key that verifies them (src/receipts.ts). */
export const receiptRoutes = createRouter();

const JobParams = z.object({
	jobId: z.string().min(1).max(64).openapi({ param: { name: "jobId", in: "path" } }),
});

receiptRoutes.openapi(
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
		const job = c.var.management ? await getJobById(c.var.db, jobId) : await getJob(c.var.db, c.var.auth.appId, jobId);
		if (!job) throw notFound(`Job [${jobId}] was not found`);
		if (job.type !== "deleteAllLearnerData") {
			throw notFound(`Job [${jobId}] is not an erasure (deleteAllLearnerData): only erasures have receipts`);
		}
		if (job.status !== "completed" || job.completedAt === null) {
			throw new ApiError(409, `Erasure [${jobId}] is ${job.status}: a receipt is issued once it has completed`);
		}
		const signed = await signErasureReceipt(c.var.config.receiptSigningKey, { ...job, completedAt: job.completedAt });
		return c.json({ receipt: signed.receipt, signature: signed.signature, algorithm: "Ed25519" as const, keyId: signed.keyId }, 200);
	},
);

receiptRoutes.openapi(
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
