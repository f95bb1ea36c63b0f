import type { Job, JobProgress, JobStatus, JobType, NotifyStatus } from "../db/jobs";
import type { MOVE_PHASES } from "../schemas/jobs";
import type { MovePlan } from "./move";

/**
 * The job resource: what GET /jobs/{jobId} answers (src/schemas.ts JobSchema) and what a webhook event carries
 * (src/jobs/webhooks.ts). Ids, type, status, dates and counts: never personal data.
 */
export interface JobResource {
	id: string;
	type: JobType;
	status: JobStatus;
	createdDate: string;
	completedDate?: string;
	registrationsAffected: number;
	tagsRemoved?: number;
	message?: string;
	notification?: { status: Exclude<NotifyStatus, "new">; attempts: number; lastStatus?: number; lastError?: string };
	progress?: JobProgress;
	applicationId?: string;
	learnerHash?: string;
	move?: { from: string; to: string; phase: MovePhase };
}

type MovePhase = (typeof MOVE_PHASES)[number];

/** A move's own steps (src/jobs/move.ts) as the resource names them: what an operator waits on in each. */
const MOVE_PHASE: Record<MovePlan["phase"], MovePhase> = {
	prepare: "copying",
	clear: "copying",
	copy: "copying",
	catchUp: "catchingUp",
	drain: "frozen",
	verify: "frozen",
	flip: "frozen",
	linger: "lingering",
	cleanup: "cleaningUp",
	abort: "abandoning",
};

/**
 * Where the job belongs and what it is about, beyond SCORM Cloud's fields: its application, the learner's HMAC (as
 * its receipt names it: never the id), a move's shards and phase. Not the requester: an email is personal data, which
 * the resource (a webhook event's payload) never holds; an erasure's receipt states it.
 */
function detailsOf(job: Job): Partial<JobResource> {
	const plan = job.type === "moveApplication" ? (JSON.parse(job.payload ?? "null") as MovePlan | null) : null;
	return {
		...(job.appId !== "" && { applicationId: job.appId }),
		...(job.learnerHash !== null && { learnerHash: job.learnerHash }),
		...(plan && { move: { from: plan.from, to: plan.to, phase: MOVE_PHASE[plan.phase] } }),
	};
}

/** The delivery of the job's event to its application's webhook, once it is decided there is one. */
function notificationOf(job: Job): JobResource["notification"] {
	const event = job.event;
	if (!event?.status || event.status === "new") return undefined;
	return {
		status: event.status,
		attempts: event.attempts,
		...(event.lastStatus !== null && { lastStatus: event.lastStatus }),
		...(event.lastError !== null && { lastError: event.lastError }),
	};
}

/**
 * The job as a resource, with its progress when it is unfinished and one was read (src/db/jobs.ts jobProgress); an
 * event's payload leaves out the delivery of that same event (`notification`).
 */
export function jobResource(job: Job, options: { notification: boolean; progress?: JobProgress | null } = { notification: true }): JobResource {
	const counted = job.type !== "updateLearnerInfo" && job.type !== "moveApplication" && job.type !== "exportLearnerData";
	const notification = options.notification ? notificationOf(job) : undefined;
	return {
		id: job.id,
		type: job.type,
		status: job.status,
		createdDate: job.createdAt,
		...(job.completedAt !== null && { completedDate: job.completedAt }),
		registrationsAffected: job.registrationsAffected,
		...(counted && { tagsRemoved: job.tagsRemoved }),
		...(job.error !== null && (job.status === "failed" || job.status === "completed") && { message: job.error }),
		...(notification && { notification }),
		...(options.progress && { progress: options.progress }),
		...detailsOf(job),
	};
}
