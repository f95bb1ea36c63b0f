import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { matchedRoutes } from "hono/route";
import type { AppEnv } from "./context";
import { badRequest } from "./errors";
import { log, logs } from "./log";

export const BOOKMARK_HEADER = "X-D1-Bookmark";
// The header names the database its bookmark belongs to (`SHARD_1:…`, `DB:…`): a bookmark means nothing to another
// database (the management API's, or an application's shard after a move), so it is used only on its own. D1
// bookmarks are four hyphen-separated, fixed-width hex fields (8-8-8-32); anything else would fail inside D1 as a
// 500 rather than the 400 it is. A bare bookmark (from before the shards) is well-formed, and used nowhere.
export const BOOKMARK_FORMAT = /^(?:([A-Z][A-Z0-9_]*):)?([0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32})$/i;

/** The route pattern that served the request (never the path: paths carry learner ids). */
function routePattern(c: Context<AppEnv>): string {
	const handlers = matchedRoutes(c).filter((route) => route.method !== "ALL");
	return handlers.at(-1)?.path ?? "(no route)";
}

/**
 * Opens the request's D1 session on `database` (the caller's shard, or the control database for the management
 * API) and makes it `c.var.db`; its bookmark is returned in `X-D1-Bookmark`.
 *
 * D1 Sessions API: reads start `first-unconstrained` (any replica) unless the client sends a bookmark, in
 * which case they see at least the writes that bookmark covers; writes start `first-primary`.
 */
export function openSession(c: Context<AppEnv>, database: D1Database, name: string): void {
	const sent = BOOKMARK_FORMAT.exec(c.req.header(BOOKMARK_HEADER)?.trim() ?? "");
	const bookmark = sent?.[1] === name ? sent[2] : undefined;
	const readOnly = c.req.method === "GET" || c.req.method === "HEAD";
	c.set("sessionOf", name);
	c.set("db", database.withSession(bookmark ?? (readOnly ? "first-unconstrained" : "first-primary")));
}

/**
 * First middleware: gives the request an id (`X-Request-Id`), returns the bookmark of the D1 session the request
 * opened (`X-D1-Bookmark`, see openSession) and writes one structured log line without personal data.
 */
export const requestContext = createMiddleware<AppEnv>(async (c, next) => {
	const started = Date.now();
	const requestId = crypto.randomUUID();
	c.set("requestId", requestId);
	c.header("X-Request-Id", requestId);

	await next();

	const latest = (c.var.db as D1DatabaseSession | undefined)?.getBookmark();
	if (latest) c.header(BOOKMARK_HEADER, `${c.var.sessionOf}:${latest}`);
	const level = c.res.status >= 500 ? "error" : "info";
	// The route pattern costs a walk over the matched routes: only for a line that will be written.
	if (!logs(c.env, level)) return;
	log(c.env, level, {
		msg: "request",
		requestId,
		method: c.req.method,
		route: routePattern(c),
		status: c.res.status,
		durationMs: Date.now() - started,
		appId: c.var.auth?.appId,
	});
});

/** Rejects a malformed `X-D1-Bookmark` (runs after requestContext, so the rejection is logged too). */
export const checkBookmark = createMiddleware<AppEnv>(async (c, next) => {
	const bookmark = c.req.header(BOOKMARK_HEADER)?.trim();
	if (bookmark && !BOOKMARK_FORMAT.test(bookmark)) {
		throw badRequest(`${BOOKMARK_HEADER} is not a D1 bookmark; send back the value a previous response carried`);
	}
	await next();
});
