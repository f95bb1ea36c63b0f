import { createRoute } from "@hono/zod-openapi";
import { requireScope } from "../auth/middleware";
import { signToken } from "../auth/token";
import { createRouter } from "../context";
import { badRequest } from "../errors";
import { LIMITS, SCOPES, type Scope, TokenRequestSchema, TokenSchema } from "../schemas";
import { errors, json } from "./openapi";

const isScope = (value: string): value is Scope => (SCOPES as readonly string[]).includes(value);

const createToken = createRoute({
	method: "post",
	path: "/oauth/authenticate/application/token",
	tags: ["Authentication"],
	operationId: "getAppToken",
	summary: "Mint a signed OAuth bearer token for this application, limited to the given scopes",
	description:
		"Basic APP_NORMAL only. The token is signed (HS256), never stored, and stops working when the credential " +
		"that minted it is disabled or deleted.",
	security: [{ APP_NORMAL: [] }],
	// Any valid Basic credential may mint tokens; the scope check here is satisfied by Basic's full scope set.
	middleware: [requireScope("admin", { basicOnly: true })],
	request: {
		body: {
			required: true,
			content: { "application/x-www-form-urlencoded": { schema: TokenRequestSchema } },
		},
	},
	responses: {
		200: json(TokenSchema, "A bearer token"),
		...errors(400, 401, 415, 429),
	},
});

export const oauthRoutes = createRouter().openapi(createToken, async (c) => {
	const { scope, expiration = LIMITS.tokenExpirationDefault } = c.req.valid("form");
	const requested = [...new Set(scope.split(/\s+/).filter(Boolean))];
	const unknown = requested.filter((entry) => !isScope(entry));
	if (unknown.length > 0) {
		throw badRequest(`Unknown scope ${unknown.map((entry) => `"${entry}"`).join(", ")}; known scopes: ${SCOPES.join(", ")}`);
	}
	const { appId, credentialId } = c.var.auth;
	const iat = Math.floor(Date.now() / 1000);
	const token = await signToken(
		{ app: appId, cid: credentialId, scope: requested.filter(isScope), iat, exp: iat + expiration },
		c.env.TOKEN_SIGNING_SECRET,
	);
	return c.json({ access_token: token, expires_in: expiration, token_type: "Bearer" as const }, 200);
});
