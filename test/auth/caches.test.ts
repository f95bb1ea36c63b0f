import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { BoundedCache } from "../../src/auth/cache";
import { credentialCacheStats } from "../../src/auth/credentials";
import { signToken } from "../../src/auth/token";
import { apiRequest, call, fetchWithBindings } from "../support/client";
import { everyD1Binding } from "../support/d1-bindings";
import { expectMessage } from "../support/expect";
import { createApp, mintToken } from "../support/fixtures";

const ping = (auth: string) => call("GET", "/ping", { auth });
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Disables a credential straight in D1, as a change served by another isolate would: this one is not told. */
const disableInD1 = (credentialId: string) =>
	env.DB.prepare("UPDATE credentials SET enabled = 0 WHERE id = ?1").bind(credentialId).run();

afterEach(() => {
	vi.useRealTimers();
});

describe("Basic credentials remembered by the isolate", () => {
	it("stop working within 30 s of being disabled elsewhere", async () => {
		const app = await createApp();
		vi.useFakeTimers({ toFake: ["Date"] });
		const start = Date.now();
		expect((await ping(app.auth)).status).toBe(200);
		await disableInD1(app.credentialId);
		vi.setSystemTime(start + 29_000);
		expect((await ping(app.auth)).status).toBe(200);
		vi.setSystemTime(start + 31_000);
		expect(await expectMessage(await ping(app.auth), 401)).toBe("Invalid application id or secret key");
	});

	it("are remembered only when right: a wrong secret for a known id answers 401 every time", async () => {
		const app = await createApp();
		expect((await ping(app.auth)).status).toBe(200);
		const wrong = `Basic ${btoa(`${app.appId}:${app.secret}x`)}`;
		for (let attempt = 0; attempt < 2; attempt++) {
			expect(await expectMessage(await ping(wrong), 401)).toBe("Invalid application id or secret key");
		}
	});
});

describe("Bearer tokens whose signature the isolate checked recently", () => {
	it("still expire on time", async () => {
		const app = await createApp();
		vi.useFakeTimers({ toFake: ["Date"] });
		const now = nowSeconds();
		// Expired 59 s ago: accepted within the 60 s clock skew, for one more second.
		const token = await signToken(
			{ app: app.appId, cid: app.credentialId, scope: ["read:ping"], iat: now - 600, exp: now - 59 },
			env.TOKEN_SIGNING_SECRET,
		);
		expect((await ping(`Bearer ${token}`)).status).toBe(200);
		vi.setSystemTime((now + 2) * 1000);
		expect(await expectMessage(await ping(`Bearer ${token}`), 401)).toBe("The bearer token is invalid or has expired");
	});

	it("stop working within 30 s of their credential being disabled elsewhere", async () => {
		const app = await createApp();
		const auth = await mintToken(app, "read:ping");
		vi.useFakeTimers({ toFake: ["Date"] });
		const start = Date.now();
		expect((await ping(auth)).status).toBe(200);
		await disableInD1(app.credentialId);
		vi.setSystemTime(start + 31_000);
		expect(await expectMessage(await ping(auth), 401)).toBe("The bearer token's credential is disabled or deleted");
	});
});

describe("the isolate's caches", () => {
	it("remember a Basic credential under its one canonical header only: padded and re-cased spellings add nothing", async () => {
		const app = await createApp();
		const encoded = btoa(`${app.appId}:${app.secret}`);
		const headerEntries = () => credentialCacheStats().find((cache) => cache.name === "credentials by Basic header")?.entries;
		expect((await ping(`Basic ${encoded}`)).status).toBe(200);
		const before = headerEntries();

		for (let padding = 1; padding <= 200; padding++) {
			const variant = padding % 2 === 0 ? `Basic${" ".repeat(padding)}${encoded}` : `bAsIc ${encoded}${" ".repeat(padding)}`;
			expect((await ping(variant)).status).toBe(200);
		}
		expect(headerEntries()).toBe(before);
	});

	it("hold at most their bound in entries and bytes, oldest first, and sweep expired entries", () => {
		let now = 1_000_000;
		const cache = new BoundedCache<string>("test", { maxEntries: 3, maxBytes: 1200, sweepEveryMs: 1000 });
		for (const key of ["a", "b", "c", "d"]) cache.set(key, key, now + 500, 0, now);
		expect(cache.stats()).toMatchObject({ entries: 3 });
		expect(cache.get("a", now)).toBeUndefined();
		expect(cache.get("d", now)).toBe("d");

		cache.set("big", "x", now + 500, 1000, now);
		expect(cache.stats().bytes).toBeLessThanOrEqual(1200);
		expect(cache.get("big", now)).toBe("x");
		expect(cache.get("b", now)).toBeUndefined();

		now += 2000;
		cache.set("fresh", "y", now + 500, 0, now);
		expect(cache.stats()).toMatchObject({ entries: 1 });
		// An entry larger than the whole bound is not kept.
		cache.set("huge", "z", now + 500, 5000, now);
		expect(cache.get("huge", now)).toBeUndefined();
	});
});

describe("revocation", () => {
	it("takes effect within 30 s of the change, even for a header first seen after the credential was verified", async () => {
		const app = await createApp();
		vi.useFakeTimers({ toFake: ["Date"] });
		const start = Date.now();
		expect((await ping(app.auth)).status).toBe(200);
		// 20 s later the same credential arrives spelled differently (still within the first verification).
		vi.setSystemTime(start + 20_000);
		const respelled = `Basic  ${btoa(`${app.appId}:${app.secret}`)}`;
		expect((await ping(respelled)).status).toBe(200);
		await disableInD1(app.credentialId);

		vi.setSystemTime(start + 31_000);
		for (const header of [app.auth, respelled]) {
			expect(await expectMessage(await ping(header), 401)).toBe("Invalid application id or secret key");
		}
	});

	it("takes effect within 30 s for the canonical header too, when the credential was first verified under another", async () => {
		const app = await createApp();
		vi.useFakeTimers({ toFake: ["Date"] });
		const start = Date.now();
		// Verified first through a padded spelling, which is never remembered by header.
		expect((await ping(`Basic  ${btoa(`${app.appId}:${app.secret}`)}`)).status).toBe(200);
		// 20 s later the canonical header arrives: remembered, but only until the first verification expires.
		vi.setSystemTime(start + 20_000);
		expect((await ping(app.auth)).status).toBe(200);
		await disableInD1(app.credentialId);

		vi.setSystemTime(start + 31_000);
		expect(await expectMessage(await ping(app.auth), 401)).toBe("Invalid application id or secret key");
	});

	it("is read from the primary database, never from a replica session that may lag behind", async () => {
		const app = await createApp();
		const sessionSql: string[] = [];
		// Every D1 binding (the control database and each shard), recording what runs in a session on any of them.
		const watched = (database: D1Database) =>
			({
				prepare: (sql: string) => database.prepare(sql),
				batch: (statements: D1PreparedStatement[]) => database.batch(statements),
				withSession: (constraint?: D1SessionConstraint) => {
					const session = database.withSession(constraint);
					return {
						prepare: (sql: string) => {
							sessionSql.push(sql);
							return session.prepare(sql);
						},
						batch: (statements: D1PreparedStatement[]) => session.batch(statements),
						getBookmark: () => session.getBookmark(),
					};
				},
			}) as unknown as D1Database;
		const bindings = everyD1Binding(watched);
		// A secret this isolate has not verified yet, so it must be looked up.
		const response = await fetchWithBindings(apiRequest("GET", "/learner/nobody/tags", { auth: app.auth }), bindings);
		expect(response.status).toBe(404);
		expect(sessionSql.length).toBeGreaterThan(0);
		expect(sessionSql.filter((sql) => sql.includes("credentials"))).toEqual([]);
	});
});
