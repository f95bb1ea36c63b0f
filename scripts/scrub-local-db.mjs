// `npm run db:scrub:local` (with `npm run dev` stopped): rewrites the local D1 files so that deleted rows are
// gone from disk too. SQLite leaves a deleted row's bytes in free pages and in its write-ahead log until they
// are reused, and D1 does not let a Worker set secure_delete or checkpoint; after an erasure on a machine that
// runs the service with `npm run dev`, this removes those remnants.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";

const root = ".wrangler/state/v3/d1";
const files = [];
const walk = (dir) => {
	for (const name of readdirSync(dir)) {
		const path = join(dir, name);
		if (statSync(path).isDirectory()) walk(path);
		else if (name.endsWith(".sqlite")) files.push(path);
	}
};
try {
	walk(root);
} catch {
	console.log(`No local D1 state under ${root}: nothing to scrub.`);
	process.exit(0);
}
for (const file of files) {
	const db = new DatabaseSync(file);
	db.exec("PRAGMA secure_delete = ON; PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);");
	db.close();
	console.log(`Scrubbed ${file}`);
}
