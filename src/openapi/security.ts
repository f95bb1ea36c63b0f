import type { OpenAPIRegistry } from "@asteasolutions/zod-to-openapi";
import type { Scope } from "../auth/scopes";

/** Where applications mint bearer tokens (src/routes/oauth.ts), relative to the API base. */
export const TOKEN_PATH = "/oauth/authenticate/application/token";

const SCOPE_DESCRIPTIONS: Record<Scope, string> = {
	"read:learner": "Read learner tags and job status",
	"write:learner": "Add and remove learner tags, batch-tag learners, update learner information",
	admin: "Everything, including GDPR erasure of a learner's data (delete-information)",
	"read:registration": "Read registrations and their tags",
	"write:registration": "Create registrations and change their tags",
	"delete:registration": "Delete registrations",
	"read:ping": "Call /ping",
	"read:about": "Call /about",
};

/** The document's security schemes, SCORM Cloud's names: every route's requirement names these. */
const SECURITY_SCHEMES = {
	APP_NORMAL: {
		type: "http",
		scheme: "basic",
		description: "An application's credential: Basic base64(appId:secretKey)",
	},
	APP_MANAGEMENT: {
		type: "http",
		scheme: "basic",
		description: "The realm's management credentials (secrets MANAGEMENT_APP_ID / MANAGEMENT_SECRET_KEY)",
	},
	OAUTH: {
		type: "oauth2",
		description: `Bearer tokens from POST ${TOKEN_PATH} (Basic APP_NORMAL); \`admin\` grants every scope`,
		flows: {
			clientCredentials: {
				// An absolute-path reference resolves to the same URL whichever base a reader resolves it against.
				tokenUrl: `/api/v2${TOKEN_PATH}`,
				scopes: SCOPE_DESCRIPTIONS,
			},
		},
	},
} as const;

export type SecuritySchemeName = keyof typeof SECURITY_SCHEMES;

/** An OpenAPI security requirement: any one of its entries satisfies it. */
export type SecurityRequirement = Partial<Record<SecuritySchemeName, string[]>>[];

/** Registers the security schemes as components of the document `registry` belongs to. */
export function registerSecuritySchemes(registry: OpenAPIRegistry): void {
	for (const [name, scheme] of Object.entries(SECURITY_SCHEMES)) {
		registry.registerComponent("securitySchemes", name, scheme);
	}
}
