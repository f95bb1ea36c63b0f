import type { OpenAPIHono, RouteConfig } from "@hono/zod-openapi";
import type { ZodType } from "zod";
import { zValidator } from "@hono/zod-validator";
import { Hono, type Context, type Env, type MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { validationMessage } from "../validation";

/**
 * A group of routes declared once (src/http/route.ts declareRoute): each is served by a plain Hono router — its
 * middleware, then zod validation of its params, query, headers and body (@hono/zod-validator), then its handler —
 * and recorded as a declaration, from which only the OpenAPI document (src/openapi/document.ts) builds the
 * registry. So a request pays for its routes and their schemas, never for the OpenAPI machinery (SPEC §6: cold
 * start): the OpenAPI generator (@asteasolutions/zod-to-openapi) is loaded by the document alone. The handlers' types are
 * OpenAPIHono's (`c.req.valid(...)` typed from the declaration).
 */

/** What the document is built from: routes, webhooks and components, in declaration order. */
export type Definition =
	| { type: "route"; route: RouteConfig }
	| { type: "webhook"; webhook: RouteConfig }
	| { type: "component"; componentType: "securitySchemes"; name: string; component: unknown };

const JSON_TYPE = /^application\/([\w.-]+\+)?json(;|$)/i;
const FORM_TYPE = /^(application\/x-www-form-urlencoded|multipart\/form-data)(;|$)/i;

/** A validation failure answers 400 MessageSchema naming the field (SPEC §1). */
const answerInvalid = (result: { success: boolean; error?: unknown }, c: Context) => {
	if (!result.success) return c.json({ message: validationMessage(result.error as Parameters<typeof validationMessage>[0]) }, 400);
};

/** A media type the route declares, checked against the request's: a body of another type answers 415. */
function mediaTypeGate(declared: string[]): MiddlewareHandler {
	return async (c, next) => {
		const contentType = c.req.header("content-type");
		const type = contentType?.split(";")[0]?.trim().toLowerCase();
		if (contentType !== undefined ? !declared.some((mediaType) => mediaType === type) : c.req.raw.body !== null) {
			throw new HTTPException(415, { message: "Unsupported Media Type" });
		}
		await next();
	};
}

/** The validators a route's request declares, in the order OpenAPIHono runs them. */
function validators(route: RouteConfig): MiddlewareHandler[] {
	const request = route.request;
	const handlers: MiddlewareHandler[] = [];
	if (request?.query) handlers.push(zValidator("query", request.query as ZodType, answerInvalid));
	if (request?.params) handlers.push(zValidator("param", request.params as ZodType, answerInvalid) as MiddlewareHandler);
	if (request?.headers) handlers.push(zValidator("header", request.headers as ZodType, answerInvalid) as MiddlewareHandler);
	const content = request?.body?.content as Record<string, { schema?: ZodType }> | undefined;
	if (!content) return handlers;
	const mediaTypes = Object.keys(content);
	handlers.push(mediaTypeGate(mediaTypes));
	for (const mediaType of mediaTypes) {
		const schema = content[mediaType]?.schema;
		if (!schema) continue;
		const target = JSON_TYPE.test(mediaType) ? "json" : FORM_TYPE.test(mediaType) ? "form" : null;
		if (!target) continue;
		const validate = zValidator(target, schema, answerInvalid) as MiddlewareHandler;
		if (request?.body?.required) {
			handlers.push(validate);
		} else {
			const pattern = target === "json" ? JSON_TYPE : FORM_TYPE;
			handlers.push(async (c, next) => {
				if (pattern.test(c.req.header("content-type") ?? "")) return validate(c, next);
				c.req.addValidatedData(target, {});
				await next();
			});
		}
	}
	return handlers;
}

/** The routes of one environment (src/context.ts AppEnv). */
export class Router<E extends Env> {
	/** The routes, as Hono serves them (mounted by src/app.ts under the API's base path). */
	readonly hono = new Hono<E>();
	/** What the OpenAPI document says of them. */
	readonly definitions: Definition[] = [];

	/** Serves a declared route (src/http/route.ts declareRoute) and records it for the document. */
	readonly openapi = ((route: RouteConfig & { middleware?: MiddlewareHandler<E> | MiddlewareHandler<E>[]; hide?: boolean }, handler: unknown) => {
		const { middleware, hide, ...declared } = route;
		if (!hide) this.definitions.push({ type: "route", route: declared });
		const before = middleware === undefined ? [] : Array.isArray(middleware) ? middleware : [middleware];
		this.hono.on([declared.method.toUpperCase()], [declared.path.replaceAll(/\/{(.+?)}/g, "/:$1")], ...before, ...validators(declared), handler as MiddlewareHandler<E>);
		return this;
	}) as unknown as OpenAPIHono<E>["openapi"];

	/** Declarations for the document only (an operation Hono answers through another route, a webhook). */
	readonly openAPIRegistry = {
		registerPath: (route: RouteConfig) => {
			this.definitions.push({ type: "route", route });
		},
		registerWebhook: (webhook: RouteConfig) => {
			this.definitions.push({ type: "webhook", webhook });
		},
	};

	get routes() {
		return this.hono.routes;
	}
}
