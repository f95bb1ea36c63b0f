import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../context";
import { openSession } from "../request-context";
import { findPlacement } from "../db/applications";
import { retryTransient } from "../db/retry";
import { shardDatabase } from "../shards";
import { ApiError, forbidden, notFound, unauthorized } from "../errors";
import { authenticateCredentialId, authenticateSecret, cachedBasicHeader, rememberBasicHeader } from "./credentials";
import { timingSafeEqualText } from "./crypto";
import { type AuthContext, type Scope, hasScope } from "./scopes";
import { clientKey, failedAttempt, refuseIfThrottled } from "./throttle";
import { verifyTokenCached } from "./token";

const ALL_SCOPES = ["admin"] as const satisfies readonly Scope[];

/** A Basic header's id and secret, and whether the header is spelled the one canonical way. */
export interface BasicCredentials {
	id: string;
	secret: string;
	/** "Basic " + the standard, padded base64 of its bytes: the only spelling the header cache keys on. */
	canonical: boolean;
}

/** Splits a Basic header into id and secret; null when it is not well-formed. */
export function parseBasic(header: string): BasicCredentials | null {
	const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
	if (!match?.[1]) return null;
	let binary: string;
	let decoded: string;
	try {
		binary = atob(match[1]);
		decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
			Uint8Array.from(binary, (char) => char.charCodeAt(0)),
		);
	} catch {
		return null;
	}
	const colon = decoded.indexOf(":");
	if (colon < 1) return null;
	return { id: decoded.slice(0, colon), secret: decoded.slice(colon + 1), canonical: header === `Basic ${btoa(binary)}` };
}

/**
 * The operator console's channel into the application API (src/console/): a request it makes in-process runs
 * with a copy of the Worker's env carrying the application's id under this symbol. Nothing outside this isolate
 * can set it: a symbol is not a header, not a query, and not a binding name (wrangler's vars and secrets are
 * string keys), and this one is not exported.
 */
const ACTING_AS = Symbol("console acting as application");

/**
 * The env under which an in-process request acts as application `appId` with every scope (the console signed
 * in with the management credentials; src/console/api.ts is the only caller). Still rate limited as the
 * application, and refused once the application's deletion was requested.
 */
export function actingAsApplication(env: Env, appId: string): Env {
	const acting: Env & { [ACTING_AS]?: string } = { ...env, [ACTING_AS]: appId };
	return acting;
}

/**
 * The console session an in-process request was made from (src/console/api.ts), for the audit trail's actor. Set
 * through the same kind of channel as ACTING_AS: a symbol on a copy of the env, which no request can carry.
 */
const CONSOLE_SESSION = Symbol("console session");

/** The env of an in-process request made from console session `sessionId`. */
export function fromConsoleSession(env: Env, sessionId: string): Env {
	const marked: Env & { [CONSOLE_SESSION]?: string } = { ...env, [CONSOLE_SESSION]: sessionId };
	return marked;
}

/** The console session the request was made from, or null (the request came from outside the Worker). */
export function consoleSessionOf(env: Env): string | null {
	const sessionId = (env as Env & { [CONSOLE_SESSION]?: string })[CONSOLE_SESSION];
	return typeof sessionId === "string" ? sessionId : null;
}

/** The application the console acts as on this request, read from the env (never from the request). */
async function consoleAuth(env: Env, appId: string): Promise<AuthContext> {
	const placement = await retryTransient(() => findPlacement(env.DB, appId));
	if (!placement || placement.deletedAt !== null) throw notFound(`Application [${appId}] was not found`);
	return { appId, credentialId: "console", scopes: ALL_SCOPES, scheme: "console", shard: placement.shard };
}

/**
 * Authenticates an application (Basic APP_NORMAL or Bearer), without scope or rate-limit checks. Credentials
 * are read from the primary database (c.env.DB, outside the request's session): a replica's lag would add to
 * the time a disabled credential keeps working. Failures are counted and throttled (src/auth/throttle.ts).
 */
export async function authenticate(c: Context<AppEnv>): Promise<AuthContext> {
	const actingAs = (c.env as Env & { [ACTING_AS]?: string })[ACTING_AS];
	if (typeof actingAs === "string") return consoleAuth(c.env, actingAs);
	const header = c.req.header("Authorization");
	if (!header) throw unauthorized("Authentication required: send Basic application credentials or a Bearer token");
	const client = clientKey(c.req.raw.headers);
	if (/^Bearer\s/i.test(header)) {
		const token = header.replace(/^Bearer\s+/i, "").trim();
		const claims = await verifyTokenCached(token, c.env.TOKEN_SIGNING_SECRET, Math.floor(Date.now() / 1000));
		if (!claims) throw await failedAttempt(c.env, { client }, unauthorized("The bearer token is invalid or has expired"));
		const keys = { client, claimed: claims.app };
		const verified = await authenticateCredentialId(c.env.DB, claims.cid);
		if (!verified || verified.credential.appId !== claims.app) {
			throw await failedAttempt(c.env, keys, unauthorized("The bearer token's credential is disabled or deleted"));
		}
		return {
			appId: claims.app,
			credentialId: claims.cid,
			scopes: claims.scope,
			scheme: "bearer",
			shard: verified.credential.shard,
		};
	}
	let credential = cachedBasicHeader(header);
	if (!credential) {
		const basic = parseBasic(header);
		if (!basic) {
			throw await failedAttempt(
				c.env,
				{ client },
				unauthorized("Malformed Authorization header: expected Basic base64(appId:secretKey) or Bearer <token>"),
			);
		}
		const keys = { client, claimed: basic.id };
		refuseIfThrottled(keys);
		const verified = await authenticateSecret(c.env.DB, basic.id, basic.secret);
		if (!verified) throw await failedAttempt(c.env, keys, unauthorized("Invalid application id or secret key"));
		if (basic.canonical) rememberBasicHeader(header, verified);
		credential = verified.credential;
	}
	return { appId: credential.appId, credentialId: credential.id, scopes: ALL_SCOPES, scheme: "basic", shard: credential.shard };
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
		openSession(c, shardDatabase(c.env, auth.shard), auth.shard);
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

/**
 * Whether an id and secret are the realm's management credentials, compared in constant time (the API's Basic
 * header and the console's sign-in form both ask here).
 */
export async function isManagementCredentials(
	env: Pick<Env, "MANAGEMENT_APP_ID" | "MANAGEMENT_SECRET_KEY">,
	id: string,
	secret: string,
): Promise<boolean> {
	// Both halves are always compared, so timing does not tell a right id from a right secret. The secrets are
	// never empty: src/config.ts refuses to serve without them.
	const [idMatches, secretMatches] = await Promise.all([
		timingSafeEqualText(id, env.MANAGEMENT_APP_ID),
		timingSafeEqualText(secret, env.MANAGEMENT_SECRET_KEY),
	]);
	return idMatches && secretMatches;
}

/** Whether the request carries the realm's management credentials (Basic), compared in constant time. */
export async function isManagementRequest(c: Context<AppEnv>): Promise<boolean> {
	const header = c.req.header("Authorization");
	const basic = header ? parseBasic(header) : null;
	const matches = await isManagementCredentials(c.env, basic?.id ?? "", basic?.secret ?? "");
	return basic !== null && matches;
}

/**
 * As requireScope, or the realm's management credentials, which set `c.var.management` instead of `c.var.auth`
 * (job status: the management credentials are the only ones left that can follow an application's deletion).
 */
export const requireScopeOrManagement = (scope: Scope) =>
	createMiddleware<AppEnv>(async (c, next) => {
		if (await isManagementRequest(c)) {
			c.set("management", true);
			openSession(c, c.env.DB, "DB");
			return next();
		}
		return requireScope(scope)(c, next);
	});

/**
 * APP_MANAGEMENT: Basic with the realm's management id and secret (Worker secrets). Failures are throttled per
 * client address only: a count per claimed identity would let anyone lock the realm's administrators out.
 */
export const requireManagement = createMiddleware<AppEnv>(async (c, next) => {
	if (!c.req.header("Authorization")) {
		throw unauthorized("Authentication required: send the realm's management credentials (Basic)");
	}
	const keys = { client: clientKey(c.req.raw.headers) };
	refuseIfThrottled(keys);
	if (!(await isManagementRequest(c))) {
		throw await failedAttempt(c.env, keys, unauthorized("Invalid management credentials"));
	}
	openSession(c, c.env.DB, "DB");
	await next();
});
