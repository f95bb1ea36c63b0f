// Every official SCORM Cloud client against `wrangler dev`, by the requests each one sends (SPEC §13). Rustici
// generates the same client for JavaScript, Python, PHP, Java, .NET and Ruby; each builds its requests its own way,
// and an integration changes only the base URL. The JavaScript client runs itself in the other interop suites;
// here each client is a profile, written from reading its source (4.0.0; JavaScript 3.0.0): how it joins its
// default host and a path, the headers it sends with every call, the body it sends when an operation has none,
// how it writes booleans and dates in a query, and the query parameters it always adds. Each profile then makes
// the calls the service serves, and reads the answers with the field names that client's models read.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { basePath, basicAuthorization, putRealmUser, unique } from "./helpers";

interface Profile {
	client: string;
	/** The URL of a path: the default hosts end in "/" and the paths start with one, unless the client joins them. */
	url: (path: string) => string;
	/** Headers sent with every call, whatever its method or body. */
	headers: Record<string, string>;
	/** What a POST, PUT or DELETE without a body parameter carries (undefined: nothing). */
	emptyBody?: string;
	/** Whether a call without a body still says Content-Type: application/json. */
	contentTypeAlways: boolean;
	flag: (value: boolean) => string;
	date: (value: Date) => string;
	/** Query parameters the client sends with every call of an operation, from its generated defaults. */
	defaults: Partial<Record<"getApplications" | "getApplicationInfo" | "getRegistrations" | "getAppToken", Record<string, string>>>;
	/** The names the client's CredentialSchema reads its dates from (the JavaScript model reads none). */
	credentialDates: ("created" | "updated")[];
}

const base = () => basePath();

const PROFILES: Profile[] = [
	{
		// superagent: basePath with the trailing slash removed; request.type(contentType) on every call.
		client: "JavaScript 3.0.0",
		url: (path) => `${base()}${path}`,
		headers: { Accept: "application/json" },
		contentTypeAlways: true,
		flag: String,
		date: (value) => value.toISOString(),
		defaults: {},
		credentialDates: [],
	},
	{
		// urllib3: host "https://cloud.scorm.com/api/v2/" + path; rest.py sets Content-Type application/json when none is
		// given and sends "{}" as the body of a POST, PUT or DELETE whose operation has none; bools as str(True).
		client: "Python 4.0.0",
		url: (path) => `${base()}/${path}`,
		headers: { Accept: "application/json", "User-Agent": "Swagger-Codegen/4.0.0/python" },
		emptyBody: "{}",
		contentTypeAlways: true,
		flag: (value) => (value ? "True" : "False"),
		// datetime.isoformat() of a naive datetime: microseconds, no zone.
		date: (value) => value.toISOString().replace("Z", "000"),
		defaults: {},
		credentialDates: ["created", "updated"],
	},
	{
		// Guzzle: host ".../api/v2/" + path; HeaderSelector gives Content-Type application/json to every call, the body
		// empty when there is none; ObjectSerializer writes bools as "true"/"false", dates as DateTime::ATOM. The
		// generated defaults of optional parameters are sent with every call.
		client: "PHP 4.0.0",
		url: (path) => `${base()}/${path}`,
		headers: { Accept: "application/json", "User-Agent": "Swagger-Codegen/4.0.0/php" },
		emptyBody: "",
		contentTypeAlways: true,
		flag: String,
		date: (value) => value.toISOString().replace(/\.\d{3}Z$/, "+00:00"),
		defaults: {
			getApplications: {
				datetimeFilter: "updated",
				filterBy: "app_id",
				orderBy: "updated_asc",
				includeCourseCount: "false",
				includeRegistrationCount: "false",
				includeTotalCount: "false",
			},
			getApplicationInfo: { includeCourseCount: "false", includeRegistrationCount: "false" },
			getRegistrations: {
				datetimeFilter: "created",
				filterBy: "registration_id",
				orderBy: "created_desc",
				includeChildResults: "false",
				includeInteractionsAndObjectives: "false",
				includeRuntime: "false",
				includeTotalCount: "false",
			},
			getAppToken: { expiration: "300" },
		},
		credentialDates: ["created", "updated"],
	},
	{
		// Jersey: target(basePath + path) with basePath ".../api/v2/"; Content-Type from the operation's consumes, an
		// empty entity when it has no body; parameterToString: String.valueOf, OffsetDateTime.toString.
		client: "Java 4.0.0",
		url: (path) => `${base()}/${path}`,
		headers: { Accept: "application/json", "User-Agent": "Swagger-Codegen/4.0.0/java" },
		emptyBody: "",
		contentTypeAlways: false,
		flag: String,
		date: (value) => value.toISOString(),
		defaults: {},
		credentialDates: ["created", "updated"],
	},
	{
		// RestSharp 109: BaseUrl ".../api/v2/" and resource "/path" merge without a doubled slash; no Content-Type without
		// a body; ParameterToString: Convert.ToString (True/False), dates with the "o" format (seven fractional digits,
		// no zone for an unspecified DateTime).
		client: ".NET 4.0.0",
		url: (path) => `${base()}${path}`,
		headers: { Accept: "application/json", "User-Agent": "Swagger-Codegen/4.0.0/csharp" },
		contentTypeAlways: false,
		flag: (value) => (value ? "True" : "False"),
		date: (value) => value.toISOString().replace(/\.(\d{3})Z$/, ".$10000"),
		defaults: {},
		credentialDates: ["created", "updated"],
	},
	{
		// Typhoeus: base_url collapses slashes and drops the trailing one; Content-Type application/json on every call;
		// no body without one; DateTime#to_s.
		client: "Ruby 4.0.0",
		url: (path) => `${base()}${path}`,
		headers: { Accept: "application/json", "User-Agent": "Swagger-Codegen/4.0.0/ruby" },
		contentTypeAlways: true,
		flag: String,
		date: (value) => value.toISOString().replace(/\.\d{3}Z$/, "+00:00"),
		defaults: {},
		credentialDates: ["created", "updated"],
	},
];

const MANAGEMENT = () => basicAuthorization(inject("managementAppId"), inject("managementSecretKey"));
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

interface Answer {
	status: number;
	headers: Headers;
	body: unknown;
}

/** One call as `profile`'s client sends it. */
async function send(
	profile: Profile,
	auth: string,
	method: "GET" | "HEAD" | "POST" | "PUT" | "DELETE",
	path: string,
	options: { json?: unknown; form?: Record<string, string>; query?: Record<string, string>; operation?: keyof Profile["defaults"] } = {},
): Promise<Answer> {
	const query = new URLSearchParams({ ...(options.operation && profile.defaults[options.operation]), ...options.query });
	const headers: Record<string, string> = { ...profile.headers, Authorization: auth };
	let body: string | undefined;
	if (options.form) {
		const form = new URLSearchParams({ ...(options.operation && profile.defaults[options.operation]), ...options.form });
		headers["Content-Type"] = "application/x-www-form-urlencoded";
		body = form.toString();
	} else if (options.json !== undefined) {
		headers["Content-Type"] = "application/json";
		body = JSON.stringify(options.json);
	} else {
		if (profile.contentTypeAlways) headers["Content-Type"] = "application/json";
		if (method !== "GET" && method !== "HEAD" && profile.emptyBody !== undefined) {
			headers["Content-Type"] = "application/json";
			body = profile.emptyBody;
		}
	}
	const search = !options.form && query.size > 0 ? `?${query}` : "";
	const response = await fetch(`${profile.url(path)}${search}`, { method, headers, body });
	const text = await response.text();
	return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

/** Asserts a status, showing the answer when it differs. */
function expectStatus(answer: Answer, status: number) {
	expect(answer.status, JSON.stringify(answer.body)).toBe(status);
}

const adminEmail = `${unique("dpo")}@example.com`;

beforeAll(async () => {
	await putRealmUser(adminEmail, "admin");
});

describe.each(PROFILES)("$client, by the requests it sends", (profile) => {
	const mgmt = MANAGEMENT;

	it("manages applications and credentials: applicationList, application info and update, allowDelete, credential dates", async () => {
		const created = await send(profile, mgmt(), "POST", "/appManagement/applications", { json: { name: unique("client-app") } });
		expectStatus(created, 200);
		const { id: appId } = created.body as { id: string; name: string };

		const credential = await send(profile, mgmt(), "POST", `/appManagement/${appId}/credentials`, { json: { name: "server", active: true } });
		expectStatus(credential, 200);
		const secretKey = (credential.body as { credential: string }).credential;
		const credentialId = (credential.body as { id: string }).id;
		for (const name of profile.credentialDates) expect((credential.body as Record<string, string>)[name]).toMatch(ISO);

		const credentials = await send(profile, mgmt(), "GET", `/appManagement/${appId}/credentials`);
		expectStatus(credentials, 200);
		for (const listed of (credentials.body as { credentials: Record<string, string>[] }).credentials) {
			expect(listed).toMatchObject({ id: credentialId, name: "server", status: "Enabled" });
			for (const name of profile.credentialDates) expect(listed[name]).toMatch(ISO);
		}
		expectStatus(await send(profile, mgmt(), "PUT", `/appManagement/${appId}/credentials/${credentialId}`, { json: { name: "renamed", active: true } }), 204);

		const list = await send(profile, mgmt(), "GET", "/appManagement/applicationList", {
			operation: "getApplications",
			query: { filter: appId, includeRegistrationCount: profile.flag(true), since: profile.date(new Date(Date.now() - 3_600_000)) },
		});
		expectStatus(list, 200);
		expect((list.body as { applications: unknown[] }).applications).toEqual([
			expect.objectContaining({ id: appId, allowDelete: true, registrationCount: 0, createDate: expect.stringMatching(ISO), updateDate: expect.stringMatching(ISO) }),
		]);
		const info = await send(profile, mgmt(), "GET", `/appManagement/applications/${appId}`, {
			operation: "getApplicationInfo",
			query: { includeCourseCount: profile.flag(true) },
		});
		expectStatus(info, 200);
		expect(info.body).toMatchObject({ id: appId, allowDelete: true, courseCount: 0 });
		expectStatus(await send(profile, mgmt(), "GET", "/appManagement/applications"), 200);

		expectStatus(await send(profile, mgmt(), "PUT", `/appManagement/applications/${appId}`, { json: { allowDelete: false } }), 204);
		const refused = await send(profile, mgmt(), "DELETE", `/appManagement/applications/${appId}`);
		expectStatus(refused, 409);
		expect((refused.body as { message: string }).message).toContain("allowDelete");
		expectStatus(await send(profile, mgmt(), "PUT", `/appManagement/applications/${appId}`, { json: { name: "renamed", allowDelete: true } }), 204);

		// The application still works, then goes.
		expectStatus(await send(profile, basicAuthorization(appId, secretKey), "GET", "/ping"), 200);
		expectStatus(await send(profile, mgmt(), "DELETE", `/appManagement/${appId}/credentials/${credentialId}`), 204);
		expectStatus(await send(profile, mgmt(), "DELETE", `/appManagement/applications/${appId}`), 204);
	});

	it("uses learners and registrations, with Basic credentials and a token", async () => {
		const created = await send(profile, mgmt(), "POST", "/appManagement/applications", { json: { name: unique("client-lms") } });
		const appId = (created.body as { id: string }).id;
		const credential = await send(profile, mgmt(), "POST", `/appManagement/${appId}/credentials`, { json: { name: "lms" } });
		const basic = basicAuthorization(appId, (credential.body as { credential: string }).credential);

		const ping = await send(profile, basic, "GET", "/ping");
		expectStatus(ping, 200);
		expect(ping.body).toMatchObject({ apiMessage: "pong", currentTime: expect.stringMatching(ISO) });
		expectStatus(await send(profile, basic, "GET", "/about"), 200);
		const token = await send(profile, basic, "POST", "/oauth/authenticate/application/token", {
			operation: "getAppToken",
			form: { scope: "read:learner write:learner read:registration write:registration delete:registration" },
		});
		expectStatus(token, 200);
		expect(token.body).toMatchObject({ token_type: "Bearer", expires_in: expect.any(Number) });
		const bearer = `Bearer ${(token.body as { access_token: string }).access_token}`;

		// An id with characters every client percent-encodes in a path (Ruby's leaves "/" alone: its row in docs/api.md
		// says so).
		const learnerId = `${unique("learner")}+ada@example.com`;
		const registrationId = unique("reg");
		const learnerPath = `/learner/${encodeURIComponent(learnerId)}`;
		expectStatus(
			await send(profile, bearer, "POST", "/registrations", {
				json: { courseId: "course-1", registrationId, learner: { id: learnerId, firstName: "Ada" }, learnerTags: ["blue"] },
			}),
			204,
		);
		expectStatus(await send(profile, bearer, "HEAD", `/registrations/${registrationId}`), 200);
		const registration = await send(profile, bearer, "GET", `/registrations/${registrationId}`, {
			query: { includeChildResults: profile.flag(false), includeRuntime: profile.flag(false) },
		});
		expectStatus(registration, 200);
		expect(registration.body).toMatchObject({
			id: registrationId,
			createdDate: expect.stringMatching(ISO),
			updated: expect.stringMatching(ISO),
			registrationCompletion: "UNKNOWN",
			registrationSuccess: "UNKNOWN",
			learner: { id: learnerId, firstName: "Ada" },
		});
		const listed = await send(profile, bearer, "GET", "/registrations", {
			operation: "getRegistrations",
			query: { learnerId, since: profile.date(new Date(Date.now() - 3_600_000)), includeTotalCount: profile.flag(true) },
		});
		expectStatus(listed, 200);
		expect((listed.body as { registrations: { id: string }[] }).registrations.map(({ id }) => id)).toEqual([registrationId]);

		expectStatus(await send(profile, bearer, "PUT", `/registrations/${registrationId}/tags`, { json: { tags: ["r1", "r2"] } }), 204);
		expectStatus(await send(profile, bearer, "PUT", "/registrations/tags", { json: { ids: [registrationId], tags: ["r3"] } }), 204);
		expectStatus(await send(profile, bearer, "DELETE", `/registrations/${registrationId}/tags`, { json: { tags: ["r1"] } }), 204);
		expect((await send(profile, bearer, "GET", `/registrations/${registrationId}/tags`)).body).toEqual({ tags: ["r2", "r3"] });

		expectStatus(await send(profile, bearer, "PUT", `${learnerPath}/tags`, { json: { tags: ["green"] } }), 204);
		expectStatus(await send(profile, bearer, "PUT", "/learner/tags", { json: { ids: [learnerId], tags: ["red"] } }), 204);
		expectStatus(await send(profile, bearer, "DELETE", `${learnerPath}/tags`, { json: { tags: ["blue"] } }), 204);
		expect((await send(profile, bearer, "GET", `${learnerPath}/tags`)).body).toEqual({ tags: ["green", "red"] });
		expectStatus(await send(profile, bearer, "POST", `${learnerPath}/updateInfo`, { json: { id: learnerId, lastName: "Lovelace" } }), 204);

		// delete-information has no body parameter: each client sends what it sends without one ("{}" from Python).
		const erased = await send(profile, basic, "POST", `${learnerPath}/delete-information`, { query: { userEmail: adminEmail } });
		expectStatus(erased, 204);
		expect(erased.headers.get("Location")).toMatch(/^\/api\/v2\/jobs\//);
		expectStatus(await send(profile, basic, "DELETE", `/registrations/${unique("no-such")}`), 404);
		expectStatus(await send(profile, mgmt(), "DELETE", `/appManagement/applications/${appId}`), 204);
	});
});
