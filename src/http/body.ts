import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { matchedRoutes } from "hono/route";
import type { AppEnv } from "../context";
import { ApiError, badRequest } from "../errors";
import { LIMITS } from "../limits";
import type { AppRouter } from "../context";

const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/**
 * What each declared operation takes as a body, read from the routes' declarations (src/http/router.ts) once every
 * route is mounted: by "METHOD /path" (Hono's pattern, under `base`), and by path for requests no operation
 * matched (405s), which are held to the media type of the path's operations.
 */
interface BodyDeclarations {
	byOperation: Map<string, string[]>;
	byPath: { pattern: RegExp; mediaTypes: string[] }[];
}

function readDeclarations(routers: readonly AppRouter[], base: string): BodyDeclarations {
	const byOperation = new Map<string, string[]>();
	const byPath: BodyDeclarations["byPath"] = [];
	for (const definition of routers.flatMap((router) => router.definitions)) {
		const content = definition.type === "route" ? definition.route.request?.body?.content : undefined;
		if (!content || definition.type !== "route") continue;
		const path = `${base}${definition.route.path}`.replace(/\{([^}]+)\}/g, ":$1");
		const mediaTypes = Object.keys(content);
		byOperation.set(`${definition.route.method.toUpperCase()} ${path}`, mediaTypes);
		const pattern = new RegExp(`^${path.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/:[^/]+/g, "[^/]+")}$`);
		byPath.push({ pattern, mediaTypes });
	}
	return { byOperation, byPath };
}

/** Whether the request carries a body: by its length when stated, else by the presence of a body stream. */
function hasBody(request: Request): boolean {
	const length = request.headers.get("Content-Length");
	return length !== null ? Number(length) > 0 : request.body !== null;
}

/**
 * The body checks of every operation of `routers` (mounted under `base`): 413 for a body over 1 MiB, 415 for a
 * body of another media type than the operation declares (JSON unless it declares otherwise; SPEC §1), 400 for
 * JSON whose bytes are not UTF-8. An operation that takes no body ignores a stray one, unread: it gets neither 413
 * nor 415. A request no operation matched keeps the checks, with the media type of its path's operations.
 */
export function bodyChecks(routers: readonly AppRouter[], base: string) {
	let declarations: BodyDeclarations | undefined;

	/** The media types the request's operation takes; [] when it takes no body, null when none matched. */
	function declaredMediaTypes(c: Context<AppEnv>): string[] | null {
		declarations ??= readDeclarations(routers, base);
		const routes = matchedRoutes(c).filter((route) => route.method !== "ALL");
		if (routes.length === 0) {
			return declarations.byPath.find(({ pattern }) => pattern.test(c.req.path))?.mediaTypes ?? null;
		}
		for (const route of routes) {
			const mediaTypes = declarations.byOperation.get(`${route.method} ${route.path}`);
			if (mediaTypes) return mediaTypes;
		}
		return [];
	}

	const limitBody = bodyLimit({
		maxSize: LIMITS.bodyBytes,
		onError: (c) => c.json({ message: `Request body exceeds the limit of ${LIMITS.bodyBytes} bytes (1 MiB)` }, 413),
	});

	/** 413 for a body over 1 MiB, where the operation takes one. */
	const limitBodySize = createMiddleware<AppEnv>(async (c, next) => {
		if (!hasBody(c.req.raw) || declaredMediaTypes(c)?.length === 0) return next();
		return limitBody(c, next);
	});

	/** 415 for a body of another media type than declared, where the operation takes one; 400 for JSON not UTF-8. */
	const requireMediaType = createMiddleware<AppEnv>(async (c, next) => {
		const declared = hasBody(c.req.raw) ? declaredMediaTypes(c) : [];
		if (declared?.length !== 0) {
			const mediaType = (c.req.header("Content-Type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
			const takesJson = declared === null || declared.includes("application/json");
			if (!takesJson) {
				if (!declared.includes(mediaType)) {
					throw new ApiError(415, `This endpoint takes a ${declared.join(" or ")} body (got "${mediaType || "none"}")`);
				}
			} else if (!JSON_MEDIA_TYPE.test(mediaType)) {
				throw new ApiError(415, `Request bodies must be application/json (got "${mediaType || "none"}")`);
			} else if (!isUtf8(await c.req.arrayBuffer())) {
				// JSON is UTF-8 (RFC 8259 §8.1); decoding bad bytes would store U+FFFD in their place. Hono keeps the
				// bytes read here for the validator's own parse.
				throw badRequest("The request body is not valid UTF-8");
			}
		}
		await next();
	});

	return { limitBodySize, requireMediaType };
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Whether the bytes are well-formed UTF-8. */
function isUtf8(bytes: ArrayBuffer): boolean {
	try {
		strictUtf8.decode(bytes);
		return true;
	} catch {
		return false;
	}
}
