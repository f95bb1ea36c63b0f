// Drives the service through the official SCORM Cloud client (callback style, superagent 3 underneath), as an
// integration written for SCORM Cloud would after changing only its base path.
import { randomUUID } from "node:crypto";
import ScormCloud from "@rusticisoftware/scormcloud-api-v2-client-javascript";
import { expect, inject } from "vitest";

export { ScormCloud };

export const basePath = () => inject("basePath");

export interface Outcome<T> {
	data: T;
	response: ScormCloud.HttpResponse;
}

/** Runs one client call and settles with what its callback received (data and the raw HTTP response). */
export function invoke<T>(start: (callback: ScormCloud.Callback<T>) => void): Promise<Outcome<T>> {
	return new Promise((resolve, reject) => {
		start((error, data, response) => {
			if (!error) return resolve({ data, response });
			// superagent's message is only the status text; the body says what the service objected to.
			if (error.response) error.message = `${error.message} (${error.status}): ${error.response.text}`;
			reject(error);
		});
	});
}

/**
 * Runs a call that must fail, asserts the status the client reports and the MessageSchema body, and returns the
 * message. HEAD answers have no body, so `bodyless` skips the body check.
 */
export async function expectFailure<T>(
	start: (callback: ScormCloud.Callback<T>) => void,
	status: number,
	options: { bodyless?: boolean } = {},
): Promise<string> {
	const outcome = await invoke(start).then(
		(success) => ({ success }),
		(error: ScormCloud.ClientError) => ({ error }),
	);
	if (!("error" in outcome)) {
		throw new Error(`expected ${status}, got ${outcome.success.response.status} ${outcome.success.response.text}`);
	}
	const { error } = outcome;
	expect(error.status, error.response?.text ?? error.message).toBe(status);
	if (options.bodyless) return "";
	const body = error.response?.body;
	expect(body).toEqual({ message: expect.any(String) });
	const { message } = body as { message: string };
	// An unknown resource, not an unrouted path (app.notFound's wording): a missing route must not pass for it.
	if (status === 404) expect(message).not.toMatch(/^No route matches/);
	return message;
}

/** A short unique id, so every test makes its own data. */
export const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

export const basicAuthorization = (username: string, password: string) =>
	`Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;

/** A fresh ApiClient pointed at the service: the one change an existing integration makes. */
export function newClient(): ScormCloud.ApiClient {
	const client = new ScormCloud.ApiClient();
	client.basePath = basePath();
	return client;
}

export function managementClient(): ScormCloud.ApiClient {
	const client = newClient();
	client.authentications.APP_MANAGEMENT.username = inject("managementAppId");
	client.authentications.APP_MANAGEMENT.password = inject("managementSecretKey");
	return client;
}

export function basicClient(appId: string, secret: string): ScormCloud.ApiClient {
	const client = newClient();
	client.authentications.APP_NORMAL.username = appId;
	client.authentications.APP_NORMAL.password = secret;
	return client;
}

export function oauthClient(accessToken: string): ScormCloud.ApiClient {
	const client = newClient();
	client.authentications.OAUTH.accessToken = accessToken;
	return client;
}

export interface ProvisionedApp {
	appId: string;
	credentialId: string;
	secret: string;
}

/** An application and one enabled credential, created through the client's ApplicationManagementApi. */
export async function provisionApp(name = unique("interop")): Promise<ProvisionedApp> {
	const management = new ScormCloud.ApplicationManagementApi(managementClient());
	const request = new ScormCloud.ApplicationRequestSchema();
	request.name = name;
	const { data: app } = await invoke<ScormCloud.ApplicationSchema>((done) => management.createApplication(request, done));
	const credentialRequest = new ScormCloud.CredentialRequestSchema();
	credentialRequest.name = "interop";
	const { data: credential } = await invoke<ScormCloud.CredentialCreatedSchema>((done) =>
		management.createCredential(app.id ?? "", credentialRequest, done),
	);
	if (!app.id || !credential.id || !credential.credential) {
		throw new Error(`provisioning returned incomplete data: ${JSON.stringify({ app, credential })}`);
	}
	return { appId: app.id, credentialId: credential.id, secret: credential.credential };
}

/** Realm users are not in the SCORM Cloud client (they live in SCORM Cloud's web app), so plain fetch. */
export async function putRealmUser(email: string, role: "owner" | "admin" | "member"): Promise<void> {
	const response = await fetch(`${basePath()}/appManagement/users/${encodeURIComponent(email)}`, {
		method: "PUT",
		headers: {
			Authorization: basicAuthorization(inject("managementAppId"), inject("managementSecretKey")),
			"Content-Type": "application/json",
		},
		body: JSON.stringify({ role }),
	});
	if (response.status !== 204) throw new Error(`PUT realm user: ${response.status} ${await response.text()}`);
}

/** Mints a token with the client's own token call (Basic APP_NORMAL, form-encoded). */
export async function mintToken(app: ProvisionedApp, scope: string, expiration?: number): Promise<ScormCloud.ApplicationToken> {
	const auth = new ScormCloud.AuthenticationApi(basicClient(app.appId, app.secret));
	const opts = expiration === undefined ? {} : { expiration };
	const { data } = await invoke<ScormCloud.ApplicationToken>((done) => auth.getAppToken(scope, opts, done));
	return data;
}

export type AuthMode = "Basic" | "OAuth";
export const AUTH_MODES: AuthMode[] = ["Basic", "OAuth"];

/** Scopes an OAuth integration would ask for to use learners and registrations (admin only where needed). */
const WORKING_SCOPES = "read:learner write:learner read:registration write:registration delete:registration";

/** One integration's view of the service: the client APIs under one auth mode, plus how to read jobs. */
export interface Session {
	mode: AuthMode;
	app: ProvisionedApp;
	learners: ScormCloud.LearnerApi;
	registrations: ScormCloud.RegistrationApi;
	/** deleteAllLearnerData needs `admin`: Basic has every scope, OAuth gets a separate admin token. */
	eraser: ScormCloud.LearnerApi;
	/** The Authorization header for GET /jobs/{id}, which the client does not know. */
	authorization: string;
}

export async function openSession(mode: AuthMode, app: ProvisionedApp): Promise<Session> {
	if (mode === "Basic") {
		const client = basicClient(app.appId, app.secret);
		return {
			mode,
			app,
			learners: new ScormCloud.LearnerApi(client),
			registrations: new ScormCloud.RegistrationApi(client),
			eraser: new ScormCloud.LearnerApi(client),
			authorization: basicAuthorization(app.appId, app.secret),
		};
	}
	const working = await mintToken(app, WORKING_SCOPES);
	const admin = await mintToken(app, "admin");
	const client = oauthClient(working.accessToken ?? "");
	return {
		mode,
		app,
		learners: new ScormCloud.LearnerApi(client),
		registrations: new ScormCloud.RegistrationApi(client),
		eraser: new ScormCloud.LearnerApi(oauthClient(admin.accessToken ?? "")),
		authorization: `Bearer ${working.accessToken}`,
	};
}

export interface Registered {
	learnerId: string;
	registrationId: string;
	courseId: string;
}

/** Creates a registration (and so a learner) through createRegistration. */
export async function register(
	session: Session,
	options: {
		learnerId?: string;
		courseId?: string;
		registrationId?: string;
		email?: string;
		firstName?: string;
		lastName?: string;
		learnerTags?: string[];
		registrationTags?: string[];
	} = {},
): Promise<Registered> {
	const learnerId = options.learnerId ?? unique("learner");
	const courseId = options.courseId ?? unique("course");
	const registrationId = options.registrationId ?? unique("reg");
	const learner = new ScormCloud.LearnerSchema(learnerId);
	if (options.email !== undefined) learner.email = options.email;
	if (options.firstName !== undefined) learner.firstName = options.firstName;
	if (options.lastName !== undefined) learner.lastName = options.lastName;
	const registration = new ScormCloud.CreateRegistrationSchema(courseId, learner, registrationId);
	if (options.learnerTags) registration.learnerTags = options.learnerTags;
	if (options.registrationTags) registration.registrationTags = options.registrationTags;
	const { response } = await invoke<null>((done) => session.registrations.createRegistration(registration, {}, done));
	expect(response.status).toBe(204);
	return { learnerId, registrationId, courseId };
}

export const tagList = (tags: string[]) => {
	const list = new ScormCloud.TagListSchema();
	list.tags = tags;
	return list;
};

export interface Job {
	id: string;
	type: string;
	status: "queued" | "running" | "completed" | "failed";
	createdDate: string;
	completedDate?: string;
	registrationsAffected: number;
	tagsRemoved?: number;
	message?: string;
}

// An application's job id names the application (its shard is found from it): `<appId>.<uuid>`.
const JOB_LOCATION = /^\/api\/v2\/jobs\/[A-Z2-9]{10}\.[0-9a-f-]{36}$/;

/** The job a 204 names in its Location header (read from the raw response the client hands the callback). */
export function jobLocation(response: ScormCloud.HttpResponse): string {
	const location = response.headers.location ?? "";
	expect(location).toMatch(JOB_LOCATION);
	return location;
}

/** Polls GET /api/v2/jobs/{id} until the job completes or fails, or the timeout passes. */
export async function waitForJob(session: Session, location: string, timeoutMs = 30_000): Promise<Job> {
	const deadline = Date.now() + timeoutMs;
	let last = "";
	while (Date.now() < deadline) {
		const response = await fetch(new URL(location, basePath()), { headers: { Authorization: session.authorization } });
		last = `${response.status} ${await response.clone().text()}`;
		// The job row is written before the 204, so anything but 200 is an answer, not a "not yet".
		if (response.status !== 200) throw new Error(`GET ${location}: ${last}`);
		const job = (await response.json()) as Job;
		if (job.status === "completed" || job.status === "failed") return job;
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
	throw new Error(`job ${location} did not finish within ${timeoutMs} ms; last answer: ${last}`);
}

/**
 * The canonical JSON the service signs and hashes (docs/privacy.md, "Erasure receipts"; docs/privacy-audit.md): no
 * whitespace, every object's keys sorted at every depth — written here from the docs, as a verifier would.
 */
export const canonical = (value: unknown): string =>
	Array.isArray(value)
		? `[${value.map(canonical).join(",")}]`
		: value !== null && typeof value === "object"
			? `{${Object.keys(value)
					.sort()
					.map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`)
					.join(",")}}`
			: JSON.stringify(value);
