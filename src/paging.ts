import * as z from "zod/mini";
import { base64UrlDecode, base64UrlEncode, hmacHex, timingSafeEqualText } from "./auth/crypto";
import {
	APPLICATION_DATETIME_FILTERS,
	APPLICATION_FILTER_FIELDS,
	APPLICATION_ORDERS,
	type ApplicationFilter,
	type ApplicationOrder,
	type ApplicationPosition,
} from "./db/applications";
import { TAG_MATCHES, type LearnerFilter } from "./db/learners";
import {
	DATETIME_FILTERS,
	type ListPosition,
	REGISTRATION_ORDERS,
	type RegistrationFilter,
	type RegistrationOrder,
} from "./db/registrations";
import { badRequest } from "./errors";

/**
 * Signed `more` cursors: where a listing stopped, bound to the application that asked and to the listing's
 * original filters, which the token carries (the next page needs nothing else). Each listing signs under its
 * own domain, so a token of one listing never verifies as another's.
 */

/**
 * The longest `more` token a cursor can make whose JSON holds `texts` values of at most `chars` characters (each
 * at most 4 UTF-8 bytes, quoted, with its key) beside `otherBytes` of everything else: base64url (4 characters per
 * 3 bytes), a dot, and the signature (64 hex characters). A route's `more` bound must let through every token its
 * own pages can issue.
 */
export const longestToken = (texts: number, chars: number, otherBytes: number) =>
	Math.ceil((texts * (4 * chars + 3) + otherBytes) / 3) * 4 + 65;

/** A kind of listing: the domain its tokens are signed under and the shape its cursors must have. */
export interface Listing<C extends { app: string }> {
	domain: string;
	shape: z.ZodMiniType<C>;
}

/** Where a registration listing stopped: the application, its original filters and order, and the last row served. */
export interface RegistrationPageCursor {
	app: string;
	filter: RegistrationFilter;
	order: RegistrationOrder;
	after: ListPosition;
}

/** Where a learner directory listing stopped: the application, its original filter, and the last learner id served. */
export interface LearnerPageCursor {
	app: string;
	filter: LearnerFilter;
	after: string;
}

/**
 * GET /registrations. Its domain, "paging", is the one its tokens were signed under before there were other
 * listings: tokens issued then still verify.
 */
export const REGISTRATION_PAGES: Listing<RegistrationPageCursor> = {
	domain: "paging",
	shape: z.object({
		app: z.string(),
		filter: z.object({
			courseId: z.optional(z.string()),
			learnerId: z.optional(z.string()),
			datetimeFilter: z.enum(DATETIME_FILTERS),
			since: z.optional(z.string()),
			until: z.optional(z.string()),
			tags: z.optional(z.array(z.string())),
		}),
		order: z.enum(REGISTRATION_ORDERS),
		after: z.object({ pk: z.int(), id: z.optional(z.string()), createdAt: z.string(), updatedAt: z.string() }),
	}),
};

/** GET /learners. */
export const LEARNER_PAGES: Listing<LearnerPageCursor> = {
	domain: "learner-paging",
	shape: z.object({
		app: z.string(),
		filter: z.object({ tags: z.optional(z.array(z.string())), tagMatch: z.enum(TAG_MATCHES) }),
		after: z.string(),
	}),
};

/** Where an audit trail listing stopped: the realm (app ""), its original filters, and the last entry's seq. */
export interface AuditPageCursor {
	app: string;
	filter: { since?: string; action?: string };
	after: number;
}

/** GET /appManagement/audit. */
export const AUDIT_PAGES: Listing<AuditPageCursor> = {
	domain: "audit-paging",
	shape: z.object({
		app: z.string(),
		filter: z.object({ since: z.optional(z.string()), action: z.optional(z.string()) }),
		after: z.int(),
	}),
};

/** Where an applicationList listing stopped: the realm ("" as app), its original filters and order, the last application. */
export interface ApplicationPageCursor {
	app: string;
	filter: ApplicationFilter;
	order: ApplicationOrder;
	after: ApplicationPosition;
}

/** GET /appManagement/applicationList. */
export const APPLICATION_PAGES: Listing<ApplicationPageCursor> = {
	domain: "application-paging",
	shape: z.object({
		app: z.string(),
		filter: z.object({
			datetimeFilter: z.enum(APPLICATION_DATETIME_FILTERS),
			since: z.optional(z.string()),
			until: z.optional(z.string()),
			filter: z.optional(z.string()),
			filterBy: z.enum(APPLICATION_FILTER_FIELDS),
		}),
		order: z.enum(APPLICATION_ORDERS),
		after: z.object({ id: z.string(), createdAt: z.string(), updatedAt: z.string() }),
	}),
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();
// The domain also separates these signatures from tokens signed with the same secret. A payload is base64url
// (no newline), so no domain's signed text can be another's.
const sign = (secret: string, domain: string, payload: string) => hmacHex(secret, `${domain}\n${payload}`);

/** The opaque `more` token: the cursor as base64url JSON, signed so it cannot be altered. */
export async function encodeCursor<C extends { app: string }>(secret: string, listing: Listing<C>, cursor: C): Promise<string> {
	const payload = base64UrlEncode(encoder.encode(JSON.stringify(cursor)));
	return `${payload}.${await sign(secret, listing.domain, payload)}`;
}

const invalid = () => badRequest("more is not a paging token issued by this API for this application");

/**
 * The cursor in a `more` token of this listing. 400 when the token was altered, issued by another listing, or
 * issued to another application: a token never reaches data its own credentials could not. Tokens outlive
 * deploys: one signed by an earlier version, whose shape differs, is refused with a 400 instead of paging from
 * a wrong position.
 */
export async function decodeCursor<C extends { app: string }>(
	secret: string,
	listing: Listing<C>,
	token: string,
	appId: string,
): Promise<C> {
	const [payload, signature, extra] = token.split(".");
	if (!payload || !signature || extra !== undefined) throw invalid();
	if (!(await timingSafeEqualText(signature, await sign(secret, listing.domain, payload)))) throw invalid();
	const bytes = base64UrlDecode(payload);
	if (!bytes) throw invalid();
	// The signature proves this service wrote the payload; its shape tells which version did.
	const parsed = listing.shape.safeParse(JSON.parse(decoder.decode(bytes)));
	if (!parsed.success) throw badRequest("more was issued by an earlier version of this API; request the first page again");
	if (parsed.data.app !== appId) throw invalid();
	return parsed.data;
}
