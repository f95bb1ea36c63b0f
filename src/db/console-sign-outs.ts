import { type AuditRecord, auditStatement } from "./audit-append";
import { retryTransient } from "./retry";
import type { Db } from "./types";

/**
 * Console sessions signed out before their cookie expired (migrations/control: console_sign_outs), in the control
 * database: a signed-out session is refused by every isolate, not only the one that served the sign-out.
 */

/** Whether the session was signed out. */
export async function isSignedOut(control: Db, sessionId: string): Promise<boolean> {
	const row = await retryTransient(() =>
		control.prepare("SELECT 1 AS found FROM console_sign_outs WHERE session_id = ?1").bind(sessionId).first<{ found: number }>(),
	);
	return row !== null;
}

/** Records a sign-out, kept until `expiresAt` (when the session's cookie would have expired). Safe to repeat. */
export async function recordSignOut(control: Db, sessionId: string, expiresAt: string, audit?: AuditRecord): Promise<void> {
	await retryTransient(() =>
		control.batch([
			// Recorded once, by the sign-out that ended the session (a repeat finds it ended).
			...(audit
				? [auditStatement(control, audit, { sql: "NOT EXISTS (SELECT 1 FROM console_sign_outs WHERE session_id = ?6)", params: [sessionId] })]
				: []),
			control.prepare("INSERT OR IGNORE INTO console_sign_outs (session_id, expires_at) VALUES (?1, ?2)").bind(sessionId, expiresAt),
		]),
	);
}

/** Deletes up to `limit` sign-outs past their expiry; answers how many. */
export async function deleteExpiredSignOuts(control: Db, now: string, limit: number): Promise<number> {
	const result = await retryTransient(() =>
		control
			.prepare("DELETE FROM console_sign_outs WHERE session_id IN (SELECT session_id FROM console_sign_outs WHERE expires_at <= ?1 LIMIT ?2)")
			.bind(now, limit)
			.run(),
	);
	return result.meta.changes;
}
