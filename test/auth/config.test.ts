import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { apiRequest, BASE, fetchWithBindings } from "../support/client";
import { expectMessage } from "../support/expect";
import { basicHeader } from "../support/fixtures";

// SPEC §11: missing or short secrets fail closed with a clear error, never an open door.

const misconfigured = (requestId: string | null) =>
	`The service is misconfigured (the operator's log names the setting); quote request id ${requestId}`;

afterEach(() => {
	vi.restoreAllMocks();
});

describe("a missing or short secret", () => {
	it("refuses the management API when MANAGEMENT_SECRET_KEY is unset, even to an empty password", async () => {
		const logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
		for (const secret of [undefined, ""]) {
			const response = await fetchWithBindings(
				apiRequest("GET", "/appManagement/applications", { auth: basicHeader(env.MANAGEMENT_APP_ID, "") }),
				{ MANAGEMENT_SECRET_KEY: secret as unknown as string },
			);
			expect(await expectMessage(response, 500)).toBe(misconfigured(response.headers.get("X-Request-Id")));
		}
		const lines = logged.mock.calls.map(([line]) => JSON.parse(String(line)) as Record<string, unknown>);
		expect(lines).toContainEqual(expect.objectContaining({ level: "error", msg: "configuration error", detail: "MANAGEMENT_SECRET_KEY is not set" }));
	});

	it("refuses every route when a secret is shorter than 32 characters, naming it in the log only", async () => {
		const logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
		const cases: [keyof Env, string][] = [
			["MANAGEMENT_SECRET_KEY", "short"],
			["TOKEN_SIGNING_SECRET", "x".repeat(31)],
			["LEARNER_HASH_KEY", "k"],
		];
		for (const [name, value] of cases) {
			const response = await fetchWithBindings(
				apiRequest("GET", "/appManagement/applications", { auth: basicHeader(env.MANAGEMENT_APP_ID, value) }),
				{ [name]: value },
			);
			const message = await expectMessage(response, 500);
			expect(message).toBe(misconfigured(response.headers.get("X-Request-Id")));
			expect(message).not.toContain(value);
		}
		const details = logged.mock.calls.map(([line]) => (JSON.parse(String(line)) as { detail?: string }).detail);
		expect(details).toEqual(
			expect.arrayContaining([
				"MANAGEMENT_SECRET_KEY is shorter than 32 characters",
				"TOKEN_SIGNING_SECRET is shorter than 32 characters",
				"LEARNER_HASH_KEY is shorter than 32 characters",
			]),
		);
	});

	it("refuses an unset MANAGEMENT_APP_ID, and a malformed quota or budget", async () => {
		vi.spyOn(console, "log").mockImplementation(() => undefined);
		const cases: Partial<Env>[] = [
			{ MANAGEMENT_APP_ID: "" },
			{ APP_ROW_QUOTA: "lots" } as unknown as Partial<Env>,
			{ APP_WRITE_BUDGET: "10" } as unknown as Partial<Env>,
		];
		for (const bindings of cases) {
			const response = await fetchWithBindings(apiRequest("GET", "/appManagement/applications", { auth: basicHeader("", "") }), bindings);
			expect(response.status).toBe(500);
		}
	});
});

describe("WEBHOOK_ALLOW_LOCALHOST", () => {
	it("refuses every route when it is neither \"true\" nor \"false\", naming it in the log only", async () => {
		const logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
		for (const value of ["yes", "TRUE", "1", " true"]) {
			const response = await fetchWithBindings(
				apiRequest("GET", "/appManagement/applications", { auth: basicHeader(env.MANAGEMENT_APP_ID, env.MANAGEMENT_SECRET_KEY) }),
				{ WEBHOOK_ALLOW_LOCALHOST: value } as unknown as Partial<Env>,
			);
			expect(await expectMessage(response, 500)).toBe(misconfigured(response.headers.get("X-Request-Id")));
		}
		const details = logged.mock.calls.map(([line]) => (JSON.parse(String(line)) as { detail?: string }).detail);
		expect(details.filter((detail) => detail === 'WEBHOOK_ALLOW_LOCALHOST must be "true" or "false" (unset: false)')).toHaveLength(4);
	});
});

describe("the receipt signing key", () => {
	const signingKey = JSON.parse(env.RECEIPT_SIGNING_KEY) as { kty: string; crv: string; d: string; x: string };

	it("refuses every route when RECEIPT_SIGNING_KEY is missing or not an Ed25519 JWK, naming it in the log only", async () => {
		const logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
		const malformed = [
			"not json",
			JSON.stringify({ ...signingKey, crv: "X25519" }),
			JSON.stringify({ kty: "OKP", crv: "Ed25519", x: signingKey.x }),
			JSON.stringify({ ...signingKey, d: signingKey.d.slice(1) }),
		];
		for (const value of ["", ...malformed]) {
			const response = await fetchWithBindings(
				apiRequest("GET", "/appManagement/applications", { auth: basicHeader(env.MANAGEMENT_APP_ID, env.MANAGEMENT_SECRET_KEY) }),
				{ RECEIPT_SIGNING_KEY: value },
			);
			const message = await expectMessage(response, 500);
			expect(message).toBe(misconfigured(response.headers.get("X-Request-Id")));
			if (value !== "") expect(message).not.toContain(value);
		}
		const details = logged.mock.calls.map(([line]) => (JSON.parse(String(line)) as { detail?: string }).detail);
		expect(details).toContain("RECEIPT_SIGNING_KEY is not set");
		expect(details.filter((detail) => detail?.startsWith("RECEIPT_SIGNING_KEY is not an Ed25519 private key"))).toHaveLength(malformed.length);
		expect(details.join("\n")).not.toContain(signingKey.d.slice(1));
	});

	it("refuses to publish or sign with a key whose x is not the public half of its d", async () => {
		const logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
		// The public half of another key (.dev.vars.example's): well-formed, but not this d's.
		const mismatched = JSON.stringify({ ...signingKey, x: "SlCol1UtR8P1rrKx2Q5FfiljOmOaCwEMFQH9uWbMbho" });
		const response = await fetchWithBindings(new Request(`${BASE}/.well-known/erasure-receipt-key`), { RECEIPT_SIGNING_KEY: mismatched });
		expect(await expectMessage(response, 500)).toBe(misconfigured(response.headers.get("X-Request-Id")));
		const details = logged.mock.calls.map(([line]) => (JSON.parse(String(line)) as { detail?: string }).detail);
		expect(details).toContain("RECEIPT_SIGNING_KEY is not a usable Ed25519 key: its x is not the public half of its d");
	});
});
