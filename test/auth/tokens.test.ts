import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { base64UrlEncode } from "../../src/auth/crypto";
import { signToken, type TokenClaims } from "../../src/auth/token";
import { call } from "../support/client";
import { expectMessage } from "../support/expect";
import { basicHeader, createApp, MANAGEMENT, mintToken, type TestApp } from "../support/fixtures";

const TOKEN_PATH = "/oauth/authenticate/application/token";
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const CHALLENGE = 'Basic realm="learner-service", Bearer realm="learner-service"';

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Posts a form to the token endpoint. */
const requestToken = (auth: string | undefined, form: Record<string, string>) =>
	call("POST", TOKEN_PATH, {
		auth,
		body: new URLSearchParams(form).toString(),
		headers: { "Content-Type": "application/x-www-form-urlencoded" },
	});

/** Claims for a token of this app, valid now, that a test can bend. */
const claimsFor = (app: TestApp, overrides: Partial<TokenClaims> = {}): TokenClaims => {
	const iat = nowSeconds();
	return { app: app.appId, cid: app.credentialId, scope: ["read:ping"], iat, exp: iat + 300, ...overrides };
};

const bearer = (token: string) => `Bearer ${token}`;
const encodeJson = (value: unknown) => base64UrlEncode(new TextEncoder().encode(JSON.stringify(value)));

/** A compact JWT with any header and payload, HMAC-signed with the key: for tokens signToken() would never make. */
async function signRaw(header: unknown, payload: unknown, secret: string): Promise<string> {
	const input = `${encodeJson(header)}.${encodeJson(payload)}`;
	const algorithm = { name: "HMAC", hash: "SHA-256" };
	const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), algorithm, false, ["sign"]);
	const signature = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(input));
	return `${input}.${base64UrlEncode(new Uint8Array(signature))}`;
}

const decodePayload = (token: string): Record<string, unknown> => {
	const payload = token.split(".")[1] ?? "";
	return JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
};

const ping = (auth: string) => call("GET", "/ping", { auth });

/** Asserts GET /ping answers 401 with both challenges and the message (by default: an invalid or expired token). */
async function expectUnauthorized(auth: string, message = "The bearer token is invalid or has expired") {
	const response = await ping(auth);
	expect(response.status).toBe(401);
	expect(await response.json()).toEqual({ message });
	expect(response.headers.get("WWW-Authenticate")).toBe(CHALLENGE);
}

const setCredential = (app: TestApp, body: Record<string, unknown>) =>
	call("PUT", `/appManagement/${app.appId}/credentials/${app.credentialId}`, { auth: MANAGEMENT, body });

afterEach(() => {
	vi.useRealTimers();
});

describe("POST /oauth/authenticate/application/token", () => {
	it("answers exactly access_token, expires_in 300 by default and token_type Bearer", async () => {
		const app = await createApp();
		const response = await requestToken(app.auth, { scope: "read:ping" });
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({
			access_token: expect.stringMatching(JWT),
			expires_in: 300,
			token_type: "Bearer",
		});
	});

	it("signs the app id, the credential id, the scopes, iat and exp into the token", async () => {
		const app = await createApp();
		const before = nowSeconds();
		const response = await requestToken(app.auth, { scope: "read:ping read:learner", expiration: "600" });
		expect(response.status).toBe(200);
		const body = (await response.json()) as { access_token: string; expires_in: number };
		expect(body.expires_in).toBe(600);
		const claims = decodePayload(body.access_token);
		expect(claims).toEqual({
			app: app.appId,
			cid: app.credentialId,
			scope: ["read:ping", "read:learner"],
			iat: expect.any(Number),
			exp: expect.any(Number),
		});
		expect(claims.iat).toBeGreaterThanOrEqual(before);
		expect(Number(claims.exp) - Number(claims.iat)).toBe(600);
	});

	it("accepts the longest expiration, 2592000 seconds", async () => {
		const app = await createApp();
		const response = await requestToken(app.auth, { scope: "read:ping", expiration: "2592000" });
		expect(response.status).toBe(200);
		expect(((await response.json()) as { expires_in: number }).expires_in).toBe(2_592_000);
	});

	it("answers 400 naming an unknown scope", async () => {
		const app = await createApp();
		const response = await requestToken(app.auth, { scope: "read:ping write:everything" });
		expect(await expectMessage(response, 400)).toBe(
			'Unknown scope "write:everything"; known scopes: read:learner, write:learner, admin, read:registration, ' +
				"write:registration, delete:registration, read:ping, read:about",
		);
	});

	it("answers 400 when scope is missing", async () => {
		const app = await createApp();
		const response = await requestToken(app.auth, { expiration: "300" });
		expect(await expectMessage(response, 400)).toBe("Invalid request: scope is required");
	});

	it("answers 400 when scope is blank", async () => {
		const app = await createApp();
		const response = await requestToken(app.auth, { scope: "   " });
		expect(await expectMessage(response, 400)).toBe("Invalid request: scope is required");
	});

	it.each([
		["0", "Invalid request: expiration must be at least 1 second"],
		["2592001", "Invalid request: expiration must be at most 2592000 seconds"],
		["abc", "Invalid request: expiration must be a whole number of seconds"],
		["-5", "Invalid request: expiration must be a whole number of seconds"],
		["1.5", "Invalid request: expiration must be a whole number of seconds"],
	])("answers 400 naming expiration when it is %s", async (expiration, message) => {
		const app = await createApp();
		const response = await requestToken(app.auth, { scope: "read:ping", expiration });
		expect(await expectMessage(response, 400)).toBe(message);
	});

	it("answers 415 to a JSON body", async () => {
		const app = await createApp();
		const response = await call("POST", TOKEN_PATH, { auth: app.auth, body: { scope: "read:ping" } });
		expect(await expectMessage(response, 415)).toBe(
			'This endpoint takes a application/x-www-form-urlencoded body (got "application/json")',
		);
	});

	it("answers 401 without credentials", async () => {
		const response = await requestToken(undefined, { scope: "read:ping" });
		expect(await expectMessage(response, 401)).toBe(
			"Authentication required: send Basic application credentials or a Bearer token",
		);
		expect(response.headers.get("WWW-Authenticate")).toBe(CHALLENGE);
	});

	it("answers 401 to a bearer token, even one holding admin", async () => {
		const app = await createApp();
		const response = await requestToken(await mintToken(app, "admin"), { scope: "read:ping" });
		expect(await expectMessage(response, 401)).toBe("This endpoint accepts Basic application credentials only");
	});

	it("answers 401 to a disabled credential", async () => {
		const app = await createApp();
		await setCredential(app, { active: false });
		const response = await requestToken(app.auth, { scope: "read:ping" });
		expect(await expectMessage(response, 401)).toBe("Invalid application id or secret key");
	});
});

describe("Basic application credentials", () => {
	it("do not authenticate with another application's id", async () => {
		const app = await createApp();
		const other = await createApp();
		await expectUnauthorized(basicHeader(other.appId, app.secret), "Invalid application id or secret key");
	});

	it("answer 401 while the credential is disabled and work again once it is re-enabled", async () => {
		const app = await createApp();
		expect((await ping(app.auth)).status).toBe(200);
		expect((await setCredential(app, { active: false })).status).toBe(204);
		await expectUnauthorized(app.auth, "Invalid application id or secret key");
		expect((await setCredential(app, { active: true })).status).toBe(204);
		expect((await ping(app.auth)).status).toBe(200);
	});

	it("answer 401 to a malformed Authorization header", async () => {
		await expectUnauthorized(
			"Basic not base64!",
			"Malformed Authorization header: expected Basic base64(appId:secretKey) or Bearer <token>",
		);
	});
});

describe("Bearer tokens", () => {
	it("work until exp and fail after it, allowing 60 seconds of clock skew", async () => {
		const app = await createApp();
		vi.useFakeTimers({ toFake: ["Date"] });
		const issued = Date.now();
		const auth = await mintToken(app, "read:ping", 120);
		expect((await ping(auth)).status).toBe(200);
		vi.setSystemTime(issued + (120 + 59) * 1000);
		expect((await ping(auth)).status).toBe(200);
		vi.setSystemTime(issued + (120 + 62) * 1000);
		await expectUnauthorized(auth);
	});

	it("accept a token that expired 59 seconds ago (clock skew)", async () => {
		const app = await createApp();
		const now = nowSeconds();
		const token = await signToken(claimsFor(app, { iat: now - 600, exp: now - 59 }), env.TOKEN_SIGNING_SECRET);
		expect((await ping(bearer(token))).status).toBe(200);
	});

	it("reject a token that expired 61 seconds ago", async () => {
		const app = await createApp();
		const now = nowSeconds();
		const token = await signToken(claimsFor(app, { iat: now - 600, exp: now - 61 }), env.TOKEN_SIGNING_SECRET);
		await expectUnauthorized(bearer(token));
	});

	it("reject a token issued more than 60 seconds in the future", async () => {
		const app = await createApp();
		const now = nowSeconds();
		const token = await signToken(claimsFor(app, { iat: now + 120, exp: now + 600 }), env.TOKEN_SIGNING_SECRET);
		await expectUnauthorized(bearer(token));
	});

	it("reject a token whose signature was altered", async () => {
		const app = await createApp();
		const token = (await mintToken(app, "read:ping")).slice("Bearer ".length);
		const [header, payload, signature = ""] = token.split(".");
		const altered = `${signature[0] === "A" ? "B" : "A"}${signature.slice(1)}`;
		await expectUnauthorized(bearer(`${header}.${payload}.${altered}`));
	});

	it("reject a token whose claims were altered to gain a scope", async () => {
		const app = await createApp();
		const token = (await mintToken(app, "read:learner")).slice("Bearer ".length);
		const [header, payload = "", signature] = token.split(".");
		const escalated = encodeJson({ ...decodePayload(token), scope: ["admin"] });
		expect(escalated).not.toBe(payload);
		await expectUnauthorized(bearer(`${header}.${escalated}.${signature}`));
	});

	it('reject a token with alg "none" and an empty signature', async () => {
		const app = await createApp();
		const token = `${encodeJson({ alg: "none" })}.${encodeJson(claimsFor(app))}.`;
		await expectUnauthorized(bearer(token));
	});

	it('reject a correctly signed token whose header does not say HS256', async () => {
		const app = await createApp();
		const token = await signRaw({ alg: "HS512", typ: "JWT" }, claimsFor(app), env.TOKEN_SIGNING_SECRET);
		await expectUnauthorized(bearer(token));
	});

	it("reject a correctly signed token without exp", async () => {
		const app = await createApp();
		const { exp: _exp, ...withoutExp } = claimsFor(app);
		const token = await signRaw({ alg: "HS256", typ: "JWT" }, withoutExp, env.TOKEN_SIGNING_SECRET);
		await expectUnauthorized(bearer(token));
	});

	it("reject a token signed with a different key", async () => {
		const app = await createApp();
		const token = await signToken(claimsFor(app), "some-other-signing-secret-0123456789abcdef");
		await expectUnauthorized(bearer(token));
	});

	it("reject a token naming another application than its credential's", async () => {
		const app = await createApp();
		const other = await createApp();
		const token = await signToken(claimsFor(app, { app: other.appId }), env.TOKEN_SIGNING_SECRET);
		await expectUnauthorized(bearer(token), "The bearer token's credential is disabled or deleted");
	});

	it("reject a value that is not a token", async () => {
		await expectUnauthorized("Bearer not-a-token");
	});

	it("answer 403 naming the scope a route needs when the token lacks it", async () => {
		const app = await createApp();
		const response = await ping(await mintToken(app, "read:learner"));
		expect(await expectMessage(response, 403)).toBe('This operation requires the "read:ping" scope');
	});

	it("grant only the scopes they carry", async () => {
		const app = await createApp();
		const auth = await mintToken(app, "read:ping");
		expect((await ping(auth)).status).toBe(200);
		const response = await call("GET", "/about", { auth });
		expect(await expectMessage(response, 403)).toBe('This operation requires the "read:about" scope');
	});

	it("grant every scope when they carry admin", async () => {
		const app = await createApp();
		const auth = await mintToken(app, "admin");
		expect((await ping(auth)).status).toBe(200);
		expect((await call("GET", "/about", { auth })).status).toBe(200);
	});

	it("stop working once their credential is disabled", async () => {
		const app = await createApp();
		const auth = await mintToken(app, "read:ping");
		expect((await ping(auth)).status).toBe(200);
		expect((await setCredential(app, { active: false })).status).toBe(204);
		await expectUnauthorized(auth, "The bearer token's credential is disabled or deleted");
	});

	it("stop working once their credential is deleted", async () => {
		const app = await createApp();
		const auth = await mintToken(app, "read:ping");
		expect((await ping(auth)).status).toBe(200);
		const deleted = await call("DELETE", `/appManagement/${app.appId}/credentials/${app.credentialId}`, {
			auth: MANAGEMENT,
		});
		expect(deleted.status).toBe(204);
		await expectUnauthorized(auth, "The bearer token's credential is disabled or deleted");
	});

	it("stop working once their application is deleted", async () => {
		const app = await createApp();
		const auth = await mintToken(app, "read:ping");
		expect((await ping(auth)).status).toBe(200);
		const deleted = await call("DELETE", `/appManagement/applications/${app.appId}`, { auth: MANAGEMENT });
		expect(deleted.status).toBe(204);
		await expectUnauthorized(auth, "The bearer token's credential is disabled or deleted");
	});

	it("keep working when another credential of the same application is disabled", async () => {
		const app = await createApp();
		const auth = await mintToken(app, "read:ping");
		const second = await call("POST", `/appManagement/${app.appId}/credentials`, {
			auth: MANAGEMENT,
			body: { name: "second" },
		});
		const { id } = (await second.json()) as { id: string };
		await call("PUT", `/appManagement/${app.appId}/credentials/${id}`, { auth: MANAGEMENT, body: { active: false } });
		expect((await ping(auth)).status).toBe(200);
	});
});
