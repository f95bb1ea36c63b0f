import * as z from "zod/mini";
import { asClassic } from "./openapi-meta";

/** Query parameters' schemas shared by route groups (not by the learner tag routes). */

/**
 * A boolean query parameter: `true` or `false` in any case, read as a boolean. Rustici's .NET client writes
 * booleans with Convert.ToString (`True`, `False`); the others send lower case.
 */
export const queryFlag = (name: string) =>
	asClassic(
		z
			.optional(
				z.pipe(
					z.string().check(z.regex(/^(true|false)$/i, { message: `${name} must be true or false` })),
					z.transform((value: string) => value.toLowerCase() === "true"),
				),
			)
			.openapi({ param: { name, in: "query" }, type: "boolean" }),
	);

/**
 * A date-time query parameter, as ISO-8601 UTC. The clients write it each their own way: with milliseconds or
 * without (PHP, Ruby), with an offset, with seven fractional digits (.NET's "o"), or without a zone, which SCORM
 * Cloud reads as UTC (as the Worker's clock does). `description` says what the listing bounds by it.
 */
export const queryDate = (name: string, description?: string) =>
	asClassic(
		z
			.optional(
				z.pipe(
					z.string().check(z.refine((value) => !Number.isNaN(Date.parse(value)), { message: `${name} must be an ISO-8601 date-time` })),
					z.transform((value: string) => new Date(value).toISOString()),
				),
			)
			.openapi({ param: { name, in: "query" }, type: "string", format: "date-time", ...(description && { description }) }),
	);
