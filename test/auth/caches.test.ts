import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { signToken } from "../../src/auth/token";
import { call, createApp, expectMessage, mintToken } from "../helpers";

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
