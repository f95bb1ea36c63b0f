import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { BASE, fetchWithBindings } from "../support/client";
import { expectMessage } from "../support/expect";
import { basicHeader, createApp, MANAGEMENT } from "../support/fixtures";
import { RecordingDb } from "../support/recording";

// SPEC §11: failed authentication is throttled per client address and per claimed application, so guessing
// costs; a refused credential is remembered briefly, so repeating it costs no database query. The tight
// limiter allows 3 failures a minute (vitest.config.ts: TIGHT_AUTH_FAILURES); each test uses addresses and
// applications of its own.

const TOO_MANY = "Too many failed authentication attempts; retry after 60 seconds";

let serial = 0;
/** An address no other test uses. */
const freshAddress = () => `198.51.100.${++serial}`;

/** A D1 binding whose lookups outside a session (credentials) are recorded. */
const recordingBinding = (recorder: RecordingDb) =>
	({
		prepare: (sql: string) => recorder.prepare(sql),
		batch: (statements: D1PreparedStatement[]) => recorder.batch(statements),
		withSession: (constraint?: D1SessionConstraint) => env.DB.withSession(constraint),
	}) as unknown as D1Database;

/** GET `path` from `address` with `auth`, the tight limiter counting by address or by application. */
async function send(
	address: string,
	auth: string,
	options: { tight: "client" | "app"; recorder?: RecordingDb; path?: string },
): Promise<Response> {
	const request = new Request(`${BASE}${options.path ?? "/ping"}`, { headers: { Authorization: auth, "CF-Connecting-IP": address } });
	return fetchWithBindings(request, {
		DB: recordingBinding(options.recorder ?? new RecordingDb()),
		...(options.tight === "client"
			? { AUTH_FAILURES_BY_CLIENT: env.TIGHT_AUTH_FAILURES }
			: { AUTH_FAILURES_BY_APP: env.TIGHT_AUTH_FAILURES }),
	});
}

describe("failed authentication", () => {
	it("answers 429 with Retry-After once an address has failed too often, and then looks nothing up for it", async () => {
		const app = await createApp();
		const address = freshAddress();
		for (let attempt = 1; attempt <= 3; attempt++) {
			const wrong = basicHeader(app.appId, `wrong-${attempt}-${crypto.randomUUID()}`);
			expect(await expectMessage(await send(address, wrong, { tight: "client" }), 401)).toBe("Invalid application id or secret key");
		}
		const fourth = await send(address, basicHeader(app.appId, `wrong-4-${crypto.randomUUID()}`), { tight: "client" });
		expect(await expectMessage(fourth, 429)).toBe(TOO_MANY);
		expect(fourth.headers.get("Retry-After")).toBe("60");

		// Even right credentials, not yet verified by this isolate, wait out the window: no database lookup.
		const recorder = new RecordingDb();
		const right = await send(address, basicHeader(app.appId, app.secret), { tight: "client", recorder });
		expect(await expectMessage(right, 429)).toBe(TOO_MANY);
		expect(recorder.calls).toBe(0);
		// Another address is not affected.
		expect((await send(freshAddress(), basicHeader(app.appId, app.secret), { tight: "client" })).status).toBe(200);
	});

	it("counts failures against the application the credentials name, from whatever address", async () => {
		const app = await createApp();
		for (let attempt = 1; attempt <= 3; attempt++) {
			const response = await send(freshAddress(), basicHeader(app.appId, `guess-${crypto.randomUUID()}`), { tight: "app" });
			expect(response.status).toBe(401);
		}
		const response = await send(freshAddress(), basicHeader(app.appId, `guess-${crypto.randomUUID()}`), { tight: "app" });
		expect(await expectMessage(response, 429)).toBe(TOO_MANY);
		// Another application is not affected.
		const other = await createApp();
		expect((await send(freshAddress(), other.auth, { tight: "app" })).status).toBe(200);
	});

	it("throttles malformed headers, revoked tokens and wrong management passwords too", async () => {
		const cases: [string, string][] = [
			["Basic !!!", "/ping"],
			["Bearer a.b.c", "/ping"],
			[basicHeader(env.MANAGEMENT_APP_ID, "not-the-management-secret"), "/appManagement/users"],
		];
		for (const [bad, path] of cases) {
			const address = freshAddress();
			const statuses: number[] = [];
			for (let attempt = 0; attempt < 4; attempt++) statuses.push((await send(address, bad, { tight: "client", path })).status);
			expect(statuses, bad).toEqual([401, 401, 401, 429]);
		}
		// Management failures count against the address only: the realm's administrators are not locked out.
		expect((await send(freshAddress(), MANAGEMENT, { tight: "client", path: "/appManagement/users" })).status).toBe(200);
	});

	it("remembers a refused secret briefly: repeating it costs one database lookup, not one each time", async () => {
		const app = await createApp();
		const wrong = basicHeader(app.appId, `remembered-${crypto.randomUUID()}`);
		const recorder = new RecordingDb();
		for (let attempt = 0; attempt < 3; attempt++) {
			const request = new Request(`${BASE}/ping`, { headers: { Authorization: wrong, "CF-Connecting-IP": freshAddress() } });
			// The suite's generous limiters: this is about lookups, not throttling.
			expect((await fetchWithBindings(request, { DB: recordingBinding(recorder) })).status).toBe(401);
		}
		expect(recorder.calls).toBe(1);
	});
});
