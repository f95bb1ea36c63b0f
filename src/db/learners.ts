import { retryTransient } from "./retry";
import { type Db, prepareWith } from "./types";

/**
 * The learner directory: an application's learners in learner id order, optionally those carrying tags.
 *
 * A learner has no row of its own (it exists while a registration names it), so a page is found in an index —
 * the tags' ranges of learner_tags_by_tag (migrations/shard), or registrations_by_app_learner without a tag
 * filter — and its learners' details are read from their registrations and tags, all in one statement.
 */

/** How several tags match: learners carrying any of them, or every one. */
export const TAG_MATCHES = ["any", "all"] as const;
export type TagMatch = (typeof TAG_MATCHES)[number];

export interface LearnerFilter {
	/** Free of duplicates; absent or empty, every learner of the application. */
	tags?: string[];
	tagMatch: TagMatch;
}

/** A learner as the directory shows it. */
export interface LearnerSummary {
	id: string;
	/** The newest value each field was given (see listLearners); null when no registration has one. */
	email: string | null;
	firstName: string | null;
	lastName: string | null;
	/** In the order first applied. */
	tags: string[];
	registrationCount: number;
}

interface LearnerRow {
	id: string;
	registration_count: number;
	email: string | null;
	first_name: string | null;
	last_name: string | null;
	tags_json: string;
}

// Which learners a page holds, in learner id order, after the previous page's last (?3, '' on the first page,
// below every id), at most ?4 of them. ?1 app, ?2 the tags as a JSON array, ?5 the first tag. Values are always
// bound: the SQL text depends only on how many tags there are (none, one, several) and on tagMatch.
const PAGES = {
	// Every learner: its distinct ids, out of the (app_id, learner_id) index in order.
	every: `page(learner_id) AS (
	  SELECT DISTINCT r.learner_id FROM registrations r INDEXED BY registrations_by_app_learner
	  WHERE r.app_id = ?1 AND r.learner_id > ?3 ORDER BY r.learner_id LIMIT ?4)`,
	// One tag: the next ?4 entries of its index range.
	oneTag: `page(learner_id) AS (
	  SELECT t.learner_id FROM learner_tags t INDEXED BY learner_tags_by_tag
	  WHERE t.app_id = ?1 AND t.tag = ?5 AND t.learner_id > ?3 ORDER BY t.learner_id LIMIT ?4)`,
	// Every tag: driven by the first tag's range, each learner checked for the others (one seek of the unique
	// (app_id, learner_id, tag) index each). Its cost follows the first tag's learners read until the page is
	// full, so the rarest tag is best named first.
	allTags: `page(learner_id) AS (
	  SELECT t.learner_id FROM learner_tags t INDEXED BY learner_tags_by_tag
	  WHERE t.app_id = ?1 AND t.tag = ?5 AND t.learner_id > ?3
	    AND NOT EXISTS (SELECT 1 FROM json_each(?2) j WHERE j.key > 0 AND NOT EXISTS (
	      SELECT 1 FROM learner_tags o INDEXED BY learner_tags_by_learner
	      WHERE o.app_id = ?1 AND o.learner_id = t.learner_id AND o.tag = j.value))
	  ORDER BY t.learner_id LIMIT ?4)`,
	// Any tag: a merge of the tags' ranges. Each step takes the smallest learner id after the previous one
	// across the tags (one seek of learner_tags_by_tag per tag), so a page costs at most tags x (?4) index
	// seeks, whatever the tags' ranges hold beyond it; a learner with several of the tags comes out once.
	anyTag: `merged(learner_id, n) AS (
	  SELECT ?3, 0
	  UNION ALL
	  SELECT (SELECT min((SELECT t.learner_id FROM learner_tags t INDEXED BY learner_tags_by_tag
	            WHERE t.app_id = ?1 AND t.tag = j.value AND t.learner_id > m.learner_id
	            ORDER BY t.learner_id LIMIT 1)) FROM json_each(?2) j), m.n + 1
	  FROM merged m WHERE m.learner_id IS NOT NULL AND m.n < ?4),
	page(learner_id) AS (SELECT learner_id FROM merged WHERE n > 0 AND learner_id IS NOT NULL)`,
} as const;

/**
 * A field's value as the learner's registrations hold it now: from the registration whose version of the field
 * (`<field>_seq`: the job clock when an update set it or the registration was created) is highest, the newest
 * registration among equals; registrations without a value (created without one) are passed over. The version
 * and pk, as fixed-width hex, sort as the numbers do, so max() finds that registration in the same pass over
 * the learner's registrations as the count; the value follows the 32 characters of the key.
 */
const newest = (column: string, version: string) =>
	`substr(max(CASE WHEN r.${column} IS NOT NULL THEN printf('%016x%016x', r.${version}, r.pk) || r.${column} END), 33)`;

// The page's learners, each with its registrations (LEFT JOIN: a tag whose learner has no registration left, as
// while its application's data is being deleted, still counts toward the page, with no registrations, so the
// page ends where the index range did) and its tags in the order first applied (the in-order index ends in
// rowid: no sort).
const DETAILS = `SELECT p.learner_id AS id, count(r.pk) AS registration_count,
  ${newest("learner_email", "email_seq")} AS email,
  ${newest("learner_first_name", "first_name_seq")} AS first_name,
  ${newest("learner_last_name", "last_name_seq")} AS last_name,
  (SELECT json_group_array(tag) FROM (SELECT t.tag FROM learner_tags t INDEXED BY learner_tags_in_order
     WHERE t.app_id = ?1 AND t.learner_id = p.learner_id ORDER BY t.rowid)) AS tags_json
FROM page p LEFT JOIN registrations r INDEXED BY registrations_by_app_learner
  ON r.app_id = ?1 AND r.learner_id = p.learner_id
GROUP BY p.learner_id ORDER BY p.learner_id`;

function pageOf(filter: LearnerFilter): string {
	const count = filter.tags?.length ?? 0;
	if (count === 0) return PAGES.every;
	if (count === 1) return PAGES.oneTag;
	return filter.tagMatch === "all" ? PAGES.allTags : PAGES.anyTag;
}

/**
 * One page of the application's learners matching the filter, in learner id order after `after`: at most
 * `limit` learners, and `next` (the id to page on from) when more may follow. One statement, reading about as
 * many rows as the page holds (its learners, their registrations and tags), plus, for several tags, one index
 * seek per tag and learner (`any`) or the first tag's learners passed over (`all`). A learner appears while a
 * registration names it: an erased learner, or one whose registrations were all deleted, never does.
 */
export async function listLearners(
	db: Db,
	appId: string,
	query: { filter: LearnerFilter; after?: string; limit: number },
): Promise<{ learners: LearnerSummary[]; next?: string }> {
	const tags = query.filter.tags ?? [];
	const params = [appId, JSON.stringify(tags), query.after ?? "", query.limit + 1, tags[0] ?? null];
	const sql = `WITH RECURSIVE ${pageOf(query.filter)} ${DETAILS}`;
	const { results } = await retryTransient(() => prepareWith(db, sql, params).all<LearnerRow>());
	// One row past the page tells whether another page exists, without a count.
	const page = results.slice(0, query.limit);
	const next = results.length > query.limit ? page.at(-1)?.id : undefined;
	return {
		learners: page
			.filter((row) => row.registration_count > 0)
			.map((row) => ({
				id: row.id,
				email: row.email,
				firstName: row.first_name,
				lastName: row.last_name,
				tags: JSON.parse(row.tags_json) as string[],
				registrationCount: row.registration_count,
			})),
		...(next !== undefined && { next }),
	};
}

/**
 * The applications among `apps` (each with its HMAC of the learner) holding the learner for an erasure: a registration
 * names it, or an erasure of it is still pending there — its registrations may be gone already, and until it
 * completes it stands for the learner, as it does for a single erasure (./jobs.ts acceptLearnerErasure). A realm-wide
 * erasure asks here, so it joins such an erasure (and its suppression, if asked, holds there) instead of leaving the
 * application out. One statement, served by the registrations' and jobs' learner indexes.
 */
export async function applicationsHoldingForErasure(
	shard: Db,
	apps: { appId: string; learnerHash: string }[],
	learnerId: string,
): Promise<string[]> {
	if (apps.length === 0) return [];
	const { results } = await shard
		.prepare(
			`SELECT a.value ->> '$.appId' AS app_id FROM json_each(?1) a
			 WHERE EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = a.value ->> '$.appId' AND r.learner_id = ?2)
			    OR EXISTS (SELECT 1 FROM jobs p WHERE p.app_id = a.value ->> '$.appId' AND p.learner_hash = a.value ->> '$.learnerHash'
			               AND p.type = 'deleteAllLearnerData' AND p.status IN ('queued', 'running'))`,
		)
		.bind(JSON.stringify(apps), learnerId)
		.all<{ app_id: string }>();
	return results.map((row) => row.app_id);
}

/**
 * Which of these applications (all on this shard) hold the learner: one index seek each
 * (registrations_by_app_learner). An application that never held the learner costs a read, no write.
 */
export async function applicationsHolding(shard: Db, appIds: string[], learnerId: string): Promise<string[]> {
	if (appIds.length === 0) return [];
	const { results } = await shard
		.prepare(
			`SELECT a.value AS app_id FROM json_each(?1) a
			 WHERE EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = a.value AND r.learner_id = ?2)`,
		)
		.bind(JSON.stringify(appIds), learnerId)
		.all<{ app_id: string }>();
	return results.map((row) => row.app_id);
}
