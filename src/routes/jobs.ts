import { z } from "@hono/zod-openapi";
import { createRouter } from "../context";
import { type Job, getJob, getJobById } from "../db/jobs";
import { notFound } from "../errors";
import { JobSchema } from "../schemas";
import { declareRoute, json } from "../http/route";

const JobParams = z.object({
	jobId: z.string().min(1).max(64).openapi({ param: { name: "jobId", in: "path" } }),
});

function present(job: Job): z.infer<typeof JobSchema> {
	const counted = job.type !== "updateLearnerInfo";
	return {
		id: job.id,
		type: job.type,
		status: job.status,
		createdDate: job.createdAt,
		...(job.completedAt !== null && { completedDate: job.completedAt }),
		registrationsAffected: job.registrationsAffected,
		...(counted && { tagsRemoved: job.tagsRemoved }),
		...(job.error !== null && (job.status === "failed" || job.status === "completed") && { message: job.error }),
	};
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
	const { jobId } = c.req.valid("param");
	const job = c.var.management ? await getJobById(c.var.db, jobId) : await getJob(c.var.db, c.var.auth.appId, jobId);
	if (!job) throw notFound(`Job [${jobId}] was not found`);
	return c.json(present(job), 200);
},
);
