import { LEARNER_TAGS, REGISTRATION_TAGS, TagLimitError, addTagsStatements } from "./tags";
import type { Db } from "./types";

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

// Tags come back in the same statement, as a JSON array in the order first applied.
const SELECT_REGISTRATION = `SELECT r.pk, r.id, r.course_id, r.learner_id, r.learner_email, r.learner_first_name,
  r.learner_last_name, r.instance, r.xapi_registration_id, r.created_at, r.updated_at,
  (SELECT json_group_array(tag) FROM (SELECT t.tag FROM registration_tags t
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
	/** Free of duplicates. */
	learnerTags: string[];
	/** Free of duplicates. */
	registrationTags: string[];
	createdAt: string;
}

/**
 * Creates a registration with its tags and adds its learner tags, all in one transaction. Returns false when
 * the application already has a registration with that id (nothing written); throws TagLimitError when the
 * learner would pass its tag limit (nothing written).
 */
export async function createRegistration(db: Db, appId: string, registration: NewRegistration): Promise<boolean> {
	const { learner } = registration;
	const statements = [
		db
			.prepare(
				`INSERT INTO registrations (app_id, id, course_id, learner_id, learner_email, learner_first_name,
				   learner_last_name, xapi_registration_id, created_at, updated_at)
				 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)`,
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
			),
	];
	if (registration.registrationTags.length > 0) {
		statements.push(...addTagsStatements(db, REGISTRATION_TAGS, appId, [registration.id], registration.registrationTags));
	}
	if (registration.learnerTags.length > 0) {
		statements.push(...addTagsStatements(db, LEARNER_TAGS, appId, [learner.id], registration.learnerTags));
	}
	try {
		await db.batch(statements);
		return true;
	} catch (error) {
		const message = error instanceof Error ? error.message : "";
		if (message.includes("UNIQUE constraint failed: registrations.app_id, registrations.id")) return false;
		if (message.includes("learner_tag_limit")) throw new TagLimitError([learner.id]);
		throw error;
	}
}

/** The application's registration, or null. One statement. */
export async function getRegistration(db: Db, appId: string, id: string): Promise<Registration | null> {
	const row = await db
		.prepare(`${SELECT_REGISTRATION} WHERE r.app_id = ?1 AND r.id = ?2`)
		.bind(appId, id)
		.first<RegistrationRow>();
	return row ? toRegistration(row) : null;
}

export interface RegistrationFilter {
	courseId?: string;
	learnerId?: string;
	/** ISO-8601 UTC bounds on the last update, inclusive. */
	since?: string;
	until?: string;
	/** Registrations carrying any of these tags. */
	tags?: string[];
}

/**
 * One page of the application's registrations matching the filter, in creation order, after `afterPk`.
 * Each filter picks a fixed SQL fragment (no values in SQL text); the indexes on (app_id, learner_id),
 * (app_id, course_id) and (app_id) end in pk, so pages come out in order without a sort.
 */
export async function listRegistrations(
	db: Db,
	appId: string,
	filter: RegistrationFilter,
	afterPk: number,
	limit: number,
): Promise<Registration[]> {
	const conditions = ["r.app_id = ?1", "r.pk > ?2"];
	if (filter.courseId !== undefined) conditions.push("r.course_id = ?3");
	if (filter.learnerId !== undefined) conditions.push("r.learner_id = ?4");
	if (filter.since !== undefined) conditions.push("r.updated_at >= ?5");
	if (filter.until !== undefined) conditions.push("r.updated_at <= ?6");
	if (filter.tags !== undefined) {
		conditions.push(
			"EXISTS (SELECT 1 FROM registration_tags t WHERE t.app_id = ?1 AND t.registration_id = r.id AND t.tag IN (SELECT value FROM json_each(?7)))",
		);
	}
	// ?8 is always used, so the statement always takes all eight parameters (unused ones bound as null).
	const { results } = await db
		.prepare(`${SELECT_REGISTRATION} WHERE ${conditions.join(" AND ")} ORDER BY r.pk LIMIT ?8`)
		.bind(
			appId,
			afterPk,
			filter.courseId ?? null,
			filter.learnerId ?? null,
			filter.since ?? null,
			filter.until ?? null,
			filter.tags ? JSON.stringify(filter.tags) : null,
			limit,
		)
		.all<RegistrationRow>();
	return results.map(toRegistration);
}

/**
 * Deletes a registration and its tags; when it was its learner's last registration, the learner goes too
 * (its tags and tag count). One transaction. False when the application has no such registration.
 */
export async function deleteRegistration(db: Db, appId: string, id: string): Promise<boolean> {
	// Statements before the last read the registration's learner while its row still exists.
	const learnerOnlyHere = `learner_id = (SELECT learner_id FROM registrations WHERE app_id = ?1 AND id = ?2)
	  AND NOT EXISTS (SELECT 1 FROM registrations o WHERE o.app_id = ?1 AND o.id <> ?2
	    AND o.learner_id = (SELECT learner_id FROM registrations WHERE app_id = ?1 AND id = ?2))`;
	const results = await db.batch([
		db.prepare("DELETE FROM registration_tags WHERE app_id = ?1 AND registration_id = ?2").bind(appId, id),
		db.prepare(`DELETE FROM learner_tags WHERE app_id = ?1 AND ${learnerOnlyHere}`).bind(appId, id),
		db.prepare(`DELETE FROM learner_tag_counts WHERE app_id = ?1 AND ${learnerOnlyHere}`).bind(appId, id),
		db.prepare("DELETE FROM registrations WHERE app_id = ?1 AND id = ?2").bind(appId, id),
	]);
	return (results.at(-1)?.meta.changes ?? 0) > 0;
}
