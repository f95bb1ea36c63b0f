import type { Db } from "./types";

export interface Credential {
	id: string;
	appId: string;
	name: string;
	enabled: boolean;
	createdAt: string;
	/** The last rename, enabling or disabling; the creation date until then. */
	updatedAt: string;
	/** Where the application's data lives (applications.shard): read with the credential, cached with it. */
	shard: string;
}

interface CredentialRow {
	id: string;
	app_id: string;
	name: string;
	enabled: number;
	created_at: string;
	updated_at: string;
	shard: string;
}

const toCredential = (row: CredentialRow): Credential => ({
	id: row.id,
	appId: row.app_id,
	name: row.name,
	enabled: row.enabled === 1,
	createdAt: row.created_at,
	updatedAt: row.updated_at,
	shard: row.shard,
});

const COLUMNS = "c.id, c.app_id, c.name, c.enabled, c.created_at, c.updated_at, a.shard";

// A live application (one whose deletion has not been requested), for the credential routes: each checks it in
// the same D1 call as its own statement, so "no such application" and the change are one round trip.
const LIVE_APPLICATION = "SELECT 1 FROM applications WHERE id = ?1 AND deleted_at IS NULL";

/**
 * Stores a credential of a live application; only the hash of its secret is kept. False when there is no such
 * application (nothing is written).
 */
export async function insertCredential(db: Db, credential: Omit<Credential, "shard" | "updatedAt">, secretHash: string): Promise<boolean> {
	const result = await db
		.prepare(
			`INSERT INTO credentials (id, app_id, name, secret_hash, enabled, created_at, updated_at)
			 SELECT ?2, ?1, ?3, ?4, ?5, ?6, ?6 WHERE EXISTS (${LIVE_APPLICATION})`,
		)
		.bind(credential.appId, credential.id, credential.name, secretHash, credential.enabled ? 1 : 0, credential.createdAt)
		.run();
	return result.meta.changes > 0;
}

/** A live application's credentials, oldest first; null when there is no such application. */
export async function listCredentials(db: Db, appId: string): Promise<Credential[] | null> {
	const [live, credentials] = await db.batch([
		db.prepare(LIVE_APPLICATION).bind(appId),
		db
			.prepare(`SELECT ${COLUMNS} FROM credentials c JOIN applications a ON a.id = c.app_id WHERE c.app_id = ?1 ORDER BY c.created_at, c.id`)
			.bind(appId),
	]);
	if (!live?.results.length) return null;
	return (credentials?.results as CredentialRow[]).map(toCredential);
}

/** What a change to one credential found: done, or which of the application and the credential is missing. */
export type CredentialChange = "done" | "no-application" | "no-credential";

async function changeCredential(db: Db, appId: string, change: D1PreparedStatement): Promise<CredentialChange> {
	const [live, changed] = await db.batch([db.prepare(LIVE_APPLICATION).bind(appId), change]);
	if (!live?.results.length) return "no-application";
	return (changed?.meta.changes ?? 0) > 0 ? "done" : "no-credential";
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

/** Renames and/or enables or disables a credential of a live application. */
export async function updateCredential(
	db: Db,
	appId: string,
	credentialId: string,
	changes: { name?: string; enabled?: boolean },
	updatedAt: string,
): Promise<CredentialChange> {
	const enabled = changes.enabled === undefined ? null : changes.enabled ? 1 : 0;
	return changeCredential(
		db,
		appId,
		db
			.prepare(
				`UPDATE credentials SET name = coalesce(?3, name), enabled = coalesce(?4, enabled), updated_at = ?5
				 WHERE app_id = ?1 AND id = ?2 AND EXISTS (${LIVE_APPLICATION})`,
			)
			.bind(appId, credentialId, changes.name ?? null, enabled, updatedAt),
	);
}

/** Deletes a credential of a live application. */
export async function deleteCredential(db: Db, appId: string, credentialId: string): Promise<CredentialChange> {
	return changeCredential(
		db,
		appId,
		db
			.prepare(`DELETE FROM credentials WHERE app_id = ?1 AND id = ?2 AND EXISTS (${LIVE_APPLICATION})`)
			.bind(appId, credentialId),
	);
}
