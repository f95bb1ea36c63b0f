import { describe, expect, it } from "vitest";
import { call } from "../support/client";
import { expectMessage } from "../support/expect";
import { createApp, mintToken } from "../support/fixtures";

describe("GET /ping", () => {
	it("answers 401 with both challenges without credentials", async () => {
		const response = await call("GET", "/ping");
		expect(await expectMessage(response, 401)).toMatch(/Authentication required/);
		expect(response.headers.get("WWW-Authenticate")).toBe('Basic realm="learner-service", Bearer realm="learner-service"');
	});

	it("answers pong with Basic credentials", async () => {
		const app = await createApp();
		const response = await call("GET", "/ping", { auth: app.auth });
		expect(response.status).toBe(200);
		const body = (await response.json()) as { apiMessage: string; currentTime: string };
		expect(Object.keys(body).sort()).toEqual(["apiMessage", "currentTime"]);
		expect(body.apiMessage).toBe("pong");
		expect(Math.abs(Date.parse(body.currentTime) - Date.now())).toBeLessThan(60_000);
		expect(response.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
	});

	it("answers pong with a token holding read:ping", async () => {
		const app = await createApp();
		const response = await call("GET", "/ping", { auth: await mintToken(app, "read:ping") });
		expect(response.status).toBe(200);
	});
});
