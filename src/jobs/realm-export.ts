import { config } from "../config";
import { findPlacement } from "../db/applications";
import { refusalOf } from "../db/app-storage";
import {
	EXPORT_CANCELLED,
	type ExportedJob,
	type RealmExportChild,
	type RealmExportPlan,
	acceptLearnerExport,
	exportPlan,
	exportWithdrawn,
	failRealmExport,
	realmExportPlan,
	realmJobsNaming,
	saveRealmExportChildren,
} from "../db/exports";
import { type Job, claimStep, getJobById, jobsNamed, saveStep } from "../db/jobs";
import { retryTransient } from "../db/retry";
import { type Db, nowIso } from "../db/types";
import { receiptPublicKey, signCanonical } from "../receipts";
import { shardDatabase } from "../shards";
import { dispatch, learnerHash } from "./contract";
import type { LearnerExport, SignedLearnerExport } from "./export";
import { documentKey, exportBucket } from "./export-objects";
import type { StepOutcome } from "./move";
import { POLL_SECONDS, childJobId } from "./realm-erasure";

/**
 * A realm-wide export (SPEC §12), as a realm-wide erasure is run (./realm-erasure.ts): a realm job in the control
 * database, recorded before any application is asked, naming the applications that held the learner; the request
 * (or, failing that, the job's first step) asks each for an export of its own — each in its application's region,
 * its document in that region's bucket — and the realm job follows them until none is unfinished. Nothing of the
 * learner is gathered in the control database: GET /jobs/{jobId}/export assembles the realm's document from the
 * applications' documents when it is asked for (src/routes/jobs.ts).
 */

/**
 * Asks each application that held the learner for its export (an id fixed by the realm job's, so a repeated ask
 * finds it; one already pending for the learner there is joined). An application where the learner is gone has
 * nothing to export and is left out; one where the learner's erasure is pending is named in `erasing`: the realm's
 * document (whole or not at all) cannot be made. "wait" when one cannot take a write now (moving, out of write
 * budget).
 */
export async function askForExports(
	env: Env,
	control: Db,
	job: Job,
): Promise<{ children: RealmExportChild[]; erasing: string[] } | "wait" | ExportLimitOf> {
	const { holders } = realmExportPlan(job);
	const learnerId = job.learnerId;
	if (learnerId === null) throw new Error("A realm-wide export lost its learner before asking the applications");
	const children: RealmExportChild[] = [];
	const erasing: string[] = [];
	for (const appId of holders) {
		const placement = await retryTransient(() => findPlacement(control, appId));
		if (!placement || placement.deletedAt !== null) continue;
		const db = shardDatabase(env, placement.shard);
		const id = await childJobId(job.id, appId, "realm-export");
		try {
			const acceptance = await acceptLearnerExport(
				db,
				{
					id,
					appId,
					learnerId,
					learnerHash: await learnerHash(env, appId, learnerId),
					requestedBy: job.requestedBy ?? "",
					region: placement.dataRegion,
					createdAt: nowIso(),
				},
				config(env),
				true,
			);
			if (acceptance.outcome === "accepted") {
				await dispatch(env, db, { type: "exportLearnerData", jobId: acceptance.job.id });
				children.push({ appId, jobId: acceptance.job.id });
				continue;
			}
			// The application holds its limit of exports (taken since the request looked): the realm's document, whole or
			// not at all, cannot be made.
			if (acceptance.outcome === "limit") return { limitReachedIn: appId, limit: acceptance.limit };
			// The learner is gone from it since (or is being erased): an export an earlier attempt started stands (an
			// erasure cancels it). Being erased with none started, the application is named: it would be missing.
			const [earlier] = await retryTransient(() => jobsNamed(db, [id]));
			if (earlier) children.push({ appId, jobId: earlier.id });
			else if (acceptance.outcome === "erasing") erasing.push(appId);
		} catch (error) {
			const refusal = refusalOf(error);
			if (refusal === "application_deleted") continue;
			if (refusal === "application_moving" || refusal === "write_budget_exceeded") return "wait";
			throw error;
		}
	}
	return { children, erasing };
}

/** An application that holds its limit of exports, found while asking the applications. */
export interface ExportLimitOf {
	limitReachedIn: string;
	limit: number;
}

/** Why a realm-wide export failed when an application held its limit of exports. */
export const realmExportLimitError = (refusal: ExportLimitOf) =>
	`Application ${refusal.limitReachedIn} holds its limit of ${refusal.limit} exports (APP_EXPORT_LIMIT): ask again once some have expired`;

/**
 * Asks the applications and records the children under the step's claim, dropping the learner's id. An application
 * at its limit of exports fails the realm export instead, under the same claim, saying which.
 */
export async function fanOutExports(env: Env, control: Db, job: Job, lease: string): Promise<RealmExportPlan | "wait" | ExportLimitOf> {
	const asked = await askForExports(env, control, job);
	if (asked === "wait") return asked;
	if ("limitReachedIn" in asked) {
		await retryTransient(() => failRealmExport(control, job, lease, realmExportLimitError(asked), nowIso()));
		return asked;
	}
	const plan: RealmExportPlan = { ...realmExportPlan(job), children: asked.children, ...(asked.erasing.length > 0 && { erasing: asked.erasing }) };
	await retryTransient(() => saveRealmExportChildren(control, job, lease, plan, nowIso()));
	return plan;
}

/**
 * A child export where its application now lives: null once gone with its application, or once the application's
 * deletion was accepted (SPEC §11: nothing of it is given from then on).
 */
export async function childExport(env: Env, control: Db, child: RealmExportChild): Promise<{ job: Job; db: Db } | null> {
	const placement = await retryTransient(() => findPlacement(control, child.appId));
	if (!placement || placement.deletedAt !== null) return null;
	const db = shardDatabase(env, placement.shard);
	const found = await retryTransient(() => getJobById(db, child.jobId));
	return found ? { job: found, db } : null;
}

/** The message of a realm-wide export ended without a document, naming the applications that kept it from one. */
export function realmExportUnmade(ends: { cancelled: string[]; erasing: string[]; deleted: string[] }): string | null {
	const named = (appIds: string[]) => `application${appIds.length === 1 ? "" : "s"} ${appIds.join(", ")}`;
	const reasons = [
		...(ends.cancelled.length > 0 ? [`${EXPORT_CANCELLED} in ${named(ends.cancelled)}`] : []),
		...(ends.erasing.length > 0 ? [`An erasure of the learner was pending in ${named(ends.erasing)}: no export was made there`] : []),
		...(ends.deleted.length > 0 ? [`The deletion of ${named(ends.deleted)} was accepted`] : []),
	];
	return reasons.length > 0 ? `${reasons.join("; ")}. The realm's document (whole or not at all) cannot be made` : null;
}

/** One step of a realm-wide export: asking the applications, or a look at its children. */
export async function runRealmExport(env: Env, control: Db, jobId: string): Promise<StepOutcome> {
	const job = await retryTransient(() => getJobById(control, jobId));
	if (!job || job.type !== "exportLearnerData" || job.status === "completed" || job.status === "failed") return "done";
	const lease = crypto.randomUUID();
	if (!(await retryTransient(() => claimStep(control, job, lease, nowIso())))) return "done";
	const plan = realmExportPlan(job);
	let children = plan.children;
	let erasing = plan.erasing ?? [];
	if (!children) {
		const asked = await fanOutExports(env, control, job, lease);
		if (asked === "wait") return { waitSeconds: POLL_SECONDS };
		if (!("holders" in asked)) return "done";
		children = asked.children ?? [];
		erasing = asked.erasing ?? [];
	}
	const found = await Promise.all(children.map((child) => childExport(env, control, child)));
	const states = found.flatMap((child) => (child ? [child.job] : []));
	// An application whose deletion was accepted since: nothing of it is given (its export neither runs nor is read).
	const deleted = children.filter((_, index) => found[index] === null).map((child) => child.appId);
	const unfinished = states.some((child) => child.status === "queued" || child.status === "running");
	const failed = states.some((child) => child.status === "failed");
	// An application's export cancelled by an erasure of the learner there, or not made because one was pending: the
	// realm's document can never be made (it is whole or not at all), and the realm job says why rather than passing
	// for a completed export.
	const cancelled = states.filter((child) => child.status === "completed" && child.error !== null).map((child) => child.appId);
	const unmade = realmExportUnmade({ cancelled, erasing, deleted });
	const status = unfinished ? "running" : failed ? "failed" : "completed";
	await retryTransient(() =>
		saveStep(
			control,
			job,
			lease,
			{
				payload: JSON.stringify({ ...plan, children, ...(erasing.length > 0 && { erasing }) }),
				registrationsAffected: states.reduce((sum, child) => sum + child.registrationsAffected, 0),
				status,
				...(status === "failed" && { error: "The learner could not be exported from some applications: ask again" }),
				...(status === "completed" && unmade !== null && { error: unmade }),
			},
			nowIso(),
		),
	);
	return unfinished ? { waitSeconds: POLL_SECONDS } : "done";
}

/** The realm's document, as GET /jobs/{jobId}/export answers a realm-wide export (src/schemas/jobs.ts). */
export type RealmLearnerExport = {
	kind: "learner-export-realm";
	version: 1;
	jobId: string;
	learnerId: string;
	/** The realm-wide HMAC (over an empty application id) its realm jobs name the learner by. */
	learnerHash: string;
	requestedBy: string | null;
	requestedDate: string;
	exportedDate: string;
	/** Each application's document, as its own export stored it. */
	applications: LearnerExport[];
	/** The realm jobs (realm-wide erasures and exports) that named the learner. */
	jobs: ExportedJob[];
	keyId: string;
};

/** Why a realm-wide export's document cannot be given: an application's export is gone, or there was none. */
export class ExportGone extends Error {
	override readonly name = "ExportGone";
}

/**
 * A completed realm-wide export's document, assembled now from its applications' documents (each read from its own
 * region's bucket, never copied elsewhere) and signed. ExportGone when any of them is gone (its learner erased
 * there, its retention passed, its application deleted): a realm's export is whole or not at all.
 */
export async function realmExportDocument(
	env: Env,
	control: Db,
	job: Job,
	retentionMs: number,
	nowMs: number,
): Promise<{ document: RealmLearnerExport; signature: string; algorithm: "Ed25519"; keyId: string }> {
	const plan = realmExportPlan(job);
	const children = plan.children ?? [];
	if (job.error !== null) throw new ExportGone(job.error);
	if ((plan.erasing ?? []).length > 0) throw new ExportGone(`An erasure of the learner was pending in [${(plan.erasing ?? []).join(", ")}] when the export ran`);
	if (children.length === 0) throw new ExportGone("No application held the learner when the export ran");
	const documents: LearnerExport[] = [];
	for (const child of children) {
		const found = await childExport(env, control, child);
		const stored = found ? await storedExport(env, found.db, found.job, retentionMs, nowMs) : null;
		if (!stored) throw new ExportGone(`The export of application [${child.appId}] is gone (its learner erased there, its retention passed, or the application deleted)`);
		documents.push(stored.document);
	}
	const first = documents[0] as LearnerExport;
	const { receiptSigningKey } = config(env);
	const { kid } = await receiptPublicKey(receiptSigningKey);
	const document: RealmLearnerExport = {
		kind: "learner-export-realm",
		version: 1,
		jobId: job.id,
		learnerId: first.learnerId,
		learnerHash: job.learnerHash ?? "",
		requestedBy: job.requestedBy,
		requestedDate: job.createdAt,
		exportedDate: new Date(nowMs).toISOString(),
		applications: documents,
		jobs: await realmJobsNaming(control, job.learnerHash ?? "", 1000),
		keyId: kid,
	};
	return { document, signature: await signCanonical(receiptSigningKey, { ...document }), algorithm: "Ed25519", keyId: kid };
}

/**
 * An application's export as stored, while it may be given: completed (not cancelled by an erasure), its objects not
 * purged, within its retention, no erasure of its learner pending and its application's deletion not accepted (one
 * look at its shard, `db`: then its document is about to be deleted, and no document is fetched once the learner's
 * erasure is pending), and its document still in its bucket. Null otherwise.
 */
export async function storedExport(env: Env, db: Db, job: Job, retentionMs: number, nowMs: number): Promise<SignedLearnerExport | null> {
	const plan = exportPlan(job);
	if (job.status !== "completed" || job.error !== null || plan.purged || job.completedAt === null) return null;
	if (Date.parse(job.completedAt) + retentionMs <= nowMs) return null;
	if (await retryTransient(() => exportWithdrawn(db, job.appId, job.learnerHash ?? ""))) return null;
	const object = await exportBucket(env, plan.region).get(documentKey(job.id));
	return object ? ((await object.json()) as SignedLearnerExport) : null;
}
