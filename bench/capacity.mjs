// `npm run capacity`: bytes on disk per registration, per learner tag, per registration tag and per finished job,
// indexes included, measured on a real SQLite database built from this project's migrations. The inputs of the
// capacity plan in docs/shards.md (registrations per 10 GB shard); see also `npm run bench` for rows read and written.
//
// D1 is SQLite (a D1 database is a SQLite file inside a Durable Object), so the same schema holds the same bytes
// in the same B-trees here as there. This uses Node 22's built-in SQLite (`node:sqlite`, DatabaseSync, bundled
// SQLite 3.5x; experimental in Node 22, hence the warning it prints): no native module, no wrangler. D1's own
// overhead outside the SQLite file (its _cf_ tables, Time Travel's log) is not counted; D1 bills and caps the
// database size, which is this file.
//
// Method: apply the migrations (files in name order, each --migrations directory in the order given; default
// migrations/shard when it exists, else migrations), then seed each kind of row in steps, in the order a live
// service would write it (registrations in creation order with random ids, tags in random owner order), and after
// each step read page_count × page_size. The delta per row of a step is what that row cost, its index entries and
// the B-trees' free space included. Kinds are seeded one after another, so each delta belongs to one kind. At the
// end, dbstat gives the bytes of every table and index, and VACUUM the compacted size (a lower bound: a database
// that keeps growing by random inserts is never that dense).
//
// Then, unless --no-operations: what single requests cost in D1, from D1's own meta (rows read, rows written, SQL
// time), through the service's data-layer functions (bench/probe POST /operations) on local D1 (workerd, started
// as `npm run bench` starts it: bench/lib/processes.mjs) holding the bench's 100 000 registrations. These are the
// rows D1 bills; rows written count every index entry (D1's pricing page), which is why a tag costs 4.
//
// Options: --migrations <dir> (repeatable), --registrations N (100 000), --learner-tags N (500 000),
// --registration-tags N (500 000), --jobs N (10 000), --steps N (5), --page-size N (4096, SQLite's default and
// what D1 uses unless a migration changes it), --iterations N (requests of each kind for the operations, 50),
// --no-operations, --no-save. Writes bench/results/<date>-capacity.json.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { executeSql, migrateLocal, request, startWorker, tempRoot } from "./lib/processes.mjs";
import { LEARNERS, SHARD, seedApplication, seedApplicationStorage, seedLearners } from "./seed.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const RESULTS = path.join(ROOT, "bench/results");
const log = (message) => process.stderr.write(`[capacity] ${message}\n`);

/** Command-line options: `--name value` pairs, --migrations repeatable, `--no-save`. */
function parseOptions(argv) {
	const options = {
		migrations: [],
		registrations: 100_000,
		learnerTags: 500_000,
		registrationTags: 500_000,
		jobs: 10_000,
		steps: 5,
		pageSize: 4096,
		iterations: 50,
		operations: true,
		save: true,
	};
	const numeric = {
		"--registrations": "registrations",
		"--learner-tags": "learnerTags",
		"--registration-tags": "registrationTags",
		"--jobs": "jobs",
		"--steps": "steps",
		"--page-size": "pageSize",
		"--iterations": "iterations",
	};
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i];
		if (arg === "--no-save") options.save = false;
		else if (arg === "--no-operations") options.operations = false;
		else if (arg === "--migrations") options.migrations.push(path.resolve(argv[++i] ?? ""));
		else if (arg in numeric) {
			const value = Number(argv[++i]);
			if (!Number.isInteger(value) || value < 0) throw new Error(`${arg} needs a whole number`);
			options[numeric[arg]] = value;
		} else throw new Error(`unknown option ${arg}`);
	}
	if (options.migrations.length === 0) {
		const shard = path.join(ROOT, "migrations/shard");
		options.migrations.push(existsSync(shard) ? shard : path.join(ROOT, "migrations"));
	}
	if (options.steps < 1) throw new Error("--steps must be at least 1");
	return options;
}

/** A seeded PRNG (mulberry32): the same data on every run. */
function random(seed) {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}
const rand = random(20261201);
const ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789";
const HEX = "0123456789abcdef";
const pick = (items) => items[Math.floor(rand() * items.length)];
const text = (length, alphabet = ALNUM) => Array.from({ length }, () => pick(alphabet)).join("");
/** A version-4 UUID (36 characters), as crypto.randomUUID() makes them, from the seeded PRNG. */
const uuid = () => `${text(8, HEX)}-${text(4, HEX)}-4${text(3, HEX)}-${pick("89ab")}${text(3, HEX)}-${text(12, HEX)}`;
function shuffle(items) {
	for (let i = items.length - 1; i > 0; i--) {
		const j = Math.floor(rand() * (i + 1));
		[items[i], items[j]] = [items[j], items[i]];
	}
	return items;
}

// Realistic field sizes. Names from short lists; email "first.last@" plus a 16-character domain (about 30
// characters); ids as the brief for the plan fixes them: registration id 36 (a UUID), course and learner ids 20.
const FIRST_NAMES = ["Ada", "Grace", "Alan", "Katherine", "Edsger", "Barbara", "Donald", "Margaret", "Linus", "Radia"];
const LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Johnson", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Torvalds", "Perlman"];
const FIELDS = {
	appId: 10,
	registrationId: 36,
	courseId: 20,
	learnerId: 20,
	email: "first.last@example-corp.com (about 27 characters)",
	names: "first and last names of 3-9 characters",
	tag: 12,
	xapiRegistrationId: 36,
	dates: "ISO-8601 UTC, 24 characters",
};
const APP_ID = "K7QX2M9PAH";
const REGISTRATIONS_PER_LEARNER = 5;
const TAG_VOCABULARY = 1000;
const BASE_TIME = Date.parse("2026-01-01T00:00:00.000Z");

function applyMigrations(db, dirs) {
	const applied = [];
	for (const dir of dirs) {
		if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`no migrations directory ${dir}`);
		const files = readdirSync(dir)
			.filter((name) => name.endsWith(".sql"))
			.sort();
		if (files.length === 0) throw new Error(`no .sql files in ${dir}`);
		for (const file of files) {
			db.exec(readFileSync(path.join(dir, file), "utf8"));
			applied.push(path.relative(ROOT, path.join(dir, file)));
		}
	}
	const tables = new Set(db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all().map((row) => row.name));
	const missing = ["registrations", "learner_tags", "learner_tag_counts", "registration_tags", "jobs", "app_storage"].filter(
		(name) => !tables.has(name),
	);
	if (missing.length > 0) throw new Error(`the migrations do not create ${missing.join(", ")}`);
	return applied;
}

/** The database's size as D1 counts it: pages × page size (the file, once no journal is pending). */
function size(db) {
	const pages = db.prepare("PRAGMA page_count").get().page_count;
	const pageSize = db.prepare("PRAGMA page_size").get().page_size;
	const free = db.prepare("PRAGMA freelist_count").get().freelist_count;
	return { bytes: pages * pageSize, pages, freePages: free };
}

/**
 * Runs `insertStep(stepIndex, count)` for each of `steps` steps of `total` rows, one transaction each, and records
 * the file size after each.
 */
function measure(db, kind, total, steps, insertStep) {
	const result = { kind, rows: total, steps: [] };
	if (total === 0) return result;
	const before = size(db);
	let previous = before;
	let done = 0;
	for (let step = 0; step < steps; step++) {
		const count = Math.floor((total * (step + 1)) / steps) - done;
		const started = performance.now();
		db.exec("BEGIN");
		insertStep(step, done, count);
		db.exec("COMMIT");
		const ms = performance.now() - started;
		done += count;
		const now = size(db);
		result.steps.push({
			rowsAfter: done,
			rows: count,
			bytes: now.bytes - previous.bytes,
			bytesPerRow: round((now.bytes - previous.bytes) / count),
			ms: round(ms),
		});
		previous = now;
	}
	result.bytes = previous.bytes - before.bytes;
	result.bytesPerRow = round(result.bytes / total);
	// The steps after the first: tables and indexes already have their first pages, as on a shard in service.
	const later = result.steps.slice(1);
	if (later.length > 0) {
		const rows = later.reduce((sum, s) => sum + s.rows, 0);
		result.bytesPerRowAfterFirstStep = round(later.reduce((sum, s) => sum + s.bytes, 0) / rows);
	}
	log(`${kind}: ${total} rows, ${result.bytesPerRow} bytes a row (steps: ${result.steps.map((s) => s.bytesPerRow).join(", ")})`);
	return result;
}

const round = (n) => Math.round(n * 10) / 10;

/** Bytes of every table and index (dbstat), and which table each index belongs to. */
function breakdown(db) {
	const owners = new Map(db.prepare("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')").all().map((r) => [r.name, r.tbl_name]));
	return db
		.prepare("SELECT name, sum(pgsize) AS bytes, sum(unused) AS unused, count(*) AS pages FROM dbstat GROUP BY name ORDER BY bytes DESC")
		.all()
		.map((row) => ({
			name: row.name,
			table: owners.get(row.name) ?? row.name,
			bytes: row.bytes,
			pages: row.pages,
			fill: round((1 - row.unused / row.bytes) * 100),
		}));
}

/**
 * Rows and D1 time of single requests (bench/probe POST /operations), on a fresh local D1 migrated by wrangler
 * (as `npm run bench` migrates its own) and seeded with the bench's dataset.
 */
async function measureOperations(iterations) {
	const persistTo = path.join(tempRoot(), `capacity-d1-${process.pid}`);
	mkdirSync(persistTo, { recursive: true });
	try {
		// Every binding migrated; the application in the control database, its data on its shard (bench/seed.mjs SHARD).
		migrateLocal(persistTo);
		executeSql(persistTo, "seed-application", seedApplication());
		executeSql(persistTo, "seed-storage", seedApplicationStorage(), SHARD);
		executeSql(persistTo, "seed-learners", seedLearners(0, LEARNERS), SHARD);
		const { worker, origin } = await startWorker(path.join(ROOT, "bench/probe/wrangler.toml"), { persistTo });
		try {
			const answer = await request(origin, "POST", "/operations", {
				headers: { "Content-Type": "application/json" },
				body: JSON.stringify({ appId: "CAPACITYOPS", iterations, shard: SHARD }),
			});
			if (answer.status !== 200) throw new Error(`operations: ${answer.status} ${answer.text}`);
			const figures = JSON.parse(answer.text);
			log(`operations: ${figures.map((f) => `${f.name} ${f.rowsRead}/${f.rowsWritten}`).join("; ")}`);
			return figures;
		} finally {
			await worker.dispose();
		}
	} finally {
		rmSync(persistTo, { recursive: true, force: true });
	}
}

async function main() {
	const options = parseOptions(process.argv.slice(2));
	const dir = path.join(tempRoot(), `capacity-${process.pid}`);
	mkdirSync(dir, { recursive: true });
	const file = path.join(dir, "shard.sqlite");
	const db = new DatabaseSync(file);
	try {
		// Before any table exists, so it applies. Durability settings do not change the file's layout.
		db.exec(`PRAGMA page_size = ${options.pageSize}; PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF;`);
		const migrations = applyMigrations(db, options.migrations);
		log(`applied ${migrations.length} migrations from ${options.migrations.map((d) => path.relative(ROOT, d)).join(", ")}`);
		// The application's own row (written with it, one per application): its guard and counters.
		db.prepare("INSERT INTO app_storage (app_id, row_quota, write_budget) VALUES (?, 5000000, 300000)").run(APP_ID);
		const empty = size(db);

		// Learners: REGISTRATIONS_PER_LEARNER registrations each, in random order over time.
		const learnerCount = Math.max(1, Math.ceil(options.registrations / REGISTRATIONS_PER_LEARNER));
		const learners = Array.from({ length: learnerCount }, () => {
			const first = pick(FIRST_NAMES);
			const last = pick(LAST_NAMES);
			return { id: text(20), email: `${first}.${last}@example-corp.com`.toLowerCase(), first, last, tags: 0 };
		});
		const learnerOf = shuffle(Array.from({ length: options.registrations }, (_, i) => learners[i % learnerCount]));
		const registrationIds = [];
		const insertRegistration = db.prepare(
			`INSERT INTO registrations (app_id, id, course_id, learner_id, learner_email, learner_first_name, learner_last_name,
			   xapi_registration_id, email_seq, first_name_seq, last_name_seq, created_at, updated_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		);
		const courses = Array.from({ length: 500 }, () => text(20));
		const registrations = measure(db, "registration", options.registrations, options.steps, (_step, from, count) => {
			for (let i = from; i < from + count; i++) {
				const learner = learnerOf[i];
				const id = uuid();
				registrationIds.push(id);
				// One a minute: dates as a service in use writes them. The job clock in the tens of thousands.
				const at = new Date(BASE_TIME + i * 60_000).toISOString();
				const seq = 10_000 + Math.floor(i / 10);
				insertRegistration.run(APP_ID, id, pick(courses), learner.id, learner.email, learner.first, learner.last, uuid(), seq, seq, seq, at, at);
			}
		});

		// Each tagged learner has one learner_tag_counts row, created with its first tag; measured apart, so that a
		// learner tag's figure is the tag's own.
		const insertCount = db.prepare("INSERT INTO learner_tag_counts (app_id, learner_id, tag_count) VALUES (?, ?, 0)");
		const tagCounts = measure(db, "learner tag count (one per tagged learner)", learnerCount, options.steps, (_step, from, count) => {
			for (let i = from; i < from + count; i++) insertCount.run(APP_ID, learners[i].id);
		});

		const vocabulary = Array.from({ length: TAG_VOCABULARY }, () => text(12));
		// Each step gives every owner (in random order) its share of the step's tags, distinct per owner: tag k of
		// an owner is vocabulary[(offset + k) mod size], the offset random per owner.
		function tagSteps(owners, insertTag) {
			const offsets = owners.map(() => Math.floor(rand() * TAG_VOCABULARY));
			const given = owners.map(() => 0);
			return (_step, _from, count) => {
				const order = shuffle(owners.map((_, i) => i));
				let left = count;
				while (left > 0) {
					for (const i of order) {
						if (left === 0) break;
						if (given[i] >= TAG_VOCABULARY) continue;
						insertTag(i, vocabulary[(offsets[i] + given[i]) % TAG_VOCABULARY]);
						given[i]++;
						left--;
					}
				}
			};
		}
		const insertLearnerTag = db.prepare("INSERT INTO learner_tags (app_id, learner_id, tag) VALUES (?, ?, ?)");
		const raiseLearnerCount = db.prepare("UPDATE learner_tag_counts SET tag_count = tag_count + 1 WHERE app_id = ? AND learner_id = ?");
		const learnerTags = measure(
			db,
			"learner tag",
			options.learnerTags,
			options.steps,
			tagSteps(learners, (i, tag) => {
				insertLearnerTag.run(APP_ID, learners[i].id, tag);
				raiseLearnerCount.run(APP_ID, learners[i].id);
			}),
		);
		const insertRegistrationTag = db.prepare("INSERT INTO registration_tags (app_id, registration_id, tag) VALUES (?, ?, ?)");
		const raiseRegistrationCount = db.prepare("UPDATE registrations SET tag_count = tag_count + 1 WHERE app_id = ? AND id = ?");
		const registrationTags = measure(
			db,
			"registration tag",
			options.registrationTags,
			options.steps,
			tagSteps(registrationIds, (i, tag) => {
				insertRegistrationTag.run(APP_ID, registrationIds[i], tag);
				raiseRegistrationCount.run(APP_ID, registrationIds[i]);
			}),
		);

		// Finished jobs stay as the record of the job (storage-schema.md): learner id and payload dropped, the
		// learner's HMAC kept; one in ten an erasure, which keeps its requester's email.
		const insertJob = db.prepare(
			`INSERT INTO jobs (id, seq, app_id, type, status, learner_id, learner_hash, payload, requested_by, cursor, position,
			   lease, registrations_affected, tags_removed, error, created_at, started_at, completed_at, touched_at, resends)
			 VALUES (?, ?, ?, ?, 'completed', NULL, ?, NULL, ?, 1, ?, ?, 5, ?, NULL, ?, ?, ?, ?, 0)`,
		);
		const jobs = measure(db, "finished job", options.jobs, options.steps, (_step, from, count) => {
			for (let i = from; i < from + count; i++) {
				const erasure = i % 10 === 9;
				const at = new Date(BASE_TIME + i * 60_000).toISOString();
				insertJob.run(
					uuid(),
					20_000 + i,
					APP_ID,
					erasure ? "deleteAllLearnerData" : "updateLearnerInfo",
					text(64, HEX),
					erasure ? "dpo@example-corp.com" : null,
					Math.floor(rand() * options.registrations),
					uuid(),
					erasure ? 25 : 0,
					at,
					at,
					at,
					at,
				);
			}
		});

		const grown = size(db);
		const tables = breakdown(db);
		db.exec("VACUUM");
		const vacuumed = size(db);
		const vacuumedTables = breakdown(db);
		const sqliteVersion = db.prepare("SELECT sqlite_version() AS v").get().v;
		const pageSize = db.prepare("PRAGMA page_size").get().page_size;
		db.close();

		const kinds = [registrations, tagCounts, learnerTags, registrationTags, jobs];
		const operations = options.operations ? await measureOperations(options.iterations) : undefined;
		const byTable = (list) => {
			const sums = {};
			for (const entry of list) sums[entry.table] = (sums[entry.table] ?? 0) + entry.bytes;
			return sums;
		};
		const result = {
			date: new Date().toISOString(),
			label: "capacity",
			machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model.split(" ").slice(0, 2).join(" ") },
			versions: { node: process.version, sqlite: sqliteVersion },
			settings: {
				migrations,
				pageSize,
				steps: options.steps,
				registrations: options.registrations,
				learners: learnerCount,
				registrationsPerLearner: REGISTRATIONS_PER_LEARNER,
				learnerTags: options.learnerTags,
				registrationTags: options.registrationTags,
				jobs: options.jobs,
				tagVocabulary: TAG_VOCABULARY,
				fields: FIELDS,
			},
			emptyDatabaseBytes: empty.bytes,
			kinds,
			database: {
				bytes: grown.bytes,
				freePages: grown.freePages,
				vacuumedBytes: vacuumed.bytes,
				tables,
				bytesByTable: byTable(tables),
				vacuumedBytesByTable: byTable(vacuumedTables),
			},
			...(operations && {
				operations: {
					database: `local D1 (workerd), the bench's ${LEARNERS * 5} registrations; rows: medians, times: means of ${options.iterations} requests of each kind`,
					figures: operations,
				},
			}),
		};
		process.stdout.write(report(result));
		if (options.save) {
			mkdirSync(RESULTS, { recursive: true });
			const name = `${result.date.replace(/[:.]/g, "-")}-capacity.json`;
			writeFileSync(path.join(RESULTS, name), `${JSON.stringify(result, null, "\t")}\n`);
			log(`saved bench/results/${name}`);
		}
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
}

const formatInt = (n) => Math.round(n).toLocaleString("en-US").replace(/,/g, " ");

/** The tables printed on stdout. */
function report(result) {
	const lines = [];
	lines.push(`Capacity: ${result.settings.migrations.length} migrations, SQLite ${result.versions.sqlite}, page size ${result.settings.pageSize}`);
	lines.push("");
	lines.push("| row | rows | bytes | bytes a row | after the first step | per step |");
	lines.push("| --- | --: | --: | --: | --: | --- |");
	for (const kind of result.kinds) {
		if (kind.rows === 0) continue;
		lines.push(
			`| ${kind.kind} | ${formatInt(kind.rows)} | ${formatInt(kind.bytes)} | ${kind.bytesPerRow} | ${kind.bytesPerRowAfterFirstStep ?? "-"} | ${kind.steps.map((s) => s.bytesPerRow).join(", ")} |`,
		);
	}
	lines.push("");
	const { database } = result;
	lines.push(
		`Database: ${formatInt(database.bytes)} bytes as grown (${database.freePages} free pages), ${formatInt(database.vacuumedBytes)} after VACUUM.`,
	);
	lines.push("");
	lines.push("| table or index | bytes | fill % |");
	lines.push("| --- | --: | --: |");
	for (const entry of database.tables.filter((t) => t.bytes > 8 * result.settings.pageSize)) {
		lines.push(`| ${entry.name === entry.table ? entry.name : `${entry.table}: ${entry.name}`} | ${formatInt(entry.bytes)} | ${entry.fill} |`);
	}
	if (result.operations) {
		lines.push("");
		lines.push(`Single requests in D1 (${result.operations.database}):`);
		lines.push("");
		lines.push("| request | D1 calls | statements | rows read | rows written | D1 SQL ms (meta.duration) | ms seen by the Worker |");
		lines.push("| --- | --: | --: | --: | --: | --: | --: |");
		for (const f of result.operations.figures) {
			lines.push(`| ${f.name} | ${f.calls} | ${f.statements} | ${f.rowsRead} | ${f.rowsWritten} | ${f.sqlMs} | ${f.ms} |`);
		}
	}
	lines.push("");
	return `${lines.join("\n")}\n`;
}

await main();
