import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { JobMessageSchema } from "../../src/jobs/contract";
import { ApplicationRequestSchema, CredentialRequestSchema } from "../../src/schemas/management";
import { EmailSchema, LearnerSchema } from "../../src/schemas/learner";
import { IdSchema, TagSchema } from "../../src/schemas/text";
import { LIMITS } from "../../src/limits";
import { AUDIT_ACTIONS } from "../../src/db/audit";
import { BASE, call, fetchWithBindings, liftRateLimit } from "../support/client";
import { jobIdOf } from "../support/expect";
import { createApp, enrol, MANAGEMENT, realmUser, tagsOf, type TestApp, uniqueValue } from "../support/fixtures";
import { loadDocument, type Operation } from "../support/operations";
import { acceptExport, callCapturing, drain, type SentMessage, sentDuring } from "../support/queue";
import { SHARDS, seedRegistrations, shardOf } from "../support/seed";
import {
	type Encoding,
	type FuzzBody,
	type Pools,
	bodies,
	bookmarks,
	pathValue,
	queries,
	strayAuthorizations,
	writeComponent,
} from "./arbitraries";

/**
 * Property-based fuzzing of every operation in the OpenAPI document, the privacy operations (exports, retention, the
 * audit trail) with pools that get some of their input past validation. Invariants: never a 5xx; every 4xx is
 * exactly `{ "message": string }` (and conforms to the document, as every response through test/conformance
 * does); what a write accepted reads back exactly; once the run's jobs have drained, nothing stored breaks a
 * limit of SPEC §3, no value that only rejected requests carried was stored, and the control learners are as
 * they were.
 */

/** Runs per operation: about 8000 requests in all, inside a minute on a busy two-core machine. */
const RUNS_PER_OPERATION = 250;

const { document, operations } = await loadDocument();
const components = ((document.components as Record<string, unknown>).schemas ?? {}) as Record<string, unknown>;

/** What the fuzzed requests sent to the queue: kept from it, and drained at the end. */
const jobMessages: SentMessage[] = [];

interface Setting {
	app: TestApp;
	/** The shard holding the fuzzed application's data (applications, credentials and realm users are on env.DB). */
	appShard: D1Database;
	pools: Pools;
	control: { learnerId: string; registrationId: string };
	controlApp: TestApp;
	/** A learner only the export operations name (the fuzzed erasures leave the others being erased). */
	exportLearnerId: string;
	/** An application with a retention policy, which only the retention operations name. */
	retentionAppId: string;
}

let setting: Setting;
const tally = { inputs: 0, fiveXX: 0, invalidAccepted: 0 };
/** Answers by operation: how many were accepted (2xx, 3xx) and how many refused (4xx). */
const outcomes = new Map<string, { accepted: number; refused: number }>();

/**
 * The privacy operations (SPEC §12): each must get random params, query and body that reach past its validation
 * (accepted now and then) as well as ones it refuses, and never answer 5xx.
 */
const PRIVACY_OPERATIONS = [
	"exportLearnerData",
	"exportLearnerDataEverywhere",
	"getJobExport",
	"setRetentionPolicy",
	"getRetentionPolicy",
	"deleteRetentionPolicy",
	"getAuditTrail",
	"getAuditHead",
];
/** Strings carried by requests that were accepted (2xx) and by requests that were refused (4xx). */
const accepted = new Set<string>();
const refused = new Set<string>();
let storedBefore = new Set<string>();
let controlBefore: unknown;
const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();

/** A request as the fuzz builds it, its job messages kept in jobMessages. */
async function send(method: string, path: string, headers: Record<string, string>, body?: string | Uint8Array): Promise<Response> {
	const { result, sent } = await sentDuring(() => fetchWithBindings(new Request(`${BASE}${path}`, { method, headers, body }), {}));
	jobMessages.push(...sent);
	return result;
}

function authorizationFor(operation: Operation, app: TestApp): Record<string, string> {
	if (operation.access === "public") return {};
	return { Authorization: operation.access === "management" ? MANAGEMENT : app.auth };
}

/** Every string in a JSON value, at any depth (iteratively: bodies may nest 100 000 levels). */
function stringsIn(value: unknown): string[] {
	const found: string[] = [];
	const stack = [value];
	while (stack.length > 0) {
		const current = stack.pop();
		if (typeof current === "string") found.push(current);
		else if (Array.isArray(current)) stack.push(...current);
		else if (current !== null && typeof current === "object") {
			for (const [key, field] of Object.entries(current)) stack.push(key, field);
		}
	}
	return found;
}

function bodyValue(body: FuzzBody | undefined): unknown {
	if (!body) return undefined;
	if (body.value !== undefined) return body.value;
	if (typeof body.text !== "string") return undefined;
	try {
		return JSON.parse(body.text);
	} catch {
		return undefined;
	}
}

/** The value as the server decodes it from the URL. */
function decoded(value: string, encoding: Encoding): string {
	if (encoding === "encoded") return value;
	try {
		return decodeURIComponent(value);
	} catch {
		return value;
	}
}

interface FuzzInput {
	params: Record<string, string>;
	encoding: Encoding;
	query: [string, string][];
	body: FuzzBody | undefined;
	bookmark: string | null;
	/** Now and then an Authorization header that is no credential: a 401 on every non-public operation. */
	strayAuthorization: string | null;
}

function inputs(operation: Operation, pools: Pools): fc.Arbitrary<FuzzInput> {
	// A realm-wide erasure erases the learner in every application, the control application included, by design:
	// it is fuzzed with the fuzzed application's learners that the control application does not share.
	if (operation.operationId === "deleteLearnerDataEverywhere") pools = { ...pools, learnerIds: pools.learnerIds.slice(1) };
	// The fuzz of the erasure routes leaves the pool's learners with erasures pending (drained at the end), which
	// every export of them answers with 409: exports name, twice as often as all the others, a learner no other
	// operation names.
	if (operation.operationId === "exportLearnerData" || operation.operationId === "exportLearnerDataEverywhere") {
		pools = { ...pools, learnerIds: [...pools.learnerIds, ...pools.learnerIds.flatMap(() => [setting.exportLearnerId, setting.exportLearnerId])] };
	}
	// The fuzz of deleteApplication may delete any application the pool names: the retention operations name, as often
	// as one of those, one that has a policy and that no other operation names.
	if (/RetentionPolicy$/.test(operation.operationId)) pools = { ...pools, doomedAppIds: pools.doomedAppIds.slice(0, 1), spareAppId: setting.retentionAppId };
	return fc.record({
		params: fc.record(Object.fromEntries(operation.pathParams.map((name) => [name, pathValue(name, pools)]))),
		encoding: fc.constantFrom<Encoding>("encoded", "encoded", "encoded", "raw"),
		query: queries(operation, pools),
		body: bodies(operation, components, pools),
		bookmark: bookmarks,
		strayAuthorization: fc.oneof(
			{ weight: 15, arbitrary: fc.constant(null) },
			{ weight: 1, arbitrary: strayAuthorizations },
		),
	});
}

const summary = (operation: Operation, path: string, input: FuzzInput) =>
	`${operation.method} ${path} body=${typeof input.body?.text === "string" ? input.body.text.slice(0, 200) : "(bytes)"} type=${input.body?.contentType}`;

/**
 * Whether a URL can name the owner at all: a valid id, well-formed Unicode, and no dot segment (a URL parser
 * drops "." and ".." from the path).
 */
const nameable = (id: string) => id.isWellFormed() && id !== "." && id !== ".." && IdSchema("id").safeParse(id).success;

const asRecord = (value: unknown): Record<string, unknown> =>
	value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
const stringList = (value: unknown): string[] => (Array.isArray(value) ? value.filter((entry) => typeof entry === "string") : []);

/** A tag owner a write names, and the tags the write adds to it or removes from it. */
interface TagWrite {
	kind: "learner" | "registrations";
	id: string;
	add: string[];
	remove: string[];
}

/** The tag owners a write names (the first three distinct ids of a batch), with what it asks of each. */
function tagWrites(operationId: string, params: Record<string, string>, value: unknown): TagWrite[] {
	const body = asRecord(value);
	const tags = stringList(body.tags);
	const one = (kind: TagWrite["kind"], id: string | undefined, change: Partial<TagWrite>): TagWrite[] => [
		{ kind, id: id ?? "", add: [], remove: [], ...change },
	];
	switch (operationId) {
		case "putLearnerTags":
			return one("learner", params.learnerId, { add: tags });
		case "putRegistrationTags":
			return one("registrations", params.registrationId, { add: tags });
		case "deleteLearnerTags":
			return one("learner", params.learnerId, { remove: tags });
		case "deleteRegistrationTags":
			return one("registrations", params.registrationId, { remove: tags });
		case "putLearnerTagsBatch":
		case "putRegistrationTagsBatch": {
			const kind = operationId === "putLearnerTagsBatch" ? "learner" : "registrations";
			return [...new Set(stringList(body.ids))].slice(0, 3).flatMap((id) => one(kind, id, { add: tags }));
		}
		case "createRegistration": {
			// A body whose ids are not strings is refused; its writes are never read back.
			const learnerId = asRecord(body.learner).id;
			return [
				...one("learner", typeof learnerId === "string" ? learnerId : "", { add: stringList(body.learnerTags) }),
				...one("registrations", typeof body.registrationId === "string" ? body.registrationId : "", {
					add: stringList(body.registrationTags),
				}),
			];
		}
		default:
			return [];
	}
}

/** The owner's tag count as stored beside its tags (0 when it has no count yet). */
async function storedTagCount(kind: TagWrite["kind"], id: string): Promise<number> {
	const sql =
		kind === "learner"
			? "SELECT tag_count AS n FROM learner_tag_counts WHERE app_id = ?1 AND learner_id = ?2"
			: "SELECT tag_count AS n FROM registrations WHERE app_id = ?1 AND id = ?2";
	return (await setting.appShard.prepare(sql).bind(setting.app.appId, id).first<{ n: number }>())?.n ?? 0;
}

/**
 * The owner's tags after an accepted write, from its tags before (null: it did not exist) — SPEC §3: adding is
 * a set union keeping the order first applied, removing ignores tags it lacks, and tags are exact strings, so
 * a repeat is stored once while a near-duplicate (other case, other normalization form) is a tag of its own.
 */
function expectedTags(before: string[] | null, write: TagWrite): string[] {
	const removed = new Set(write.remove);
	return [...new Set([...(before ?? []), ...write.add])].filter((tag) => !removed.has(tag));
}

/** After an accepted write: what it wrote reads back exactly. Returns what does not. */
async function readBack(
	operation: Operation,
	value: unknown,
	writes: TagWrite[],
	before: (string[] | null)[],
): Promise<string | null> {
	for (const [index, write] of writes.entries()) {
		if (!write.id.isWellFormed()) continue;
		const expected = expectedTags(before[index] ?? null, write);
		const stored = await tagsOf(setting.app, write.kind, write.id);
		if (JSON.stringify(stored) !== JSON.stringify(expected)) {
			return `${write.kind} ${JSON.stringify(write.id)} has tags ${JSON.stringify(stored)}, not ${JSON.stringify(expected)}`;
		}
		const counted = await storedTagCount(write.kind, write.id);
		if (counted !== expected.length) return `${write.kind} ${JSON.stringify(write.id)} counts ${counted} tags for ${expected.length}`;
	}
	if (operation.operationId !== "createRegistration") return null;
	const body = asRecord(value);
	const id = String(body.registrationId);
	if (!id.isWellFormed()) return `registration id ${JSON.stringify(id)} was accepted, but no URL can name it`;
	const response = await send("GET", `/registrations/${encodeURIComponent(id)}`, { Authorization: setting.app.auth });
	if (response.status !== 200) return `the created registration answers ${response.status}`;
	const stored = (await response.json()) as { course: { id: string }; learner: Record<string, unknown> };
	const learner = asRecord(body.learner);
	const problems = [
		stored.course.id !== body.courseId && "courseId",
		stored.learner.id !== learner.id && "learner.id",
		...(["email", "firstName", "lastName"] as const).map(
			(field) => typeof learner[field] === "string" && stored.learner[field] !== learner[field] && `learner.${field}`,
		),
	].filter(Boolean);
	return problems.length > 0 ? `created registration differs in ${problems.join(", ")}` : null;
}

/** Whether bytes are well-formed UTF-8. */
function isUtf8(bytes: Uint8Array): boolean {
	try {
		new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
		return true;
	} catch {
		return false;
	}
}

/** One fuzzed request and its invariants; throws (so fast-check shrinks it) when one breaks. */
async function exercise(operation: Operation, input: FuzzInput): Promise<void> {
	const params = Object.fromEntries(
		Object.entries(input.params).map(([name, value]) => [name, value.isWellFormed() ? value : value.toWellFormed()]),
	);
	let path = operation.template;
	for (const [name, value] of Object.entries(params)) path = path.replace(`{${name}}`, writeComponent(value, input.encoding) ?? "");
	const query = input.query
		.map(([key, value]) => [writeComponent(key.toWellFormed(), input.encoding), writeComponent(value.toWellFormed(), input.encoding)])
		.map(([key, value]) => `${key}=${value}`)
		.join("&");
	const headers: Record<string, string> = { ...authorizationFor(operation, setting.app) };
	if (input.strayAuthorization !== null) headers.Authorization = input.strayAuthorization;
	if (input.body?.contentType) headers["Content-Type"] = input.body.contentType;
	if (input.bookmark) headers["X-D1-Bookmark"] = input.bookmark;
	const url = query ? `${path}?${query}` : path;
	const value = bodyValue(input.body);
	// The tags of the owners a write names, as they were before it (read through the API). Only where the test
	// knows what the server reads: the path as sent, and a body that is JSON text (not raw bytes).
	const writes = input.encoding === "encoded" && value !== undefined ? tagWrites(operation.operationId, params, value) : [];
	const tagsBefore = await Promise.all(writes.map(async (write) => (nameable(write.id) ? tagsOf(setting.app, write.kind, write.id) : null)));
	tally.inputs++;
	const response = await send(operation.method, url, headers, input.body?.text);
	const text = operation.method === "HEAD" || response.status < 400 ? "" : await response.text();

	const outcome = outcomes.get(operation.operationId) ?? { accepted: 0, refused: 0 };
	outcomes.set(operation.operationId, outcome);
	if (response.status < 400) outcome.accepted++;
	else if (response.status < 500) outcome.refused++;
	if (response.status >= 500) {
		tally.fiveXX++;
		throw new Error(`${response.status} ${text} for ${summary(operation, url, input)}`);
	}
	const carried = [
		...Object.values(params).map((param) => decoded(param, input.encoding)),
		...input.query.map(([, entry]) => decoded(entry, input.encoding)),
		...stringsIn(value),
	];
	if (input.strayAuthorization !== null && operation.access !== "public") {
		// Only what the app answers before any route runs may come first: a bad bookmark, an unknown path or
		// method, a body of the wrong size or type, or a JSON body whose bytes are not UTF-8.
		const notUtf8 = input.body !== undefined && typeof input.body.text !== "string" && !isUtf8(input.body.text);
		const before =
			((input.bookmark !== null || notUtf8) && response.status === 400) || [404, 405, 413, 415].includes(response.status);
		// A HEAD answer has no body to say whether a route ran: the same request as GET says it.
		const answer = operation.method === "HEAD" && response.status === 404 ? await (await send("GET", url, headers)).text() : text;
		const unrouted = response.status !== 404 || answer.includes("No route matches");
		expect({ status: response.status, unrouted }, `${input.strayAuthorization} on ${summary(operation, url, input)}`).toEqual({
			status: before ? response.status : 401,
			unrouted: true,
		});
	}
	if (response.status >= 400) {
		for (const entry of carried) refused.add(entry);
		if (operation.method !== "HEAD") {
			expect(response.headers.get("Content-Type"), summary(operation, url, input)).toMatch(/^application\/json/);
			const message = JSON.parse(text) as Record<string, unknown>;
			expect(Object.keys(message), summary(operation, url, input)).toEqual(["message"]);
			expect(typeof message.message).toBe("string");
			expect(message.message).not.toBe("");
			expect(message.message).not.toMatch(/D1_|SQLITE|\n\s+at /);
		}
		return;
	}
	for (const entry of carried) accepted.add(entry);
	if (input.encoding === "encoded" && operation.method !== "GET") {
		const problem = await readBack(operation, value, writes, tagsBefore);
		if (problem) {
			tally.invalidAccepted++;
			throw new Error(`${problem} after ${summary(operation, url, input)}`);
		}
	}
}

/** Every string a fuzzed request could have written, anywhere it could be stored. */
async function storedStrings(appId: string): Promise<Set<string>> {
	// D1 allows only a few terms in a compound SELECT: one statement per table. The application's rows are on
	// its shard; applications, credentials and realm users on the control database.
	const onShard = [
		"SELECT id, course_id, learner_id, learner_email, learner_first_name, learner_last_name FROM registrations WHERE app_id = ?1",
		"SELECT learner_id, tag FROM learner_tags WHERE app_id = ?1",
		"SELECT learner_id FROM learner_tag_counts WHERE app_id = ?1",
		"SELECT registration_id, tag FROM registration_tags WHERE app_id = ?1",
		// An export's payload is its own bookkeeping (region, phase, parts), no value a client sent.
		"SELECT learner_id, requested_by, CASE WHEN type <> 'exportLearnerData' THEN payload END FROM jobs WHERE app_id = ?1",
		"SELECT j.value FROM jobs, json_each(jobs.payload) j WHERE jobs.app_id = ?1 AND json_valid(jobs.payload) AND jobs.type <> 'exportLearnerData'",
	];
	const onControl = [
		"SELECT name FROM applications WHERE ?1 IS NOT NULL",
		"SELECT name FROM credentials WHERE ?1 IS NOT NULL",
		"SELECT email FROM realm_users WHERE ?1 IS NOT NULL",
	];
	const shard = await shardOf(appId);
	const results = [
		...(await shard.batch(onShard.map((sql) => shard.prepare(sql).bind(appId)))),
		...(await env.DB.batch(onControl.map((sql) => env.DB.prepare(sql).bind(appId)))),
	];
	const values = results.flatMap((result) => (result.results as Record<string, unknown>[]).flatMap((row) => Object.values(row)));
	return new Set(values.filter((value): value is string => typeof value === "string"));
}

/** Rows that break a limit of SPEC §3 or the bookkeeping around them. */
async function invalidRows(appId: string): Promise<string[]> {
	const db = await shardOf(appId);
	const control = env.DB;
	const [registrations, learnerTags, counts, registrationTags, jobs] = await db.batch([
		db.prepare(
			`SELECT r.id, r.course_id, r.learner_id, r.learner_email, r.learner_first_name, r.learner_last_name, r.tag_count,
			   (SELECT count(*) FROM registration_tags t WHERE t.app_id = r.app_id AND t.registration_id = r.id) AS actual
			 FROM registrations r WHERE r.app_id = ?1`,
		).bind(appId),
		db.prepare(
			`SELECT t.learner_id, t.tag, EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = t.app_id AND r.learner_id = t.learner_id) AS owned
			 FROM learner_tags t WHERE t.app_id = ?1`,
		).bind(appId),
		db.prepare(
			`SELECT c.learner_id, c.tag_count, (SELECT count(*) FROM learner_tags t WHERE t.app_id = c.app_id AND t.learner_id = c.learner_id) AS actual,
			   EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = c.app_id AND r.learner_id = c.learner_id) AS owned
			 FROM learner_tag_counts c WHERE c.app_id = ?1`,
		).bind(appId),
		db.prepare(
			`SELECT t.registration_id, t.tag, EXISTS (SELECT 1 FROM registrations r WHERE r.app_id = t.app_id AND r.id = t.registration_id) AS owned
			 FROM registration_tags t WHERE t.app_id = ?1`,
		).bind(appId),
		db.prepare("SELECT id, type, status, learner_id, payload FROM jobs WHERE app_id = ?1").bind(appId),
	]);
	const [applications, credentials, users] = await control.batch([
		control.prepare("SELECT name FROM applications"),
		control.prepare("SELECT name FROM credentials"),
		control.prepare("SELECT email FROM realm_users"),
	]);
	type Rows = Record<string, unknown>[];
	const problems: string[] = [];
	const check = (ok: boolean, what: string) => {
		if (!ok) problems.push(what);
	};
	for (const row of (registrations?.results ?? []) as Rows) {
		const where = `registration ${JSON.stringify(row.id)}`;
		check(IdSchema("id").safeParse(row.id).success && IdSchema("courseId").safeParse(row.course_id).success, `${where}: id or courseId`);
		const learner = { id: row.learner_id, email: row.learner_email, firstName: row.learner_first_name, lastName: row.learner_last_name };
		check(LearnerSchema.safeParse(learner).success, `${where}: learner ${JSON.stringify(learner)}`);
		check(row.tag_count === row.actual && Number(row.actual) <= LIMITS.tagsPerRegistration, `${where}: tag count ${row.tag_count}/${row.actual}`);
	}
	for (const row of (learnerTags?.results ?? []) as Rows) {
		check(TagSchema.safeParse(row.tag).success, `learner tag ${JSON.stringify(row.tag)}`);
		check(row.owned === 1, `learner tag ${JSON.stringify(row.tag)} of a learner that does not exist`);
	}
	for (const row of (counts?.results ?? []) as Rows) {
		const where = `learner ${JSON.stringify(row.learner_id)}`;
		check(row.tag_count === row.actual && Number(row.actual) <= LIMITS.tagsPerLearner, `${where}: tag count ${row.tag_count}/${row.actual}`);
		check(row.owned === 1, `${where}: tag count of a learner that does not exist`);
	}
	for (const row of (registrationTags?.results ?? []) as Rows) {
		check(TagSchema.safeParse(row.tag).success, `registration tag ${JSON.stringify(row.tag)}`);
		check(row.owned === 1, `registration tag ${JSON.stringify(row.tag)} of a registration that does not exist`);
	}
	for (const row of (jobs?.results ?? []) as Rows) {
		const finished = row.status === "completed" || row.status === "failed";
		// An erasure keeps whether it suppressed its learner (its receipt states it), an export where its objects are:
		// no learner data.
		const bookkeeping = row.type === "exportLearnerData" || row.payload === '{"suppress":true}';
		const payload = row.payload === null || bookkeeping ? null : row.payload;
		check(finished && row.learner_id === null && payload === null, `job ${String(row.id)} ${String(row.status)} still holds learner data`);
	}
	for (const row of (applications?.results ?? []) as Rows) check(ApplicationRequestSchema.safeParse(row).success, `application name ${JSON.stringify(row.name)}`);
	for (const row of (credentials?.results ?? []) as Rows) check(CredentialRequestSchema.safeParse(row).success, `credential name ${JSON.stringify(row.name)}`);
	for (const row of (users?.results ?? []) as Rows) check(EmailSchema.safeParse(row.email).success, `realm user ${JSON.stringify(row.email)}`);
	return problems;
}

/** What the control learners look like through the API and in D1. */
async function controlState(): Promise<unknown> {
	const { app, control, controlApp, pools } = setting;
	const read = async (auth: string, path: string) => {
		const response = await call("GET", path, { auth });
		return { status: response.status, body: await response.json() };
	};
	// Each application's rows from its shard (the two may share one, or not).
	const ownRows = await (await shardOf(app.appId)).prepare("SELECT * FROM registrations WHERE app_id = ?1 AND learner_id = ?2 ORDER BY pk")
		.bind(app.appId, control.learnerId)
		.all();
	const otherRows = await (await shardOf(controlApp.appId)).prepare("SELECT * FROM registrations WHERE app_id = ?1 ORDER BY pk")
		.bind(controlApp.appId)
		.all();
	return {
		tags: await read(app.auth, `/learner/${encodeURIComponent(control.learnerId)}/tags`),
		registration: await read(app.auth, `/registrations/${encodeURIComponent(control.registrationId)}`),
		otherAppTags: await read(controlApp.auth, `/learner/${encodeURIComponent(pools.learnerIds[0] ?? "")}/tags`),
		rows: [...ownRows.results, ...otherRows.results],
	};
}

beforeAll(async () => {
	// The fuzz is one client's burst: thousands of requests a minute from one application.
	liftRateLimit();
	const app = await createApp("fuzzed");
	const learnerIds = ["fuzz-learner-1", "fuzz-learner-2", "fuzz learner 3 é🎓"];
	const registrationIds: string[] = [];
	for (const learnerId of learnerIds) {
		registrationIds.push(await enrol(app, { id: learnerId, email: "pool@example.com" }, { learnerTags: ["pool"], registrationTags: ["pool"] }));
	}
	registrationIds.push(await enrol(app, { id: learnerIds[0] ?? "" }));
	const update = await callCapturing("POST", `/learner/${learnerIds[1]}/updateInfo`, { auth: app.auth, body: { id: learnerIds[1], firstName: "Pool" } });
	jobMessages.push(...update.sent);
	// Past one page of GET /registrations and of GET /learners (a learner each), so that there are `more` tokens
	// of both listings to replay, on either.
	await seedRegistrations(app.appId, uniqueValue("page"), Math.max(LIMITS.registrationsPerPage, LIMITS.learnersPerPage) + 1);
	const pagingTokens: string[] = [];
	for (const listing of ["/registrations", "/learners"]) {
		const page = await call("GET", listing, { auth: app.auth });
		const { more } = (await page.json()) as { more?: string };
		if (more) pagingTokens.push(more);
	}

	const control = { learnerId: uniqueValue("control-learner") };
	const controlRegistration = await enrol(
		app,
		{ id: control.learnerId, email: "control@example.com", firstName: "Control" },
		{ learnerTags: ["control-a", "control-b"], registrationTags: ["control-r"] },
	);
	// Another application with a learner of the same id as a fuzzed one: it must not notice the fuzz.
	const controlApp = await createApp("control");
	await enrol(controlApp, { id: learnerIds[0] ?? "", email: "other-app@example.com" }, { learnerTags: ["other-app"] });

	const spare = await createApp("spare");
	const doomed = [await createApp("doomed-1"), await createApp("doomed-2")];

	// Privacy (SPEC §12): a completed export and a realm-wide one to fetch, a retention policy to read and delete, and
	// more than a page of audit entries, so that there is an audit `more` token to replay on every listing.
	const adminEmail = await realmUser("admin");
	const exportLearnerId = "fuzz-export-learner";
	await enrol(app, { id: exportLearnerId, email: "exported@example.com" }, { learnerTags: ["pool"] });
	// Both exports are of that learner: an erasure the fuzz accepts withdraws its learner's documents (404).
	const exported = await acceptExport(app, exportLearnerId, adminEmail);
	await drain(exported);
	const realmExport = await sentDuring(() =>
		call("POST", `/appManagement/learners/${encodeURIComponent(exportLearnerId)}/export?userEmail=${encodeURIComponent(adminEmail)}`, { auth: MANAGEMENT }),
	);
	expect(realmExport.result.status).toBe(204);
	const realmExportId = jobIdOf(realmExport.result);
	for (const message of realmExport.sent) await drain(JobMessageSchema.parse(message.body));
	await drain({ type: "exportLearnerData", jobId: realmExportId });
	const retentionApp = await createApp("retention");
	expect((await call("PUT", `/appManagement/applications/${retentionApp.appId}/retention`, { auth: MANAGEMENT, body: { learnerInactiveDays: 3650 } })).status).toBe(200);
	const auditor = `${uniqueValue("auditor")}@example.com`;
	// A page of the trail is 100 entries.
	for (let i = 0; i <= 100; i++) {
		expect((await call("PUT", `/appManagement/users/${encodeURIComponent(auditor)}`, { auth: MANAGEMENT, body: { role: "member" } })).status).toBe(204);
	}
	const auditPage = (await (await call("GET", "/appManagement/audit", { auth: MANAGEMENT })).json()) as { more?: string };
	expect(auditPage.more).toBeDefined();
	if (auditPage.more) pagingTokens.push(auditPage.more);

	setting = {
		app,
		appShard: await shardOf(app.appId),
		control: { learnerId: control.learnerId, registrationId: controlRegistration },
		controlApp,
		exportLearnerId,
		retentionAppId: retentionApp.appId,
		pools: {
			learnerIds,
			registrationIds,
			jobIds: [jobIdOf(update.response), exported.jobId, realmExportId, crypto.randomUUID()],
			doomedAppIds: doomed.map((doomedApp) => doomedApp.appId),
			spareAppId: spare.appId,
			credentialIds: [spare.credentialId, crypto.randomUUID()],
			memberEmails: [await realmUser("member"), await realmUser("member")],
			adminEmail,
			pagingTokens: pagingTokens.length > 0 ? pagingTokens : ["none"],
			auditActions: AUDIT_ACTIONS,
			docsFiles: ["init.js", "swagger-ui.css", "favicon-32x32.png", "missing.js", "../wrangler.toml", "constructor", "__proto__"],
			shardNames: [...SHARDS.map((shard) => shard.name), "SHARD_NOWHERE"],
		},
	};
	storedBefore = await storedStrings(app.appId);
	controlBefore = await controlState();
});

afterAll(() => {
	vi.restoreAllMocks();
});

describe("every route under random input", () => {
	describe.each(operations)("$method $template ($operationId)", (operation) => {
		it("never answers 5xx, answers 4xx as { message }, and reads back what it accepted", async () => {
			await fc.assert(
				fc.asyncProperty(inputs(operation, setting.pools), (input) => exercise(operation, input)),
				{ numRuns: RUNS_PER_OPERATION },
			);
		}, 60_000);
	});

	it("reached every privacy operation with input it accepted and input it refused, never with a 5xx", () => {
		const listed = new Set(operations.map((operation) => operation.operationId));
		console.log(
			`privacy operations, accepted/refused: ${PRIVACY_OPERATIONS.map((id) => `${id} ${outcomes.get(id)?.accepted ?? 0}/${outcomes.get(id)?.refused ?? 0}`).join(", ")}`,
		);
		for (const operationId of PRIVACY_OPERATIONS) {
			expect(listed.has(operationId), `${operationId} is in the OpenAPI document`).toBe(true);
			const outcome = outcomes.get(operationId) ?? { accepted: 0, refused: 0 };
			expect(outcome.accepted, `${operationId} accepted some fuzzed input`).toBeGreaterThan(0);
			expect(outcome.refused, `${operationId} refused some fuzzed input`).toBeGreaterThan(0);
			expect(outcome.accepted + outcome.refused, `${operationId} answered every fuzzed input below 500`).toBeGreaterThanOrEqual(RUNS_PER_OPERATION);
		}
	});

	it("stores nothing invalid, nothing only refused requests carried, and leaves the control learners as they were", async () => {
		// Run every job the fuzz accepted (updates, erasures, application deletions), as the queue would.
		for (const sent of jobMessages.splice(0)) await drain(JobMessageSchema.parse(sent.body));

		const problems = await invalidRows(setting.app.appId);
		const stored = await storedStrings(setting.app.appId);
		for (const value of refused) {
			if (!accepted.has(value) && !storedBefore.has(value) && stored.has(value)) {
				problems.push(`${JSON.stringify(value.slice(0, 80))} was stored though only refused requests carried it`);
			}
		}
		const controlAfter = await controlState();
		if (JSON.stringify(controlAfter) !== JSON.stringify(controlBefore)) problems.push("a control learner changed");
		if (JSON.stringify(Object.getOwnPropertyNames(Object.prototype).sort()) !== JSON.stringify(prototypeBefore)) {
			problems.push("Object.prototype changed");
		}
		tally.invalidAccepted += problems.length;

		console.log(`${tally.inputs} inputs, 5xx = ${tally.fiveXX}, invalid accepted = ${tally.invalidAccepted}`);
		expect(problems).toEqual([]);
		expect(controlAfter).toEqual(controlBefore);
		expect(tally.inputs).toBeGreaterThanOrEqual(operations.length * RUNS_PER_OPERATION);
		expect(tally.fiveXX).toBe(0);
		expect(tally.invalidAccepted).toBe(0);
	}, 60_000);
});
