import { LIMITS } from "../limits";
import { touchLearners, touchLearnersOfRegistrations } from "./activity";
import { type WriteLimits, countRows, writeGuard } from "./app-storage";
import { retryTransient } from "./retry";
import { type Db, nowIso } from "./types";

/**
 * Tags on learners and on registrations: one implementation, two owners.
 *
 * A learner exists while one of its application's registrations names it; a registration exists while its row
 * does. Either way existence is one index seek on registrations. Id and tag lists are bound as JSON arrays
 * and expanded with json_each, so every operation is a constant number of statements whatever its size
 * (D1: 100 bound parameters per statement), and each write is one db.batch() — D1's transaction, all or
 * nothing. Tag order is rowid order: the order in which each tag was first applied.
 *
 * Each owner's tag count is kept in step with its tags in the same transaction; a CHECK on the count
 * (migrations/shard) enforces the per-owner limit at O(1) cost — a write that would pass it aborts, whole. So is
 * the application's stored-row count (src/db/app-storage.ts), and every write starts with its guard.
 *
 * Writes are safe to repeat (a union, a removal), so transient D1 errors are retried.
 */
export interface TagOwner {
	/** What the owner is called in messages. */
	noun: "Learner" | "Registration";
	/** Table holding (app_id, <ownerColumn>, tag). */
	tagsTable: "learner_tags" | "registration_tags";
	ownerColumn: "learner_id" | "registration_id";
	/** The registrations column naming the owner. */
	registrationColumn: "learner_id" | "id";
	/** Where the owner's tag count lives, and its owner column there. */
	countTable: "learner_tag_counts" | "registrations";
	countOwnerColumn: "learner_id" | "id";
	/** Name of the CHECK constraint on the count. */
	limitConstraint: "learner_tag_limit" | "registration_tag_limit";
	limit: number;
}

export const LEARNER_TAGS: TagOwner = {
	noun: "Learner",
	tagsTable: "learner_tags",
	ownerColumn: "learner_id",
	registrationColumn: "learner_id",
	countTable: "learner_tag_counts",
	countOwnerColumn: "learner_id",
	limitConstraint: "learner_tag_limit",
	limit: LIMITS.tagsPerLearner,
};

export const REGISTRATION_TAGS: TagOwner = {
	noun: "Registration",
	tagsTable: "registration_tags",
	ownerColumn: "registration_id",
	registrationColumn: "id",
	countTable: "registrations",
	countOwnerColumn: "id",
	limitConstraint: "registration_tag_limit",
	limit: LIMITS.tagsPerRegistration,
};

/** Thrown when a write would give owners more tags than the limit; nothing was written. */
export class TagLimitError extends Error {
	constructor(readonly ownerIds: string[]) {
		super("tag limit");
	}
}

const exists = (owner: TagOwner, idExpression: string) =>
	`EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = ?1 AND r.${owner.registrationColumn} = ${idExpression})`;

/** How many of the tags in ?3 the owner `idExpression` does not have yet. */
const newTagCount = (owner: TagOwner, idExpression: string) =>
	`(SELECT count(*) FROM json_each(?3) j WHERE NOT EXISTS (SELECT 1 FROM ${owner.tagsTable} t
	   WHERE t.app_id = ?1 AND t.${owner.ownerColumn} = ${idExpression} AND t.tag = j.value))`;

/** True when every id in ?2 exists: writes happen only then, so a batch is all or nothing. */
const allExist = (owner: TagOwner) => `NOT EXISTS (SELECT 1 FROM json_each(?2) i WHERE NOT ${exists(owner, "i.value")})`;

/** The statement raising each owner's tag count by the tags it is about to gain. */
function countIncrease(owner: TagOwner): string {
	if (owner.countTable === "registrations") {
		return `UPDATE registrations SET tag_count = tag_count + ${newTagCount(owner, "registrations.id")}
		        WHERE app_id = ?1 AND id IN (SELECT value FROM json_each(?2)) AND ${allExist(owner)}`;
	}
	// Learners have no row of their own: the count row is created on first use.
	return `INSERT INTO learner_tag_counts (app_id, learner_id, tag_count)
	        SELECT ?1, i.value, ${newTagCount(owner, "i.value")} FROM json_each(?2) i WHERE ${allExist(owner)}
	        ON CONFLICT (app_id, learner_id) DO UPDATE SET tag_count = tag_count + excluded.tag_count`;
}

const isLimitError = (owner: TagOwner, error: unknown) =>
	error instanceof Error && error.message.includes(owner.limitConstraint);

/**
 * The owner's tags in the order first applied, or null when it does not exist. One statement reading one row
 * per tag plus two: a marker row when the owner exists, then the tags straight from the in-order index (whose
 * entries end in rowid, so no sort; without INDEXED BY the planner would take the covering unique index and
 * sort every tag).
 */
export async function getTags(db: Db, owner: TagOwner, appId: string, id: string): Promise<string[] | null> {
	const { results } = await retryTransient(() =>
		db
			.prepare(
				`SELECT NULL AS tag WHERE ${exists(owner, "?2")}
				 UNION ALL
				 SELECT t.tag FROM ${owner.tagsTable} t INDEXED BY ${owner.tagsTable}_in_order
				 WHERE t.app_id = ?1 AND t.${owner.ownerColumn} = ?2`,
			)
			.bind(appId, id)
			.all<{ tag: string | null }>(),
	);
	if (results[0]?.tag !== null) return null;
	return results.slice(1).map((row) => row.tag as string);
}

/** How many (owner, tag) rows the write will add: none unless every owner exists. */
const newRows = (owner: TagOwner) =>
	`CASE WHEN ${allExist(owner)} THEN (SELECT count(*) FROM json_each(?2) i, json_each(?3) j
	   WHERE NOT EXISTS (SELECT 1 FROM ${owner.tagsTable} t
	     WHERE t.app_id = ?1 AND t.${owner.ownerColumn} = i.value AND t.tag = j.value)) ELSE 0 END`;

/**
 * Statements adding every tag to every owner (set union, in array order), written only if every owner exists,
 * and counting the new rows against the application's quota. `ids` and `tags` must be free of duplicates. For
 * use inside a batch that starts with writeGuard(); see addTags.
 */
export function addTagsStatements(db: Db, owner: TagOwner, appId: string, ids: string[], tags: string[]) {
	const idsJson = JSON.stringify(ids);
	const tagsJson = JSON.stringify(tags);
	return [
		db.prepare(countRows(newRows(owner))).bind(appId, idsJson, tagsJson),
		db.prepare(countIncrease(owner)).bind(appId, idsJson, tagsJson),
		db
			.prepare(
				`INSERT OR IGNORE INTO ${owner.tagsTable} (app_id, ${owner.ownerColumn}, tag)
				 SELECT ?1, i.value, j.value FROM json_each(?2) i, json_each(?3) j
				 WHERE ${allExist(owner)} ORDER BY i.key, j.key`,
			)
			.bind(appId, idsJson, tagsJson),
	];
}

/**
 * The statement stamping the owners' learners with a write now (./activity.ts), when every owner exists (a write to
 * owners that do not all exist writes nothing). After the write's statements, in its batch.
 */
export const touchOwners = (db: Db, owner: TagOwner, appId: string, ids: string[], now = nowIso()) =>
	owner.ownerColumn === "learner_id"
		? touchLearners(db, appId, ids, now, allExist(owner))
		: touchLearnersOfRegistrations(db, appId, ids, now, allExist(owner));

/**
 * Adds every tag to every owner, all or nothing, in one D1 call of six statements whatever the sizes; costs
 * ids x tags of the write budget. Returns the ids that do not exist (if any, nothing was written). Throws
 * TagLimitError naming the owners that would pass the limit (nothing written); a refused write throws D1's
 * error (refusalOf()). `ids` and `tags` must be free of duplicates.
 */
export async function addTags(
	db: Db,
	owner: TagOwner,
	appId: string,
	ids: string[],
	tags: string[],
	limits: WriteLimits,
): Promise<string[]> {
	const idsJson = JSON.stringify(ids);
	try {
		const results = await retryTransient(() =>
			db.batch([
				writeGuard(db, appId, ids.length * tags.length, limits),
				...addTagsStatements(db, owner, appId, ids, tags),
				touchOwners(db, owner, appId, ids),
				db
					.prepare(`SELECT i.value AS id FROM json_each(?2) i WHERE NOT ${exists(owner, "i.value")} ORDER BY i.key`)
					.bind(appId, idsJson),
			]),
		);
		return ((results.at(-1)?.results ?? []) as { id: string }[]).map((row) => row.id);
	} catch (error) {
		if (!isLimitError(owner, error)) throw error;
		throw new TagLimitError(await ownersOverLimit(db, owner, appId, idsJson, JSON.stringify(tags)));
	}
}

/** The owners that adding the tags would take past the limit (read-only; for the error message). */
async function ownersOverLimit(db: Db, owner: TagOwner, appId: string, idsJson: string, tagsJson: string) {
	const { results } = await db
		.prepare(
			`SELECT i.value AS id FROM json_each(?2) i
			 WHERE coalesce((SELECT c.tag_count FROM ${owner.countTable} c
			   WHERE c.app_id = ?1 AND c.${owner.countOwnerColumn} = i.value), 0) + ${newTagCount(owner, "i.value")} > ?4
			 ORDER BY i.key`,
		)
		.bind(appId, idsJson, tagsJson, owner.limit)
		.all<{ id: string }>();
	return results.map((row) => row.id);
}

/**
 * Removes tags from one owner (tags it lacks are ignored), costing their number of the write budget. False
 * when the owner does not exist, and then nothing was removed. One D1 call.
 */
export async function removeTags(
	db: Db,
	owner: TagOwner,
	appId: string,
	id: string,
	tags: string[],
	limits: WriteLimits,
): Promise<boolean> {
	const tagsJson = JSON.stringify(tags);
	// Only where the owner exists: a learner's tags outlive its registrations for a moment while its erasure runs (the
	// erasure takes them, and counts them, as it completes), and a request answered 404 must not have removed any.
	const matching = `FROM ${owner.tagsTable} WHERE app_id = ?1 AND ${owner.ownerColumn} = ?2 AND tag IN (SELECT value FROM json_each(?3))
	  AND ${exists(owner, "?2")}`;
	const statements = [
		writeGuard(db, appId, tags.length, limits),
		db.prepare(countRows(`-(SELECT count(*) ${matching})`)).bind(appId, id, tagsJson),
		db
			.prepare(
				`UPDATE ${owner.countTable} SET tag_count = tag_count - (SELECT count(*) ${matching})
				 WHERE app_id = ?1 AND ${owner.countOwnerColumn} = ?2`,
			)
			.bind(appId, id, tagsJson),
		db.prepare(`DELETE ${matching}`).bind(appId, id, tagsJson),
		touchOwners(db, owner, appId, [id]),
		db.prepare(`SELECT ${exists(owner, "?2")} AS found`).bind(appId, id),
	];
	const results = await retryTransient(() => db.batch(statements));
	return (results.at(-1)?.results[0] as { found: number } | undefined)?.found === 1;
}
