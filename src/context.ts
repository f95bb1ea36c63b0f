import { OpenAPIHono } from "@hono/zod-openapi";
import type { AuthContext } from "./auth/middleware";
import type { Db } from "./db/types";
import { validationMessage } from "./validation";

/** Hono environment shared by every route: bindings plus per-request variables. */
export interface AppEnv {
	Bindings: Env;
	Variables: {
		requestId: string;
		/** This request's D1 Sessions API session (src/session.ts). */
		db: Db;
		auth: AuthContext;
		/** Set when the realm's management credentials authenticated the request (job status only). */
		management?: boolean;
	};
}

/** A router whose validation failures answer 400 MessageSchema naming the field. */
export function createRouter() {
	return new OpenAPIHono<AppEnv>({
		defaultHook: (result, c) => {
			if (!result.success) return c.json({ message: validationMessage(result.error) }, 400);
		},
	});
}
