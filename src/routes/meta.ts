import { createRoute } from "@hono/zod-openapi";
import { requireScope } from "../auth/middleware";
import { createRouter } from "../context";
import { AboutSchema, PingSchema } from "../schemas";
import { APP_ROUTE_ERRORS, appSecurity, errors, json } from "./openapi";

const ping = createRoute({
	method: "get",
	path: "/ping",
	tags: ["Ping"],
	operationId: "pingAppId",
	summary: "Check that the API answers and the credentials work",
	security: appSecurity("read:ping"),
	middleware: [requireScope("read:ping")],
	responses: { 200: json(PingSchema, "pong, with the server's time"), ...errors(...APP_ROUTE_ERRORS) },
});

const about = createRoute({
	method: "get",
	path: "/about",
	tags: ["About"],
	operationId: "getAbout",
	summary: "Version and distribution of this service",
	security: appSecurity("read:about"),
	middleware: [requireScope("read:about")],
	responses: { 200: json(AboutSchema, "Version information"), ...errors(...APP_ROUTE_ERRORS) },
});

export const metaRoutes = createRouter()
	.openapi(ping, (c) => c.json({ apiMessage: "pong", currentTime: new Date().toISOString() }, 200))
	.openapi(about, (c) => c.json({ version: c.env.SERVICE_VERSION, distribution: "learner-service" }, 200));
