// Bench-only worker (never deployed, never part of the service): bound to the bench's local D1, it runs the
// service's own data-layer functions (src/db) and job runner (src/jobs/run.ts) through a metering Db, and
// answers with D1's meta for each operation — rows read and written, D1 calls, time. The service itself gains
// no route for this. bench/run.mjs calls POST /scale once per database size, and POST /hotpath once;
// bench/capacity.mjs calls POST /operations (rows and D1 time of single requests' writes and reads).
import { handle } from "../../src/app";
import { forgetApplication } from "../../src/auth/credentials";
import { signToken } from "../../src/auth/token";
import { refusalOf } from "../../src/db/app-storage";
import { findPlacement, insertApplication } from "../../src/db/applications";
import {
	acceptBulkErasure,
	acceptLearnerErasure,
	acceptLearnerUpdate,
	acceptMove,
	claimStep,
	getJobById,
	newJobId,
	recordRealmErasure,
} from "../../src/db/jobs";
import { applicationsHolding } from "../../src/db/learners";
import { fanOut, runRealmErasure } from "../../src/jobs/realm-erasure";
import { getRealmUserRole, upsertRealmUser } from "../../src/db/realm-users";
import { findKey, isKeyTaken, keyStatements } from "../../src/db/idempotency";
import { createRegistration } from "../../src/db/registrations";
import { listLearners } from "../../src/db/learners";
import { LEARNER_TAGS, REGISTRATION_TAGS, addTags, getTags } from "../../src/db/tags";
import type { Db } from "../../src/db/types";
import { type JobMessage, learnerHash } from "../../src/jobs/contract";
import { type MovePlan, MOVE_BOUNDS, newMovePlan, runMove } from "../../src/jobs/move";
import { CHUNK_BOUNDS, runJob } from "../../src/jobs/run";
import { shardDatabase } from "../../src/shards";

interface ProbeEnv {
	/** The control database (applications, credentials, realm users, moves). */
	DB: D1Database;
	/** The shards, as in the service's wrangler.toml. */
	SHARD_1: D1Database;
	SHARD_2: D1Database;
	SHARD_EU_1: D1Database;
	SHARDS: string;
	LEARNER_HASH_KEY: string;
	MOVE_LINGER_SECONDS: string;
}

/** The secrets the service's configuration requires (src/config.ts); they serve no other purpose here. */
const SERVICE_SECRETS = {
	MANAGEMENT_APP_ID: "bench-management",
	MANAGEMENT_SECRET_KEY: "bench-management-secret-0123456789abcdef",
	TOKEN_SIGNING_SECRET: "bench-token-signing-secret-0123456789abcdef",
};

let receiptKey: Promise<string> | undefined;
/** RECEIPT_SIGNING_KEY, which the service's configuration requires: a fresh Ed25519 key as a JWK, one per isolate. */
function receiptSigningKey(): Promise<string> {
	receiptKey ??= (async () => {
		const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
		const { kty, crv, d, x } = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
		return JSON.stringify({ kty, crv, d, x });
	})();
	return receiptKey;
}

/** What an operation cost in D1. */
interface Cost {
	calls: number;
	statements: number;
	rowsRead: number;
	rowsWritten: number;
	/** D1's own time for the SQL (meta.duration, summed): what the database spends, apart from the round trip. */
	sqlMs: number;
	ms: number;
}

/**
 * A Db that forwards to D1 and adds up D1's meta for everything it runs. first() is served by all() (D1 runs
 * the same query either way; only all() and run() return meta), and batch() hands D1 the real statements.
 */
class MeteredDb implements Db {
	calls = 0;
	statements = 0;
	rowsRead = 0;
	rowsWritten = 0;
	sqlMs = 0;
	readonly #originals = new WeakMap<D1PreparedStatement, D1PreparedStatement>();

	/** `root`: the meter a session's calls add up in (a session opened on a MeteredDb counts in it). */
	constructor(
		private readonly db: D1Database,
		private readonly root?: MeteredDb,
	) {}

	/** A D1 session on the same database, metered here (the service opens one per request). */
	withSession(constraint?: string): MeteredDb {
		const session = this.db.withSession(constraint as D1SessionConstraint) as unknown as D1Database;
		return new MeteredDb(session, this.root ?? this);
	}

	getBookmark(): string | null {
		return (this.db as unknown as D1DatabaseSession).getBookmark?.() ?? null;
	}

	/** This meter's figures, or its root's for a session. */
	get #totals(): MeteredDb {
		return this.root ?? this;
	}

	prepare(sql: string): D1PreparedStatement {
		return this.#wrap(this.db.prepare(sql));
	}

	async batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
		this.#totals.calls++;
		const results = await this.db.batch<T>(statements.map((statement) => this.#originals.get(statement) ?? statement));
		for (const result of results) this.#add(result.meta);
		return results;
	}

	#add(meta: D1Meta): void {
		const totals = this.#totals;
		totals.statements++;
		totals.rowsRead += meta.rows_read;
		totals.rowsWritten += meta.rows_written;
		totals.sqlMs += meta.duration;
	}

	#wrap(statement: D1PreparedStatement): D1PreparedStatement {
		const run = async <T>(target: D1PreparedStatement, method: "all" | "run"): Promise<D1Result<T>> => {
			this.#totals.calls++;
			const result = method === "all" ? await target.all<T>() : ((await target.run<T>()) as D1Result<T>);
			this.#add(result.meta);
			return result;
		};
		const wrapped: D1PreparedStatement = new Proxy(statement, {
			get: (target, property) => {
				if (property === "bind") return (...values: unknown[]) => this.#wrap(target.bind(...values));
				if (property === "all" || property === "run") return () => run(target, property);
				if (property === "first") {
					return async (column?: string) => {
						const row = (await run<Record<string, unknown>>(target, "all")).results[0];
						if (row === undefined) return null;
						return column === undefined ? row : row[column];
					};
				}
				if (property === "raw") throw new Error("raw() is not metered; the data layer does not use it");
				const value: unknown = Reflect.get(target, property, target);
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
		this.#originals.set(wrapped, statement);
		return wrapped;
	}
}

/** Runs `operation` on a fresh MeteredDb and returns its result with what it cost. */
async function metered<T>(db: D1Database, operation: (metered: MeteredDb) => Promise<T>): Promise<{ value: T; cost: Cost }> {
	const meter = new MeteredDb(db);
	// Workers clocks advance across I/O, and this is all I/O: the figure is D1 time plus a little JS.
	const started = performance.now();
	const value = await operation(meter);
	const ms = Math.round((performance.now() - started) * 10) / 10;
	const { calls, statements, rowsRead, rowsWritten } = meter;
	const sqlMs = Math.round(meter.sqlMs * 1000) / 1000;
	return { value, cost: { calls, statements, rowsRead, rowsWritten, sqlMs, ms } };
}

/** Drives a job to completion with the service's runner, one chunk per call, metering each chunk. */
async function runChunkByChunk(db: D1Database, message: JobMessage) {
	const chunks: Cost[] = [];
	for (;;) {
		const { value: outcome, cost } = await metered(db, (meter) => runJob(meter, message, { bounds: CHUNK_BOUNDS, chunks: 1 }));
		chunks.push(cost);
		if (outcome === "done") break;
		if (chunks.length > 10_000) throw new Error("job did not finish");
	}
	const total = (key: keyof Cost) => Math.round(chunks.reduce((sum, chunk) => sum + chunk[key], 0) * 10) / 10;
	const max = (key: keyof Cost) => Math.max(...chunks.map((chunk) => chunk[key]));
	return {
		chunks: chunks.length,
		chunkBounds: CHUNK_BOUNDS,
		total: { calls: total("calls"), rowsRead: total("rowsRead"), rowsWritten: total("rowsWritten"), ms: total("ms") },
		perChunkMax: { rowsRead: max("rowsRead"), rowsWritten: max("rowsWritten"), ms: max("ms") },
	};
}

/** The quota and write budget wrangler.toml sets (APP_ROW_QUOTA, APP_WRITE_BUDGET): every write pays their checks. */
const LIMITS = { rowQuota: 5_000_000, writeBudget: 300_000 };

const BATCH_IDS = 1000;
const BATCH_TAGS = 100;
const SUBJECT_REGISTRATIONS = 10_000;

interface ScaleRequest {
	/** A fresh application id: everything this probe creates lives in it and is removed at the end. */
	appId: string;
	/** The seeded application and a few of its learners, for rows read per GET tags on the bench data. */
	seededAppId: string;
	seededLearnerIds: string[];
	/** A realm admin (seeded), who may request erasures. */
	requestedBy: string;
	/** The seeded application's shard (a D1 binding): every data-layer call here runs on it. */
	shard: string;
	/** The seeded application's Basic credentials, for the D1 calls of whole requests through the service. */
	secret: string;
}

async function scale(env: ProbeEnv, request: ScaleRequest) {
	// Data tables live on the application's shard; the control database holds applications and realm users.
	const db = shardDatabase(env, request.shard);
	const { appId } = request;
	const now = new Date().toISOString();
	const databaseRegistrations = (await db.prepare("SELECT count(*) AS n FROM registrations").first<{ n: number }>())?.n ?? 0;

	// Rows read per GET /learner/{id}/tags: the route's one statement, for learners of the seeded application.
	const getTagsRows = [];
	for (const learnerId of request.seededLearnerIds) {
		const { value, cost } = await metered(db, (meter) => getTags(meter, LEARNER_TAGS, request.seededAppId, learnerId));
		getTagsRows.push({ tags: value?.length ?? -1, rowsRead: cost.rowsRead, calls: cost.calls });
	}

	// Rows read per page of GET /learners?tags= (100 learners): one tag, and two tags (any), of the seeded tags.
	const directory = [];
	for (const tags of [["tag-7"], ["tag-7", "tag-8"]]) {
		const { value, cost } = await metered(db, (meter) =>
			listLearners(meter, request.seededAppId, { filter: { tags, tagMatch: "any" }, limit: 100 }),
		);
		directory.push({ tags: tags.length, learners: value.learners.length, rowsRead: cost.rowsRead, calls: cost.calls });
	}

	// Setup (not measured): BATCH_IDS learners with one registration each, and one learner with
	// SUBJECT_REGISTRATIONS registrations, each with a registration tag, as the job tests seed them.
	const subject = `${appId}-subject`;
	await db.batch([
		// The row every write of the application is checked and counted against (src/db/app-storage.ts).
		db.prepare("INSERT INTO app_storage (app_id) VALUES (?1)").bind(appId),
		db
			.prepare(
				`INSERT INTO registrations (app_id, id, course_id, learner_id, xapi_registration_id, created_at, updated_at)
				 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
				 SELECT ?1, 'batch-registration-' || i, 'batch-course', 'batch-learner-' || i, lower(hex(randomblob(16))), ?3, ?3 FROM n`,
			)
			.bind(appId, BATCH_IDS, now),
		db
			.prepare(
				`INSERT INTO registrations (app_id, id, course_id, learner_id, learner_email, learner_first_name, learner_last_name,
				   xapi_registration_id, tag_count, created_at, updated_at)
				 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?3)
				 SELECT ?1, 'subject-registration-' || i, 'subject-course', ?2, 'before@example.com', 'Before', 'Before',
				   lower(hex(randomblob(16))), 1, ?4, ?4 FROM n`,
			)
			.bind(appId, subject, SUBJECT_REGISTRATIONS, now),
		db
			.prepare(
				`INSERT INTO registration_tags (app_id, registration_id, tag)
				 SELECT app_id, id, 'subject-tag' FROM registrations WHERE app_id = ?1 AND learner_id = ?2 ORDER BY pk`,
			)
			.bind(appId, subject),
		db
			.prepare("INSERT INTO learner_tags (app_id, learner_id, tag) VALUES (?1, ?2, 'subject-learner-tag')")
			.bind(appId, subject),
		db.prepare("INSERT INTO learner_tag_counts (app_id, learner_id, tag_count) VALUES (?1, ?2, 1)").bind(appId, subject),
	]);

	// PUT /learner/tags at its limits: 1000 learners × 100 tags, one D1 call.
	const ids = Array.from({ length: BATCH_IDS }, (_, i) => `batch-learner-${i + 1}`);
	const tags = Array.from({ length: BATCH_TAGS }, (_, i) => `batch-tag-${i}`);
	const batch = await metered(db, (meter) => addTags(meter, LEARNER_TAGS, appId, ids, tags, LIMITS));
	if (batch.value.length > 0) throw new Error(`batch: ${batch.value.length} learners not found`);
	const afterBatch = await metered(db, (meter) => getTags(meter, LEARNER_TAGS, appId, ids[0] as string));

	// updateLearnerInfo then deleteAllLearnerData on the subject: acceptance (the request's D1 call), then the
	// queue consumer's work, driven through runJob one chunk at a time.
	const hash = await learnerHash(env, appId, subject);
	const updateAccepted = await metered(db, (meter) =>
		acceptLearnerUpdate(meter, {
			id: crypto.randomUUID(),
			appId,
			learnerId: subject,
			learnerHash: hash,
			payload: { email: "after@example.com", firstName: "After", lastName: "Update" },
			createdAt: new Date().toISOString(),
		}, LIMITS),
	);
	if (updateAccepted.value.outcome !== "accepted") throw new Error(`update: ${updateAccepted.value.outcome}`);
	const update = await runChunkByChunk(db, { type: "updateLearnerInfo", jobId: updateAccepted.value.jobId });
	const updated = await db
		.prepare("SELECT count(*) AS n FROM registrations WHERE app_id = ?1 AND learner_id = ?2 AND learner_email = 'after@example.com'")
		.bind(appId, subject)
		.first<{ n: number }>();
	if (updated?.n !== SUBJECT_REGISTRATIONS) throw new Error(`update: ${updated?.n} registrations updated`);

	// As the route does: the requester's role is read from the control database first.
	const role = await getRealmUserRole(env.DB, request.requestedBy);
	const mayErase = role === "owner" || role === "admin";
	const erasureAccepted = await metered(db, (meter) =>
		acceptLearnerErasure(meter, {
			id: crypto.randomUUID(),
			appId,
			learnerId: subject,
			learnerHash: hash,
			requestedBy: request.requestedBy,
			createdAt: new Date().toISOString(),
		}, LIMITS, mayErase),
	);
	if (erasureAccepted.value.outcome !== "accepted") throw new Error(`erasure: ${erasureAccepted.value.outcome}`);
	const erasure = await runChunkByChunk(db, { type: "deleteAllLearnerData", jobId: erasureAccepted.value.job.id });
	const left = await db
		.prepare("SELECT count(*) AS n FROM registrations WHERE app_id = ?1 AND learner_id = ?2")
		.bind(appId, subject)
		.first<{ n: number }>();
	if (left?.n !== 0) throw new Error(`erasure: ${left?.n} registrations left`);

	// Leave the database as it was, so the next size starts from the seeded data alone.
	await db.batch(
		["learner_tags", "learner_tag_counts", "registration_tags", "registrations", "jobs", "idempotency_keys", "app_storage"].map((table) =>
			db.prepare(`DELETE FROM ${table} WHERE app_id = ?1`).bind(appId),
		),
	);

	return {
		databaseRegistrations,
		requests: await requestCalls(env, request),
		getTags: getTagsRows,
		directory,
		batch: { ids: BATCH_IDS, tags: BATCH_TAGS, ...batch.cost },
		getTagsAfterBatch: { tags: afterBatch.value?.length ?? -1, rowsRead: afterBatch.cost.rowsRead },
		update: { registrations: SUBJECT_REGISTRATIONS, accept: updateAccepted.cost, ...update },
		erasure: { registrations: SUBJECT_REGISTRATIONS, accept: erasureAccepted.cost, ...erasure },
	};
}

interface OperationsRequest {
	/** A fresh application id: everything this probe creates lives in it and is removed at the end. */
	appId: string;
	/** Requests of each kind; rows are medians, times means. */
	iterations: number;
	/** The shard (D1 binding) the operations run on: SHARD_1 unless given. */
	shard?: string;
}

/**
 * What single requests cost in D1 (rows read and written, D1's SQL time), through the service's own data-layer
 * functions on the bench's database: the inputs of the capacity plan's cost per request and writes per second.
 * Each POST /registrations names a new learner (the common case: a learner's first registration); each PUT
 * tags adds tags the learner does not have yet (a union with nothing new writes only the guard).
 */
async function operations(env: ProbeEnv, request: OperationsRequest) {
	const db = shardDatabase(env, request.shard ?? "SHARD_1");
	const { appId, iterations } = request;
	await db.prepare("INSERT INTO app_storage (app_id) VALUES (?1)").bind(appId).run();
	const kinds: Record<string, Cost[]> = {
		"POST /registrations (no tags)": [],
		"POST /registrations (1 learner tag, 1 registration tag)": [],
		"POST /registrations (no tags, Idempotency-Key)": [],
		"POST /registrations (Idempotency-Key, replayed)": [],
		"PUT /learner/{id}/tags (1 new tag)": [],
		"PUT /learner/{id}/tags (5 new tags)": [],
		"PUT /registrations/{id}/tags (1 new tag)": [],
		"GET /learner/{id}/tags (7 tags)": [],
	};
	const record = async (kind: string, operation: (meter: MeteredDb) => Promise<unknown>) => {
		const { cost } = await metered(db, operation);
		kinds[kind]?.push(cost);
	};
	const now = () => new Date().toISOString();
	for (let i = 0; i < iterations; i++) {
		const learner = { id: `ops-learner-${i}`, email: `ops${i}@example.com`, firstName: "Ada", lastName: "Lovelace" };
		const registration = (id: string, tags: string[]) => ({
			id,
			courseId: "ops-course",
			learner,
			xapiRegistrationId: crypto.randomUUID(),
			learnerTags: tags,
			registrationTags: tags,
			createdAt: now(),
		});
		await record("POST /registrations (no tags)", async (meter) => {
			if (!(await createRegistration(meter, appId, registration(`ops-registration-${i}-a`, []), LIMITS))) throw new Error("not created");
		});
		await record("POST /registrations (1 learner tag, 1 registration tag)", async (meter) => {
			if (!(await createRegistration(meter, appId, registration(`ops-registration-${i}-b`, ["ops-first"]), LIMITS))) {
				throw new Error("not created");
			}
		});
		// The same registration as the first, with an Idempotency-Key: what the key adds (src/db/idempotency.ts), and
		// what a retry with the key costs (its batch aborts on the key; the recorded response is read).
		const keyedRegistration = registration(`ops-registration-${i}-k`, []);
		const claim = {
			scope: appId,
			keyHash: `ops-key-${i}`,
			requestHash: "ops-request",
			learnerHash: `ops-learner-hash-${i}`,
			now: now(),
		};
		const keyedBatch = (meter: MeteredDb) =>
			keyStatements(
				meter,
				claim,
				{ status: 204, location: null, body: null },
				"EXISTS (SELECT 1 FROM registrations WHERE app_id = ?3 AND id = ?4 AND xapi_registration_id = ?5)",
				[appId, keyedRegistration.id, keyedRegistration.xapiRegistrationId],
			);
		await record("POST /registrations (no tags, Idempotency-Key)", async (meter) => {
			if (!(await createRegistration(meter, appId, keyedRegistration, LIMITS, keyedBatch(meter)))) throw new Error("not created");
		});
		await record("POST /registrations (Idempotency-Key, replayed)", async (meter) => {
			try {
				await createRegistration(meter, appId, keyedRegistration, LIMITS, keyedBatch(meter));
				throw new Error("a keyed retry did the work again");
			} catch (error) {
				if (!isKeyTaken(error)) throw error;
			}
			if (!(await findKey(meter, appId, claim.keyHash, now()))) throw new Error("no recorded key");
		});
		await record("PUT /learner/{id}/tags (1 new tag)", (meter) => addTags(meter, LEARNER_TAGS, appId, [learner.id], ["ops-one"], LIMITS));
		await record("PUT /learner/{id}/tags (5 new tags)", (meter) =>
			addTags(meter, LEARNER_TAGS, appId, [learner.id], ["ops-2", "ops-3", "ops-4", "ops-5", "ops-6"], LIMITS),
		);
		await record("PUT /registrations/{id}/tags (1 new tag)", (meter) =>
			addTags(meter, REGISTRATION_TAGS, appId, [`ops-registration-${i}-a`], ["ops-one"], LIMITS),
		);
		await record("GET /learner/{id}/tags (7 tags)", async (meter) => {
			const tags = await getTags(meter, LEARNER_TAGS, appId, learner.id);
			// The first registration's tag, the single one, the five.
			if (tags?.length !== 7) throw new Error(`GET tags: ${tags?.length}`);
		});
	}
	await db.batch(
		["learner_tags", "learner_tag_counts", "registration_tags", "registrations", "jobs", "idempotency_keys", "app_storage"].map((table) =>
			db.prepare(`DELETE FROM ${table} WHERE app_id = ?1`).bind(appId),
		),
	);
	const median = (values: number[]) => {
		const sorted = [...values].sort((a, b) => a - b);
		const middle = Math.floor(sorted.length / 2);
		return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
	};
	const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
	return Object.entries(kinds).map(([name, costs]) => ({
		name,
		requests: costs.length,
		calls: median(costs.map((c) => c.calls)),
		statements: median(costs.map((c) => c.statements)),
		rowsRead: median(costs.map((c) => c.rowsRead)),
		rowsWritten: median(costs.map((c) => c.rowsWritten)),
		// Means: both clocks tick in whole milliseconds locally, and a median of 0s and 1s says little.
		sqlMs: Math.round(mean(costs.map((c) => c.sqlMs)) * 1000) / 1000,
		ms: Math.round(mean(costs.map((c) => c.ms)) * 100) / 100,
	}));
}

/**
 * A D1 binding that answers at once, like a warm cache would: tag reads get a five-tag answer, credential
 * lookups the bench credential. With it (and a limiter that always allows), a request costs only the
 * service's own JavaScript, which no load test on this runtime can isolate from D1 and the limiter.
 */
function instantD1(credential: { id: string; appId: string }) {
	const tagRows = { results: [{ tag: null }, ...["t1", "t2", "t3", "t4", "t5"].map((tag) => ({ tag }))], meta: {} };
	const credentialRow = {
		id: credential.id,
		app_id: credential.appId,
		name: "bench",
		enabled: 1,
		created_at: "2026-01-01T00:00:00.000Z",
		shard: "SHARD_1",
	};
	const prepare = (sql: string) => {
		const rows = sql.includes("FROM credentials") ? { results: [credentialRow], meta: {} } : tagRows;
		const statement = {
			bind: () => statement,
			all: async () => rows,
			first: async () => rows.results[0] ?? null,
			run: async () => ({ results: [], meta: {} }),
		};
		return statement;
	};
	const session = {
		prepare,
		batch: async (statements: unknown[]) => statements.map(() => ({ results: [], meta: {} })),
		getBookmark: () => "00000001-00000000-00000000-00000000000000000000000000000000",
	};
	return { ...session, withSession: () => session } as unknown as D1Database;
}

/** Microseconds per call of `handle` over `iterations` calls, measured in the isolate. */
async function microsPerCall(iterations: number, handle: (i: number) => Promise<void>): Promise<number> {
	// Warm-up: let the JIT settle before the clock starts.
	for (let i = 0; i < iterations; i++) await handle(i);
	// Workers clocks stand still while JavaScript runs and move on at I/O: a timer before and after brackets
	// the loop with real time.
	await scheduler.wait(1);
	const started = Date.now();
	for (let i = 0; i < iterations; i++) await handle(i);
	await scheduler.wait(1);
	return Math.round(((Date.now() - started - 1) * 1000 * 10) / iterations) / 10;
}

interface HotPathRequest {
	iterations: number;
	appId: string;
	credentialId: string;
	secret: string;
	tokenSigningSecret: string;
}

/**
 * The JavaScript cost of GET /learner/{id}/tags in the service (Basic and Bearer, credential cached) and in the
 * raw-SQL floor's handler, with D1 and the limiter answering at once.
 */
async function hotPath(request: HotPathRequest) {
	const DB = instantD1({ id: request.credentialId, appId: request.appId });
	const env = {
		DB,
		// The application's shard answers as the control database does: tag reads.
		SHARD_1: DB,
		SHARDS: "SHARD_1:default",
		RATE_LIMITER: { limit: async () => ({ success: true }) },
		TOKEN_SIGNING_SECRET: request.tokenSigningSecret,
		// The service refuses to run without its secrets (src/config.ts); these serve no other purpose here.
		MANAGEMENT_APP_ID: "bench-management",
		MANAGEMENT_SECRET_KEY: "bench-management-secret-0123456789abcdef",
		LEARNER_HASH_KEY: "bench-learner-hash-key-0123456789abcdef",
		RECEIPT_SIGNING_KEY: await receiptSigningKey(),
		RATE_LIMIT_PERIOD_SECONDS: "60",
		LOG_LEVEL: "warn",
	} as unknown as Env;
	const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext;
	const now = Math.floor(Date.now() / 1000);
	const token = await signToken(
		{ app: request.appId, cid: request.credentialId, scope: ["read:learner"], iat: now, exp: now + 3600 },
		request.tokenSigningSecret,
	);
	const authorizations = {
		basic: `Basic ${btoa(`${request.appId}:${request.secret}`)}`,
		bearer: `Bearer ${token}`,
	};
	const service = (authorization: string) => async (i: number) => {
		const response = await handle(
			new Request(`http://bench/api/v2/learner/learner-${i % 20_000}/tags`, { headers: { Authorization: authorization } }),
			env,
			ctx,
		);
		if (response.status !== 200) throw new Error(`hot path: ${response.status} ${await response.text()}`);
		await response.arrayBuffer();
	};
	const PATH = /^\/api\/v2\/learner\/([^/]+)\/tags$/;
	const floor = async (i: number) => {
		const match = PATH.exec(new URL(`http://bench/api/v2/learner/learner-${i % 20_000}/tags`).pathname);
		const tags = await getTags(DB, LEARNER_TAGS, request.appId, decodeURIComponent(match?.[1] ?? ""));
		await Response.json({ tags }).arrayBuffer();
	};
	const { iterations } = request;
	return {
		iterations,
		floorMicros: await microsPerCall(iterations, floor),
		basicMicros: await microsPerCall(iterations, service(authorizations.basic)),
		bearerMicros: await microsPerCall(iterations, service(authorizations.bearer)),
	};
}

/** The service's env over metered bindings: every D1 call of the service's own code is counted, per database. */
async function meteredEnv(env: ProbeEnv, overrides: Record<string, string> = {}) {
	const meters = {
		DB: new MeteredDb(env.DB),
		SHARD_1: new MeteredDb(env.SHARD_1),
		SHARD_2: new MeteredDb(env.SHARD_2),
		SHARD_EU_1: new MeteredDb(env.SHARD_EU_1),
	};
	const serviceEnv = {
		...SERVICE_SECRETS,
		RECEIPT_SIGNING_KEY: await receiptSigningKey(),
		LEARNER_HASH_KEY: env.LEARNER_HASH_KEY,
		SHARDS: env.SHARDS,
		RATE_LIMITER: { limit: async () => ({ success: true }) },
		RATE_LIMIT_PERIOD_SECONDS: "60",
		LOG_LEVEL: "warn",
		...overrides,
		...meters,
	} as unknown as Env;
	/** What the meters counted since `since` (a snapshot), all databases and per database. */
	const snapshot = () =>
		Object.fromEntries(
			Object.entries(meters).map(([name, meter]) => [
				name,
				{ calls: meter.calls, rowsRead: meter.rowsRead, rowsWritten: meter.rowsWritten, sqlMs: meter.sqlMs },
			]),
		) as Record<keyof typeof meters, { calls: number; rowsRead: number; rowsWritten: number; sqlMs: number }>;
	const since = (before: ReturnType<typeof snapshot>) => {
		const after = snapshot();
		const byDatabase = Object.fromEntries(
			(Object.keys(meters) as (keyof typeof meters)[]).map((name) => [
				name,
				{
					calls: after[name].calls - before[name].calls,
					rowsRead: after[name].rowsRead - before[name].rowsRead,
					rowsWritten: after[name].rowsWritten - before[name].rowsWritten,
				},
			]),
		);
		const sum = (key: "calls" | "rowsRead" | "rowsWritten") => Object.values(byDatabase).reduce((total, entry) => total + entry[key], 0);
		return { calls: sum("calls"), rowsRead: sum("rowsRead"), rowsWritten: sum("rowsWritten"), byDatabase };
	};
	return { meters, serviceEnv, snapshot, since };
}

/**
 * D1 calls, rows read and rows written of whole GET and PUT /learner/{id}/tags requests through the service
 * (src/app.ts, Basic credentials) on the bench's databases, every binding metered: the first request of the
 * application in the isolate (credential read from the control database) and a warm one (credential cached).
 */
async function requestCalls(env: ProbeEnv, request: ScaleRequest) {
	const { serviceEnv, snapshot, since } = await meteredEnv(env);
	const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext;
	const authorization = `Basic ${btoa(`${request.seededAppId}:${request.secret}`)}`;
	const learner = request.seededLearnerIds[0] as string;
	const PUT_TAG = "probe-request-tag";
	const call = async (method: "GET" | "PUT") => {
		const before = snapshot();
		const response = await handle(
			new Request(`http://bench/api/v2/learner/${learner}/tags`, {
				method,
				headers: { Authorization: authorization, ...(method === "PUT" && { "Content-Type": "application/json" }) },
				...(method === "PUT" && { body: JSON.stringify({ tags: [PUT_TAG] }) }),
			}),
			serviceEnv,
			ctx,
		);
		const text = await response.text();
		if (response.status >= 300) throw new Error(`${method} tags: ${response.status} ${text}`);
		return since(before);
	};
	forgetApplication(request.seededAppId);
	const getFirst = await call("GET");
	const getWarm = await call("GET");
	forgetApplication(request.seededAppId);
	const putFirst = await call("PUT");
	const putWarm = await call("PUT");
	// Leave the learner as seeded: the PUT's tag, its count and the stored-row count taken back.
	const db = shardDatabase(env, request.shard);
	const removed = await db
		.prepare("DELETE FROM learner_tags WHERE app_id = ?1 AND learner_id = ?2 AND tag = ?3")
		.bind(request.seededAppId, learner, PUT_TAG)
		.run();
	await db.batch([
		db
			.prepare("UPDATE learner_tag_counts SET tag_count = tag_count - ?3 WHERE app_id = ?1 AND learner_id = ?2")
			.bind(request.seededAppId, learner, removed.meta.changes),
		db.prepare("UPDATE app_storage SET stored_rows = stored_rows - ?2 WHERE app_id = ?1").bind(request.seededAppId, removed.meta.changes),
	]);
	return {
		"GET /learner/{id}/tags (Basic)": { first: getFirst, warm: getWarm },
		"PUT /learner/{id}/tags (Basic)": { first: putFirst, warm: putWarm },
	};
}

interface MoveRequest {
	/** A fresh application id, created on `from` and moved to `to` (two shards of the default region). */
	appId: string;
	from: string;
	to: string;
	learners: number;
	registrationsPerLearner: number;
	learnerTagsEach: number;
}

/**
 * Creates the move phase's application on `from`: `learners` x `registrationsPerLearner` registrations and
 * `learnerTagsEach` tags per learner (inserted with SQL, not through the service: this is setup, not measured).
 */
async function moveSetup(env: ProbeEnv, request: MoveRequest) {
	const { appId, from, learners } = request;
	const control = env.DB;
	const source = shardDatabase(env, from);
	const learnerId = "'move-learner-' || printf('%06d', i)";
	const createdAt = new Date().toISOString();
	await insertApplication(control, source, { id: appId, name: "Bench move", dataRegion: "default", shard: from, createdAt, updatedAt: createdAt, allowDelete: true });
	const registrations = learners * request.registrationsPerLearner;
	const learnerTags = learners * request.learnerTagsEach;
	const seedStarted = Date.now();
	const learnersCte = `learners(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM learners WHERE i < ?2 - 1)`;
	const each = (n: number) => `each(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM each WHERE k < ${n} - 1)`;
	await source.batch([
		source
			.prepare(
				`INSERT INTO registrations (app_id, id, course_id, learner_id, learner_email, learner_first_name, learner_last_name,
				   xapi_registration_id, created_at, updated_at)
				 WITH RECURSIVE ${learnersCte}, ${each(request.registrationsPerLearner)}
				 SELECT ?1, 'move-registration-' || printf('%06d', i) || '-' || k, 'course-' || ((i + k) % 200), ${learnerId},
				   'learner' || i || '@example.com', 'First' || i, 'Last' || i, lower(hex(randomblob(16))), ?3, ?3
				 FROM learners, each ORDER BY i, k`,
			)
			.bind(appId, learners, createdAt),
		source
			.prepare(
				`INSERT INTO learner_tags (app_id, learner_id, tag)
				 WITH RECURSIVE ${learnersCte}, ${each(request.learnerTagsEach)}
				 SELECT ?1, ${learnerId}, 'tag-' || ((i + k * 10) % 50) FROM learners, each ORDER BY i, k`,
			)
			.bind(appId, learners),
		source
			.prepare(
				`INSERT INTO learner_tag_counts (app_id, learner_id, tag_count)
				 WITH RECURSIVE ${learnersCte} SELECT ?1, ${learnerId}, ?3 FROM learners`,
			)
			.bind(appId, learners, request.learnerTagsEach),
		// The quota wrangler.toml sets (every write records the one in force; the seed's count needs it now).
		source
			.prepare("UPDATE app_storage SET row_quota = ?3, stored_rows = ?2 WHERE app_id = ?1")
			.bind(appId, registrations + learnerTags, LIMITS.rowQuota),
	]);
	const seedMs = Date.now() - seedStarted;
	return { registrations, learners, learnerTags, learnerTagCounts: learners, seedMs };
}

/**
 * Moves the application moveSetup created from `from` to `to` with the service's move job (src/jobs/move.ts
 * runMove, one step per call, every binding metered: control, source, destination). bench/run.mjs writes to the
 * application meanwhile (POST /write), in requests of their own: timers in this request would not fire while the
 * move keeps it busy with D1 calls.
 */
async function move(env: ProbeEnv, request: MoveRequest) {
	const { appId, from, to } = request;
	const control = env.DB;
	const source = shardDatabase(env, from);
	const registrations = request.learners * request.registrationsPerLearner;
	const jobId = crypto.randomUUID();
	const accepted = await acceptMove(control, {
		id: jobId,
		appId,
		from,
		to,
		payload: JSON.stringify(newMovePlan(from, to, "default")),
		createdAt: new Date().toISOString(),
	});
	if (accepted?.id !== jobId) throw new Error("move: not accepted");

	const { meters, serviceEnv, snapshot, since } = await meteredEnv(env, { MOVE_LINGER_SECONDS: env.MOVE_LINGER_SECONDS });
	const started = Date.now();
	const at = () => Date.now() - started;

	// The move, one step per runMove call.
	const steps: { calls: number; rowsRead: number; rowsWritten: number; ms: number }[] = [];
	const moveStart = snapshot();
	let outcome: Awaited<ReturnType<typeof runMove>> = "continue";
	let localLockRetries = 0;
	try {
		while (outcome !== "done") {
			const before = snapshot();
			const stepStarted = Date.now();
			try {
				outcome = await runMove(serviceEnv, meters.DB, jobId, 1);
			} catch (error) {
				// Local D1 only: the writer's workerd process held a database file's lock. The step is redone, as the
				// queue redelivers a failed message; its D1 calls stay counted.
				if (!LOCAL_LOCK.test(error instanceof Error ? error.message : String(error))) throw error;
				localLockRetries++;
				continue;
			}
			const cost = since(before);
			steps.push({ calls: cost.calls, rowsRead: cost.rowsRead, rowsWritten: cost.rowsWritten, ms: Date.now() - stepStarted });
			if (typeof outcome === "object") await scheduler.wait(outcome.waitSeconds * 1000);
			if (steps.length > 100_000) throw new Error("move: did not finish");
		}
	} catch (error) {
		throw new Error(`move: step ${steps.length + 1}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
	}
	const totalMs = at();
	const cost = since(moveStart);

	const job = await getJobById(control, jobId);
	const plan = JSON.parse(job?.payload ?? "null") as MovePlan;
	if (job?.status !== "completed") throw new Error(`move: job ${job?.status}: ${job?.error}`);
	const dest = shardDatabase(env, to);
	const count = async (db: D1Database, sql: string) => (await db.prepare(sql).bind(appId).first<{ n: number }>())?.n ?? 0;
	const destRegistrations = await count(dest, "SELECT count(*) AS n FROM registrations WHERE app_id = ?1");
	const left = await count(source, "SELECT count(*) AS n FROM registrations WHERE app_id = ?1");
	if (destRegistrations !== registrations || left !== 0) throw new Error(`move: ${destRegistrations} registrations on ${to}, ${left} on ${from}`);

	const max = (key: "calls" | "rowsRead" | "rowsWritten" | "ms") => Math.max(...steps.map((step) => step[key]));
	const { byDatabase } = cost;
	const frozenToFlippedMs = plan.frozenAt && plan.flippedAt ? Date.parse(plan.flippedAt) - Date.parse(plan.frozenAt) : null;
	return {
		from,
		to,
		bounds: MOVE_BOUNDS,
		moveLingerSeconds: Number(env.MOVE_LINGER_SECONDS),
		steps: steps.length,
		calls: cost.calls,
		rowsRead: cost.rowsRead,
		rowsWritten: cost.rowsWritten,
		byDatabase: { control: byDatabase.DB, source: byDatabase[from as keyof typeof byDatabase], destination: byDatabase[to as keyof typeof byDatabase] },
		perStepMax: { calls: max("calls"), rowsRead: max("rowsRead"), rowsWritten: max("rowsWritten"), ms: max("ms") },
		totalMs,
		plan: { frozenAt: plan.frozenAt ?? null, flippedAt: plan.flippedAt ?? null, frozenToFlippedMs, registrationsAffected: job.registrationsAffected },
		localLockRetries,
		startedAtMs: started,
		endedAtMs: started + totalMs,
	};
}

/** What local D1 answers when another workerd process holds the database file's lock. */
const LOCAL_LOCK = /SQLITE_BUSY|database is locked|session commit token/;

interface WriteRequest {
	appId: string;
	learnerId: string;
	tag: string;
}

/**
 * One write attempt as the service makes it (src/db/tags.ts addTags, with the write guard and wrangler.toml's
 * limits) on the shard the control database places the application on: "acknowledged", "refused" while the
 * application is frozen for a move (application_moving), or "busy" when the local database file was locked by the
 * other workerd process (a local artifact, retried). Any other failure is an error.
 */
async function write(env: ProbeEnv, request: WriteRequest) {
	let shard: string | undefined;
	try {
		const placement = await findPlacement(env.DB, request.appId);
		if (!placement) throw new Error("write: the application has no placement");
		shard = placement.shard;
		const missing = await addTags(shardDatabase(env, shard), LEARNER_TAGS, request.appId, [request.learnerId], [request.tag], LIMITS);
		if (missing.length > 0) throw new Error(`write: learner ${request.learnerId} not found on ${shard}`);
		return { outcome: "acknowledged", shard };
	} catch (error) {
		if (refusalOf(error) === "application_moving") return { outcome: "refused", shard };
		// Local D1 only: another workerd process (the move's) holds the database file's lock. Not a refusal.
		const message = error instanceof Error ? error.message : String(error);
		if (LOCAL_LOCK.test(message)) return { outcome: "busy", shard, message };
		throw error;
	}
}

/** After a move and its writes: the tags `prefix`* on each shard, and the application's registrations left on `from`. */
async function moveCheck(env: ProbeEnv, request: { appId: string; from: string; to: string; prefix: string }) {
	const count = async (shard: string, sql: string, ...params: unknown[]) =>
		(await shardDatabase(env, shard).prepare(sql).bind(request.appId, ...params).first<{ n: number }>())?.n ?? 0;
	const tags = "SELECT count(*) AS n FROM learner_tags WHERE app_id = ?1 AND tag LIKE ?2 || '%'";
	return {
		writesOnDestination: await count(request.to, tags, request.prefix),
		writesOnSource: await count(request.from, tags, request.prefix),
		registrationsOnSource: await count(request.from, "SELECT count(*) AS n FROM registrations WHERE app_id = ?1"),
	};
}

interface ErasuresRequest {
	/** A realm admin (seeded), who may request erasures. */
	requestedBy: string;
	/** Bulk: learners, and registrations per learner (each with a registration tag; two learner tags each). */
	bulkLearners: number;
	registrationsPerLearner: number;
	/** Realm-wide: the applications (one per shard) holding the learner, and its registrations in each. */
	realmRegistrations: number;
}

/** Seeds an application on `shard` whose `learners` learners (`prefix`-n) have `perLearner` registrations each. */
async function seedErasureApp(env: ProbeEnv, appId: string, shard: string, prefix: string, learners: number, perLearner: number) {
	const db = shardDatabase(env, shard);
	const now = new Date().toISOString();
	await insertApplication(env.DB, db, { id: appId, name: "Bench erasure", dataRegion: shard === "SHARD_EU_1" ? "eu" : "default", shard, createdAt: now, updatedAt: now, allowDelete: true });
	const learnersCte = "learners(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM learners WHERE i < ?2 - 1)";
	const eachCte = "each(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM each WHERE k < ?3 - 1)";
	const learner = "?4 || printf('%06d', i)";
	await db.batch([
		db
			.prepare(
				`INSERT INTO registrations (app_id, id, course_id, learner_id, learner_email, xapi_registration_id, tag_count, created_at, updated_at)
				 WITH RECURSIVE ${learnersCte}, ${eachCte}
				 SELECT ?1, ${learner} || '-' || k, 'course-' || k, ${learner}, 'l' || i || '@example.com', lower(hex(randomblob(16))), 1, ?5, ?5
				 FROM learners, each ORDER BY i, k`,
			)
			.bind(appId, learners, perLearner, prefix, new Date().toISOString()),
		db
			.prepare("INSERT INTO registration_tags (app_id, registration_id, tag) SELECT app_id, id, 'cohort' FROM registrations WHERE app_id = ?1")
			.bind(appId),
		db
			.prepare(
				`INSERT INTO learner_tags (app_id, learner_id, tag)
				 WITH RECURSIVE ${learnersCte} SELECT ?1, ${learner}, t.value FROM learners, json_each('["alpha","beta"]') t ORDER BY i, t.key`,
			)
			.bind(appId, learners, perLearner, prefix),
		db
			.prepare(`INSERT INTO learner_tag_counts (app_id, learner_id, tag_count) WITH RECURSIVE ${learnersCte} SELECT ?1, ${learner}, 2 FROM learners`)
			.bind(appId, learners, perLearner, prefix),
		db
			.prepare("UPDATE app_storage SET row_quota = ?2, stored_rows = (SELECT count(*) * 2 FROM registrations WHERE app_id = ?1) WHERE app_id = ?1")
			.bind(appId, LIMITS.rowQuota),
	]);
	return db;
}

/**
 * What bulk and realm-wide erasures cost (SPEC §9): a bulk erasure of `bulkLearners` learners × their registrations
 * in one application, and a realm-wide erasure of a learner held by an application on each shard, through the
 * service's own functions over metered bindings, the jobs run one chunk (or look) at a time as the consumer would.
 */
async function erasures(env: ProbeEnv, request: ErasuresRequest) {
	await upsertRealmUser(env.DB, { email: request.requestedBy, role: "admin" }, new Date().toISOString());
	const role = await getRealmUserRole(env.DB, request.requestedBy);
	const mayErase = role === "owner" || role === "admin";

	// Bulk.
	const bulkApp = `BULK${crypto.randomUUID().slice(0, 6).toUpperCase()}`;
	const bulkDb = await seedErasureApp(env, bulkApp, "SHARD_1", "bulk-learner-", request.bulkLearners, request.registrationsPerLearner);
	const ids = Array.from({ length: request.bulkLearners }, (_, i) => `bulk-learner-${String(i).padStart(6, "0")}`);
	const learners = await Promise.all(ids.map(async (learnerId) => ({ learnerId, learnerHash: await learnerHash(env, bulkApp, learnerId) })));
	const bulkJobId = newJobId(bulkApp);
	const started = performance.now();
	const accepted = await metered(bulkDb, (meter) =>
		acceptBulkErasure(
			meter,
			{ id: bulkJobId, appId: bulkApp, learners, requestedBy: request.requestedBy, createdAt: new Date().toISOString(), childIds: ids.map(() => newJobId(bulkApp)) },
			LIMITS,
			mayErase,
		),
	);
	if (accepted.value.outcome !== "accepted") throw new Error(`bulk: ${accepted.value.outcome}`);
	const run = await runChunkByChunk(bulkDb, { type: "deleteLearnersData", jobId: bulkJobId });
	const bulkMs = Math.round(performance.now() - started);
	const bulkJob = await getJobById(bulkDb, bulkJobId);
	const left = await bulkDb.prepare("SELECT count(*) AS n FROM registrations WHERE app_id = ?1").bind(bulkApp).first<{ n: number }>();
	if (bulkJob?.status !== "completed" || left?.n !== 0) throw new Error(`bulk: ${bulkJob?.status}, ${left?.n} registrations left`);

	// Realm-wide: one application per shard holding the learner, plus one that never did.
	const { meters, serviceEnv, snapshot, since } = await meteredEnv(env);
	const realmLearner = "realm-learner-000000";
	const holders: { appId: string; shard: string }[] = [];
	for (const [i, shard] of ["SHARD_1", "SHARD_2", "SHARD_EU_1"].entries()) {
		const appId = `REALM${i}${crypto.randomUUID().slice(0, 5).toUpperCase()}`;
		await seedErasureApp(env, appId, shard, "realm-learner-", 1, request.realmRegistrations);
		holders.push({ appId, shard });
	}
	const bystander = `REALMX${crypto.randomUUID().slice(0, 5).toUpperCase()}`;
	await seedErasureApp(env, bystander, "SHARD_2", "someone-else-", 1, 1);
	const realmStarted = performance.now();
	const before = snapshot();
	// As the route does: each shard asked which of its applications hold the learner, then an erasure per holder.
	const byShard = Map.groupBy([...holders, { appId: bystander, shard: "SHARD_2" }], (app) => app.shard);
	const found = (
		await Promise.all(
			[...byShard].map(([shard, apps]) =>
				applicationsHolding(meters[shard as "SHARD_1"], apps.map((app) => app.appId), realmLearner).then((appIds) => appIds.map((appId) => ({ appId, shard }))),
			),
		)
	).flat();
	if (found.length !== holders.length) throw new Error(`realm: ${found.length} holders found`);
	// As the route does: the realm job first, then each holder asked for its erasure (src/jobs/realm-erasure.ts).
	const realmJobId = crypto.randomUUID();
	await recordRealmErasure(meters.DB, {
		id: realmJobId,
		learnerId: realmLearner,
		learnerHash: await learnerHash(env, "", realmLearner),
		requestedBy: request.requestedBy,
		suppress: false,
		holders: found.map(({ appId }) => appId),
		createdAt: new Date().toISOString(),
	});
	const recorded = await getJobById(meters.DB, realmJobId);
	const lease = crypto.randomUUID();
	if (!recorded || !(await claimStep(meters.DB, recorded, lease, new Date().toISOString()))) throw new Error("realm: not recorded");
	const asked = await fanOut(serviceEnv, meters.DB, recorded, lease);
	if (asked === "wait") throw new Error("realm: an application could not take its erasure");
	const children = asked.map((child) => ({ ...child, shard: found.find((holder) => holder.appId === child.appId)?.shard ?? "" }));
	const accept = since(before);
	const childRuns: Awaited<ReturnType<typeof runChunkByChunk>>[] = [];
	for (const child of children) childRuns.push(await runChunkByChunk(shardDatabase(env, child.shard), { type: "deleteAllLearnerData", jobId: child.jobId }));
	const beforeLook = snapshot();
	const outcome = await runRealmErasure(serviceEnv, meters.DB, realmJobId);
	const look = since(beforeLook);
	const realmMs = Math.round(performance.now() - realmStarted);
	const realmJob = await getJobById(env.DB, realmJobId);
	if (outcome !== "done" || realmJob?.status !== "completed") throw new Error(`realm: ${realmJob?.status}`);
	const bystanderStorage = await env.SHARD_2.prepare("SELECT budget_spent AS n FROM app_storage WHERE app_id = ?1").bind(bystander).first<{ n: number }>();
	const sum = (key: "calls" | "rowsRead" | "rowsWritten") => childRuns.reduce((total, run_) => total + run_.total[key], 0);
	return {
		bulk: {
			learners: request.bulkLearners,
			registrations: request.bulkLearners * request.registrationsPerLearner,
			acceptance: accepted.cost,
			run,
			totalMs: bulkMs,
			job: { registrationsAffected: bulkJob.registrationsAffected, tagsRemoved: bulkJob.tagsRemoved },
		},
		realm: {
			applications: holders.length,
			shards: holders.map((holder) => holder.shard),
			registrationsPerApplication: request.realmRegistrations,
			acceptance: accept,
			children: { chunks: childRuns.reduce((total, run_) => total + run_.chunks, 0), calls: sum("calls"), rowsRead: sum("rowsRead"), rowsWritten: sum("rowsWritten") },
			look,
			totalMs: realmMs,
			job: { registrationsAffected: realmJob.registrationsAffected, tagsRemoved: realmJob.tagsRemoved },
			bystanderBudgetSpent: bystanderStorage?.n ?? null,
		},
	};
}

export default {
	async fetch(request, env) {
		const { pathname } = new URL(request.url);
		if (request.method !== "POST") return new Response(null, { status: 404 });
		try {
			if (pathname === "/hotpath") return Response.json(await hotPath(await request.json<HotPathRequest>()));
			if (pathname === "/write") return Response.json(await write(env, await request.json<WriteRequest>()));
			if (pathname === "/move-check") {
				return Response.json(await moveCheck(env, await request.json<{ appId: string; from: string; to: string; prefix: string }>()));
			}
			if (pathname === "/move-setup") return Response.json(await moveSetup(env, await request.json<MoveRequest>()));
			if (pathname === "/move") return Response.json(await move(env, await request.json<MoveRequest>()));
			if (pathname === "/operations") return Response.json(await operations(env, await request.json<OperationsRequest>()));
			if (pathname === "/erasures") return Response.json(await erasures(env, await request.json<ErasuresRequest>()));
			if (pathname !== "/scale") return new Response(null, { status: 404 });
			return Response.json(await scale(env, await request.json<ScaleRequest>()));
		} catch (error) {
			return Response.json({ error: error instanceof Error ? error.message : String(error) }, { status: 500 });
		}
	},
} satisfies ExportedHandler<ProbeEnv>;
