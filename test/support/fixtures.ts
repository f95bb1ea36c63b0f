import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { call } from "./client";
import { expectNoContent } from "./expect";
import { seedApplication } from "./seed";

/**
 * What a test starts from, made through the API as a client would: applications and their credentials, auth
 * headers and tokens, realm users, learners (through registrations), and values no other test uses.
 */

export const basicHeader = (id: string, secret: string) => `Basic ${btoa(`${id}:${secret}`)}`;

/** The realm's management credentials (vitest.config.ts). */
export const MANAGEMENT = basicHeader(env.MANAGEMENT_APP_ID, env.MANAGEMENT_SECRET_KEY);

/** A value no other test uses, so that a scan of the database can tell it apart. */
export const uniqueValue = (label: string) => `${label}-${crypto.randomUUID()}`;

/** `count` distinct strings: prefix0, prefix1, … */
export const range = (count: number, prefix: string) => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

/** Ids that a path must carry intact: reserved URL characters, percent signs, quotes, spaces, non-ASCII. */
export const UNUSUAL_IDS = [
	"with/slash/es",
	"100% sure",
	"%2F already encoded",
	"spaces in the middle ",
	'double "quotes"',
	"single 'quotes'",
	"non-ASCII: Łódź 学习者 🎓",
	"?query#fragment&amp",
	"back\\slash",
];

export interface TestApp {
	appId: string;
	credentialId: string;
	secret: string;
	auth: string;
}

let appSerial = 0;

/** The application with one enabled credential, made through the API. */
async function withCredential(appId: string): Promise<TestApp> {
	const cred = await call("POST", `/appManagement/${appId}/credentials`, { auth: MANAGEMENT, body: { name: "main" } });
	expect(cred.status).toBe(200);
	const { id: credentialId, credential: secret } = (await cred.json()) as { id: string; credential: string };
	return { appId, credentialId, secret, auth: basicHeader(appId, secret) };
}

/** A fresh application with one enabled credential, placed as the API places one. */
export async function createApp(name = `app-${++appSerial}`): Promise<TestApp> {
	const created = await call("POST", "/appManagement/applications", { auth: MANAGEMENT, body: { name } });
	expect(created.status).toBe(200);
	const { id: appId } = (await created.json()) as { id: string };
	return withCredential(appId);
}

/** A fresh application placed on that shard (seedApplication), with one enabled credential. */
export async function appOnShard(shard: string): Promise<TestApp> {
	return withCredential(await seedApplication({ shard }));
}

/** A bearer token for the app, with the given scopes. */
export async function mintToken(app: TestApp, scope: string, expiration?: number): Promise<string> {
	const form = new URLSearchParams({ scope });
	if (expiration !== undefined) form.set("expiration", String(expiration));
	const response = await call("POST", "/oauth/authenticate/application/token", {
		auth: app.auth,
		body: form.toString(),
		headers: { "Content-Type": "application/x-www-form-urlencoded" },
	});
	expect(response.status).toBe(200);
	const { access_token } = (await response.json()) as { access_token: string };
	return `Bearer ${access_token}`;
}

/** A realm user with that role, allowed (owner, admin) or not (member) to request erasures. */
export async function realmUser(role: "owner" | "admin" | "member"): Promise<string> {
	const email = `${uniqueValue(role)}@example.com`;
	const response = await call("PUT", `/appManagement/users/${encodeURIComponent(email)}`, {
		auth: MANAGEMENT,
		body: { role },
	});
	expect(response.status).toBe(204);
	return email;
}

export interface LearnerFields {
	id: string;
	email?: string | null;
	firstName?: string | null;
	lastName?: string | null;
}

let registrationSerial = 0;

/**
 * Creates a registration naming the learner (an id, or its details), which brings the learner into existence;
 * `extra` adds to the body (learnerTags, registrationTags, …). Returns the registration's id.
 */
export async function enrol(app: TestApp, learner: string | LearnerFields, extra: Record<string, unknown> = {}): Promise<string> {
	const registrationId = uniqueValue(`registration-${++registrationSerial}`);
	const response = await call("POST", "/registrations", {
		auth: app.auth,
		body: { courseId: "course-1", registrationId, learner: typeof learner === "string" ? { id: learner } : learner, ...extra },
	});
	expect(response.status).toBe(204);
	return registrationId;
}

/** The learner as GET /registrations/{id} shows it on that registration. */
export async function learnerOn(app: TestApp, registrationId: string): Promise<Record<string, unknown>> {
	const response = await call("GET", `/registrations/${encodeURIComponent(registrationId)}`, { auth: app.auth });
	expect(response.status).toBe(200);
	const body = (await response.json()) as { learner: Record<string, unknown> };
	return body.learner;
}

/**
 * The tags of a learner or a registration as GET /{kind}/{id}/tags answers them: null on 404 (no such owner in
 * the application), otherwise asserting the 200 and a body of exactly `{ tags }`.
 */
export async function tagsOf(app: TestApp, kind: "learner" | "registrations", id: string): Promise<string[] | null> {
	const response = await call("GET", `/${kind}/${encodeURIComponent(id)}/tags`, { auth: app.auth });
	if (response.status === 404) return null;
	expect(response.status).toBe(200);
	const body = (await response.json()) as { tags: string[] };
	expect(Object.keys(body)).toEqual(["tags"]);
	return body.tags;
}

/** Adds the tags to a learner or a registration through PUT /{kind}/{id}/tags, asserting the 204. */
export async function putTags(app: TestApp, kind: "learner" | "registrations", id: string, tags: string[]): Promise<void> {
	await expectNoContent(await call("PUT", `/${kind}/${encodeURIComponent(id)}/tags`, { auth: app.auth, body: { tags } }));
}
