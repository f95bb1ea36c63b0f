import * as z from "zod/mini";
import { asClassic } from "./openapi-meta";
import { SCOPES } from "../auth/scopes";
import { LIMITS } from "../limits";

/** The token endpoints' schemas (SPEC §2). */

export const TokenRequestSchema = asClassic(
	z
		.object({
			scope: z
				.string({ error: "scope is required" })
				.check(z.trim(), z.minLength(1, { message: "scope is required" }))
				.openapi({ minLength: 1, description: `Space-separated scopes: ${SCOPES.join(", ")}` }),
			expiration: z
				.optional(
					z.pipe(
						z.pipe(z.string().check(z.regex(/^\d+$/, { message: "expiration must be a whole number of seconds" })), z.transform(Number)),
						z.int().check(
							z.minimum(1, { message: "expiration must be at least 1 second" }),
							z.maximum(LIMITS.tokenExpirationMax, { message: `expiration must be at most ${LIMITS.tokenExpirationMax} seconds` }),
						),
					),
				)
				.openapi({ type: "integer", minimum: 1, maximum: LIMITS.tokenExpirationMax, default: 300 }),
		})
		.openapi("TokenFormSchema"),
);

export const TokenSchema = asClassic(
	z
		.object({ access_token: z.string(), expires_in: z.int().openapi({ type: "integer" }), token_type: z.literal("Bearer") })
		.openapi("ApplicationToken"),
);

export const TokenPermissionsRequestSchema = asClassic(
	z
		.object({
			permissions: z.object({
				scopes: z
					.array(z.string().check(z.maxLength(64)).openapi({ maxLength: 64 }), { error: "permissions.scopes must be an array of scope names" })
					.check(z.minLength(1, { message: "permissions.scopes must name at least one scope" }), z.maxLength(SCOPES.length * 4)),
					applicationName: z.optional(z.string().check(z.maxLength(LIMITS.nameLength)).openapi({ maxLength: LIMITS.nameLength })),
			}),
			expiry: z.iso.datetime({ offset: true, message: "expiry must be an ISO-8601 date-time" }).openapi({ format: "date-time" }),
		})
		.openapi("TokenRequestSchema"),
);

export const StringResultSchema = asClassic(z.object({ result: z.string() }).openapi("StringResultSchema"));
