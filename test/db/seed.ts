import { env } from "cloudflare:workers";

/** A registration row for insertRegistrations: ids only (learner details stay unset). */
export interface SeedRegistration {
	id: string;
	courseId: string;
	learnerId: string;
}

/**
 * Inserts registrations straight into D1 in one statement (json_each), in array order, for tests that need
 * many of them: one HTTP call each would take seconds.
 */
export async function insertRegistrations(appId: string, rows: SeedRegistration[]): Promise<void> {
	await env.DB.prepare(
		`INSERT INTO registrations (app_id, id, course_id, learner_id, xapi_registration_id, created_at, updated_at)
		 SELECT ?1, value ->> '$.id', value ->> '$.courseId', value ->> '$.learnerId', lower(hex(randomblob(16))), ?3, ?3
		 FROM json_each(?2) ORDER BY key`,
	)
		.bind(appId, JSON.stringify(rows), new Date().toISOString())
		.run();
}

/**
 * Inserts `count` registrations: `${prefix}-reg-${i}` of learner `${prefix}-learner-${i}` on course
 * `${prefix}-course`. Returns the learner ids, in order.
 */
export async function seedRegistrations(appId: string, prefix: string, count: number): Promise<string[]> {
	const learnerIds = Array.from({ length: count }, (_, i) => `${prefix}-learner-${i}`);
	await insertRegistrations(
		appId,
		learnerIds.map((learnerId, i) => ({ id: `${prefix}-reg-${i}`, courseId: `${prefix}-course`, learnerId })),
	);
	return learnerIds;
}
