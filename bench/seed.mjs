// The bench dataset as SQL, for `wrangler d1 execute --file`: each statement generates its rows with a recursive
// CTE, so 100 000 registrations take a few statements instead of 100 000 HTTP calls.
import { createHash } from "node:crypto";

export const APP_ID = "BENCHAPP00000001";
export const CREDENTIAL_ID = "BENCHCREDENTIAL1";
// Bench-only: the secret exists only in this file and the temporary database the bench deletes.
export const SECRET = "bench-secret-0123456789abcdefghijklmnopqrstuvwxyz";
export const REALM_ADMIN = "bench-dpo@example.com";
// The bench application's shard (a default-region shard of wrangler.toml [vars] SHARDS), and the other default one,
// which the move phase moves an application to. The floors bind DB to this shard's database (same database_id).
export const SHARD = "SHARD_1";
export const OTHER_SHARD = "SHARD_2";
export const REGISTRATIONS_PER_LEARNER = 5;
export const TAGS_PER_LEARNER = 5;
// The dataset's size: the scaling figures are taken at both.
export const LEARNERS_SMALL = 2_000; // × 5 registrations = 10 000
export const LEARNERS = 20_000; // × 5 registrations = 100 000

/** The learner ids the seed creates for learner numbers [from, to). */
export const learnerId = (n) => `learner-${String(n).padStart(6, "0")}`;

/**
 * SQL for the application (placed on SHARD, region default), its credential (stored as the service stores it:
 * SHA-256 hex) and a realm admin: the control database's rows (binding DB).
 */
export function seedApplication() {
	const now = "2026-01-01T00:00:00.000Z";
	const secretHash = createHash("sha256").update(SECRET).digest("hex");
	return `
INSERT INTO applications (id, name, data_region, shard, created_at, updated_at) VALUES ('${APP_ID}', 'Bench LMS', 'default', '${SHARD}', '${now}', '${now}');
INSERT INTO credentials (id, app_id, name, secret_hash, enabled, created_at, updated_at)
  VALUES ('${CREDENTIAL_ID}', '${APP_ID}', 'bench', '${secretHash}', 1, '${now}', '${now}');
INSERT INTO realm_users (email_key, email, role, created_at, updated_at)
  VALUES ('${REALM_ADMIN}', '${REALM_ADMIN}', 'admin', '${now}', '${now}');
`;
}

/** SQL for the application's storage row on its shard (binding SHARD), which every write is checked against. */
export function seedApplicationStorage() {
	// The quota wrangler.toml sets (the service writes it with every write; the seed's own count needs it now).
	return `INSERT INTO app_storage (app_id, row_quota) VALUES ('${APP_ID}', 5000000);\n`;
}

/**
 * SQL for learners numbered [from, to): REGISTRATIONS_PER_LEARNER registrations each (with learner details and
 * one registration tag), and TAGS_PER_LEARNER learner tags each (from a pool of 50, so tag values repeat across
 * learners as real cohorts do), with the tag counts the service keeps in step.
 */
export function seedLearners(from, to) {
	const learners = `learners(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM learners WHERE i < ${to - 1})`;
	const each = (count) => `each(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM each WHERE k < ${count - 1})`;
	const id = "'learner-' || printf('%06d', i)";
	return `
INSERT INTO registrations (app_id, id, course_id, learner_id, learner_email, learner_first_name, learner_last_name,
  xapi_registration_id, tag_count, created_at, updated_at)
WITH RECURSIVE ${learners}, ${each(REGISTRATIONS_PER_LEARNER)}
SELECT '${APP_ID}', 'registration-' || printf('%06d', i) || '-' || k, 'course-' || ((i + k) % 200), ${id},
  'learner' || i || '@example.com', 'First' || i, 'Last' || i, lower(hex(randomblob(16))), 1,
  strftime('%Y-%m-%dT%H:%M:%fZ', '2026-01-01', '+' || (i * ${REGISTRATIONS_PER_LEARNER} + k) || ' seconds'),
  strftime('%Y-%m-%dT%H:%M:%fZ', '2026-01-01', '+' || (i * ${REGISTRATIONS_PER_LEARNER} + k) || ' seconds')
FROM learners, each ORDER BY i, k;
INSERT INTO registration_tags (app_id, registration_id, tag)
WITH RECURSIVE ${learners}, ${each(REGISTRATIONS_PER_LEARNER)}
SELECT '${APP_ID}', 'registration-' || printf('%06d', i) || '-' || k, 'cohort-' || (i % 20) FROM learners, each ORDER BY i, k;
INSERT INTO learner_tags (app_id, learner_id, tag)
WITH RECURSIVE ${learners}, ${each(TAGS_PER_LEARNER)}
SELECT '${APP_ID}', ${id}, 'tag-' || ((i + k * 10) % 50) FROM learners, each ORDER BY i, k;
INSERT INTO learner_tag_counts (app_id, learner_id, tag_count)
WITH RECURSIVE ${learners}
SELECT '${APP_ID}', ${id}, ${TAGS_PER_LEARNER} FROM learners;
UPDATE app_storage SET stored_rows = stored_rows + ${(to - from) * (2 * REGISTRATIONS_PER_LEARNER + TAGS_PER_LEARNER)}
WHERE app_id = '${APP_ID}';
`;
}

/** The learner tags seedLearners gives learner number n, in the order they were applied. */
export const learnerTags = (n) => Array.from({ length: TAGS_PER_LEARNER }, (_, k) => `tag-${(n + k * 10) % 50}`);

/** A finished job of the bench application (a learner info update), for GET /jobs/{jobId} to find on its shard. */
export const JOB_ID = `${APP_ID}.00000000-0000-4000-8000-000000000001`;

/** SQL for JOB_ID on the application's shard (binding SHARD): completed, having updated a learner's registrations. */
export function seedJob() {
	const at = "2026-01-01T00:00:00.000Z";
	return `
UPDATE job_clock SET seq = seq + 1 WHERE id = 1;
INSERT INTO jobs (id, seq, app_id, type, status, learner_id, learner_hash, cursor, position, registrations_affected,
  created_at, started_at, completed_at, touched_at)
  VALUES ('${JOB_ID}', (SELECT seq FROM job_clock WHERE id = 1), '${APP_ID}', 'updateLearnerInfo', 'completed',
  NULL, NULL, 1, 0, ${REGISTRATIONS_PER_LEARNER}, '${at}', '${at}', '${at}', '${at}');
`;
}
