import * as z from "zod";
import "./openapi-meta";
import { SCOPES } from "../auth/scopes";
import { LIMITS } from "../limits";

/** The token endpoints' schemas (SPEC §2). */

export const TokenRequestSchema = z
	.object({
		scope: z
			.string({ error: "scope is required" })
			.trim()
			.min(1, { message: "scope is required" })
			.openapi({ description: `Space-separated scopes: ${SCOPES.join(", ")}` }),
		expiration: z
			.string()
			.regex(/^\d+$/, { message: "expiration must be a whole number of seconds" })
			.transform(Number)
			.pipe(
				z
					.number()
					.int()
					.min(1, { message: "expiration must be at least 1 second" })
					.max(LIMITS.tokenExpirationMax, {
						message: `expiration must be at most ${LIMITS.tokenExpirationMax} seconds`,
					}),
			)
			.optional()
			.openapi({ type: "integer", minimum: 1, maximum: LIMITS.tokenExpirationMax, default: 300 }),
	})
	.openapi("TokenFormSchema");

export const TokenSchema = z
	.object({ access_token: z.string(), expires_in: z.number().int(), token_type: z.literal("Bearer") })
	.openapi("ApplicationToken");

export const TokenPermissionsRequestSchema = z
	.object({
		permissions: z.object({
			scopes: z
				.array(z.string().max(64), { error: "permissions.scopes must be an array of scope names" })
				.min(1, { message: "permissions.scopes must name at least one scope" })
				.max(SCOPES.length * 4),
			applicationName: z.string().max(LIMITS.nameLength).optional(),
		}),
		expiry: z.iso.datetime({ offset: true, message: "expiry must be an ISO-8601 date-time" }),
	})
	.openapi("TokenRequestSchema");

export const StringResultSchema = z.object({ result: z.string() }).openapi("StringResultSchema");
