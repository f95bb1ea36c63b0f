import { expect, vi } from "vitest";
import type { JobType } from "../../src/db/jobs";
import { call } from "./client";

/** Expectations the contract sets on every answer of a kind: errors, empty successes, job status, log lines. */

/** Asserts the status and a MessageSchema body (SPEC §1: `{ "message": string }`), returning the message. */
export async function expectMessage(response: Response, status: number): Promise<string> {
	expect(response.status).toBe(status);
	const body = (await response.json()) as Record<string, unknown>;
	expect(Object.keys(body)).toEqual(["message"]);
	expect(typeof body.message).toBe("string");
	return body.message as string;
}

/** Asserts a 204 with an empty body (a refusal shows its status and message). */
export async function expectNoContent(response: Response): Promise<void> {
	expect({ status: response.status, body: await response.text() }).toEqual({ status: 204, body: "" });
}

/**
 * The job id in a Location header (`/api/v2/jobs/{jobId}`), asserting its shape: `<application id>.<UUID>` for an
 * application's job (the id finds its shard), a bare UUID for a realm job (a move). With `appId`, the id must
 * name that application.
 */
export function jobIdOf(response: Response, appId?: string): string {
	const location = response.headers.get("Location") ?? "";
	expect(location).toMatch(/^\/api\/v2\/jobs\/([^/]+\.)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
	const jobId = location.slice("/api/v2/jobs/".length);
	if (appId !== undefined) expect(jobId.slice(0, jobId.lastIndexOf("."))).toBe(appId);
	return jobId;
}

/** GET /jobs/{jobId}'s body (SPEC §3, docs/jobs-and-webhooks.md: Background jobs). */
export interface JobBody {
	id: string;
	type: string;
	status: string;
	createdDate: string;
	completedDate?: string;
	registrationsAffected: number;
	tagsRemoved?: number;
	message?: string;
	notification?: { status: string; attempts: number; lastStatus?: number; lastError?: string };
	progress?: { done: number; total: number; unit: string };
}

/** GET /jobs/{jobId}, asserting the 200. */
export async function getJob(auth: string, jobId: string): Promise<JobBody> {
	const response = await call("GET", `/jobs/${jobId}`, { auth });
	expect(response.status).toBe(200);
	return (await response.json()) as JobBody;
}

/**
 * Polls GET /jobs/{jobId} until the job has finished. Miniflare delivers what the Worker sends to its own
 * queue handler, batching for up to max_batch_timeout (1 s), so a small job finishes within a few seconds.
 */
export async function waitForJob(auth: string, jobId: string, timeoutMs = 20_000): Promise<JobBody> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const job = await getJob(auth, jobId);
		if (job.status === "completed" || job.status === "failed") return job;
		if (Date.now() > deadline) throw new Error(`Job ${jobId} still ${job.status} after ${timeoutMs} ms`);
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}

/** What a completed job reports besides its id, type and dates. */
export interface Completion {
	registrationsAffected: number;
	/** Erasures and application deletions only. */
	tagsRemoved?: number;
	/** Why a job completed without doing its work (it was cancelled). */
	message?: string;
	/** The delivery of its event, when its application has a webhook (SPEC §8). */
	notification?: unknown;
}

/**
 * GET /jobs/{jobId} for a job that must have completed by now, whoever ran it (the test's own deliveries, or
 * the local queue once waitForJob returned): asserts the body is exactly that of a completed job of its type
 * with these counts, and no message unless one is given. Answers the body, for its dates.
 */
export async function completedJob(auth: string, job: { jobId: string; type: JobType }, completion: Completion): Promise<JobBody> {
	const body = await getJob(auth, job.jobId);
	expect(body).toEqual({
		id: job.jobId,
		type: job.type,
		status: "completed",
		createdDate: expect.any(String),
		completedDate: expect.any(String),
		...jobDetails(job),
		...completion,
	});
	return body;
}

/**
 * What every job answer carries besides its state (docs/jobs-and-webhooks.md, Background jobs): an application's job
 * names it (its id does too: `<appId>.<uuid>`), an update or erasure of one learner the learner's HMAC.
 */
export function jobDetails(job: { jobId: string; type: JobType }): Record<string, unknown> {
	const dot = job.jobId.lastIndexOf(".");
	return {
		...(dot > 0 && { applicationId: job.jobId.slice(0, dot) }),
		...((job.type === "updateLearnerInfo" || job.type === "deleteAllLearnerData") && { learnerHash: expect.stringMatching(/^[0-9a-f]{64}$/) }),
	};
}

/** The JSON log lines written to console.log while `run` ran (restore the spy with vi.restoreAllMocks()). */
export async function logsOf(run: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
	const spy = vi.spyOn(console, "log");
	await run();
	return spy.mock.calls.map(([line]) => JSON.parse(String(line)) as Record<string, unknown>);
}
