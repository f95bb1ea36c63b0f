/** The OAuth scopes a token may carry; `admin` grants every other. */
export const SCOPES = [
	"read:learner",
	"write:learner",
	"admin",
	"read:registration",
	"write:registration",
	"delete:registration",
	"read:ping",
	"read:about",
] as const;
export type Scope = (typeof SCOPES)[number];

/** Whether granted scopes include the needed one (`admin` grants every scope). */
export const hasScope = (granted: readonly Scope[], needed: Scope) =>
	granted.includes(needed) || granted.includes("admin");

/** Who is calling: set by the auth middleware (src/auth/middleware.ts) on every authenticated application route. */
export interface AuthContext {
	appId: string;
	credentialId: string;
	scopes: readonly Scope[];
	/** How the caller authenticated ("console": the operator console, in-process; src/auth/middleware.ts). */
	scheme: "basic" | "bearer" | "console";
	/** The shard holding the application's data (its placement, cached with the credential). */
	shard: string;
}
