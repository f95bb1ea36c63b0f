import { type KeyedBatch, batchWith } from "./idempotency";
import { SUPPRESSED } from "./suppressions";
import { touchLearners } from "./activity";
import { type WriteLimits, countRows, writeGuard } from "./app-storage";
import { JOB_CLOCK, PENDING_ERASURE_OF } from "./jobs";
import { retryTransient } from "./retry";
import { LEARNER_TAGS, REGISTRATION_TAGS, TagLimitError, addTagsStatements } from "./tags";
import { type Db, nowIso, prepareWith } from "./types";

export interface Registration {
	pk: number;
	id: string;
	courseId: string;
	learner: { id: string; email: string | null; firstName: string | null; lastName: string | null };
	instance: number;
	xapiRegistrationId: string;
	createdAt: string;
	updatedAt: string;
	tags: string[];
}

interface RegistrationRow {
	pk: number;
	id: string;
	course_id: string;
	learner_id: string;
	learner_email: string | null;
	learner_first_name: string | null;
	learner_last_name: string | null;
	instance: number;
	xapi_registration_id: string;
	created_at: string;
	updated_at: string;
	tags_json: string;
}

// Tags come back in the same statement, as a JSON array in the order first applied (the in-order index
// yields them sorted).
const SELECT_REGISTRATION = `SELECT r.pk, r.id, r.course_id, r.learner_id, r.learner_email, r.learner_first_name,
  r.learner_last_name, r.instance, r.xapi_registration_id, r.created_at, r.updated_at,
  (SELECT json_group_array(tag) FROM (SELECT t.tag FROM registration_tags t INDEXED BY registration_tags_in_order
     WHERE t.app_id = r.app_id AND t.registration_id = r.id ORDER BY t.rowid)) AS tags_json
FROM registrations r`;

const toRegistration = (row: RegistrationRow): Registration => ({
	pk: row.pk,
	id: row.id,
	courseId: row.course_id,
	learner: {
		id: row.learner_id,
		email: row.learner_email,
		firstName: row.learner_first_name,
		lastName: row.learner_last_name,
	},
	instance: row.instance,
	xapiRegistrationId: row.xapi_registration_id,
	createdAt: row.created_at,
	updatedAt: row.updated_at,
	tags: JSON.parse(row.tags_json) as string[],
});

export interface NewRegistration {
	id: string;
	courseId: string;
	learner: { id: string; email?: string | null; firstName?: string | null; lastName?: string | null };
	xapiRegistrationId: string;
	/**
	 * The learner's HMAC (jobs.learner_hash): a learner suppressed by an erasure is refused (SuppressedError). The
	 * API always gives it; without it nothing is checked.
	 */
	learnerHash?: string;
	/** Free of duplicates. */
	learnerTags: string[];
	/** Free of duplicates. */
	registrationTags: string[];
	createdAt: string;
}

/** The learner was erased with suppression in this application: no registration may name it (SPEC §9). */
export class SuppressedError extends Error {
	override readonly name = "SuppressedError";
	constructor(readonly learnerId: string) {
		super("learner erased and suppressed");
	}
}

/**
 * The learner's erasure in this application is pending: no registration may name it until it completes, since the
 * erasure would delete it (it erases whatever of the learner it finds until it completes: SPEC §3, §11).
 */
export class ErasurePendingError extends Error {
	override readonly name = "ErasurePendingError";
	constructor(
		readonly learnerId: string,
		readonly jobId: string | null,
	) {
		super("learner being erased");
	}
}

/**
 * Creates a registration with its tags and adds its learner tags, all in one transaction, costing one plus
 * its tags of the write budget. Returns false when the application already has a registration with that id
 * (nothing written); throws TagLimitError when the learner would pass its tag limit, SuppressedError when it is
 * suppressed, ErasurePendingError while an erasure of it is pending (nothing written); a refused write throws D1's
 * error (refusalOf()). Not retried: a repeat after a lost reply would find its own registration and answer "already
 * exists".
 */
export async function createRegistration(
	db: Db,
	appId: string,
	registration: NewRegistration,
	limits: WriteLimits,
	keyed?: KeyedBatch,
): Promise<boolean> {
	const { learner } = registration;
	const cost = 1 + registration.learnerTags.length + registration.registrationTags.length;
	const statements = [
		writeGuard(db, appId, cost, limits),
		db
			.prepare(
				// Field versions start at the job clock: updates accepted before this registration existed
				// do not overwrite the learner details it was created with.
				// A suppressed learner gives the row no id, a learner being erased no course: the NOT NULL constraint
				// aborts the whole batch, and the error is read as SuppressedError or ErasurePendingError below (a
				// statement cannot raise on its own outside a trigger).
				`INSERT INTO registrations (app_id, id, course_id, learner_id, learner_email, learner_first_name,
				   learner_last_name, xapi_registration_id, created_at, updated_at, email_seq, first_name_seq, last_name_seq)
				 SELECT ?1, CASE WHEN ${SUPPRESSED("?10")} THEN NULL ELSE ?2 END,
				   CASE WHEN EXISTS (${PENDING_ERASURE_OF("?1", "?10")}) THEN NULL ELSE ?3 END, ?4, ?5, ?6, ?7, ?8, ?9, ?9,
				   newest.seq, newest.seq, newest.seq
				 FROM (SELECT ${JOB_CLOCK} AS seq) AS newest`,
			)
			.bind(
				appId,
				registration.id,
				registration.courseId,
				learner.id,
				learner.email ?? null,
				learner.firstName ?? null,
				learner.lastName ?? null,
				registration.xapiRegistrationId,
				registration.createdAt,
				registration.learnerHash ?? null,
			),
		// After the insert: the learner is new when this is its only registration.
		db
			.prepare(
				countRows("1", "1", {
					registrations: "1",
					learners: "(SELECT count(*) FROM (SELECT 1 FROM registrations WHERE app_id = ?1 AND learner_id = ?2 LIMIT 2)) = 1",
				}),
			)
			.bind(appId, learner.id),
	];
	if (registration.registrationTags.length > 0) {
		statements.push(...addTagsStatements(db, REGISTRATION_TAGS, appId, [registration.id], registration.registrationTags));
	}
	if (registration.learnerTags.length > 0) {
		statements.push(...addTagsStatements(db, LEARNER_TAGS, appId, [learner.id], registration.learnerTags));
	}
	statements.push(touchLearners(db, appId, [learner.id], registration.createdAt));
	try {
		await batchWith(db, statements, keyed);
		return true;
	} catch (error) {
		const message = error instanceof Error ? error.message : "";
		if (message.includes("UNIQUE constraint failed: registrations.app_id, registrations.id")) return false;
		if (message.includes("learner_tag_limit")) throw new TagLimitError([learner.id]);
		if (message.includes("NOT NULL constraint failed: registrations.id")) throw new SuppressedError(learner.id);
		if (message.includes("NOT NULL constraint failed: registrations.course_id")) {
			const pending = await retryTransient(() =>
				db.prepare(PENDING_ERASURE_OF("?1", "?2")).bind(appId, registration.learnerHash ?? null).first<{ id: string }>(),
			);
			throw new ErasurePendingError(learner.id, pending?.id ?? null);
		}
		throw error;
	}
}

/** The application's registration, or null. One statement. */
export async function getRegistration(db: Db, appId: string, id: string): Promise<Registration | null> {
	const row = await retryTransient(() =>
		db.prepare(`${SELECT_REGISTRATION} WHERE r.app_id = ?1 AND r.id = ?2`).bind(appId, id).first<RegistrationRow>(),
	);
	return row ? toRegistration(row) : null;
}

/** The dates a listing's since and until may bound (SCORM Cloud's datetimeFilter). */
export const DATETIME_FILTERS = ["created", "updated"] as const;
export type DatetimeFilter = (typeof DATETIME_FILTERS)[number];

/** The orders a listing may take (SCORM Cloud's orderBy). */
export const REGISTRATION_ORDERS = ["created_asc", "created_desc", "updated_asc", "updated_desc"] as const;
export type RegistrationOrder = (typeof REGISTRATION_ORDERS)[number];

export interface RegistrationFilter {
	courseId?: string;
	learnerId?: string;
	/** Which date `since` and `until` bound (SCORM Cloud's datetimeFilter; default created). */
	datetimeFilter: DatetimeFilter;
	/** ISO-8601 UTC bounds, inclusive. */
	since?: string;
	until?: string;
	/** Registrations carrying any of these tags. */
	tags?: string[];
}

/** Where the previous page ended: the last row's pk, id and the dates it is ordered by. */
export interface ListPosition {
	pk: number;
	/** Absent in tokens issued before a listing could outlive a move. */
	id?: string;
	createdAt: string;
	updatedAt: string;
}

// The last row's pk where the listing runs now: pks are a shard's own, so after the application moved, the row's
// id (unchanged, with its dates) finds it on the new shard; the pk the token carries serves when it is gone.
const LAST_PK = "coalesce((SELECT p.pk FROM registrations p WHERE p.app_id = ?1 AND p.id = ?8 AND p.created_at = ?11 AND p.updated_at = ?10), ?9)";

// Each order's sort and "after the previous page" condition (?9 last pk, ?10 its updated_at, ?11 its
// created_at, ?8 its id). Every index on registrations ends in pk, so (app_id, created_at), (app_id, learner_id,
// created_at), (app_id, course_id, created_at) and (app_id, updated_at) give pages in order, and a since/until
// bound on the same date is a range of the same index: a page reads about as many rows as it returns.
const ORDERS: Record<RegistrationOrder, { sort: string; after: string }> = {
	created_asc: { sort: "r.created_at, r.pk", after: `(r.created_at, r.pk) > (?11, ${LAST_PK})` },
	created_desc: { sort: "r.created_at DESC, r.pk DESC", after: `(r.created_at, r.pk) < (?11, ${LAST_PK})` },
	updated_asc: { sort: "r.updated_at, r.pk", after: `(r.updated_at, r.pk) > (?10, ${LAST_PK})` },
	updated_desc: { sort: "r.updated_at DESC, r.pk DESC", after: `(r.updated_at, r.pk) < (?10, ${LAST_PK})` },
};

/**
 * One page of the application's registrations matching the filter, after `position`, and optionally how many
 * match in all — one D1 call. Each filter picks a fixed SQL fragment (no values in SQL text).
 */
export async function listRegistrations(
	db: Db,
	appId: string,
	query: { filter: RegistrationFilter; order: RegistrationOrder; position?: ListPosition; limit: number; count: boolean },
): Promise<{ registrations: Registration[]; total?: number }> {
	const { filter, order, position } = query;
	const dateColumn = filter.datetimeFilter === "updated" ? "r.updated_at" : "r.created_at";
	const conditions = ["r.app_id = ?1"];
	if (filter.courseId !== undefined) conditions.push("r.course_id = ?2");
	if (filter.learnerId !== undefined) conditions.push("r.learner_id = ?3");
	if (filter.since !== undefined) conditions.push(`${dateColumn} >= ?4`);
	if (filter.until !== undefined) conditions.push(`${dateColumn} <= ?5`);
	if (filter.tags !== undefined) {
		// Driven from the tags (json_each → registration_tags_by_tag → registrations_by_app_id → pk), so the cost
		// follows the registrations carrying them, not the application's size. CROSS JOIN fixes that order;
		// INDEXED BY keeps the planner off the (app_id, registration_id, tag) index, which would read every tag.
		conditions.push(
			`r.pk IN (SELECT r2.pk FROM json_each(?6) j
			   CROSS JOIN registration_tags t INDEXED BY registration_tags_by_tag ON t.app_id = ?1 AND t.tag = j.value
			   CROSS JOIN registrations r2 ON r2.app_id = ?1 AND r2.id = t.registration_id)`,
		);
	}
	const matching = conditions.join(" AND ");
	const paged = position ? `${matching} AND ${ORDERS[order].after}` : matching;
	const params = [
		appId,
		filter.courseId ?? null,
		filter.learnerId ?? null,
		filter.since ?? null,
		filter.until ?? null,
		filter.tags ? JSON.stringify(filter.tags) : null,
		query.limit,
		position?.id ?? null,
		position?.pk ?? null,
		position?.updatedAt ?? null,
		position?.createdAt ?? null,
	];
	const statements = [prepareWith(db, `${SELECT_REGISTRATION} WHERE ${paged} ORDER BY ${ORDERS[order].sort} LIMIT ?7`, params)];
	if (query.count) statements.push(prepareWith(db, `SELECT count(*) AS total FROM registrations r WHERE ${matching}`, params));
	const [page, counted] = await retryTransient(() => db.batch(statements));
	return {
		registrations: ((page?.results ?? []) as RegistrationRow[]).map(toRegistration),
		...(counted && { total: (counted.results[0] as { total: number }).total }),
	};
}

/**
 * Deletes a registration and its tags; when it was its learner's last registration, the learner goes too
 * (its tags and tag count). One transaction, costing 1 of the write budget. False when the application has
 * no such registration. Not retried: a repeat after a lost reply would answer "not found".
 */
export async function deleteRegistration(db: Db, appId: string, id: string, limits: WriteLimits): Promise<boolean> {
	// Statements before the last read the registration's learner while its row still exists.
	const learnerOnlyHere = `learner_id = (SELECT learner_id FROM registrations WHERE app_id = ?1 AND id = ?2)
	  AND NOT EXISTS (SELECT 1 FROM registrations o WHERE o.app_id = ?1 AND o.id <> ?2
	    AND o.learner_id = (SELECT learner_id FROM registrations WHERE app_id = ?1 AND id = ?2))`;
	// The registration, its tags, and its learner's tags when they go with it.
	const removedRows = `coalesce((SELECT 1 + tag_count FROM registrations WHERE app_id = ?1 AND id = ?2), 0)
	  + coalesce((SELECT tag_count FROM learner_tag_counts WHERE app_id = ?1 AND ${learnerOnlyHere}), 0)`;
	const results = await db.batch([
		writeGuard(db, appId, 1, limits),
		db
			.prepare(
				countRows(`-(${removedRows})`, "1", {
					registrations: "-(EXISTS (SELECT 1 FROM registrations WHERE app_id = ?1 AND id = ?2))",
					learners: `-(EXISTS (SELECT 1 FROM registrations WHERE app_id = ?1 AND ${learnerOnlyHere}))`,
				}),
			)
			.bind(appId, id),
		db.prepare("DELETE FROM registration_tags WHERE app_id = ?1 AND registration_id = ?2").bind(appId, id),
		db.prepare(`DELETE FROM learner_tags WHERE app_id = ?1 AND ${learnerOnlyHere}`).bind(appId, id),
		db.prepare(`DELETE FROM learner_tag_counts WHERE app_id = ?1 AND ${learnerOnlyHere}`).bind(appId, id),
		// The learner's last write: gone with the learner, else now (./activity.ts).
		db.prepare(`DELETE FROM learner_activity WHERE app_id = ?1 AND ${learnerOnlyHere}`).bind(appId, id),
		db
			.prepare(
				`UPDATE learner_activity SET last_write_at = max(last_write_at, ?3)
				 WHERE app_id = ?1 AND learner_id = (SELECT learner_id FROM registrations WHERE app_id = ?1 AND id = ?2)`,
			)
			.bind(appId, id, nowIso()),
		db.prepare("DELETE FROM registrations WHERE app_id = ?1 AND id = ?2").bind(appId, id),
	]);
	return (results.at(-1)?.meta.changes ?? 0) > 0;
}

/**
 * How many registrations each of these applications holds on this shard, for the management API's
 * registrationCount: one statement, each count read from registrations_by_app (the index, not the rows).
 */
export async function countRegistrationsOf(db: Db, appIds: string[]): Promise<Map<string, number>> {
	if (appIds.length === 0) return new Map();
	const { results } = await retryTransient(() =>
		db
			.prepare("SELECT j.value AS app_id, (SELECT count(*) FROM registrations r WHERE r.app_id = j.value) AS registrations FROM json_each(?1) j")
			.bind(JSON.stringify(appIds))
			.all<{ app_id: string; registrations: number }>(),
	);
	return new Map(results.map((row) => [row.app_id, row.registrations]));
}
