import { type AuditRecord, auditStatement } from "./audit-append";
import type { Db } from "./types";

export type RealmRole = "owner" | "admin" | "member";

export interface RealmUser {
	email: string;
	role: RealmRole;
}

/** Creates the user or changes its role. Emails compare case-insensitively. */
export async function upsertRealmUser(db: Db, user: RealmUser, now: string, audit?: AuditRecord): Promise<void> {
	await db.batch([
		db
			.prepare(
				`INSERT INTO realm_users (email_key, email, role, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
				 ON CONFLICT (email_key) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at`,
			)
			.bind(user.email.toLowerCase(), user.email, user.role, now),
		...(audit ? [auditStatement(db, audit)] : []),
	]);
}

/** Every realm user, by email. */
export async function listRealmUsers(db: Db): Promise<RealmUser[]> {
	const { results } = await db.prepare("SELECT email, role FROM realm_users ORDER BY email_key").all<RealmUser>();
	return results;
}

/** Removes a user; false when there was none with that email. */
export async function deleteRealmUser(db: Db, email: string, audit?: AuditRecord): Promise<boolean> {
	const results = await db.batch([
		...(audit ? [auditStatement(db, audit, { sql: "EXISTS (SELECT 1 FROM realm_users WHERE email_key = ?6)", params: [email.toLowerCase()] })] : []),
		db.prepare("DELETE FROM realm_users WHERE email_key = ?1").bind(email.toLowerCase()),
	]);
	return (results.at(-1)?.meta.changes ?? 0) > 0;
}

/** The role of the user with that email (case-insensitive), or null. */
export async function getRealmUserRole(db: Db, email: string): Promise<RealmRole | null> {
	const row = await db
		.prepare("SELECT role FROM realm_users WHERE email_key = ?1")
		.bind(email.toLowerCase())
		.first<{ role: RealmRole }>();
	return row?.role ?? null;
}
