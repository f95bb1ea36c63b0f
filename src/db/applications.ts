import { insertAppStorage } from "./app-storage";
import type { Db } from "./types";

export interface Application {
	id: string;
	name: string;
	createdAt: string;
}

interface ApplicationRow {
	id: string;
	name: string;
	created_at: string;
}

const toApplication = (row: ApplicationRow): Application => ({
	id: row.id,
	name: row.name,
	createdAt: row.created_at,
});

/** Creates an application, with the row that fences and meters its writes (src/db/app-storage.ts). */
export async function insertApplication(db: Db, app: Application): Promise<void> {
	await db.batch([
		db.prepare("INSERT INTO applications (id, name, created_at) VALUES (?1, ?2, ?3)").bind(app.id, app.name, app.createdAt),
		insertAppStorage(db, app.id),
	]);
}

/** Applications not being deleted, oldest first. */
export async function listApplications(db: Db): Promise<Application[]> {
	const { results } = await db
		.prepare("SELECT id, name, created_at FROM applications WHERE deleted_at IS NULL ORDER BY created_at, id")
		.all<ApplicationRow>();
	return results.map(toApplication);
}

