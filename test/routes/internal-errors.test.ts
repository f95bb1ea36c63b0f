import { afterEach, describe, expect, it, vi } from "vitest";
import { apiRequest, fetchWithBindings } from "../support/client";
import { d1Binding, everyD1Binding } from "../support/d1-bindings";
import { createApp, enrol, type TestApp, uniqueValue } from "../support/fixtures";

/**
 * The 500 path (SPEC §1, §5): a fault inside a handler answers 500 with `{ "message" }` quoting the request id
 * that X-Request-Id carries, and nothing else — no stack trace, no SQL, no learner id, email or tag — and is
 * logged as structured JSON with the request id and no personal data either.
 *
 * The seam is the D1 bindings: wrappers around the control database and every shard whose statements on the
 * learner tag table fail (credential lookups pass, so the request reaches its handler). The D1 error is not one
 * of D1's documented transient or overload errors, which may rightly answer 503 instead.
 */

interface Scene {
	app: TestApp;
	learnerId: string;
	email: string;
	tag: string;
}

async function scene(): Promise<Scene> {
	const app = await createApp();
	const learnerId = uniqueValue("fault-learner");
	const email = `${uniqueValue("fault")}@example.com`;
	const tag = uniqueValue("fault-tag");
	await enrol(app, { id: learnerId, email }, { learnerTags: [tag] });
	return { app, learnerId, email, tag };
}

interface Fault {
	name: string;
	error: (s: Scene) => Error;
	/** What the fault's log line (the one with the request id) names, so an operator can tell what failed. */
	logged?: string;
}

/** The errors a handler meets. */
const FAULTS: Fault[] = [
	{
		name: "a D1 error",
		error: () => new Error("D1_ERROR: no such table: learner_tags: SQLITE_ERROR"),
		logged: "D1_ERROR",
	},
	{
		// Errors of the service's own code may quote what they were working on, SQL and personal data included.
		name: "an Error quoting SQL with the learner's id and email",
		error: (s) => new Error(`SELECT t.tag FROM learner_tags t WHERE t.learner_id = '${s.learnerId}' AND t.email = '${s.email}'`),
	},
];

const EXECUTORS = new Set<PropertyKey>(["first", "all", "run", "raw"]);

/**
 * Every D1 binding (the control database and each shard), with statements matching `failing` rejecting with
 * `error()`, alone or in a batch, in a session or not; the rest run.
 */
function failingDatabases(failing: RegExp, error: () => Error): Record<string, D1Database> {
	const poisoned = new WeakSet<object>();
	const poison = (statement: D1PreparedStatement): D1PreparedStatement => {
		const proxy = new Proxy(statement, {
			get: (target, property) => {
				if (property === "bind") return (...values: unknown[]) => poison(target.bind(...values));
				if (EXECUTORS.has(property)) return () => Promise.reject(error());
				// D1's statement methods use internal state, so they run on the real statement.
				const value: unknown = Reflect.get(target, property, target);
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
		poisoned.add(proxy);
		return proxy;
	};
	const over = (db: D1Database | D1DatabaseSession) => ({
		prepare: (sql: string) => (failing.test(sql) ? poison(db.prepare(sql)) : db.prepare(sql)),
		batch: (statements: D1PreparedStatement[]) =>
			statements.some((statement) => poisoned.has(statement)) ? Promise.reject(error()) : db.batch(statements),
	});
	return everyD1Binding((database) => d1Binding(database, over));
}

const SQL = /\b(SELECT|INSERT|UPDATE|DELETE|FROM|WHERE)\b/i;
const STACK = /\n\s+at |\.ts:\d+|\.js:\d+/;

/** Sends the request with the failing DB, capturing the log lines it writes. */
async function failingRequest(request: Request, error: () => Error): Promise<{ response: Response; lines: string[] }> {
	const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
	const response = await fetchWithBindings(request, failingDatabases(/\blearner_tags\b/, error));
	const lines = log.mock.calls.map((args) => args.map(String).join(" "));
	return { response, lines };
}

/** Asserts the 500 answer and its log, as the contract has them. */
async function expectHiddenFault(s: Scene, fault: Fault, { response, lines }: { response: Response; lines: string[] }): Promise<void> {
	expect(response.status).toBe(500);
	const requestId = response.headers.get("X-Request-Id") ?? "";
	expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
	expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
	const text = await response.text();
	const body = JSON.parse(text) as Record<string, unknown>;
	expect(Object.keys(body)).toEqual(["message"]);
	expect(body.message).toEqual(expect.stringContaining(requestId));
	for (const secret of [s.learnerId, s.email, s.tag, "D1_ERROR", "SQLITE", "learner_tags"]) expect(text).not.toContain(secret);
	expect(text).not.toMatch(SQL);
	expect(text).not.toMatch(STACK);

	// Logged as structured JSON, at error level, with the request id.
	const withId = lines.filter((line) => {
		const entry = JSON.parse(line) as Record<string, unknown>;
		return entry.requestId === requestId && entry.level === "error";
	});
	expect(withId.length).toBeGreaterThan(0);
	if (fault.logged) expect(withId.join("\n")).toContain(fault.logged);
	for (const line of lines) {
		for (const secret of [s.learnerId, s.email, s.tag]) expect(line).not.toContain(secret);
		expect(line).not.toMatch(SQL);
		expect(line).not.toMatch(STACK);
	}
}

afterEach(() => {
	vi.restoreAllMocks();
});

describe("GET /learner/:learnerId/tags", () => {
	it.each(FAULTS)("answers 500 with only the request id, and logs it without personal data, on $name", async (fault) => {
		const s = await scene();
		const path = `/learner/${encodeURIComponent(s.learnerId)}/tags`;
		const result = await failingRequest(apiRequest("GET", path, { auth: s.app.auth }), () => fault.error(s));
		await expectHiddenFault(s, fault, result);
	});
});

describe("PUT /learner/:learnerId/tags", () => {
	it.each(FAULTS)("answers 500 with only the request id, and logs it without personal data, on $name", async (fault) => {
		const s = await scene();
		const path = `/learner/${encodeURIComponent(s.learnerId)}/tags`;
		const request = apiRequest("PUT", path, { auth: s.app.auth, body: { tags: [s.tag, uniqueValue("new-tag")] } });
		const result = await failingRequest(request, () => fault.error(s));
		await expectHiddenFault(s, fault, result);
	});
});
