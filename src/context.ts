import type { AuthContext } from "./auth/scopes";
import type { Config } from "./config";
import type { Db } from "./db/types";
import { Router } from "./http/router";

/** Hono environment shared by every route: bindings plus per-request variables. */
export interface AppEnv {
	Bindings: Env;
	Variables: {
		requestId: string;
		/** The checked configuration (src/config.ts): quota, write budget and receipt signing key. */
		config: Config;
		/**
		 * This request's D1 Sessions API session (src/request-context.ts, openSession): on the caller's shard for the
		 * application API, on the control database for the management API. Set by the auth middleware.
		 */
		db: Db;
		/** The binding name of the database `db` is a session of (`DB` or a shard): it tags the returned bookmark. */
		sessionOf: string;
		auth: AuthContext;
		/** Set when the realm's management credentials authenticated the request (job status only). */
		management?: boolean;
	};
}

/** A group of routes, each declared once, whose validation failures answer 400 MessageSchema naming the field. */
export type AppRouter = Router<AppEnv>;
export const createRouter = (): AppRouter => new Router<AppEnv>();
