import fc from "fast-check";
import type { Operation } from "../support/operations";

/**
 * Request parts for route fuzzing, derived from the service's OpenAPI document: bodies near the documented
 * schema (every field sometimes of the wrong type, strings at and past their limits, control characters,
 * commas, any Unicode, lists repeating values exactly and as near-duplicates: other case, other Unicode
 * normalization form), random JSON, malformed and deeply nested text, prototype-pollution keys, and path,
 * query and header values of any kind.
 */

type Json = Record<string, unknown>;

/** Existing values a fuzzed request may name, so that some requests get past "not found". */
export interface Pools {
	learnerIds: string[];
	registrationIds: string[];
	jobIds: string[];
	/** Applications that deleteApplication may delete. */
	doomedAppIds: string[];
	/** The application whose credentials the credential routes change. */
	spareAppId: string;
	credentialIds: string[];
	/** Realm users any route may change or delete. */
	memberEmails: string[];
	/** A realm admin: erasures it requests are accepted. */
	adminEmail: string;
	/** The ids a batch body names: the batch operation's own kind of owner (set by bodies()). */
	batchIds?: string[];
	/** `more` tokens issued to the fuzzed application, and the realm's (the audit trail's, its job list's). */
	pagingTokens: string[];
	/** The audit trail's action names (GET /appManagement/audit?action=). */
	auditActions: readonly string[];
	docsFiles: string[];
	/** Shard names a move may name: the service's shards and one that is not. */
	shardNames: string[];
}

export const POLLUTION_KEYS = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf", "__defineGetter__"];

/** Strings that have broken parsers, validators, SQL and logs elsewhere. */
const NASTY = [
	"",
	" ",
	"\u0000",
	"a\u0000b",
	"\u001f",
	"\u007f",
	"\u0085",
	"\u009f",
	"line\nbreak",
	"tab\there",
	"a,b",
	",",
	"\ufeff",
	"\u200b",
	"\u202e",
	"\u2028",
	"\ud800",
	"\udfff",
	"a\ud83c",
	"🎓",
	"👩🏽‍🚀",
	"Łódź 学习者",
	"'; DROP TABLE registrations; --",
	"' OR '1'='1",
	"%",
	"%25",
	"%2F",
	"%zz",
	"_",
	"\\",
	"../..",
	".",
	"null",
	"undefined",
	"true",
	"0",
	"-1",
	"NaN",
	"__proto__",
	"constructor",
	"prototype",
	"<script>alert(1)</script>",
	"${jndi:ldap://x}",
	"{{7*7}}",
	'{"json":1}',
	"[]",
];

const EMAILS = [
	"user@example.com",
	"USER@EXAMPLE.COM",
	"a@b",
	"no-at-sign",
	"@example.com",
	"user@",
	"user@@example.com",
	"user@example..com",
	"us er@example.com",
	"user@exämple.com",
	"用户@例子.广告",
	"user+tag@example.com",
	`${"a".repeat(64)}@example.com`,
	`${"a".repeat(65)}@example.com`,
	`${"a".repeat(308)}@example.com`,
	`${"a".repeat(309)}@example.com`,
	"user@example.com\u0000",
	"user@example.com\n",
];

const TIMES = [
	"2026-01-01T00:00:00Z",
	"2026-01-01T00:00:00.000+02:00",
	"2026-13-45T99:99:99Z",
	"+275760-09-13T00:00:00.000Z",
	"-271821-04-20T00:00:00.000Z",
	"1970-01-01",
	"0",
	"yesterday",
	"2099-12-31T23:59:59Z",
	"9999-12-31T23:59:59.999Z",
];

/** Code units at Unicode's edges: unpaired surrogates, combining marks, astral characters, noncharacters. */
const unicodeEdges = fc.string({
	unit: fc.constantFrom("a", "é", "e\u0301", "\u0301", "🎓", "\ud83c", "\udf93", "\ud800", "\udfff", "\ufffd", "\ufffe", "\uffff", "\u{10ffff}"),
	minLength: 1,
	maxLength: 6,
});

/**
 * Texts whose NFC and NFD forms differ (precomposed letters, Hangul syllables): the two forms are different
 * tags and ids for this API, which compares exact strings (SPEC §3).
 */
const COMPOSABLE = ["café", "Ångström", "ñandú", "naïve", "Łódź", "한국어", "Ελληνικά"];

/** A COMPOSABLE text, in either normalization form. */
const composable = fc
	.tuple(fc.constantFrom(...COMPOSABLE), fc.constantFrom<"NFC" | "NFD">("NFC", "NFD"))
	.map(([text, form]) => text.normalize(form));

/** The value and its near-duplicates: the same text in other case and in each Unicode normalization form. */
function nearDuplicates(value: unknown): unknown[] {
	if (typeof value !== "string") return [value];
	return [value, value.toUpperCase(), value.toLowerCase(), value.normalize("NFC"), value.normalize("NFD")];
}

/**
 * Lists that name a few values several times: exactly (a set union stores them once) and as near-duplicates
 * (each stored as the distinct value it is).
 */
const withRepeats = (items: fc.Arbitrary<unknown>) =>
	fc
		.array(items, { minLength: 1, maxLength: 3 })
		.chain((base) => fc.array(fc.constantFrom(...base, ...base.flatMap(nearDuplicates)), { minLength: 2, maxLength: 10 }));

/** The value once in `odds` draws, else null. */
const rarely = <T>(arbitrary: fc.Arbitrary<T>, odds: number): fc.Arbitrary<T | null> =>
	fc.oneof({ weight: odds - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arbitrary });

const textOfLength = (unit: string, length: number) => unit.repeat(length);

/** A string for a field with these JSON Schema constraints, valid or not. */
function stringNear(schema: Json, name: string, pools: Pools): fc.Arbitrary<string> {
	const max = typeof schema.maxLength === "number" ? schema.maxLength : 64;
	// Mostly valid strings, so that many bodies are accepted whole and what they stored can be read back.
	const options: fc.WeightedArbitrary<string>[] = [
		{ weight: 12, arbitrary: fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 12 }) },
		{ weight: 3, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }) },
		{ weight: 3, arbitrary: unicodeEdges },
		{ weight: 3, arbitrary: composable },
		{ weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) },
		{ weight: 2, arbitrary: fc.constantFrom(...NASTY) },
		{
			weight: 1,
			arbitrary: fc
				.tuple(fc.constantFrom(max, max + 1), fc.constantFrom("x", "é", "🎓", "\u0301"))
				.map(([length, unit]) => textOfLength(unit, length)),
		},
		{ weight: 1, arbitrary: fc.constantFrom(10_000, 100_000).map((length) => textOfLength("y", length)) },
	];
	if (Array.isArray(schema.enum)) options.push({ weight: 12, arbitrary: fc.constantFrom(...(schema.enum as string[])) });
	if (/email/i.test(name)) options.push({ weight: 10, arbitrary: fc.oneof(fc.constantFrom(...EMAILS), fc.emailAddress()) });
	if (schema.format === "date-time" || /expiry|since|until/i.test(name)) {
		options.push({ weight: 10, arbitrary: fc.oneof(fc.constantFrom(...TIMES), fc.date({ noInvalidDate: true }).map((date) => date.toISOString())) });
	}
	if (/^(id|learnerId)$/.test(name)) options.push({ weight: 6, arbitrary: fc.constantFrom(...pools.learnerIds) });
	if (/registrationId/.test(name)) options.push({ weight: 6, arbitrary: fc.constantFrom(...pools.registrationIds) });
	if (name === "ids" && pools.batchIds) options.push({ weight: 12, arbitrary: fc.constantFrom(...pools.batchIds) });
	if (name === "shard") options.push({ weight: 12, arbitrary: fc.constantFrom(...pools.shardNames) });
	if (/scopes?$/.test(name)) {
		options.push({
			weight: 8,
			arbitrary: fc.constantFrom("read:learner", "write:learner", "admin", "read:ping", "read:about", "ADMIN", "admin read:ping", "*"),
		});
	}
	return fc.oneof(...options);
}

/** Any JSON value, including keys that pollute prototypes when merged carelessly. */
export const anyJson: fc.Arbitrary<unknown> = fc.oneof(
	{ weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
	{ weight: 1, arbitrary: fc.constantFrom(...NASTY) },
	{ weight: 1, arbitrary: fc.constantFrom(0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, true, false, null) },
	{
		weight: 1,
		arbitrary: fc.dictionary(fc.constantFrom(...POLLUTION_KEYS), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
	},
);

function resolve(schema: unknown, components: Json): Json {
	let current = (schema ?? {}) as Json;
	while (typeof current.$ref === "string") {
		current = components[current.$ref.replace("#/components/schemas/", "")] as Json;
	}
	return current;
}

/** A value near a JSON Schema: usually its shape, with any part sometimes wrong. */
export function nearSchema(schema: unknown, components: Json, pools: Pools, name = ""): fc.Arbitrary<unknown> {
	const resolved = resolve(schema, components);
	const types = Array.isArray(resolved.type) ? (resolved.type as string[]) : [resolved.type as string | undefined];
	const shaped = types.map((type): fc.Arbitrary<unknown> => {
		switch (type) {
			case "object": {
				const properties = (resolved.properties ?? {}) as Record<string, unknown>;
				const fields = Object.fromEntries(
					Object.entries(properties).map(([key, value]) => [key, nearSchema(value, components, pools, key)]),
				);
				const required = (resolved.required as string[] | undefined) ?? [];
				const dropped = required.length > 0 ? rarely(fc.constantFrom(...required), 6) : fc.constant(null);
				const extras = rarely(fc.dictionary(fc.oneof(fc.constantFrom(...POLLUTION_KEYS), fc.string()), anyJson, { maxKeys: 2 }), 4);
				return fc.tuple(fc.record(fields, { requiredKeys: required }), dropped, extras).map(([record, drop, extra]) => {
					// Required fields are present but now and then one, so most bodies get past the first missing field.
					const value: Json = { ...record };
					if (drop !== null) delete value[drop];
					// defineProperty: an own "__proto__" key, as JSON.parse would make, not a prototype change.
					for (const [key, field] of Object.entries(extra ?? {})) {
						Object.defineProperty(value, key, { value: field, enumerable: true, configurable: true, writable: true });
					}
					return value;
				});
			}
			case "array": {
				const items = nearSchema(resolved.items, components, pools, name);
				const maxItems = typeof resolved.maxItems === "number" ? resolved.maxItems : 10;
				return fc.oneof(
					{ weight: 5, arbitrary: fc.array(items, { maxLength: 6 }) },
					{ weight: 4, arbitrary: withRepeats(items) },
					{
						// At the limit and one past it, of distinct plain values.
						weight: 1,
						arbitrary: fc
							.constantFrom(maxItems, maxItems + 1)
							.map((length) => Array.from({ length }, (_, i) => `${name || "item"}-${i}`)),
					},
				);
			}
			case "string":
				return stringNear(resolved, name, pools);
			case "integer": {
				const any = [fc.integer(), fc.constantFrom(0, -1, 1, 2_592_000, 2_592_001, 2 ** 53)];
				if (typeof resolved.minimum !== "number" && typeof resolved.maximum !== "number") return fc.oneof(...any);
				// A bounded integer: within its bounds now and then, and at either side of each.
				const min = Number(resolved.minimum ?? 0);
				const max = Number(resolved.maximum ?? 2 ** 31);
				return fc.oneof(...any, fc.integer({ min, max }), fc.constantFrom(min - 1, min, max, max + 1));
			}
			case "number":
				return fc.double();
			case "boolean":
				return fc.boolean();
			case "null":
				return fc.constant(null);
			default:
				return anyJson;
		}
	});
	return fc.oneof({ weight: 10, arbitrary: fc.oneof(...shaped) }, { weight: 1, arbitrary: anyJson });
}

/** A string every field of its kind accepts (SPEC §3: 1–255 characters, no control character, no comma). */
function stringWithin(schema: Json, name: string, pools: Pools): fc.Arbitrary<string> {
	if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as string[]));
	if (/email/i.test(name)) return fc.constantFrom("user@example.com", "USER@example.com", "user+tag@example.com");
	if (schema.format === "date-time") return fc.constantFrom("2030-01-01T00:00:00.000Z", "2031-06-15T12:30:00.000Z");
	if (/scopes?$/.test(name)) return fc.constantFrom("read:learner", "write:learner", "admin", "read:ping");
	const plain = fc.oneof(
		{ weight: 4, arbitrary: fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 12 }).filter((text) => !text.includes(",")) },
		{ weight: 2, arbitrary: composable },
	);
	const pool = name === "ids" ? pools.batchIds : /^(id|learnerId)$/.test(name) ? pools.learnerIds : undefined;
	return pool ? fc.oneof({ weight: 1, arbitrary: plain }, { weight: 3, arbitrary: fc.constantFrom(...pool) }) : plain;
}

/**
 * A value the JSON Schema accepts, with lists that often repeat values exactly and as near-duplicates: bodies
 * a route takes whole, so that what it stored can be read back (nearSchema's bodies are mostly refused).
 */
export function withinSchema(schema: unknown, components: Json, pools: Pools, name = ""): fc.Arbitrary<unknown> {
	const resolved = resolve(schema, components);
	const types = (Array.isArray(resolved.type) ? (resolved.type as string[]) : [resolved.type as string]).filter((type) => type !== "null");
	switch (types[0]) {
		case "object": {
			const properties = (resolved.properties ?? {}) as Record<string, unknown>;
			const fields = Object.fromEntries(
				Object.entries(properties).map(([key, value]) => [key, withinSchema(value, components, pools, key)]),
			);
			return fc.record(fields, { requiredKeys: (resolved.required as string[] | undefined) ?? [] });
		}
		case "array": {
			const items = withinSchema(resolved.items, components, pools, name);
			const minLength = typeof resolved.minItems === "number" ? resolved.minItems : 0;
			return fc.oneof(fc.array(items, { minLength, maxLength: 6 }), withRepeats(items));
		}
		case "string":
			return stringWithin(resolved, name, pools);
		case "integer":
			return fc.integer({ min: Number(resolved.minimum ?? 0), max: Number(resolved.maximum ?? 1000) });
		case "boolean":
			return fc.boolean();
		default:
			return fc.constant(null);
	}
}

/** A request body: its bytes or text, and the Content-Type it is sent with (none when undefined). */
export interface FuzzBody {
	text: string | Uint8Array;
	contentType?: string;
	/** What the body was meant to be, for the record of values a request carried. */
	value?: unknown;
}

const JSON_TYPES = ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.api+json"];
const WRONG_TYPES = [
	"text/plain",
	"application/x-www-form-urlencoded",
	"multipart/form-data; boundary=x",
	"application/xml",
	"application/jsonx",
	"application/json-seq",
	"json",
	"*/*",
];

const MALFORMED_JSON = [
	"",
	"{",
	"}",
	'{"tags": [',
	'{"tags": ["a",]}',
	"{'tags': ['a']}",
	"NaN",
	"undefined",
	'{"tags": ["a"]} trailing',
	'\ufeff{"tags": ["a"]}',
	'{"tags": ["\\ud800"]}',
	'{"tags": ["\\u0000"]}',
	'{"a":1,"a":2}',
	'{"tags":["a"],"tags":["b"]}',
	'{"__proto__":{"tags":["polluted"]},"tags":["x"]}',
	'{"constructor":{"prototype":{"polluted":true}},"tags":["x"]}',
	'{"ids":["x"],"tags":["t"],"__proto__":{"ids":["y"]}}',
	"1e999999",
	"-0",
	'"just a string"',
];

/** Text nested `depth` levels deep, as arrays or objects. */
const deeplyNested = fc.tuple(fc.constantFrom(64, 1_000, 100_000), fc.boolean()).map(([depth, arrays]) =>
	arrays ? `${"[".repeat(depth)}${"]".repeat(depth)}` : `${'{"tags":'.repeat(depth)}[]${"}".repeat(depth)}`,
);

const invalidUtf8 = fc.constantFrom(
	new Uint8Array([0x7b, 0x22, 0x74, 0x61, 0x67, 0x73, 0x22, 0x3a, 0x5b, 0x22, 0xff, 0xfe, 0x22, 0x5d, 0x7d]),
	new Uint8Array([0xc3, 0x28]),
	new Uint8Array([0xfe, 0xff, 0x00, 0x7b, 0x00, 0x7d]),
);

/** Bodies for an operation that takes JSON. */
function jsonBodies(schema: unknown, components: Json, pools: Pools): fc.Arbitrary<FuzzBody | undefined> {
	const asJson = (arbitrary: fc.Arbitrary<unknown>, types: string[]) =>
		fc.tuple(arbitrary, fc.constantFrom(...types)).map(([value, contentType]) => ({ text: JSON.stringify(value) ?? "null", contentType, value }));
	return fc.oneof(
		{ weight: 12, arbitrary: asJson(nearSchema(schema, components, pools), JSON_TYPES) },
		{ weight: 6, arbitrary: asJson(withinSchema(schema, components, pools), JSON_TYPES) },
		{ weight: 2, arbitrary: asJson(anyJson, JSON_TYPES) },
		{ weight: 2, arbitrary: fc.constantFrom(...MALFORMED_JSON).map((text) => ({ text, contentType: "application/json" })) },
		{ weight: 1, arbitrary: deeplyNested.map((text) => ({ text, contentType: "application/json" })) },
		{ weight: 2, arbitrary: asJson(nearSchema(schema, components, pools), WRONG_TYPES) },
		{ weight: 1, arbitrary: invalidUtf8.map((text) => ({ text, contentType: "application/json" })) },
		{ weight: 1, arbitrary: fc.constant(undefined) },
		{ weight: 1, arbitrary: asJson(nearSchema(schema, components, pools), JSON_TYPES).map((body) => ({ ...body, contentType: undefined })) },
		// Just over 1 MiB.
		{ weight: 1, arbitrary: fc.constant({ text: JSON.stringify({ tags: ["z".repeat(1024 * 1024)] }), contentType: "application/json" }) },
	);
}

/** Bodies for the token endpoint, which takes a form. */
function formBodies(schema: unknown, components: Json, pools: Pools): fc.Arbitrary<FuzzBody | undefined> {
	const form = nearSchema(schema, components, pools).map((value) => {
		const entries =
			value !== null && typeof value === "object" && !Array.isArray(value)
				? Object.entries(value).map(([key, field]) => [key, typeof field === "string" ? field : JSON.stringify(field) ?? ""])
				: [["scope", String(value)]];
		return { text: new URLSearchParams(entries).toString(), contentType: "application/x-www-form-urlencoded", value };
	});
	return fc.oneof(
		{ weight: 10, arbitrary: form },
		{ weight: 1, arbitrary: fc.constantFrom("scope=%zz", "scope", "=&=&", "scope=read:ping&scope=admin", "expiration=1e3&scope=admin").map((text) => ({ text, contentType: "application/x-www-form-urlencoded" })) },
		{ weight: 1, arbitrary: form.map((body) => ({ ...body, contentType: "application/json" })) },
		{ weight: 1, arbitrary: fc.constant(undefined) },
	);
}

/** A body for any operation: what it takes, or now and then a stray one where it takes none. */
export function bodies(operation: Operation, components: Json, pools: Pools): fc.Arbitrary<FuzzBody | undefined> {
	if (operation.bodyType === "application/json") {
		// A batch names existing owners of its own kind, so that some batches get past "not found".
		const batchIds = operation.operationId === "putRegistrationTagsBatch" ? pools.registrationIds : pools.learnerIds;
		return jsonBodies(operation.bodySchema, components, { ...pools, batchIds });
	}
	if (operation.bodyType) return formBodies(operation.bodySchema, components, pools);
	// Fetch forbids a body on GET and HEAD.
	if (operation.method === "GET" || operation.method === "HEAD") return fc.constant(undefined);
	return fc.oneof(
		{ weight: 8, arbitrary: fc.constant(undefined) },
		{ weight: 1, arbitrary: anyJson.map((value) => ({ text: JSON.stringify(value) ?? "null", contentType: "application/json", value })) },
		{ weight: 1, arbitrary: fc.string().map((text) => ({ text, contentType: "text/plain" })) },
	);
}

/** An id of any kind: unicode, control characters, percent signs, very long, or one that exists. */
export function pathValue(name: string, pools: Pools): fc.Arbitrary<string> {
	const existing: Record<string, string[]> = {
		learnerId: pools.learnerIds,
		registrationId: pools.registrationIds,
		jobId: pools.jobIds,
		childAppId: [...pools.doomedAppIds, pools.spareAppId],
		credentialId: pools.credentialIds,
		email: [...pools.memberEmails, ...EMAILS],
		file: pools.docsFiles,
	};
	return fc.oneof(
		{ weight: 6, arbitrary: fc.constantFrom(...(existing[name] ?? ["x"])) },
		{ weight: 3, arbitrary: fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 16 }) },
		{ weight: 2, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 16 }) },
		{ weight: 2, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 16 }) },
		{ weight: 3, arbitrary: fc.constantFrom(...NASTY) },
		{ weight: 1, arbitrary: fc.constantFrom(255, 256, 5_000).map((length) => textOfLength("p", length)) },
	);
}

/** How a path or query value is written into the URL. */
export type Encoding = "encoded" | "raw";

/**
 * `encoded`: percent-encoded as a client should. `raw`: everything but `%` encoded, so stray and invalid
 * percent sequences (`%zz`, `%E0%A4`, `%00`) reach the server as they are. Null when the value cannot be
 * written at all (a lone surrogate has no UTF-8).
 */
export function writeComponent(value: string, encoding: Encoding): string | null {
	try {
		return encoding === "encoded" ? encodeURIComponent(value) : value.split("%").map(encodeURIComponent).join("%");
	} catch {
		return null;
	}
}

/** Query parameters: the operation's own with values of any kind, plus strays (duplicates, pollution keys). */
export function queries(operation: Operation, pools: Pools): fc.Arbitrary<[string, string][]> {
	const valueFor = (name: string): fc.Arbitrary<string> => {
		switch (name) {
			case "userEmail":
				return fc.oneof(
					{ weight: 4, arbitrary: fc.constant(pools.adminEmail) },
					{ weight: 1, arbitrary: fc.constant(pools.adminEmail.toUpperCase()) },
					{ weight: 2, arbitrary: fc.constantFrom(...pools.memberEmails, ...EMAILS) },
					{ weight: 1, arbitrary: fc.string() },
				);
			case "since":
			case "until":
				return fc.oneof(fc.constantFrom(...TIMES), fc.string());
			case "action":
				return fc.oneof(
					{ weight: 3, arbitrary: fc.constantFrom(...pools.auditActions) },
					{ weight: 1, arbitrary: fc.constantFrom(...pools.auditActions).map((action) => action.toUpperCase()) },
					{ weight: 1, arbitrary: fc.constantFrom(...pools.auditActions).map((action) => `${action} `) },
					{ weight: 2, arbitrary: pathValue(name, pools) },
				);
			case "more":
				return fc.oneof(
					fc.constantFrom(...pools.pagingTokens),
					fc.constantFrom(...pools.pagingTokens).map((token) => `${token.slice(0, -2)}00`),
					fc.constantFrom(...pools.pagingTokens).map((token) => `x${token}`),
					fc.string(),
					fc.constantFrom("a.b", ".", "e30.00", "x".repeat(5000)),
				);
			case "tags":
				return fc.oneof(fc.array(stringNear({ maxLength: 255 }, "tag", pools), { maxLength: 4 }).map((tags) => tags.join(",")), fc.string());
			case "learnerId":
				return fc.oneof(fc.constantFrom(...pools.learnerIds), pathValue(name, pools));
			default:
				return fc.oneof(fc.constantFrom("true", "false", "created", "updated", "created_asc", "updated_desc", "any", "all", ""), pathValue(name, pools));
		}
	};
	const own = fc.subarray(operation.queryParams).chain((names) =>
		names.length === 0 ? fc.constant([] as [string, string][]) : fc.tuple(...names.map((name) => valueFor(name).map((value): [string, string] => [name, value]))),
	);
	const strays = fc.array(
		fc.tuple(fc.oneof(fc.constantFrom(...POLLUTION_KEYS, "_", ...operation.queryParams), fc.string({ maxLength: 8 })), fc.string({ maxLength: 12 })),
		{ maxLength: 3 },
	);
	return fc.tuple(own, strays).map(([a, b]) => [...a, ...b]);
}

/** X-D1-Bookmark values: absent mostly; otherwise well-formed or not. */
export const bookmarks: fc.Arbitrary<string | null> = rarely(
	fc.constantFrom(
		"0",
		"00000000",
		"00000000-00000000",
		"00000000-00000000-00000000-00000000000000000000000000000000",
		"00000001-00000002-00004e3d-9f0a7c4b2e8d1f3a5c7e9b0d2f4a6c8e",
		"FFFFFFFF-FFFFFFFF-FFFFFFFF-FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
		"0000000000000001-00000001-00000000-00000000000000000000000000000000",
		"ffffffffffffffff-ffffffff-ffffffff-ffffffffffffffffffffffffffffffff",
		"0-0-0-0-0-0-0-0",
		"0-0-0-0-0-0-0-0-0",
		"zz",
		"first-primary",
		"first-unconstrained",
		"f".repeat(4000),
	),
	8,
);

/** Authorization header values that are not credentials: malformed, truncated, or of unknown schemes. */
export const strayAuthorizations: fc.Arbitrary<string> = fc.oneof(
	fc.string({ unit: "grapheme-ascii", maxLength: 40 }),
	fc.string({ unit: "grapheme-ascii", maxLength: 40 }).map((rest) => `Basic ${rest}`),
	fc.string({ unit: "grapheme-ascii", maxLength: 40 }).map((rest) => `Bearer ${rest}`),
	fc.uint8Array({ maxLength: 48 }).map((bytes) => `Basic ${btoa(String.fromCharCode(...bytes))}`),
	fc.tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 })).map(([id, secret]) => {
		const bytes = new TextEncoder().encode(`${id}:${secret}`);
		return `Basic ${btoa(String.fromCharCode(...bytes))}`;
	}),
	fc.array(fc.base64String({ maxLength: 24 }), { minLength: 1, maxLength: 5 }).map((parts) => `Bearer ${parts.join(".")}`),
);
