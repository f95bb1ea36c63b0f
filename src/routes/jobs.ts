import { createRoute, z } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { isManagementRequest, requireScope } from "../auth/middleware";
import { type AppEnv, createRouter } from "../context";
import { type Job, getJob, getJobById } from "../db/jobs";
import { notFound } from "../errors";
import { JobSchema } from "../schemas";
import { APP_ROUTE_ERRORS, appSecurity, errors, json } from "./openapi";

const JobParams = z.object({
	jobId: z.string().min(1).max(64).openapi({ param: { name: "jobId", in: "path" } }),
});

/**
 * Job status is read by the application that started the job (read:learner), or with the realm's
 * management credentials — the only ones left that can follow an application's deletion.
 */
const readJobAuth = createMiddleware<AppEnv>(async (c, next) => {
	if (await isManagementRequest(c)) {
		c.set("management", true);
		return next();
	}
	return requireScope("read:learner")(c, next);
});

const getJobStatus = createRoute({
	method: "get",
	path: "/jobs/{jobId}",
	tags: ["Jobs"],
	operationId: "getJob",
	summary: "Status of an asynchronous job (learner info update, GDPR erasure, application deletion)",
	security: [...appSecurity("read:learner"), { APP_MANAGEMENT: [] }],
	middleware: [readJobAuth],
	request: { params: JobParams },
	responses: { 200: json(JobSchema, "The job"), ...errors(404, ...APP_ROUTE_ERRORS) },
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

export const jobRoutes = createRouter().openapi(getJobStatus, async (c) => {
	const { jobId } = c.req.valid("param");
	const job = c.var.management ? await getJobById(c.var.db, jobId) : await getJob(c.var.db, c.var.auth.appId, jobId);
	if (!job) throw notFound(`Job [${jobId}] was not found`);
	return c.json(present(job), 200);
});
