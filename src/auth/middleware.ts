import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../context";
import { ApiError, forbidden, unauthorized } from "../errors";
import type { Scope } from "../schemas";
import { authenticateCredentialId, authenticateSecret, cachedBasicHeader, rememberBasicHeader } from "./credentials";
import { timingSafeEqualText } from "./crypto";
import { verifyTokenCached } from "./token";

/** Who is calling: set by the auth middleware on every authenticated application route. */
export interface AuthContext {
	appId: string;
	credentialId: string;
	scopes: readonly Scope[];
	/** How the caller authenticated. */
	scheme: "basic" | "bearer";
}

const ALL_SCOPES = ["admin"] as const satisfies readonly Scope[];

/** Splits a Basic header into id and secret; null when it is not well-formed. */
export function parseBasic(header: string): { id: string; secret: string } | null {
	const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
	if (!match?.[1]) return null;
	let decoded: string;
	try {
		decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
			Uint8Array.from(atob(match[1]), (char) => char.charCodeAt(0)),
		);
	} catch {
		return null;
	}
	const colon = decoded.indexOf(":");
	if (colon < 1) return null;
	return { id: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

/** Whether granted scopes include the needed one (`admin` grants every scope). */
export const hasScope = (granted: readonly Scope[], needed: Scope) =>
	granted.includes(needed) || granted.includes("admin");

/** Authenticates an application (Basic APP_NORMAL or Bearer), without scope or rate-limit checks. */
export async function authenticate(c: Context<AppEnv>): Promise<AuthContext> {
	const header = c.req.header("Authorization");
	if (!header) throw unauthorized("Authentication required: send Basic application credentials or a Bearer token");
	if (/^Bearer\s/i.test(header)) {
		const token = header.replace(/^Bearer\s+/i, "").trim();
		const claims = await verifyTokenCached(token, c.env.TOKEN_SIGNING_SECRET, Math.floor(Date.now() / 1000));
		if (!claims) throw unauthorized("The bearer token is invalid or has expired");
		const credential = await authenticateCredentialId(c.var.db, claims.cid);
		if (!credential || credential.appId !== claims.app) {
			throw unauthorized("The bearer token's credential is disabled or deleted");
		}
		return { appId: claims.app, credentialId: claims.cid, scopes: claims.scope, scheme: "bearer" };
	}
	let credential = cachedBasicHeader(header);
	if (!credential) {
		const basic = parseBasic(header);
		if (!basic) throw unauthorized("Malformed Authorization header: expected Basic base64(appId:secretKey) or Bearer <token>");
		credential = await authenticateSecret(c.var.db, basic.id, basic.secret);
		if (!credential) throw unauthorized("Invalid application id or secret key");
		rememberBasicHeader(header, credential);
	}
	return { appId: credential.appId, credentialId: credential.id, scopes: ALL_SCOPES, scheme: "basic" };
}

/**
 * APP_NORMAL / OAUTH auth for one route: authenticates, checks the route's scope (403 naming it), then the
 * application's rate limit (429 + Retry-After). Sets `c.var.auth`.
 */
export const requireScope = (scope: Scope, options: { basicOnly?: boolean } = {}) =>
	createMiddleware<AppEnv>(async (c, next) => {
		const auth = await authenticate(c);
		if (options.basicOnly && auth.scheme !== "basic") {
			throw unauthorized("This endpoint accepts Basic application credentials only");
		}
		if (!hasScope(auth.scopes, scope)) throw forbidden(`This operation requires the "${scope}" scope`);
		await enforceRateLimit(c.env, auth.appId);
		c.set("auth", auth);
		await next();
	});

/** Workers Rate Limiting, keyed by application: every credential and token of an app shares one budget. */
async function enforceRateLimit(env: Env, appId: string): Promise<void> {
	const { success } = await env.RATE_LIMITER.limit({ key: appId });
	if (!success) {
		const period = env.RATE_LIMIT_PERIOD_SECONDS;
		throw new ApiError(429, `Rate limit exceeded for application ${appId}; retry after ${period} seconds`, {
			"Retry-After": period,
		});
	}
}

/** Whether the request carries the realm's management credentials (Basic), compared in constant time. */
export async function isManagementRequest(c: Context<AppEnv>): Promise<boolean> {
	const header = c.req.header("Authorization");
	const basic = header ? parseBasic(header) : null;
	// Both halves are always compared, so timing does not tell a right id from a right secret.
	const [idMatches, secretMatches] = await Promise.all([
		timingSafeEqualText(basic?.id ?? "", c.env.MANAGEMENT_APP_ID),
		timingSafeEqualText(basic?.secret ?? "", c.env.MANAGEMENT_SECRET_KEY),
	]);
	return basic !== null && idMatches && secretMatches;
}

/** APP_MANAGEMENT: Basic with the realm's management id and secret (Worker secrets). */
export const requireManagement = createMiddleware<AppEnv>(async (c, next) => {
	if (!c.req.header("Authorization")) {
		throw unauthorized("Authentication required: send the realm's management credentials (Basic)");
	}
	if (!(await isManagementRequest(c))) throw unauthorized("Invalid management credentials");
	await next();
});
