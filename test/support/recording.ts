import { env } from "cloudflare:workers";
import type { Db } from "../../src/db/types";
import { d1Binding, everyD1Binding } from "./d1-bindings";
import { apiRequest, fetchWithBindings } from "./client";

/** One statement D1 ran: its SQL, the values bound to it, and D1's meta for it. */
export interface RecordedStatement {
	sql: string;
	params: unknown[];
	meta?: D1Meta;
}

/** What a RecordingDb saw; shared by the recorders of one request's sessions. */
interface Log {
	statements: RecordedStatement[];
	/** D1 round trips: one per batch() and one per statement run on its own. */
	calls: number;
}

type StatementMethod = "first" | "all" | "run" | "raw";
const EXECUTORS = new Set<PropertyKey>(["first", "all", "run", "raw"]);

/**
 * A Db that passes everything to a real one and records every statement it runs and every D1 call it makes
 * (a db.batch() is one call, whatever it holds). Statements are wrapped in proxies that remember their SQL
 * and bound values; batch() hands D1 the original statements.
 */
export class RecordingDb implements Db {
	readonly #originals = new WeakMap<D1PreparedStatement, Omit<RecordedStatement, "meta"> & { statement: D1PreparedStatement }>();

	constructor(
		private readonly db: Db = env.DB,
		private readonly log: Log = { statements: [], calls: 0 },
	) {}

	get statements(): readonly RecordedStatement[] {
		return this.log.statements;
	}

	get calls(): number {
		return this.log.calls;
	}

	/** Forgets what was recorded so far. */
	reset(): void {
		this.log.statements.length = 0;
		this.log.calls = 0;
	}

	/** A recorder over another Db (a D1 session) that writes into this one's log. */
	over(db: Db): RecordingDb {
		return new RecordingDb(db, this.log);
	}

	prepare(sql: string): D1PreparedStatement {
		return this.#wrap(sql, [], this.db.prepare(sql));
	}

	async batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
		this.log.calls++;
		const entries = statements.map((statement) => {
			const original = this.#originals.get(statement);
			const entry: RecordedStatement = {
				sql: original?.sql ?? "(not prepared through this recorder)",
				params: original?.params ?? [],
			};
			this.log.statements.push(entry);
			return { entry, statement: original?.statement ?? statement };
		});
		const results = await this.db.batch<T>(entries.map(({ statement }) => statement));
		results.forEach((result, index) => {
			const recorded = entries[index];
			if (recorded) recorded.entry.meta = result.meta;
		});
		return results;
	}

	#wrap(sql: string, params: unknown[], statement: D1PreparedStatement): D1PreparedStatement {
		const wrapped: D1PreparedStatement = new Proxy(statement, {
			get: (target, property) => {
				if (property === "bind") {
					return (...values: unknown[]) => this.#wrap(sql, values, target.bind(...values));
				}
				if (EXECUTORS.has(property)) {
					return async (...args: unknown[]) => {
						this.log.calls++;
						const entry: RecordedStatement = { sql, params };
						this.log.statements.push(entry);
						const method = target[property as StatementMethod] as (...a: unknown[]) => Promise<unknown>;
						const result = await method.apply(target, args);
						if (property === "all" || property === "run") entry.meta = (result as D1Result).meta;
						return result;
					};
				}
				// D1's statement methods use internal state, so they run on the real statement.
				const value: unknown = Reflect.get(target, property, target);
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
		this.#originals.set(wrapped, { statement, sql, params });
		return wrapped;
	}
}

/**
 * Every D1 binding of the Worker (the control database and each shard) recording into `recorder`, sessions
 * included, for fetchWithBindings or the queue's env.
 */
export function recordingDatabases(recorder: RecordingDb): Record<string, D1Database> {
	// Outside a session (credential lookups, which must read the primary) the binding records too.
	return everyD1Binding((database) => d1Binding(database, (db) => recorder.over(db)));
}

/**
 * Calls the Worker with D1 bindings that record into `recorder`, so a test sees every statement a request runs
 * on any database (auth lookups included when the credential cache is cold).
 */
export async function callRecorded(
	recorder: RecordingDb,
	method: string,
	path: string,
	options: { auth: string; body?: unknown },
): Promise<Response> {
	return fetchWithBindings(apiRequest(method, path, options), recordingDatabases(recorder));
}
