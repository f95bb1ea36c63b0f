import * as z from "zod";
import "./openapi-meta";

/** Query parameters' schemas shared by route groups (not by the learner tag routes: see ./text.ts). */

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
