import { beforeAll, describe, expect, it } from "vitest";
import {
	ScormCloud,
	basePath,
	basicClient,
	expectFailure,
	invoke,
	managementClient,
	mintToken,
	newClient,
	oauthClient,
	provisionApp,
	unique,
	type ProvisionedApp,
} from "./helpers";

let app: ProvisionedApp;

beforeAll(async () => {
	app = await provisionApp();
});

describe("PingApi.pingAppId", () => {
	it("answers pong with Basic credentials", async () => {
		const ping = new ScormCloud.PingApi(basicClient(app.appId, app.secret));
		const { data, response } = await invoke<ScormCloud.PingSchema>((done) => ping.pingAppId(done));
		expect(response.status).toBe(200);
		expect(data).toBeInstanceOf(ScormCloud.PingSchema);
		expect(data.apiMessage).toBe("pong");
		expect(Math.abs(Date.parse(data.currentTime ?? "") - Date.now())).toBeLessThan(60_000);
	});

	it("answers pong with a token holding read:ping", async () => {
		const token = await mintToken(app, "read:ping");
		const ping = new ScormCloud.PingApi(oauthClient(token.accessToken ?? ""));
		const { data } = await invoke<ScormCloud.PingSchema>((done) => ping.pingAppId(done));
		expect(data.apiMessage).toBe("pong");
	});

	it("works through ApiClient.instance, configured as the client's README does", async () => {
		const { instance } = ScormCloud.ApiClient;
		instance.basePath = basePath();
		instance.authentications.APP_NORMAL.username = app.appId;
		instance.authentications.APP_NORMAL.password = app.secret;
		const { data } = await invoke<ScormCloud.PingSchema>((done) => new ScormCloud.PingApi().pingAppId(done));
		expect(data.apiMessage).toBe("pong");
	});

	it("ignores the cache-busting _=<timestamp> the client adds when cache is off", async () => {
		const client = basicClient(app.appId, app.secret);
		client.cache = false;
		const { data } = await invoke<ScormCloud.PingSchema>((done) => new ScormCloud.PingApi(client).pingAppId(done));
		expect(data.apiMessage).toBe("pong");
	});

	it("reports 401 for a wrong secret", async () => {
		const ping = new ScormCloud.PingApi(basicClient(app.appId, `${app.secret}x`));
		await expectFailure((done) => ping.pingAppId(done), 401);
	});

	it("reports 403 naming read:ping for a token without it", async () => {
		const token = await mintToken(app, "read:about");
		const ping = new ScormCloud.PingApi(oauthClient(token.accessToken ?? ""));
		expect(await expectFailure((done) => ping.pingAppId(done), 403)).toMatch(/read:ping/);
	});
});

describe("AboutApi.getAbout", () => {
	it("answers version and distribution", async () => {
		const about = new ScormCloud.AboutApi(basicClient(app.appId, app.secret));
		const { data } = await invoke<ScormCloud.AboutSchema>((done) => about.getAbout(done));
		expect(data).toBeInstanceOf(ScormCloud.AboutSchema);
		expect(data.version).toEqual(expect.any(String));
		expect(data.distribution).toEqual(expect.any(String));
	});
});

describe("AuthenticationApi.getAppToken", () => {
	it("answers an ApplicationToken the client parses, with the default expiration of 300 s", async () => {
		const auth = new ScormCloud.AuthenticationApi(basicClient(app.appId, app.secret));
		const { data, response } = await invoke<ScormCloud.ApplicationToken>((done) =>
			auth.getAppToken("read:ping read:learner", {}, done),
		);
		expect(response.status).toBe(200);
		expect(data).toBeInstanceOf(ScormCloud.ApplicationToken);
		expect(data.accessToken).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
		expect(data.expiresIn).toBe(300);
		expect(data.tokenType).toBe("Bearer");
	});

	it("honours the expiration option", async () => {
		const token = await mintToken(app, "read:ping", 3600);
		expect(token.expiresIn).toBe(3600);
	});

	it("reports 400 naming an unknown scope", async () => {
		const auth = new ScormCloud.AuthenticationApi(basicClient(app.appId, app.secret));
		expect(await expectFailure((done) => auth.getAppToken("read:ping write:course", {}, done), 400)).toMatch(
			/write:course/,
		);
	});

	it("reports 400 for an expiration over 30 days", async () => {
		const auth = new ScormCloud.AuthenticationApi(basicClient(app.appId, app.secret));
		expect(await expectFailure((done) => auth.getAppToken("read:ping", { expiration: 2_592_001 }, done), 400)).toMatch(
			/expiration/,
		);
	});

	it("reports 401 for a wrong secret", async () => {
		const auth = new ScormCloud.AuthenticationApi(basicClient(app.appId, "not-the-secret"));
		await expectFailure((done) => auth.getAppToken("read:ping", {}, done), 401);
	});
});

describe("ApplicationManagementApi.createToken", () => {
	const request = (scopes: string[], expiry: Date) => {
		const permissions = new ScormCloud.PermissionsSchema();
		permissions.scopes = scopes;
		return new ScormCloud.TokenRequestSchema(permissions, expiry);
	};

	it("answers a token in result that authenticates with its scopes only", async () => {
		const auth = new ScormCloud.ApplicationManagementApi(basicClient(app.appId, app.secret));
		const { data, response } = await invoke<ScormCloud.StringResultSchema>((done) =>
			auth.createToken(request(["read:ping"], new Date(Date.now() + 600_000)), done),
		);
		expect(response.status).toBe(200);
		expect(data).toBeInstanceOf(ScormCloud.StringResultSchema);
		expect(data.result).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
		const { data: pong } = await invoke<ScormCloud.PingSchema>((done) =>
			new ScormCloud.PingApi(oauthClient(data.result ?? "")).pingAppId(done),
		);
		expect(pong.apiMessage).toBe("pong");
		const about = new ScormCloud.AboutApi(oauthClient(data.result ?? ""));
		expect(await expectFailure((done) => about.getAbout(done), 403)).toMatch(/read:about/);
	});

	it("reports 400 for an expiry in the past or an unknown scope", async () => {
		const auth = new ScormCloud.ApplicationManagementApi(basicClient(app.appId, app.secret));
		expect(
			await expectFailure((done) => auth.createToken(request(["read:ping"], new Date(Date.now() - 1000)), done), 400),
		).toMatch(/expiry/);
		expect(
			await expectFailure((done) => auth.createToken(request(["write:course"], new Date(Date.now() + 60_000)), done), 400),
		).toMatch(/write:course/);
	});
});

describe("ApplicationManagementApi", () => {
	const management = () => new ScormCloud.ApplicationManagementApi(managementClient());

	it("creates an application and lists it", async () => {
		const request = new ScormCloud.ApplicationRequestSchema();
		request.name = unique("listed");
		const { data: created } = await invoke<ScormCloud.ApplicationSchema>((done) =>
			management().createApplication(request, done),
		);
		expect(created).toBeInstanceOf(ScormCloud.ApplicationSchema);
		expect(created.name).toBe(request.name);
		const { data: list } = await invoke<ScormCloud.ApplicationListSchema>((done) => management().getApplicationList(done));
		expect(list.applications?.map(({ id, name }) => ({ id, name }))).toContainEqual({ id: created.id, name: request.name });
	});

	it("creates, lists, disables and deletes a credential; a disabled one stops authenticating", async () => {
		const own = await provisionApp();
		const request = new ScormCloud.CredentialRequestSchema();
		request.name = "second";
		const { data: created } = await invoke<ScormCloud.CredentialCreatedSchema>((done) =>
			management().createCredential(own.appId, request, done),
		);
		expect(created).toBeInstanceOf(ScormCloud.CredentialCreatedSchema);
		expect(created).toMatchObject({ name: "second", status: "Enabled" });
		expect(created.credential?.length).toBeGreaterThanOrEqual(43);

		const { data: list } = await invoke<ScormCloud.CredentialListSchema>((done) =>
			management().getCredentials(own.appId, done),
		);
		expect(list.credentials?.map(({ id }) => id).sort()).toEqual([own.credentialId, created.id].sort());
		for (const credential of list.credentials ?? []) expect(credential.credential).toBeUndefined();

		const ping = new ScormCloud.PingApi(basicClient(own.appId, created.credential ?? ""));
		await invoke((done) => ping.pingAppId(done));
		const disable = new ScormCloud.CredentialRequestSchema();
		disable.active = false;
		const { response: updated } = await invoke<null>((done) =>
			management().updateCredential(own.appId, created.id ?? "", disable, done),
		);
		expect(updated.status).toBe(204);
		await expectFailure((done) => ping.pingAppId(done), 401);

		const { response: deleted } = await invoke<null>((done) =>
			management().deleteCredential(own.appId, created.id ?? "", done),
		);
		expect(deleted.status).toBe(204);
		await expectFailure((done) => management().deleteCredential(own.appId, created.id ?? "", done), 404);
	});

	it("reports 401 to application credentials", async () => {
		const client = newClient();
		client.authentications.APP_MANAGEMENT.username = app.appId;
		client.authentications.APP_MANAGEMENT.password = app.secret;
		await expectFailure((done) => new ScormCloud.ApplicationManagementApi(client).getApplicationList(done), 401);
	});
});
