import { base64UrlDecode, base64UrlEncode, hmacHex, timingSafeEqualText } from "./auth/crypto";
import type { ListPosition, RegistrationFilter, RegistrationOrder } from "./db/registrations";
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
 * The cursor in a `more` token. 400 when the token was altered, or issued to another application: a token
 * never reaches data its own credentials could not.
 */
export async function decodeCursor(secret: string, token: string, appId: string): Promise<PageCursor> {
	const [payload, signature, extra] = token.split(".");
	if (!payload || !signature || extra !== undefined) throw invalid();
	if (!(await timingSafeEqualText(signature, await sign(secret, payload)))) throw invalid();
	const bytes = base64UrlDecode(payload);
	if (!bytes) throw invalid();
	// The signature proves this service wrote the payload, so its shape is ours.
	const cursor = JSON.parse(decoder.decode(bytes)) as PageCursor;
	if (cursor.app !== appId) throw invalid();
	return cursor;
}
