import type { Db } from "./types";

export interface Credential {
	id: string;
	appId: string;
	name: string;
	enabled: boolean;
	createdAt: string;
}

interface CredentialRow {
	id: string;
	app_id: string;
	name: string;
	enabled: number;
	created_at: string;
}

const toCredential = (row: CredentialRow): Credential => ({
	id: row.id,
	appId: row.app_id,
	name: row.name,
	enabled: row.enabled === 1,
	createdAt: row.created_at,
});

const COLUMNS = "c.id, c.app_id, c.name, c.enabled, c.created_at";

/** Stores a credential; only the hash of its secret is kept. */
export async function insertCredential(db: Db, credential: Credential, secretHash: string): Promise<void> {
	await db
		.prepare(
			`INSERT INTO credentials (id, app_id, name, secret_hash, enabled, created_at, updated_at)
			 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)`,
		)
		.bind(credential.id, credential.appId, credential.name, secretHash, credential.enabled ? 1 : 0, credential.createdAt)
		.run();
}

/** An application's credentials, oldest first. */
export async function listCredentials(db: Db, appId: string): Promise<Credential[]> {
	const { results } = await db
		.prepare(`SELECT ${COLUMNS} FROM credentials c WHERE c.app_id = ?1 ORDER BY c.created_at, c.id`)
		.bind(appId)
		.all<CredentialRow>();
	return results.map(toCredential);
}

/**
 * The enabled credential of a live application whose secret hashes to `secretHash`, or null. Served by
 * credentials_by_app_secret and the applications primary key.
 */
export async function findActiveCredentialBySecret(db: Db, appId: string, secretHash: string): Promise<Credential | null> {
	const row = await db
		.prepare(
			`SELECT ${COLUMNS} FROM credentials c JOIN applications a ON a.id = c.app_id
			 WHERE c.app_id = ?1 AND c.secret_hash = ?2 AND c.enabled = 1 AND a.deleted_at IS NULL`,
		)
		.bind(appId, secretHash)
		.first<CredentialRow>();
	return row ? toCredential(row) : null;
}

/** The credential if it is enabled and its application live, else null. */
export async function findActiveCredentialById(db: Db, credentialId: string): Promise<Credential | null> {
	const row = await db
		.prepare(
			`SELECT ${COLUMNS} FROM credentials c JOIN applications a ON a.id = c.app_id
			 WHERE c.id = ?1 AND c.enabled = 1 AND a.deleted_at IS NULL`,
		)
		.bind(credentialId)
		.first<CredentialRow>();
	return row ? toCredential(row) : null;
}

/** Renames and/or enables or disables a credential; false when the application has no such credential. */
export async function updateCredential(
	db: Db,
	appId: string,
	credentialId: string,
	changes: { name?: string; enabled?: boolean },
	updatedAt: string,
): Promise<boolean> {
	const enabled = changes.enabled === undefined ? null : changes.enabled ? 1 : 0;
	const result = await db
		.prepare(
			`UPDATE credentials SET name = coalesce(?3, name), enabled = coalesce(?4, enabled), updated_at = ?5
			 WHERE app_id = ?1 AND id = ?2`,
		)
		.bind(appId, credentialId, changes.name ?? null, enabled, updatedAt)
		.run();
	return result.meta.changes > 0;
}

/** Deletes a credential; false when the application has no such credential. */
export async function deleteCredential(db: Db, appId: string, credentialId: string): Promise<boolean> {
	const result = await db
		.prepare("DELETE FROM credentials WHERE app_id = ?1 AND id = ?2")
		.bind(appId, credentialId)
		.run();
	return result.meta.changes > 0;
}
