import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { apiRequest, call, fetchWithBindings } from "../support/client";
import { expectMessage } from "../support/expect";
import { MANAGEMENT, createApp } from "../support/fixtures";
import { receiver, setWebhook, verifiedTimestamp } from "../support/webhooks";

/**
 * PUT, GET, DELETE /appManagement/{childAppId}/webhook and POST .../webhook/test (SPEC §8): an application's
 * endpoint for job events, its signing secret shown once, https to a public destination only (plain http to the
 * local machine where local development is allowed).
 */

const path = (appId: string) => `/appManagement/${appId}/webhook`;
const put = (appId: string, body: Record<string, unknown>) => call("PUT", path(appId), { auth: MANAGEMENT, body });
/** The PUT with some settings replaced (WEBHOOK_ALLOW_LOCALHOST). */
const putWith = (bindings: Partial<Env>, appId: string, body: Record<string, unknown>) =>
	fetchWithBindings(apiRequest("PUT", path(appId), { auth: MANAGEMENT, body }), bindings);

/** How every refusal of a destination begins. */
const PUBLIC_ONLY = "url must name a public destination: ";
/** The refusal of any scheme but https: (and of plain http: where local development is not allowed). */
const HTTPS_ONLY =
	"url must use https: (plain http: only to localhost, 127.0.0.1 or [::1], and only where the operator allows local development: WEBHOOK_ALLOW_LOCALHOST)";

afterEach(() => {
	vi.restoreAllMocks();
});

describe("PUT /appManagement/{childAppId}/webhook", () => {
	it("answers the URL and a new signing secret, which GET never shows again", async () => {
		const { appId } = await createApp();
		const response = await put(appId, { url: "https://lms.example.com/hooks" });
		expect(response.status).toBe(200);
		const created = (await response.json()) as { url: string; signingSecret: string };
		expect(created).toEqual({ url: "https://lms.example.com/hooks", signingSecret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/) });

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

	it.each(["http://localhost:8788/hook", "http://127.0.0.1:9000/hook", "http://[::1]:9000/hook", "https://localhost:8443/hook"])(
		"accepts the local machine (%s) where local development is allowed (WEBHOOK_ALLOW_LOCALHOST=true, as .dev.vars.example sets it)",
		async (url) => {
			const { appId } = await createApp();
			expect((await putWith({ WEBHOOK_ALLOW_LOCALHOST: "true" }, appId, { url })).status).toBe(200);
		},
	);

	it.each([
		["http://localhost.:8788/hook", HTTPS_ONLY],
		["http://10.0.0.5/hook", HTTPS_ONLY],
		["https://10.0.0.5/hook", `${PUBLIC_ONLY}10.0.0.5 is a private address (10.0.0.0/8)`],
		["https://127.0.0.2/hook", `${PUBLIC_ONLY}127.0.0.2 is a loopback address (127.0.0.0/8)`],
	])("still refuses %s where local development is allowed: only the local machine itself is let through", async (url, message) => {
		const { appId } = await createApp();
		expect(await expectMessage(await putWith({ WEBHOOK_ALLOW_LOCALHOST: "true" }, appId, { url }), 400)).toBe(message);
	});

	// SPEC §8: plain http://localhost only where a development setting allows it; wrangler.toml (and so this test
	// environment) sets it to "false", as production runs.
	it.each(["http://localhost:8788/hook", "http://127.0.0.1:9000/hook", "http://[::1]:9000/hook"])(
		"refuses plain http to the local machine (%s) at the production setting, and when the setting is unset",
		async (url) => {
			const { appId } = await createApp();
			expect(env.WEBHOOK_ALLOW_LOCALHOST).toBe("false");
			expect(await expectMessage(await put(appId, { url }), 400)).toBe(HTTPS_ONLY);
			expect(await expectMessage(await putWith({ WEBHOOK_ALLOW_LOCALHOST: undefined }, appId, { url }), 400)).toBe(HTTPS_ONLY);
			expect(await expectMessage(await call("GET", path(appId), { auth: MANAGEMENT }), 404)).toMatch(/has no webhook/);
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

// SPEC §8: `url` must be https: to a public destination, so that a webhook (and POST .../webhook/test, which
// answers the status it got) cannot be used to probe the networks the service runs in.
describe("PUT /appManagement/{childAppId}/webhook: the destination", () => {
	it.each([
		["https://169.254.169.254/latest/meta-data/", `${PUBLIC_ONLY}169.254.169.254 is a link-local address (169.254.0.0/16)`],
		["https://10.0.0.5:8443", `${PUBLIC_ONLY}10.0.0.5 is a private address (10.0.0.0/8)`],
		["https://[::ffff:a9fe:a9fe]", `${PUBLIC_ONLY}[::ffff:a9fe:a9fe] embeds 169.254.169.254 (IPv4-mapped), a link-local address (169.254.0.0/16)`],
		["https://metadata.google.internal", `${PUBLIC_ONLY}metadata.google.internal is a local or private-use name (*.internal), which resolves only inside a network`],
		["http://localhost:9200", HTTPS_ONLY],
	])("refuses %s with 400 naming the url and why, and keeps no webhook", async (url, message) => {
		const { appId } = await createApp();
		expect(await expectMessage(await put(appId, { url }), 400)).toBe(message);
		expect(await expectMessage(await call("GET", path(appId), { auth: MANAGEMENT }), 404)).toMatch(/has no webhook/);
	});

	it.each([
		// IPv4, each range at its edges.
		["https://0.0.0.0/", "0.0.0.0 is an unspecified (this-network) address (0.0.0.0/8)"],
		["https://0.255.255.255/", "0.255.255.255 is an unspecified (this-network) address (0.0.0.0/8)"],
		["https://10.255.255.255/", "10.255.255.255 is a private address (10.0.0.0/8)"],
		["https://100.64.0.1/", "100.64.0.1 is a carrier-grade NAT address (100.64.0.0/10)"],
		["https://100.127.255.254/", "100.127.255.254 is a carrier-grade NAT address (100.64.0.0/10)"],
		["https://127.0.0.1/", "127.0.0.1 is a loopback address (127.0.0.0/8)"],
		["https://127.255.0.1:8443/", "127.255.0.1 is a loopback address (127.0.0.0/8)"],
		["https://169.254.0.1/", "169.254.0.1 is a link-local address (169.254.0.0/16)"],
		["https://172.16.0.1/", "172.16.0.1 is a private address (172.16.0.0/12)"],
		["https://172.31.255.255/", "172.31.255.255 is a private address (172.16.0.0/12)"],
		["https://192.0.0.8/", "192.0.0.8 is an IETF protocol assignment (192.0.0.0/24)"],
		["https://192.168.1.1/", "192.168.1.1 is a private address (192.168.0.0/16)"],
		["https://198.18.0.1/", "198.18.0.1 is a benchmarking address (198.18.0.0/15)"],
		["https://198.19.255.255/", "198.19.255.255 is a benchmarking address (198.18.0.0/15)"],
		["https://224.0.0.1/", "224.0.0.1 is a multicast address (224.0.0.0/4)"],
		["https://239.255.255.250/", "239.255.255.250 is a multicast address (224.0.0.0/4)"],
		["https://240.0.0.1/", "240.0.0.1 is a reserved address (240.0.0.0/4)"],
		["https://255.255.255.255/", "255.255.255.255 is the broadcast address (255.255.255.255/32)"],
		// IPv4 written otherwise: URL parsing (WHATWG) turns each into the dotted address it means.
		["https://2130706433/", "127.0.0.1 is a loopback address (127.0.0.0/8)"],
		["https://0x7f.1/", "127.0.0.1 is a loopback address (127.0.0.0/8)"],
		["https://017700000001/", "127.0.0.1 is a loopback address (127.0.0.0/8)"],
		["https://127.1/", "127.0.0.1 is a loopback address (127.0.0.0/8)"],
		["https://0xa9fea9fe/", "169.254.169.254 is a link-local address (169.254.0.0/16)"],
		["https://10.1/", "10.0.0.1 is a private address (10.0.0.0/8)"],
		["https://0/", "0.0.0.0 is an unspecified (this-network) address (0.0.0.0/8)"],
		["https://127.0.0.1./", "127.0.0.1 is a loopback address (127.0.0.0/8)"],
		// IPv6.
		["https://[::]/", "[::] is the unspecified address (::/128)"],
		["https://[::1]/", "[::1] is the loopback address (::1/128)"],
		["https://[0:0:0:0:0:0:0:1]/", "[::1] is the loopback address (::1/128)"],
		["https://[fc00::1]/", "[fc00::1] is a unique local address (fc00::/7)"],
		["https://[fd12:3456:789a::1]/", "[fd12:3456:789a::1] is a unique local address (fc00::/7)"],
		["https://[fe80::1]/", "[fe80::1] is a link-local address (fe80::/10)"],
		["https://[febf::1]/", "[febf::1] is a link-local address (fe80::/10)"],
		["https://[fec0::1]/", "[fec0::1] is a site-local address (fec0::/10)"],
		["https://[ff02::1]/", "[ff02::1] is a multicast address (ff00::/8)"],
		["https://[64:ff9b:1::a00:1]/", "[64:ff9b:1::a00:1] is a local-use NAT64 address (64:ff9b:1::/48)"],
		// IPv6 carrying an IPv4 address: the IPv4 rule applies to it.
		["https://[::ffff:127.0.0.1]/", "[::ffff:7f00:1] embeds 127.0.0.1 (IPv4-mapped), a loopback address (127.0.0.0/8)"],
		["https://[::ffff:10.0.0.5]:8443/", "[::ffff:a00:5] embeds 10.0.0.5 (IPv4-mapped), a private address (10.0.0.0/8)"],
		["https://[::127.0.0.1]/", "[::7f00:1] embeds 127.0.0.1 (IPv4-compatible), a loopback address (127.0.0.0/8)"],
		["https://[::ffff:0:169.254.169.254]/", "[::ffff:0:a9fe:a9fe] embeds 169.254.169.254 (IPv4-translated), a link-local address (169.254.0.0/16)"],
		["https://[64:ff9b::10.0.0.1]/", "[64:ff9b::a00:1] embeds 10.0.0.1 (NAT64), a private address (10.0.0.0/8)"],
		["https://[64:ff9b::a9fe:a9fe]/", "[64:ff9b::a9fe:a9fe] embeds 169.254.169.254 (NAT64), a link-local address (169.254.0.0/16)"],
		["https://[2002:a00:1::1]/", "[2002:a00:1::1] embeds 10.0.0.1 (6to4), a private address (10.0.0.0/8)"],
		["https://[2002:7f00:1::]/", "[2002:7f00:1::] embeds 127.0.0.1 (6to4), a loopback address (127.0.0.0/8)"],
		["https://[2001:0:a9fe:a9fe::1]/", "[2001:0:a9fe:a9fe::1] embeds 169.254.169.254 (Teredo server), a link-local address (169.254.0.0/16)"],
		["https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", "[2001:0:4136:e378:8000:63bf:f5ff:fffe] embeds 10.0.0.1 (Teredo client), a private address (10.0.0.0/8)"],
		// Names that resolve only inside a machine or a network.
		["https://localhost/hook", "localhost is a local or private-use name (localhost), which resolves only inside a network"],
		["https://LOCALHOST./hook", "localhost. is a local or private-use name (localhost), which resolves only inside a network"],
		["https://api.localhost/", "api.localhost is a local or private-use name (*.localhost), which resolves only inside a network"],
		["https://printer.local/", "printer.local is a local or private-use name (*.local), which resolves only inside a network"],
		["https://metadata.google.internal./computeMetadata/v1/", "metadata.google.internal. is a local or private-use name (*.internal), which resolves only inside a network"],
		["https://router.home.arpa/", "router.home.arpa is a local or private-use name (*.home.arpa), which resolves only inside a network"],
		["https://nas.lan/", "nas.lan is a local or private-use name (*.lan), which resolves only inside a network"],
		["https://wiki.intranet/", "wiki.intranet is a local or private-use name (*.intranet), which resolves only inside a network"],
		["https://receiver/hook", "receiver has no dot: a single-label name resolves only inside a network; give the receiver's full public name"],
		["https://elastic:9200/", "elastic has no dot: a single-label name resolves only inside a network; give the receiver's full public name"],
	])("refuses %s: %s", async (url, why) => {
		const { appId } = await createApp();
		expect(await expectMessage(await put(appId, { url }), 400)).toBe(`${PUBLIC_ONLY}${why}`);
	});

	it.each([
		"https://hooks.example.com/x",
		"https://hooks.example.com./x",
		"https://localhost.example.com/x",
		"https://93.184.216.34/",
		"https://172.32.0.1/",
		"https://100.128.0.1/",
		"https://198.20.0.1/",
		"https://[2606:4700::1111]/",
		"https://[::ffff:93.184.216.34]/",
		"https://[2002:5db8:d822::1]/",
	])("accepts %s, a public destination", async (url) => {
		const { appId } = await createApp();
		const response = await put(appId, { url });
		expect(response.status).toBe(200);
		expect(((await response.json()) as { url: string }).url).toBe(url);
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
		expect(await verifiedTimestamp(secret, request?.headers, request?.body ?? "")).not.toBeNull();
		// Under another secret it does not verify.
		const other = `whsec_${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}`;
		expect(await verifiedTimestamp(other, request?.headers, request?.body ?? "")).toBeNull();
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

	it.each([
		["https://169.254.169.254/latest/meta-data/", `${PUBLIC_ONLY}169.254.169.254 is a link-local address (169.254.0.0/16)`],
		["https://[::ffff:a00:5]:8443/", `${PUBLIC_ONLY}[::ffff:a00:5] embeds 10.0.0.5 (IPv4-mapped), a private address (10.0.0.0/8)`],
		["http://localhost:9200/", HTTPS_ONLY],
	])("never fetches a stored URL the rule now refuses (%s): it answers why it was not sent", async (url, problem) => {
		const { appId } = await createApp();
		await setWebhook(appId);
		// As a row stored before the rule existed (or under a development setting since turned off) holds it.
		await env.DB.prepare("UPDATE webhooks SET url = ?2 WHERE app_id = ?1").bind(appId, url).run();
		const hook = receiver(() => 204);
		const response = await test(appId);
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({
			eventId: expect.stringMatching(/^evt_[0-9a-f]{32}$/),
			delivered: false,
			error: `Not sent: ${problem}; set the webhook again (PUT) with an allowed URL`,
		});
		expect(hook.received).toEqual([]);
	});

	it("answers 404 when the application has no webhook", async () => {
		const { appId } = await createApp();
		expect(await expectMessage(await test(appId), 404)).toMatch(/has no webhook/);
	});
});
