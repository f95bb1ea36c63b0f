import { signToken } from "../auth/token";
import type { Context } from "hono";
import { type AppEnv, createRouter } from "../context";
import { badRequest } from "../errors";
import { StringResultSchema, TokenPermissionsRequestSchema, TokenRequestSchema, TokenSchema } from "../schemas/oauth";
import { LIMITS } from "../limits";
import { SCOPES, type Scope } from "../auth/scopes";
import { declareRoute, json, jsonBody } from "../http/route";

const isScope = (value: string): value is Scope => (SCOPES as readonly string[]).includes(value);

/** The scopes asked for, each known (else 400 naming the unknown ones), without repeats. */
function knownScopes(requested: string[]): Scope[] {
	const unknown = requested.filter((entry) => !isScope(entry));
	if (unknown.length > 0) {
		throw badRequest(`Unknown scope ${unknown.map((entry) => `"${entry}"`).join(", ")}; known scopes: ${SCOPES.join(", ")}`);
	}
	return [...new Set(requested.filter(isScope))];
}

/** Signs a token for the calling credential. */
function mint(c: Context<AppEnv>, scopes: Scope[], iat: number, exp: number): Promise<string> {
	const { appId, credentialId } = c.var.auth;
	return signToken({ app: appId, cid: credentialId, scope: scopes, iat, exp }, c.env.TOKEN_SIGNING_SECRET);
}

export const oauthRoutes = createRouter();

oauthRoutes.openapi(
	declareRoute({
		method: "post",
		path: "/oauth/authenticate/application/token",
		tags: ["Authentication"],
		operationId: "getAppToken",
		summary: "Mint a signed OAuth bearer token for this application, limited to the given scopes",
		description:
			"Basic APP_NORMAL only. The token is signed (HS256), never stored, and stops working when the credential " +
			"that minted it is disabled or deleted.",
		access: { scope: "admin", basicOnly: true },
		// Any valid Basic credential may mint tokens; the scope check here is satisfied by Basic's full scope set.
		request: {
			body: {
				required: true,
				content: { "application/x-www-form-urlencoded": { schema: TokenRequestSchema } },
			},
		},
		responses: { 200: json(TokenSchema, "A bearer token") },
	}),
	async (c) => {
		const { scope, expiration = LIMITS.tokenExpirationDefault } = c.req.valid("form");
		const scopes = knownScopes(scope.split(/\s+/).filter(Boolean));
		const iat = Math.floor(Date.now() / 1000);
		const token = await mint(c, scopes, iat, iat + expiration);
		return c.json({ access_token: token, expires_in: expiration, token_type: "Bearer" as const }, 200);
	},
);

oauthRoutes.openapi(
	declareRoute({
		method: "post",
		path: "/appManagement/token",
		tags: ["ApplicationManagement"],
		operationId: "createToken",
		summary: "Mint a signed OAuth token with the given permissions and expiry (SCORM Cloud's JSON form)",
		description: `Basic APP_NORMAL only. expiry must be in the future and at most ${LIMITS.tokenExpirationMax} seconds away.`,
		access: { scope: "admin", basicOnly: true },
		request: { body: jsonBody(TokenPermissionsRequestSchema) },
		responses: { 200: json(StringResultSchema, "The token, in `result`") },
	}),
	async (c) => {
		const { permissions, expiry } = c.req.valid("json");
		const scopes = knownScopes(permissions.scopes);
		const iat = Math.floor(Date.now() / 1000);
		const exp = Math.floor(Date.parse(expiry) / 1000);
		if (exp <= iat) throw badRequest("expiry must be in the future");
		if (exp - iat > LIMITS.tokenExpirationMax) {
			throw badRequest(`expiry must be at most ${LIMITS.tokenExpirationMax} seconds from now`);
		}
		return c.json({ result: await mint(c, scopes, iat, exp) }, 200);
	},
);
