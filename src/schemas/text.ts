import * as z from "zod";
import "./openapi-meta";
import { LIMITS } from "../limits";

/**
 * The schemas every route group shares: ids, tags, names and emails with their limits (SPEC §3), the error body,
 * tag lists and the learner. Each route group's own schemas are in the module beside this one named for it, so
 * that an isolate builds only those of the routes it serves (SPEC §6: cold start).
 */

// C0 controls, DEL and C1 controls.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/** The same rule as a JSON Schema `pattern`, so the OpenAPI document states it too. */
const withoutCharacters = (extra = "") => `^[^\\u0000-\\u001f\\u007f-\\u009f${extra}]*$`;

export const codePoints = (value: string) => [...value].length;

/**
 * JSON can escape half a surrogate pair (`"\ud800"`), which no UTF-8 column can hold: D1 would store U+FFFD
 * bytes instead, so the value could never be read back, matched or named in a URL.
 */
const isWellFormed = (value: string) => value.isWellFormed();

const notWellFormed = (label: string) => `${label} must be valid Unicode (not half a surrogate pair)`;

/**
 * A string of 1..max characters (Unicode code points, as JSON Schema's maxLength counts them) with no control
 * characters. Used for ids, tags and names.
 */
export function boundedText(label: string, max: number, extra?: { pattern: RegExp; message: string; documented: string }) {
	let schema = z
		.string({ error: (issue) => (issue.input === undefined ? `${label} is required` : `${label} must be a string`) })
		.refine((value) => value.length > 0, { message: `${label} must not be empty` })
		.refine((value) => codePoints(value) <= max, { message: `${label} must be at most ${max} characters` })
		.refine((value) => !CONTROL_CHARACTERS.test(value), { message: `${label} must not contain control characters` })
		.refine(isWellFormed, { message: notWellFormed(label) });
	if (extra) {
		const { pattern, message } = extra;
		schema = schema.refine((value) => !pattern.test(value), { message });
	}
	return schema.openapi({ minLength: 1, maxLength: max, pattern: withoutCharacters(extra?.documented) });
}

export const IdSchema = (label: string) => boundedText(label, LIMITS.idLength);

/** The path parameter of the routes about one learner. */
export const LearnerParams = z.object({
	learnerId: IdSchema("learnerId").openapi({ param: { name: "learnerId", in: "path" } }),
});

export const TagSchema = boundedText("tag", LIMITS.tagLength, {
	pattern: /,/,
	message: "tag must not contain a comma (tags are filtered as comma-separated lists)",
	documented: ",",
}).openapi({ description: "1-255 characters, no control characters, no comma" });

export const tagArray = z
	.array(TagSchema, { error: "tags must be an array of strings" })
	.max(LIMITS.tagsPerRequest, { message: `tags must hold at most ${LIMITS.tagsPerRequest} tags per request` });

export const MessageSchema = z.object({ message: z.string() }).openapi("MessageSchema");

export const TagListSchema = z.object({ tags: tagArray }).openapi("TagListSchema");

/**
 * TagListSchema as GET answers it: an owner holds up to 1000 tags, gathered over many requests of at most 100,
 * so the per-request bound does not apply to the answer.
 */
export const TagListResponseSchema = z
	.object({ tags: z.array(z.string()).max(LIMITS.tagsPerLearner) })
	.openapi("TagListResponseSchema");

export const BatchTagsSchema = z
	.object({
		ids: z
			.array(IdSchema("id"), { error: "ids must be an array of strings" })
			.min(1, { message: "ids must hold at least one id" })
			.max(LIMITS.idsPerBatch, { message: `ids must hold at most ${LIMITS.idsPerBatch} ids per batch` }),
		tags: tagArray,
	})
	.openapi("BatchTagsSchema");

const optionalEmail = z
	.string({ error: "email must be a string" })
	.max(LIMITS.emailLength, { message: `email must be at most ${LIMITS.emailLength} characters` })
	.refine((value) => value === "" || z.email().safeParse(value).success, {
		message: "email must be a valid email address (or empty to clear it)",
	})
	.openapi({ maxLength: LIMITS.emailLength, description: "A valid address, or empty to clear it" });

const optionalName = (label: string) =>
	z
		.string({ error: `${label} must be a string` })
		.refine((value) => codePoints(value) <= LIMITS.nameLength, {
			message: `${label} must be at most ${LIMITS.nameLength} characters`,
		})
		.refine((value) => !CONTROL_CHARACTERS.test(value), { message: `${label} must not contain control characters` })
		.refine(isWellFormed, { message: notWellFormed(label) })
		.openapi({ maxLength: LIMITS.nameLength, pattern: withoutCharacters() });

/** LearnerSchema: absent or null fields mean "unchanged" in updateInfo; an empty string clears the field. */
export const LearnerSchema = z
	.object({
		id: IdSchema("learner.id"),
		email: optionalEmail.nullish(),
		firstName: optionalName("firstName").nullish(),
		lastName: optionalName("lastName").nullish(),
	})
	.openapi("LearnerSchema");

export const EmailSchema = z
	.string()
	.max(LIMITS.emailLength, { message: `email must be at most ${LIMITS.emailLength} characters` })
	.pipe(z.email({ message: "email must be a valid email address" }))
	.openapi({ maxLength: LIMITS.emailLength });

/**
 * A boolean query parameter: `true` or `false` in any case, read as a boolean. Rustici's .NET client writes
 * booleans with Convert.ToString (`True`, `False`); the others send lower case.
 */
export const queryFlag = (name: string) =>
	z
		.string()
		.regex(/^(true|false)$/i, { message: `${name} must be true or false` })
		.transform((value) => value.toLowerCase() === "true")
		.optional()
		.openapi({ param: { name, in: "query" }, type: "boolean" });

/**
 * A date-time query parameter, as ISO-8601 UTC. The clients write it each their own way: with milliseconds or
 * without (PHP, Ruby), with an offset, with seven fractional digits (.NET's "o"), or without a zone, which SCORM
 * Cloud reads as UTC (as the Worker's clock does).
 */
export const queryDate = (name: string) =>
	z
		.string()
		.refine((value) => !Number.isNaN(Date.parse(value)), { message: `${name} must be an ISO-8601 date-time` })
		.transform((value) => new Date(value).toISOString())
		.optional()
		.openapi({ param: { name, in: "query" }, type: "string", format: "date-time" });
