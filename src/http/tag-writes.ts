import type { WriteLimits } from "../db/app-storage";
import { type TagOwner, TagLimitError, addTags } from "../db/tags";
import type { Db } from "../db/types";
import { ApiError, badRequest } from "../errors";

/** The list without repeats, in first-seen order. */
export const unique = (values: string[]) => [...new Set(values)];

const named = (noun: string, ids: string[]) =>
	`${noun}${ids.length > 1 ? "s" : ""} ${ids.map((id) => `[${id}]`).join(", ")}`;

/** 400 naming the owners that would pass their tag limit. */
export const tagLimitExceeded = (owner: TagOwner, ids: string[]) =>
	badRequest(
		`${named(owner.noun, ids)} would have more than ${owner.limit} tags (limit: ${owner.limit} tags per ${owner.noun.toLowerCase()})`,
	);

/**
 * Adds tags to owners (all or nothing), answering 400 for the tag limit and 404 listing unknown owners —
 * `notFound` shapes the 404 for a single-owner route.
 */
export async function addTagsOr4xx(
	db: Db,
	owner: TagOwner,
	appId: string,
	ids: string[],
	tags: string[],
	limits: WriteLimits,
	notFound: (unknown: string[]) => ApiError = (unknown) =>
		new ApiError(404, `${named(owner.noun, unknown)} ${unknown.length > 1 ? "were" : "was"} not found; no tags were added`),
): Promise<void> {
	let unknown: string[];
	try {
		unknown = await addTags(db, owner, appId, unique(ids), unique(tags), limits);
	} catch (error) {
		if (error instanceof TagLimitError) throw tagLimitExceeded(owner, error.ownerIds);
		throw error;
	}
	if (unknown.length > 0) throw notFound(unknown);
}
