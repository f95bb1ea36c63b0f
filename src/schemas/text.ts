import * as z from "zod/mini";
import { asClassic } from "./openapi-meta";
import { LIMITS } from "../limits";

/**
 * The schemas every route group shares: ids and tags with their limits (SPEC §3), the error body and tag lists.
 * Each route group's own schemas are in the module beside this one named for it, and the learner's details in
 * src/schemas/learner.ts, so that an isolate builds only those of the routes it serves (SPEC §6: cold start).
 *
 * Built with zod's functional build, as every schema of the service (./openapi-meta.ts says why), and typed as the
 * method-chaining build's schema of the same shape, which the route declarations' types ask for; at run time a
 * schema has the functional build's members only (parse, safeParse, check, `.openapi()`), so a route group makes
 * one optional with `z.optional(...)`, never `.optional()`. Query parameters' helpers are in ./query.ts.
 */

// C0 controls, DEL and C1 controls.
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/** The same rule as a JSON Schema `pattern`, so the OpenAPI document states it too. */
export const withoutCharacters = (extra = "") => `^[^\\u0000-\\u001f\\u007f-\\u009f${extra}]*$`;

export const codePoints = (value: string) => [...value].length;

/**
 * JSON can escape half a surrogate pair (`"\ud800"`), which no UTF-8 column can hold: D1 would store U+FFFD
 * bytes instead, so the value could never be read back, matched or named in a URL.
 */
export const isWellFormed = (value: string) => value.isWellFormed();

export const notWellFormed = (label: string) => `${label} must be valid Unicode (not half a surrogate pair)`;

/**
 * A string of 1..max characters (Unicode code points, as JSON Schema's maxLength counts them) with no control
 * characters. Used for ids, tags and names. Its rules are one check that reports each rule the value breaks, in
 * this order: a chain of refinements would say the same, but every link is another schema to build, and the
 * schemas a request validates with are built by its isolate's first request (SPEC §6: cold start). An extra rule
 * comes with the JSON Schema pattern that states all of them (`documented`).
 */
export function boundedText(label: string, max: number, extra?: { pattern: RegExp; message: string; documented: string }) {
	const rules: [broken: (value: string) => boolean, message: string][] = [
		[(value) => value.length === 0, `${label} must not be empty`],
		[(value) => codePoints(value) > max, `${label} must be at most ${max} characters`],
		[(value) => CONTROL_CHARACTERS.test(value), `${label} must not contain control characters`],
		[(value) => !isWellFormed(value), notWellFormed(label)],
	];
	if (extra) {
		const { pattern, message } = extra;
		rules.push([(value) => pattern.test(value), message]);
	}
	const schema = z
		.string({ error: (issue) => (issue.input === undefined ? `${label} is required` : `${label} must be a string`) })
		.check(
			z.superRefine((value, context) => {
				for (const [broken, message] of rules) if (broken(value)) context.addIssue({ code: "custom", message, input: value });
			}),
		)
		.openapi({ minLength: 1, maxLength: max, pattern: extra?.documented ?? withoutCharacters() });
	return asClassic(schema);
}

export const IdSchema = (label: string) => boundedText(label, LIMITS.idLength);

/**
 * An id a request creates and later requests name in a URL path (a registration's, a learner's). "." and ".."
 * cannot be named there: every URL parser resolves such a segment away, also when written %2E (RFC 3986 §5.2.4,
 * WHATWG URL), so `/registrations/./tags` arrives as `/registrations/tags`. Such a registration or learner could
 * be created but never read, tagged or erased by its id, so it is refused when created.
 */
export const PathIdSchema = (label: string) =>
	boundedText(label, LIMITS.idLength, {
		pattern: /^\.\.?$/,
		message: `${label} must not be "." or ".." (a URL path cannot name such an id)`,
		documented: `^(?!\\.\\.?$)${withoutCharacters().slice(1)}`,
	});

/** The path parameter of the routes about one learner. */
export const LearnerParams = asClassic(
	z.object({
		learnerId: IdSchema("learnerId").openapi({ param: { name: "learnerId", in: "path" } }),
	}),
);

export const TagSchema = boundedText("tag", LIMITS.tagLength, {
	pattern: /,/,
	message: "tag must not contain a comma (tags are filtered as comma-separated lists)",
	documented: withoutCharacters(","),
}).openapi({ description: "1-255 characters, no control characters, no comma" });

export const tagArray = asClassic(
	z
		.array(TagSchema, { error: "tags must be an array of strings" })
		.check(z.maxLength(LIMITS.tagsPerRequest, { message: `tags must hold at most ${LIMITS.tagsPerRequest} tags per request` })),
);

export const MessageSchema = asClassic(z.object({ message: z.string() }).openapi("MessageSchema"));

export const TagListSchema = asClassic(z.object({ tags: tagArray }).openapi("TagListSchema"));

/**
 * TagListSchema as GET answers it: an owner holds up to 1000 tags, gathered over many requests of at most 100,
 * so the per-request bound does not apply to the answer.
 */
export const TagListResponseSchema = asClassic(
	z.object({ tags: z.array(z.string()).check(z.maxLength(LIMITS.tagsPerLearner)) }).openapi("TagListResponseSchema"),
);

export const BatchTagsSchema = asClassic(
	z
		.object({
			ids: z
				.array(IdSchema("id"), { error: "ids must be an array of strings" })
				.check(
					z.minLength(1, { message: "ids must hold at least one id" }),
					z.maxLength(LIMITS.idsPerBatch, { message: `ids must hold at most ${LIMITS.idsPerBatch} ids per batch` }),
				),
			tags: tagArray,
		})
		.openapi("BatchTagsSchema"),
);
