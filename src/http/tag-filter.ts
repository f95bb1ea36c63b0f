import * as z from "zod/mini";
import { badRequest } from "../errors";
import { LIMITS } from "../limits";
import { TagSchema } from "../schemas/text";

const TagsCsv = z.array(TagSchema).check(z.maxLength(LIMITS.tagsPerRequest, { message: `tags must name at most ${LIMITS.tagsPerRequest} tags` }));

/**
 * The tags a listing's `tags` query parameter names (comma-separated, empty entries ignored), each valid as any
 * tag is, or undefined when it names none. Throws a 400 naming the first problem.
 */
export function parseTagFilter(csv: string | undefined): string[] | undefined {
	const tags = csv?.split(",").filter((tag) => tag !== "");
	if (!tags || tags.length === 0) return undefined;
	const parsed = TagsCsv.safeParse(tags);
	if (!parsed.success) throw badRequest(`tags: ${parsed.error.issues[0]?.message ?? "invalid"}`);
	return parsed.data;
}
