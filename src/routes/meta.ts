import { createRouter } from "../context";
import { AboutSchema, PingSchema } from "../schemas/meta";
import { declareRoute, json } from "../http/route";

export const metaRoutes = createRouter();

metaRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/ping",
		tags: ["Ping"],
		operationId: "pingAppId",
		summary: "Check that the API answers and the credentials work",
		access: { scope: "read:ping" },
		responses: { 200: json(PingSchema, "pong, with the server's time") },
	}),
	(c) => c.json({ apiMessage: "pong", currentTime: new Date().toISOString() }, 200),
);

metaRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/about",
		tags: ["About"],
		operationId: "getAbout",
		summary: "Version and distribution of this service",
		access: { scope: "read:about" },
		responses: { 200: json(AboutSchema, "Version information") },
	}),
	(c) => c.json({ version: c.env.SERVICE_VERSION, distribution: "learner-service" }, 200),
);
