import * as z from "zod";
import "./openapi-meta";
import { LIMITS } from "../limits";
import { DATA_REGIONS } from "../shards";
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
		name: boundedText("name", LIMITS.nameLength).optional(),
		active: z.boolean({ error: "active must be a boolean" }).optional(),
	})
	.refine((body) => body.name !== undefined || body.active !== undefined, {
		message: "Provide name, active, or both",
	})
	.openapi("CredentialUpdateSchema");

const CredentialStatus = z.enum(["Enabled", "Disabled"]);

export const CredentialCreatedSchema = z
	.object({ id: z.string(), name: z.string(), credential: z.string(), status: CredentialStatus })
	.openapi("CredentialCreatedSchema");

export const CredentialSchema = z
	.object({ id: z.string(), name: z.string(), status: CredentialStatus, createDate: z.string() })
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
