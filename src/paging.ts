import { z } from "zod";
import { base64UrlDecode, base64UrlEncode, hmacHex, timingSafeEqualText } from "./auth/crypto";
import {
	DATETIME_FILTERS,
	type ListPosition,
	REGISTRATION_ORDERS,
	type RegistrationFilter,
	type RegistrationOrder,
} from "./db/registrations";
import { badRequest } from "./errors";

/** Where a listing stopped: the application, its original filters and order, and the last row served. */
export interface PageCursor {
	app: string;
	filter: RegistrationFilter;
	order: RegistrationOrder;
	after: ListPosition;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
// Domain-separates these signatures from tokens signed with the same secret.
const sign = (secret: string, payload: string) => hmacHex(secret, `paging\n${payload}`);

/** The opaque `more` token: the cursor as base64url JSON, signed so it cannot be altered. */
export async function encodeCursor(secret: string, cursor: PageCursor): Promise<string> {
	const payload = base64UrlEncode(encoder.encode(JSON.stringify(cursor)));
	return `${payload}.${await sign(secret, payload)}`;
}

const invalid = () => badRequest("more is not a paging token issued by this API for this application");

/**
 * What a cursor must hold to be served. Tokens outlive deploys: one signed by an earlier version, whose
 * shape differs, is refused with a 400 instead of paging from a wrong position.
 */
const CursorShape = z.object({
	app: z.string(),
	filter: z.object({
		courseId: z.string().optional(),
		learnerId: z.string().optional(),
		datetimeFilter: z.enum(DATETIME_FILTERS),
		since: z.string().optional(),
		until: z.string().optional(),
		tags: z.array(z.string()).optional(),
	}),
	order: z.enum(REGISTRATION_ORDERS),
	after: z.object({ pk: z.number().int(), createdAt: z.string(), updatedAt: z.string() }),
}) satisfies z.ZodType<PageCursor>;

/**
 * The cursor in a `more` token. 400 when the token was altered, or issued to another application: a token
 * never reaches data its own credentials could not.
 */
export async function decodeCursor(secret: string, token: string, appId: string): Promise<PageCursor> {
	const [payload, signature, extra] = token.split(".");
	if (!payload || !signature || extra !== undefined) throw invalid();
	if (!(await timingSafeEqualText(signature, await sign(secret, payload)))) throw invalid();
	const bytes = base64UrlDecode(payload);
	if (!bytes) throw invalid();
	// The signature proves this service wrote the payload; its shape tells which version did.
	const parsed = CursorShape.safeParse(JSON.parse(decoder.decode(bytes)));
	if (!parsed.success) throw badRequest("more was issued by an earlier version of this API; request the first page again");
	if (parsed.data.app !== appId) throw invalid();
	return parsed.data;
}
