import * as z from "zod/mini";
import { asClassic } from "./openapi-meta";
import { APPLICATION_DATETIME_FILTERS, APPLICATION_FILTER_FIELDS, APPLICATION_ORDERS } from "../db/applications";
import { LIMITS } from "../limits";
import { longestToken } from "../paging";
import { DATA_REGIONS } from "../shards";
import { queryDate, queryFlag } from "./query";
import { boundedText } from "./text";

/** Application management's schemas: applications, moves, credentials, realm users, suppressions (SPEC §4, §7, §9). */

// --- Application management -------------------------------------------------------------------------
export const ApplicationRequestSchema = asClassic(
	z
		.object({
			name: boundedText("name", LIMITS.nameLength),
			dataRegion: z
				.optional(z.enum(DATA_REGIONS, { error: `dataRegion must be one of: ${DATA_REGIONS.join(", ")}` }))
				.openapi({
					description:
						"Where the application's data lives: `eu` places it on a shard created in D1's EU jurisdiction. Default `default`.",
				}),
		})
		.openapi("ApplicationRequestSchema"),
);

export const ApplicationSchema = asClassic(
	z
		.object({
			id: z.string(),
			name: z.string(),
			createDate: z.string(),
			dataRegion: z.enum(DATA_REGIONS).openapi({ description: "The region the application's data lives in" }),
			shard: z.string().openapi({ description: "The shard database (D1 binding) holding the application's data" }),
		})
		.openapi("ApplicationSchema"),
);

const dataRegion = z.enum(DATA_REGIONS).openapi({ description: "The region the application's data lives in" });
const shard = z.string().openapi({ description: "The shard database (D1 binding) holding the application's data" });

/** SCORM Cloud's ApplicationInfoSchema (GET /appManagement/applications/{childAppId}, applicationList), with placement. */
export const ApplicationInfoSchema = asClassic(
	z
		.object({
			id: z.string(),
			name: z.string(),
			createDate: z.string().openapi({ format: "date-time" }),
			updateDate: z.string().openapi({ format: "date-time", description: "The last change of name or allowDelete" }),
			allowDelete: z.boolean().openapi({ description: "While false, deleting the application is refused (409)" }),
			courseCount: z
				.optional(z.int().openapi({ type: "integer" }))
				.openapi({ description: "With includeCourseCount=true: always 0, as this service hosts no course content" }),
			registrationCount: z
				.optional(z.int().openapi({ type: "integer" }))
				.openapi({ description: "With includeRegistrationCount=true: the registrations the application holds now" }),
			dataRegion,
			shard,
		})
		.openapi("ApplicationInfoSchema"),
);

export const ApplicationInfoListSchema = asClassic(
	z
		.object({
			applications: z.array(ApplicationInfoSchema),
			more: z.optional(z.string()).openapi({ description: "Present when another page exists: pass it as `more` to get it" }),
		})
		.openapi("ApplicationInfoListSchema"),
);

/** SCORM Cloud's UpdateApplicationSchema. */
export const UpdateApplicationSchema = asClassic(
	z
		.object({
			name: z.optional(boundedText("name", LIMITS.nameLength)),
			allowDelete: z
				.optional(z.boolean({ error: "allowDelete must be a boolean" }))
				.openapi({ description: "false guards the application against deletion until it is set back to true" }),
		})
		.check(z.refine((body) => body.name !== undefined || body.allowDelete !== undefined, { message: "Provide name, allowDelete, or both" }))
		.openapi("UpdateApplicationSchema"),
);

/** includeCourseCount and includeRegistrationCount, of GET /appManagement/applications/{childAppId} and applicationList. */
const countFlags = {
	includeCourseCount: queryFlag("includeCourseCount"),
	includeRegistrationCount: queryFlag("includeRegistrationCount"),
};

export const ApplicationInfoQuery = asClassic(z.object(countFlags));

const MORE_LENGTH = longestToken(2, LIMITS.nameLength, 300);

export const ApplicationListQuery = asClassic(
	z.object({
		since: queryDate("since"),
		until: queryDate("until"),
		datetimeFilter: z
			._default(z.enum(APPLICATION_DATETIME_FILTERS, { error: `datetimeFilter must be one of ${APPLICATION_DATETIME_FILTERS.join(", ")}` }), "updated")
			.openapi({ param: { name: "datetimeFilter", in: "query" }, description: "The date since and until bound" }),
		filter: z
			.optional(
				z
					.string()
					.check(z.minLength(1, "filter must not be empty"), z.maxLength(LIMITS.nameLength, `filter must be at most ${LIMITS.nameLength} characters`))
					.openapi({ minLength: 1, maxLength: LIMITS.nameLength }),
			)
			.openapi({ param: { name: "filter", in: "query" }, description: "Text the field filterBy names must contain (case-insensitive)" }),
		filterBy: z
			._default(z.enum(APPLICATION_FILTER_FIELDS, { error: `filterBy must be one of ${APPLICATION_FILTER_FIELDS.join(", ")}` }), "app_id")
			.openapi({ param: { name: "filterBy", in: "query" }, description: "The field filter searches" }),
		orderBy: z
			._default(z.enum(APPLICATION_ORDERS, { error: `orderBy must be one of ${APPLICATION_ORDERS.join(", ")}` }), "updated_asc")
			.openapi({ param: { name: "orderBy", in: "query" }, description: "By update or creation date; equal dates by id" }),
		// Its cursor carries the filter text and an application id besides dates and names.
		more: z
			.optional(z.string().check(z.maxLength(MORE_LENGTH)).openapi({ maxLength: MORE_LENGTH }))
			.openapi({ param: { name: "more", in: "query" }, description: "The `more` of the previous page; the filters come with it" }),
		...countFlags,
		includeTotalCount: queryFlag("includeTotalCount"),
	}),
);

export const SuppressionListSchema = asClassic(
	z
		.object({
			suppressions: z.array(
				z.object({
					learnerHash: z.string().openapi({ description: "HMAC-SHA-256 of `<appId>\\n<learnerId>`, hex; never the learner id" }),
					jobId: z.string().openapi({ description: "The erasure that suppressed the learner" }),
					createdDate: z.string(),
				}),
			),
		})
		.openapi("SuppressionListSchema"),
);

/** The path parameter of the management routes about one application. */
export const ChildAppParams = asClassic(
	z.object({
		childAppId: z.string().check(z.minLength(1), z.maxLength(255)).openapi({ minLength: 1, maxLength: 255, param: { name: "childAppId", in: "path" } }),
	}),
);

export const ApplicationMoveSchema = asClassic(
	z
		.object({
			shard: z
				.string({ error: "shard must be a string naming a shard (a D1 binding listed in SHARDS)" })
				.check(z.minLength(1, "shard must name a shard"), z.maxLength(64, "shard must be at most 64 characters"))
				.openapi({ minLength: 1, maxLength: 64 }),
			allowRegionChange: z
				.optional(z.boolean({ error: "allowRegionChange must be a boolean" }))
				.openapi({ description: "Required (true) to move the application's data into another region" }),
		})
		.openapi("ApplicationMoveSchema"),
);

export const ApplicationListSchema = asClassic(
	z
		.object({ applications: z.array(ApplicationSchema) })
		.openapi("ApplicationListSchema"),
);

export const CredentialRequestSchema = asClassic(
	z
		.object({
			name: boundedText("name", LIMITS.nameLength),
			active: z.optional(z.boolean({ error: "active must be a boolean" })),
		})
		.openapi("CredentialRequestSchema"),
);

export const CredentialUpdateSchema = asClassic(
	z
		.object({
			name: z.optional(boundedText("name", LIMITS.nameLength)),
			active: z.optional(z.boolean({ error: "active must be a boolean" })),
		})
		.check(
			z.refine((body) => body.name !== undefined || body.active !== undefined, {
				message: "Provide name, active, or both",
			}),
		)
		.openapi("CredentialUpdateSchema"),
);

const CredentialStatus = z.enum(["Enabled", "Disabled"]);

// created and updated are the names Rustici's clients read (CredentialSchema); the JavaScript client reads neither.
const credentialDates = {
	created: z.string().openapi({ format: "date-time" }),
	updated: z.string().openapi({ format: "date-time", description: "The last rename, enabling or disabling" }),
};

// The Python, PHP, Java, .NET and Ruby clients read the creation's answer as CredentialSchema (dates included).
export const CredentialCreatedSchema = asClassic(
	z
		.object({ id: z.string(), name: z.string(), credential: z.string(), status: CredentialStatus, ...credentialDates })
		.openapi("CredentialCreatedSchema"),
);

export const CredentialSchema = asClassic(
	z
		.object({ id: z.string(), name: z.string(), status: CredentialStatus, ...credentialDates })
		.openapi("CredentialSchema"),
);

export const CredentialListSchema = asClassic(
	z
		.object({ credentials: z.array(CredentialSchema) })
		.openapi("CredentialListSchema"),
);

export const RealmUserRole = z.enum(["owner", "admin", "member"], {
	error: 'role must be one of "owner", "admin", "member"',
});

export const RealmUserRequestSchema = asClassic(z.object({ role: RealmUserRole }).openapi("RealmUserRequestSchema"));

export const RealmUserListSchema = asClassic(
	z
		.object({ users: z.array(z.object({ email: z.string(), role: RealmUserRole })) })
		.openapi("RealmUserListSchema"),
);
