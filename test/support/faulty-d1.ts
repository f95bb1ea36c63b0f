import { env } from "cloudflare:workers";
import { d1Binding, everyD1Binding } from "./d1-bindings";

/** One D1 round trip the Worker is about to make: the SQL of each statement it runs (a batch has several). */
export interface D1Call {
	sql: string[];
}

/**
 * What to do with a call: let it through (null), or fail it with `message` — before it reaches D1, or after
 * D1 has committed it (the reply is lost, as when the network drops).
 */
export type FaultDecision = null | { message: string; when: "before" | "after" };

const EXECUTORS = new Set<PropertyKey>(["first", "all", "run", "raw"]);

/**
 * A D1 binding over the test database whose calls pass through `decide` first: the seam for injecting D1's
 * documented errors into the Worker (replace env.DB with it through fetchWithBindings or the queue's env).
 * Works for calls on the binding itself and on its Sessions API sessions.
 */
export function faultyD1(decide: (call: D1Call) => FaultDecision, database: D1Database = env.DB): D1Database {
	const sqlOf = new WeakMap<object, { statement: D1PreparedStatement; sql: string }>();
	const run = async <T>(sql: string[], call: () => Promise<T>): Promise<T> => {
		const decision = decide({ sql });
		if (!decision) return call();
		if (decision.when === "after") await call();
		throw new Error(decision.message);
	};
	const wrap = (statement: D1PreparedStatement, sql: string): D1PreparedStatement => {
		const wrapped = new Proxy(statement, {
			get: (target, property) => {
				if (property === "bind") return (...values: unknown[]) => wrap(target.bind(...values), sql);
				if (EXECUTORS.has(property)) {
					const method = Reflect.get(target, property, target) as (...args: unknown[]) => Promise<unknown>;
					return (...args: unknown[]) => run([sql], () => method.apply(target, args));
				}
				// D1's statement methods use internal state, so they run on the real statement.
				const value: unknown = Reflect.get(target, property, target);
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
		sqlOf.set(wrapped, { statement, sql });
		return wrapped;
	};
	const over = (db: D1Database | D1DatabaseSession) => ({
		prepare: (sql: string) => wrap(db.prepare(sql), sql),
		batch: <T>(statements: D1PreparedStatement[]) => {
			const entries = statements.map((statement) => sqlOf.get(statement) ?? { statement, sql: "" });
			return run(
				entries.map((entry) => entry.sql),
				() => db.batch<T>(entries.map((entry) => entry.statement)),
			);
		},
	});
	return d1Binding(database, over);
}

/**
 * Every D1 binding of the Worker (the control database and each shard) behind the same `decide`: the bindings to
 * hand fetchWithBindings or the queue's env so that any of the Worker's D1 calls can fail.
 */
export function faultyDatabases(decide: (call: D1Call) => FaultDecision): Record<string, D1Database> {
	return everyD1Binding((database) => faultyD1(decide, database));
}

/** D1's documented messages (developers.cloudflare.com/d1/observability/debug-d1), as the binding throws them. */
export const D1_ERRORS = {
	networkLost: "D1_ERROR: Network connection lost.",
	reset: "D1_ERROR: Internal error in D1 DB storage caused object to be reset.",
	overloaded: "D1_ERROR: D1 DB is overloaded. Too many requests queued.",
	queuedTooLong: "D1_ERROR: D1 DB is overloaded. Requests queued for too long.",
} as const;

/** A decision failing the first `count` calls that match, then letting every call through. */
export function failFirst(count: number, message: string, matches: (call: D1Call) => boolean = () => true) {
	let left = count;
	return (call: D1Call): FaultDecision => {
		if (left <= 0 || !matches(call)) return null;
		left--;
		return { message, when: "before" };
	};
}
