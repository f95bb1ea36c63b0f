import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { apiRequest, fetchWithBindings } from "../support/client";
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
