import { config } from "../config";
import { findPlacement } from "../db/applications";
import {
	type ExportClaim,
	type ExportPlan,
	type ExportedJob,
	type ExportedRegistration,
	claimExportStep,
	completeExport,
	exportJobs,
	exportLearnerState,
	exportPlan,
	exportRegistrations,
	failExport,
} from "../db/exports";
import { type Job, getJobById } from "../db/jobs";
import { retryTransient } from "../db/retry";
import { type Db, nowIso } from "../db/types";
import { receiptPublicKey, signCanonical } from "../receipts";
import { deleteExportObjects, deleteKeys, documentKey, exportBucket, listAll, partKey, purgeExports } from "./export-objects";
import { CHUNK_BOUNDS, JOB_PACE, type RunOutcome } from "./run";

/**
 * A subject-access export (SPEC §12, GDPR Art. 15/20): a job on the application's shard that gathers, chunk by
 * chunk, everything the service holds naming the learner — each registration with its learner fields and tags (as
 * many per chunk as an erasure's chunk takes), then the jobs that named the learner by its HMAC (500 a chunk) — as
 * parts in R2, then, in its last chunk, reads the learner's tags and suppression, assembles one document, signs it
 * with the receipt key and stores it beside the parts, which it deletes. Between chunks the job's row holds the
 * learner's id (as an update's does) and where it stands; the gathered data is only in R2, in the application's
 * region. Every object an attempt writes is either recorded by a claim, found by the erasure of the learner, deleted
 * by the attempt itself when its claim is refused, or deleted by the sweeper (src/jobs/sweeper.ts).
 */

/** Jobs naming the learner listed per chunk (small rows: ids, type, status, dates). */
export const EXPORT_JOBS_PER_CHUNK = 500;

/**
 * The largest export: the whole document is in memory while it is assembled and signed (Ed25519 signs a message
 * whole), so it must fit well inside a Worker's 128 MB. A learner with 10 000 registrations, a few tags each, makes a
 * few MB. Enforced as the parts are gathered: a chunk whose part would take them past it writes nothing more, and the
 * next chunk fails the export and deletes what it wrote — so no export ever holds more than this in R2 (its parts; its
 * document is no larger than its parts but for the learner's own tags and a header). An object, so that a test can
 * lower it.
 */
export const EXPORT_BOUNDS = { maxBytes: 64 * 1024 * 1024 };

/** The exported document (src/schemas/jobs.ts LearnerExportSchema). */
export type LearnerExport = {
	kind: "learner-export";
	version: 1;
	jobId: string;
	applicationId: string;
	dataRegion: "default" | "eu";
	learnerId: string;
	/** The HMAC the service's job records name the learner by (as erasure receipts do). */
	learnerHash: string;
	requestedBy: string | null;
	requestedDate: string;
	exportedDate: string;
	learner: {
		id: string;
		email?: string;
		firstName?: string;
		lastName?: string;
		tags: string[];
		registrationCount: number;
		suppressed: boolean;
	};
	registrations: {
		id: string;
		courseId: string;
		instance: number;
		xapiRegistrationId: string;
		createdDate: string;
		updatedDate: string;
		learner: { id: string; email?: string; firstName?: string; lastName?: string };
		tags: string[];
	}[];
	jobs: ExportedJob[];
	keyId: string;
};

/** What GET /jobs/{jobId}/export answers for an application's export, as stored. */
export interface SignedLearnerExport {
	document: LearnerExport;
	signature: string;
	algorithm: "Ed25519";
	keyId: string;
}

type Part = { registrations: ExportedRegistration[] } | { jobs: ExportedJob[] };

const FIELDS = ["email", "firstName", "lastName"] as const;

/** A learner's fields, those without a value left out (as the API shows them). */
const present = (fields: { email: string | null; firstName: string | null; lastName: string | null }) => ({
	...(fields.email !== null && { email: fields.email }),
	...(fields.firstName !== null && { firstName: fields.firstName }),
	...(fields.lastName !== null && { lastName: fields.lastName }),
});

/**
 * The document from the parts, in the order they were gathered. A registration (or job) that two parts hold — a
 * duplicate delivery re-reading a chunk while a registration was created — appears once, with the later part's
 * values. The learner's current details follow the directory's rule (src/db/learners.ts): for each field, the
 * value of the registration whose version of it is highest, the newest registration among equals (visit order is
 * pk order, which a move keeps), registrations without a value passed over.
 */
export function assembleExport(
	job: Job & { learnerId: string; learnerHash: string },
	region: "default" | "eu",
	parts: Part[],
	state: { tags: string[]; suppressed: boolean },
	exportedDate: string,
	keyId: string,
): LearnerExport {
	const registrations = new Map<string, ExportedRegistration>();
	const jobs = new Map<string, ExportedJob>();
	for (const part of parts) {
		if ("registrations" in part) for (const registration of part.registrations) registrations.set(registration.id, registration);
		else for (const named of part.jobs) jobs.set(named.id, named);
	}
	const current: { email: string | null; firstName: string | null; lastName: string | null } = { email: null, firstName: null, lastName: null };
	const best = { email: -1, firstName: -1, lastName: -1 };
	for (const registration of registrations.values()) {
		for (const field of FIELDS) {
			const value = registration.learner[field];
			if (value === null || registration.versions[field] < best[field]) continue;
			best[field] = registration.versions[field];
			current[field] = value;
		}
	}
	return {
		kind: "learner-export",
		version: 1,
		jobId: job.id,
		applicationId: job.appId,
		dataRegion: region,
		learnerId: job.learnerId,
		learnerHash: job.learnerHash,
		requestedBy: job.requestedBy,
		requestedDate: job.createdAt,
		exportedDate,
		learner: {
			id: job.learnerId,
			...present(current),
			tags: state.tags,
			registrationCount: registrations.size,
			suppressed: state.suppressed,
		},
		registrations: [...registrations.values()].map((registration) => ({
			id: registration.id,
			courseId: registration.courseId,
			instance: registration.instance,
			xapiRegistrationId: registration.xapiRegistrationId,
			createdDate: registration.createdDate,
			updatedDate: registration.updatedDate,
			learner: { id: registration.learner.id, ...present(registration.learner) },
			tags: registration.tags,
		})),
		jobs: [...jobs.values()],
		keyId,
	};
}

/** A claim refused: "ended" when the export was cancelled or failed where its application may have a webhook (its event). */
const ended = (claim: ExportClaim): RunOutcome => (claim.abandoned && claim.announce ? "ended" : "done");

/** One gathering chunk: its part (if it found anything) to R2, then its claim. */
async function gather(env: Env, db: Db, job: Job & { learnerId: string; learnerHash: string }, plan: ExportPlan, bounds: typeof CHUNK_BOUNDS) {
	let part: Part | null = null;
	let next: ExportPlan;
	let position = job.position;
	if (plan.phase === "registrations") {
		const rows = await exportRegistrations(db, job, job.position, bounds);
		const last = rows.at(-1);
		if (last) {
			part = { registrations: rows };
			position = last.pk;
			next = { ...plan, parts: plan.parts + 1 };
		} else {
			next = { ...plan, phase: "jobs", after: "" };
		}
	} else {
		const rows = await exportJobs(db, job.appId, job.learnerHash, plan.after ?? "", EXPORT_JOBS_PER_CHUNK);
		const last = rows.at(-1);
		next = last ? { ...plan, parts: plan.parts + 1, after: last.id } : { ...plan, phase: "finish" };
		if (last) part = { jobs: rows };
	}
	const bucket = exportBucket(env, plan.region);
	const text = part ? JSON.stringify(part) : null;
	if (text !== null) {
		const bytes = (plan.bytes ?? 0) + encoder.encode(text).byteLength;
		next = { ...next, bytes };
		if (bytes > EXPORT_BOUNDS.maxBytes) {
			// Past the largest export: this part is not written; the next chunk fails the export.
			part = null;
			next = { ...plan, phase: "finish", bytes };
		}
	}
	// Written before the claim, under a name the chunk's number fixes: a delivery racing this one writes the same
	// part under the same name, and whichever claim wins records it.
	const key = partKey(job.id, plan.parts + 1);
	if (part && text !== null) await bucket.put(key, text, { httpMetadata: { contentType: "application/json" } });
	const registrations = part && "registrations" in part ? part.registrations.length : 0;
	// One lease for every attempt: a repeat after a lost reply (retryTransient) finds the claim its first attempt made.
	const lease = crypto.randomUUID();
	const claim = await retryTransient(() => claimExportStep(db, job, lease, { plan: next, position, registrations }, nowIso()));
	// Refused because the job has ended meanwhile: cancelled (by an erasure of the learner, or by this claim, which
	// found one pending) or failed, nothing will ever read what it gathered; completed by another delivery, this part
	// is not one of its own.
	if (claim.abandoned) await deleteExportObjects(env, { jobId: job.id, region: plan.region });
	// Refused because the application's deletion was accepted (since this chunk read): nothing of it may stay.
	else if (claim.deleted) await deleteExportObjects(env, { jobId: job.id, region: null });
	else if (!claim.claimed && part && claim.status !== "queued" && claim.status !== "running") await bucket.delete(key);
	return claim;
}

/**
 * The application's region is no longer the one the export was gathering in (it moved to a shard of another region
 * before the export ended): what it wrote in the old region's bucket is deleted, then a claim starts the gathering
 * over in the new region, from the first registration, so that no part of it stays in, or is read from, the wrong
 * region. The claim is the chunk's; refused, the next attempt finds the same and does the same.
 */
async function regather(env: Env, db: Db, job: Job, plan: ExportPlan, region: "default" | "eu"): Promise<ExportClaim> {
	await deleteExportObjects(env, { jobId: job.id, region: plan.region });
	const lease = crypto.randomUUID();
	const step = { plan: { region, phase: "registrations" as const, parts: 0 }, position: 0, registrations: -job.registrationsAffected };
	const claim = await retryTransient(() => claimExportStep(db, job, lease, step, nowIso()));
	if (claim.abandoned || claim.deleted) await deleteExportObjects(env, { jobId: job.id, region: null });
	return claim;
}

const encoder = new TextEncoder();

/** Fails an export past the largest one, under the lease its last chunk claimed, and deletes what it wrote. */
async function tooLarge(env: Env, db: Db, job: Job, lease: string, plan: ExportPlan, bytes: number): Promise<RunOutcome> {
	const reason =
		`The learner's data (at least ${bytes} bytes) is more than one export may hold (${EXPORT_BOUNDS.maxBytes} bytes): ` +
		"nothing was kept; its registrations can be read through the API (GET /registrations?learnerId=)";
	await retryTransient(() => failExport(db, job, lease, reason, nowIso()));
	await purgeExports(env, db, [{ jobId: job.id, region: plan.region }]);
	return "ended";
}

/** The last chunk: claimed first, then the document made (unless an earlier attempt stored it), then the job completed. */
async function finish(env: Env, db: Db, job: Job & { learnerId: string; learnerHash: string }, plan: ExportPlan): Promise<RunOutcome> {
	const lease = crypto.randomUUID();
	const claim = await retryTransient(() => claimExportStep(db, job, lease, { plan, position: job.position, registrations: 0 }, nowIso()));
	if (claim.abandoned) await deleteExportObjects(env, { jobId: job.id, region: plan.region });
	else if (claim.deleted) await deleteExportObjects(env, { jobId: job.id, region: null });
	if (!claim.claimed) return claim.frozen ? "wait" : ended(claim);
	const bucket = exportBucket(env, plan.region);
	const key = documentKey(job.id);
	if ((plan.bytes ?? 0) > EXPORT_BOUNDS.maxBytes) return tooLarge(env, db, job, lease, plan, plan.bytes ?? 0);
	const parts = (await listAll(bucket, `exports/${job.id}/part-`)).sort((a, b) => (a.key < b.key ? -1 : 1));
	if (!(await bucket.head(key))) {
		// Every part the claims recorded must be there (an attempt that lost a race may be deleting them once stored).
		if (parts.length < plan.parts) throw new Error(`Export ${job.id} has ${parts.length} of its ${plan.parts} parts`);
		// An export gathered before its plan counted bytes: its parts, counted now.
		const bytes = parts.reduce((sum, object) => sum + object.size, 0);
		if (bytes > EXPORT_BOUNDS.maxBytes) return tooLarge(env, db, job, lease, plan, bytes);
		const read: Part[] = [];
		for (let n = 1; n <= plan.parts; n++) {
			const object = await bucket.get(partKey(job.id, n));
			if (!object) throw new Error(`Export ${job.id} lost part ${n}`);
			read.push((await object.json()) as Part);
		}
		const state = await exportLearnerState(db, job.appId, job.learnerId, job.learnerHash);
		const { receiptSigningKey } = config(env);
		const { kid } = await receiptPublicKey(receiptSigningKey);
		const document = assembleExport(job, plan.region, read, state, nowIso(), kid);
		const signed: SignedLearnerExport = { document, signature: await signCanonical(receiptSigningKey, { ...document }), algorithm: "Ed25519", keyId: kid };
		await bucket.put(key, JSON.stringify(signed), { httpMetadata: { contentType: "application/json" } });
	}
	await deleteKeys(
		bucket,
		parts.map((object) => object.key),
	);
	const completion = await retryTransient(() => completeExport(db, job, lease, nowIso()));
	if (completion.completed) return claim.announce ? "ended" : "done";
	// The application's deletion was accepted while the document was made: it is not completed, and nothing of it stays.
	if (completion.deleted) {
		await deleteExportObjects(env, { jobId: job.id, region: null });
		return "done";
	}
	// Not completed under this claim: cancelled by an erasure meanwhile (then nothing it wrote may stay), taken over by
	// another delivery (which completes it), or frozen for a move (the next attempt completes it where it lands).
	const now = await retryTransient(() => getJobById(db, job.id));
	if (now && now.status !== "queued" && now.status !== "running" && now.error !== null) {
		await deleteExportObjects(env, { jobId: job.id, region: plan.region });
	}
	// Still running: frozen for a move, or another delivery holds it; either way it is looked at again shortly.
	return now?.status === "running" ? "wait" : "done";
}

/**
 * Runs up to `chunks` chunks of the export: "continue" when more remain, "ended" once it completed (its event to
 * look at), "wait" while its application is frozen for a move, "done" when there is nothing for this message to do.
 * `region` is the application's region now (its shard's): the export gathers and stores in that region only.
 */
export async function runExport(
	env: Env,
	db: Db,
	jobId: string,
	options: { bounds: typeof CHUNK_BOUNDS; chunks: number; region?: "default" | "eu" } = { bounds: CHUNK_BOUNDS, chunks: JOB_PACE.chunksPerMessage },
): Promise<RunOutcome> {
	for (let chunk = 0; chunk < options.chunks; chunk++) {
		const job = await retryTransient(() => getJobById(db, jobId));
		if (!job || job.type !== "exportLearnerData" || (job.status !== "queued" && job.status !== "running")) return "done";
		const { learnerId, learnerHash } = job;
		if (learnerId === null || learnerHash === null) return "done";
		const plan = exportPlan(job);
		const region = options.region ?? plan.region;
		const claim =
			plan.region !== region
				? await regather(env, db, job, plan, region)
				: plan.phase === "finish"
					? null
					: await gather(env, db, { ...job, learnerId, learnerHash }, plan, options.bounds);
		if (claim === null) return finish(env, db, { ...job, learnerId, learnerHash }, plan);
		if (claim.frozen) return "wait";
		if (!claim.claimed) return ended(claim);
	}
	return "continue";
}

/** An application's data region now (a realm-wide export asks each holder in its region). */
export async function regionOf(control: Db, appId: string): Promise<"default" | "eu" | null> {
	const placement = await retryTransient(() => findPlacement(control, appId));
	return placement && placement.deletedAt === null ? placement.dataRegion : null;
}
