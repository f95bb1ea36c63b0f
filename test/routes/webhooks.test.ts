import { afterEach, describe, expect, it, vi } from "vitest";
import { apiRequest, call, fetchWithBindings } from "../support/client";
import { expectMessage } from "../support/expect";
import { MANAGEMENT, createApp } from "../support/fixtures";
import { receiver, setWebhook, verifiedTimestamp } from "../support/webhooks";

/**
 * PUT, GET, DELETE /appManagement/{childAppId}/webhook and POST .../webhook/test (SPEC §8): an application's
 * endpoint for job events, its signing secret shown once, https only (plain http to localhost for development).
 */

const path = (appId: string) => `/appManagement/${appId}/webhook`;
const put = (appId: string, body: Record<string, unknown>) => call("PUT", path(appId), { auth: MANAGEMENT, body });

afterEach(() => {
	vi.restoreAllMocks();
});

describe("PUT /appManagement/{childAppId}/webhook", () => {
	it("answers the URL and a new signing secret, which GET never shows again", async () => {
		const { appId } = await createApp();
		const response = await put(appId, { url: "https://lms.example.com/hooks" });
		expect(response.status).toBe(200);
		const created = (await response.json()) as { url: string; signingSecret: string };
		expect(created).toEqual({ url: "https://lms.example.com/hooks", signingSecret: expect.stringMatching(/^whsec_[A-Za-z0-9_-]{43}$/) });

		const read = await call("GET", path(appId), { auth: MANAGEMENT });
		expect(read.status).toBe(200);
		const webhook = await read.json();
		expect(webhook).toEqual({ url: "https://lms.example.com/hooks", createdDate: expect.any(String), updatedDate: expect.any(String) });
		expect(JSON.stringify(webhook)).not.toContain(created.signingSecret.slice("whsec_".length));
	});

	it("issues a new secret each time, keeping the creation date", async () => {
		const { appId } = await createApp();
		const first = await setWebhook(appId, "https://a.example.com/hook");
		const before = (await (await call("GET", path(appId), { auth: MANAGEMENT })).json()) as { createdDate: string };
		const second = await setWebhook(appId, "https://b.example.com/hook");
		expect(second).not.toBe(first);
		const after = (await (await call("GET", path(appId), { auth: MANAGEMENT })).json()) as Record<string, string>;
		expect(after).toEqual({ url: "https://b.example.com/hook", createdDate: before.createdDate, updatedDate: expect.any(String) });
	});

	it.each([
		["http://lms.example.com/hook", /https:/],
		["ftp://lms.example.com/hook", /https:/],
		["lms.example.com/hook", /absolute URL/],
		["https://user:pass@lms.example.com/hook", /user name or password/],
		[`https://lms.example.com/${"a".repeat(2048)}`, /2048/],
	])("refuses %s with 400 naming the url, and keeps no webhook", async (url, problem) => {
		const { appId } = await createApp();
		expect(await expectMessage(await put(appId, { url }), 400)).toMatch(problem);
		expect(await expectMessage(await call("GET", path(appId), { auth: MANAGEMENT }), 404)).toMatch(/has no webhook/);
	});

	it.each(["http://localhost:8788/hook", "http://127.0.0.1:9000/hook", "http://[::1]:9000/hook"])(
		"accepts plain http to the local machine (%s), for development",
		async (url) => {
			const { appId } = await createApp();
			expect((await put(appId, { url })).status).toBe(200);
		},
	);

	it("refuses a missing or non-string url, and an unknown or deleted application", async () => {
		const { appId } = await createApp();
		expect(await expectMessage(await put(appId, {}), 400)).toMatch(/url/);
		expect(await expectMessage(await put(appId, { url: 42 }), 400)).toMatch(/url/);
		expect(await expectMessage(await put("NOSUCHAPP1", { url: "https://a.example.com" }), 404)).toMatch(/NOSUCHAPP1/);
		expect((await call("DELETE", `/appManagement/applications/${appId}`, { auth: MANAGEMENT })).status).toBe(204);
		expect(await expectMessage(await put(appId, { url: "https://a.example.com" }), 404)).toMatch(appId);
		expect(await expectMessage(await call("GET", path(appId), { auth: MANAGEMENT }), 404)).toMatch(/was not found/);
	});
});

describe("DELETE /appManagement/{childAppId}/webhook", () => {
	it("removes it: GET and a second DELETE answer 404", async () => {
		const { appId } = await createApp();
		await setWebhook(appId);
		expect((await call("DELETE", path(appId), { auth: MANAGEMENT })).status).toBe(204);
		expect(await expectMessage(await call("GET", path(appId), { auth: MANAGEMENT }), 404)).toMatch(/has no webhook/);
		expect(await expectMessage(await call("DELETE", path(appId), { auth: MANAGEMENT }), 404)).toMatch(/has no webhook/);
		expect(await expectMessage(await call("DELETE", path("NOSUCHAPP1"), { auth: MANAGEMENT }), 404)).toMatch(/was not found/);
	});
});

describe("POST /appManagement/{childAppId}/webhook/test", () => {
	const test = (appId: string) => fetchWithBindings(apiRequest("POST", `${path(appId)}/test`, { auth: MANAGEMENT }), {});

	it("sends a signed webhook.test event now and answers that it was delivered", async () => {
		const { appId } = await createApp();
		const secret = await setWebhook(appId, "https://lms.example.com/hooks");
		const hook = receiver(() => 204);
		const response = await test(appId);
		expect(response.status).toBe(200);
		const result = (await response.json()) as { eventId: string };
		expect(result).toEqual({ eventId: expect.stringMatching(/^evt_[0-9a-f]{32}$/), delivered: true, status: 204 });
		expect(hook.received).toHaveLength(1);
		const [request] = hook.received;
		expect(request?.url).toBe("https://lms.example.com/hooks");
		expect(JSON.parse(request?.body ?? "")).toEqual({ id: result.eventId, type: "webhook.test", createdDate: expect.any(String) });
		expect(await verifiedTimestamp(secret, request?.headers.get("Learner-Service-Signature") ?? null, request?.body ?? "")).not.toBeNull();
		// Under another secret it does not verify.
		expect(await verifiedTimestamp(`${secret}x`, request?.headers.get("Learner-Service-Signature") ?? null, request?.body ?? "")).toBeNull();
	});

	it.each([
		[500, { delivered: false, status: 500 }],
		[302, { delivered: false, status: 302 }],
		[new TypeError("fetch failed"), { delivered: false, error: "Connection failed" }],
	] as const)("answers what went wrong when the webhook answers %s", async (answer, expected) => {
		const { appId } = await createApp();
		await setWebhook(appId);
		receiver(() => answer);
		const response = await test(appId);
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ eventId: expect.any(String), ...expected });
	});

	it("answers 404 when the application has no webhook", async () => {
		const { appId } = await createApp();
		expect(await expectMessage(await test(appId), 404)).toMatch(/has no webhook/);
	});
});
