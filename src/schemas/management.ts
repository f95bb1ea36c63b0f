import * as z from "zod";
import "./openapi-meta";
import { APPLICATION_DATETIME_FILTERS, APPLICATION_FILTER_FIELDS, APPLICATION_ORDERS } from "../db/applications";
import { LIMITS } from "../limits";
import { longestToken } from "../paging";
import { DATA_REGIONS } from "../shards";
import { queryDate, queryFlag } from "./query";
import { boundedText } from "./text";

/** Application management's schemas: applications, moves, credentials, realm users, suppressions (SPEC §4, §7, §9). */

// --- Application management -------------------------------------------------------------------------
export const ApplicationRequestSchema = z
	.object({
		name: boundedText("name", LIMITS.nameLength),
		dataRegion: z
			.enum(DATA_REGIONS, { error: `dataRegion must be one of: ${DATA_REGIONS.join(", ")}` })
			.optional()
			.openapi({
				description:
					"Where the application's data lives: `eu` places it on a shard created in D1's EU jurisdiction. Default `default`.",
			}),
	})
	.openapi("ApplicationRequestSchema");

export const ApplicationSchema = z
	.object({
		id: z.string(),
		name: z.string(),
		createDate: z.string(),
		dataRegion: z.enum(DATA_REGIONS).openapi({ description: "The region the application's data lives in" }),
		shard: z.string().openapi({ description: "The shard database (D1 binding) holding the application's data" }),
	})
	.openapi("ApplicationSchema");

const dataRegion = z.enum(DATA_REGIONS).openapi({ description: "The region the application's data lives in" });
const shard = z.string().openapi({ description: "The shard database (D1 binding) holding the application's data" });

/** SCORM Cloud's ApplicationInfoSchema (GET /appManagement/applications/{childAppId}, applicationList), with placement. */
export const ApplicationInfoSchema = z
	.object({
		id: z.string(),
		name: z.string(),
		createDate: z.string().openapi({ format: "date-time" }),
		updateDate: z.string().openapi({ format: "date-time", description: "The last change of name or allowDelete" }),
		allowDelete: z.boolean().openapi({ description: "While false, deleting the application is refused (409)" }),
		courseCount: z
			.number()
			.int()
			.optional()
			.openapi({ description: "With includeCourseCount=true: always 0, as this service hosts no course content" }),
		registrationCount: z
			.number()
			.int()
			.optional()
			.openapi({ description: "With includeRegistrationCount=true: the registrations the application holds now" }),
		dataRegion,
		shard,
	})
	.openapi("ApplicationInfoSchema");

export const ApplicationInfoListSchema = z
	.object({
		applications: z.array(ApplicationInfoSchema),
		more: z.string().optional().openapi({ description: "Present when another page exists: pass it as `more` to get it" }),
	})
	.openapi("ApplicationInfoListSchema");

/** SCORM Cloud's UpdateApplicationSchema. */
export const UpdateApplicationSchema = z
	.object({
		name: z.optional(boundedText("name", LIMITS.nameLength)),
		allowDelete: z
			.boolean({ error: "allowDelete must be a boolean" })
			.optional()
			.openapi({ description: "false guards the application against deletion until it is set back to true" }),
	})
	.refine((body) => body.name !== undefined || body.allowDelete !== undefined, { message: "Provide name, allowDelete, or both" })
	.openapi("UpdateApplicationSchema");

/** includeCourseCount and includeRegistrationCount, of GET /appManagement/applications/{childAppId} and applicationList. */
const countFlags = {
	includeCourseCount: queryFlag("includeCourseCount"),
	includeRegistrationCount: queryFlag("includeRegistrationCount"),
};

export const ApplicationInfoQuery = z.object(countFlags);

export const ApplicationListQuery = z.object({
	since: queryDate("since"),
	until: queryDate("until"),
	datetimeFilter: z
		.enum(APPLICATION_DATETIME_FILTERS, { error: `datetimeFilter must be one of ${APPLICATION_DATETIME_FILTERS.join(", ")}` })
		.default("updated")
		.openapi({ param: { name: "datetimeFilter", in: "query" }, description: "The date since and until bound" }),
	filter: z
		.string()
		.min(1, "filter must not be empty")
		.max(LIMITS.nameLength, `filter must be at most ${LIMITS.nameLength} characters`)
		.optional()
		.openapi({ param: { name: "filter", in: "query" }, description: "Text the field filterBy names must contain (case-insensitive)" }),
	filterBy: z
		.enum(APPLICATION_FILTER_FIELDS, { error: `filterBy must be one of ${APPLICATION_FILTER_FIELDS.join(", ")}` })
		.default("app_id")
		.openapi({ param: { name: "filterBy", in: "query" }, description: "The field filter searches" }),
	orderBy: z
		.enum(APPLICATION_ORDERS, { error: `orderBy must be one of ${APPLICATION_ORDERS.join(", ")}` })
		.default("updated_asc")
		.openapi({ param: { name: "orderBy", in: "query" }, description: "By update or creation date; equal dates by id" }),
	more: z
		.string()
		// Its cursor carries the filter text and an application id besides dates and names.
		.max(longestToken(2, LIMITS.nameLength, 300))
		.optional()
		.openapi({ param: { name: "more", in: "query" }, description: "The `more` of the previous page; the filters come with it" }),
	...countFlags,
	includeTotalCount: queryFlag("includeTotalCount"),
});

export const SuppressionListSchema = z
	.object({
		suppressions: z.array(
			z.object({
				learnerHash: z.string().openapi({ description: "HMAC-SHA-256 of `<appId>\\n<learnerId>`, hex; never the learner id" }),
				jobId: z.string().openapi({ description: "The erasure that suppressed the learner" }),
				createdDate: z.string(),
			}),
		),
	})
	.openapi("SuppressionListSchema");

/** The path parameter of the management routes about one application. */
export const ChildAppParams = z.object({
	childAppId: z.string().min(1).max(255).openapi({ param: { name: "childAppId", in: "path" } }),
});

export const ApplicationMoveSchema = z
	.object({
		shard: z
			.string({ error: "shard must be a string naming a shard (a D1 binding listed in SHARDS)" })
			.min(1, "shard must name a shard")
			.max(64, "shard must be at most 64 characters"),
		allowRegionChange: z
			.boolean({ error: "allowRegionChange must be a boolean" })
			.optional()
			.openapi({ description: "Required (true) to move the application's data into another region" }),
	})
	.openapi("ApplicationMoveSchema");

export const ApplicationListSchema = z
	.object({ applications: z.array(ApplicationSchema) })
	.openapi("ApplicationListSchema");

export const CredentialRequestSchema = z
	.object({
		name: boundedText("name", LIMITS.nameLength),
		active: z.boolean({ error: "active must be a boolean" }).optional(),
	})
	.openapi("CredentialRequestSchema");

export const CredentialUpdateSchema = z
	.object({
		name: z.optional(boundedText("name", LIMITS.nameLength)),
		active: z.boolean({ error: "active must be a boolean" }).optional(),
	})
	.refine((body) => body.name !== undefined || body.active !== undefined, {
		message: "Provide name, active, or both",
	})
	.openapi("CredentialUpdateSchema");

const CredentialStatus = z.enum(["Enabled", "Disabled"]);

// created and updated are the names Rustici's clients read (CredentialSchema); the JavaScript client reads neither.
const credentialDates = {
	created: z.string().openapi({ format: "date-time" }),
	updated: z.string().openapi({ format: "date-time", description: "The last rename, enabling or disabling" }),
};


// The Python, PHP, Java, .NET and Ruby clients read the creation's answer as CredentialSchema (dates included).
export const CredentialCreatedSchema = z
	.object({ id: z.string(), name: z.string(), credential: z.string(), status: CredentialStatus, ...credentialDates })
	.openapi("CredentialCreatedSchema");

export const CredentialSchema = z
	.object({ id: z.string(), name: z.string(), status: CredentialStatus, ...credentialDates })
	.openapi("CredentialSchema");

export const CredentialListSchema = z
	.object({ credentials: z.array(CredentialSchema) })
	.openapi("CredentialListSchema");

export const RealmUserRole = z.enum(["owner", "admin", "member"], {
	error: 'role must be one of "owner", "admin", "member"',
});

export const RealmUserRequestSchema = z.object({ role: RealmUserRole }).openapi("RealmUserRequestSchema");

export const RealmUserListSchema = z
	.object({ users: z.array(z.object({ email: z.string(), role: RealmUserRole })) })
	.openapi("RealmUserListSchema");
