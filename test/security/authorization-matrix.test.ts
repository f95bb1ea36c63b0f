import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { findPlacement } from "../../src/db/applications";
import { learnerHash } from "../../src/jobs/contract";
import { LIMITS } from "../../src/limits";
import { call } from "../support/client";
import { jobIdOf, waitForJob } from "../support/expect";
import { appOnShard, createApp, enrol, MANAGEMENT, mintToken, realmUser, type TestApp, uniqueValue } from "../support/fixtures";
import { type Access, fillPath, loadOperations, type Operation } from "../support/operations";
import { rowsOf, SHARDS, seedRegistrations, shardOf } from "../support/seed";

/**
 * Every operation of the OpenAPI document × every kind of caller, each cell's status fixed in EXPECTED. A new
 * route fails the first test until it has a row here, an entry in ACCESS and a request in REQUESTS.
 *
 * Tenancy lives here, once for every route (SPEC §1): another application reaching this one's resources is
 * answered exactly as for an unknown one (NOT_FOUND), learns nothing of them, and changes nothing of either
 * application's stored data.
 */

const COLUMNS = [
	"ownBasic",
	"ownToken",
	"tokenWithoutScope",
	"otherBasic",
	"otherToken",
	"management",
	"none",
	"malformed",
] as const;
type Column = (typeof COLUMNS)[number];
type Row = readonly [number, number, number, number, number, number, number, number];

/**
 * Columns: this application's Basic credentials · its bearer token holding the operation's scope in ACCESS
 * (admin where it names none) · its bearer token holding every other scope but admin · another application's
 * Basic · the other application's token with the scope · the realm's management credentials · no
 * Authorization header · a malformed one. On management operations the first two columns are "application
 * credentials on a management route"; on application operations the management column is "management
 * credentials on an application route". Another application reaching this one's resources answers 404.
 */
const EXPECTED: Record<string, Row> = {
	//                          own Basic  own token  no scope  other Basic  other token  management  none  malformed
	pingAppId:                 [200,       200,       403,      200,         200,         401,        401,  401],
	getAbout:                  [200,       200,       403,      200,         200,         401,        401,  401],
	getAppToken:               [200,       401,       401,      200,         401,         401,        401,  401],
	createToken:               [200,       401,       401,      200,         401,         401,        401,  401],
	putRealmUser:              [401,       401,       401,      401,         401,         204,        401,  401],
	deleteRealmUser:           [401,       401,       401,      401,         401,         204,        401,  401],
	getRealmUsers:             [401,       401,       401,      401,         401,         200,        401,  401],
	createApplication:         [401,       401,       401,      401,         401,         200,        401,  401],
	getApplicationList:        [401,       401,       401,      401,         401,         200,        401,  401],
	getApplications:           [401,       401,       401,      401,         401,         200,        401,  401],
	getApplicationInfo:        [401,       401,       401,      401,         401,         200,        401,  401],
	updateApplication:         [401,       401,       401,      401,         401,         204,        401,  401],
	deleteApplication:         [401,       401,       401,      401,         401,         204,        401,  401],
	moveApplication:           [401,       401,       401,      401,         401,         204,        401,  401],
	deleteLearnerDataEverywhere: [401,     401,       401,      401,         401,         204,        401,  401],
	createCredential:          [401,       401,       401,      401,         401,         200,        401,  401],
	getCredentials:            [401,       401,       401,      401,         401,         200,        401,  401],
	updateCredential:          [401,       401,       401,      401,         401,         204,        401,  401],
	deleteCredential:          [401,       401,       401,      401,         401,         204,        401,  401],
	putLearnerTagsBatch:       [204,       204,       403,      404,         404,         401,        401,  401],
	getLearnerTags:            [200,       200,       403,      404,         404,         401,        401,  401],
	putLearnerTags:            [204,       204,       403,      404,         404,         401,        401,  401],
	deleteLearnerTags:         [204,       204,       403,      404,         404,         401,        401,  401],
	updateLearnerInfo:         [204,       204,       403,      404,         404,         401,        401,  401],
	deleteAllLearnerData:      [204,       204,       403,      404,         404,         401,        401,  401],
	deleteLearnersData:        [204,       204,       403,      404,         404,         401,        401,  401],
	// The other application lifts nothing of this one's (the learner is not suppressed there).
	deleteLearnerSuppression:  [204,       204,       403,      404,         404,         401,        401,  401],
	getSuppressions:           [401,       401,       401,      401,         401,         200,        401,  401],
	setWebhook:                [401,       401,       401,      401,         401,         200,        401,  401],
	getWebhook:                [401,       401,       401,      401,         401,         200,        401,  401],
	deleteWebhook:             [401,       401,       401,      401,         401,         204,        401,  401],
	testWebhook:               [401,       401,       401,      401,         401,         200,        401,  401],
	// The other application lists its own learners: none of this one's.
	getLearners:               [200,       200,       403,      200,         200,         401,        401,  401],
	// The other application creates its own registration under an id this one uses: ids are per application.
	createRegistration:        [204,       204,       403,      204,         204,         401,        401,  401],
	// The other application lists its own registrations: none of this one's.
	getRegistrations:          [200,       200,       403,      200,         200,         401,        401,  401],
	putRegistrationTagsBatch:  [204,       204,       403,      404,         404,         401,        401,  401],
	getRegistrationProgress:   [200,       200,       403,      404,         404,         401,        401,  401],
	deleteRegistration:        [204,       204,       403,      404,         404,         401,        401,  401],
	getRegistration:           [200,       200,       403,      404,         404,         401,        401,  401],
	getRegistrationTags:       [200,       200,       403,      404,         404,         401,        401,  401],
	putRegistrationTags:       [204,       204,       403,      404,         404,         401,        401,  401],
	deleteRegistrationTags:    [204,       204,       403,      404,         404,         401,        401,  401],
	// Job status is also open to the management credentials, which outlive a deleted application.
	getJob:                    [200,       200,       403,      404,         404,         200,        401,  401],
	getJobReceipt:             [200,       200,       403,      404,         404,         200,        401,  401],
	// An export's document: the application that asked, with admin (it holds everything about a person), or management.
	getJobExport:              [200,       200,       403,      404,         404,         200,        401,  401],
	exportLearnerData:         [204,       204,       403,      404,         404,         401,        401,  401],
	exportLearnerDataEverywhere: [401,     401,       401,      401,         401,         204,        401,  401],
	setRetentionPolicy:        [401,       401,       401,      401,         401,         200,        401,  401],
	getRetentionPolicy:        [401,       401,       401,      401,         401,         200,        401,  401],
	deleteRetentionPolicy:     [401,       401,       401,      401,         401,         204,        401,  401],
	getAuditTrail:             [401,       401,       401,      401,         401,         200,        401,  401],
	getAuditHead:              [401,       401,       401,      401,         401,         200,        401,  401],
	// The other application lists its own jobs: none of this one's.
	getJobs:                   [200,       200,       403,      200,         200,         401,        401,  401],
	getRealmJobs:              [401,       401,       401,      401,         401,         200,        401,  401],
	getRealmUsage:             [401,       401,       401,      401,         401,         200,        401,  401],
	getApplicationUsage:       [401,       401,       401,      401,         401,         200,        401,  401],
	getLearnerApplications:    [401,       401,       401,      401,         401,         200,        401,  401],
	getErasureReceiptKey:      [200,       200,       200,      200,         200,         200,        200,  200],
	getOpenApiDocument:        [200,       200,       200,      200,         200,         200,        200,  200],
	getDocsPage:               [200,       200,       200,      200,         200,         200,        200,  200],
	getDocsAsset:              [200,       200,       200,      200,         200,         200,        200,  200],
};

const notFound = (noun: string, id = "") => `${noun} [${id}] was not found`;

/**
 * The message another application gets where EXPECTED has it 404: the one an unknown id gets (SPEC §1, §3),
 * naming only this application's id.
 */
const NOT_FOUND: Record<string, (spec: RequestSpec, world: World) => string> = {
	putLearnerTagsBatch: (_, world) => `${notFound("Learner", world.learnerId)}; no tags were added`,
	getLearnerTags: ({ params }) => notFound("Learner", params?.learnerId),
	putLearnerTags: ({ params }) => notFound("Learner", params?.learnerId),
	deleteLearnerTags: ({ params }) => notFound("Learner", params?.learnerId),
	updateLearnerInfo: ({ params }) => notFound("Learner", params?.learnerId),
	deleteAllLearnerData: ({ params }) => notFound("Learner", params?.learnerId),
	deleteLearnerSuppression: ({ params }) => `Learner [${params?.learnerId}] is not suppressed`,
	deleteLearnersData: ({ body }) => `${notFound("Learner", (body as { ids: string[] }).ids[0])}; nothing was erased`,
	putRegistrationTagsBatch: (_, world) => `${notFound("Registration", world.registrationId)}; no tags were added`,
	getRegistrationProgress: ({ params }) => notFound("Registration", params?.registrationId),
	deleteRegistration: ({ params }) => notFound("Registration", params?.registrationId),
	// HEAD (SCORM Cloud's getRegistration): a 404 without a body.
	getRegistration: () => "",
	getRegistrationTags: ({ params }) => notFound("Registration", params?.registrationId),
	putRegistrationTags: ({ params }) => notFound("Registration", params?.registrationId),
	deleteRegistrationTags: ({ params }) => notFound("Registration", params?.registrationId),
	getJob: ({ params }) => notFound("Job", params?.jobId),
	getJobReceipt: ({ params }) => notFound("Job", params?.jobId),
	getJobExport: ({ params }) => notFound("Job", params?.jobId),
	exportLearnerData: ({ params }) => notFound("Learner", params?.learnerId),
};

/** SPEC §2's scopes (exact match; admin grants every scope). */
const SCOPES = [
	"read:learner",
	"write:learner",
	"admin",
	"read:registration",
	"write:registration",
	"delete:registration",
	"read:ping",
	"read:about",
] as const;
type Scope = (typeof SCOPES)[number];

const app = (scope: Scope) => ({ access: "app", scope }) as const;
const management = { access: "management" } as const;

/**
 * Who may call each operation, from the contract (SPEC §2 and SCORM Cloud's scopes), not from the service's
 * OpenAPI document: the document is checked against this table, and the tokens below hold the scopes it names.
 */
const ACCESS: Record<string, { access: Access; scope?: Scope }> = {
	pingAppId: app("read:ping"),
	getAbout: app("read:about"),
	// Token endpoints: Basic application credentials only.
	getAppToken: { access: "basic" },
	createToken: { access: "basic" },
	putRealmUser: management,
	deleteRealmUser: management,
	getRealmUsers: management,
	createApplication: management,
	getApplicationList: management,
	getApplications: management,
	getApplicationInfo: management,
	updateApplication: management,
	deleteApplication: management,
	moveApplication: management,
	deleteLearnerDataEverywhere: management,
	createCredential: management,
	getCredentials: management,
	updateCredential: management,
	deleteCredential: management,
	putLearnerTagsBatch: app("write:learner"),
	getLearnerTags: app("read:learner"),
	putLearnerTags: app("write:learner"),
	deleteLearnerTags: app("write:learner"),
	updateLearnerInfo: app("write:learner"),
	// The only route that needs admin.
	deleteAllLearnerData: app("admin"),
	deleteLearnersData: app("admin"),
	deleteLearnerSuppression: app("admin"),
	getSuppressions: management,
	setWebhook: management,
	getWebhook: management,
	deleteWebhook: management,
	testWebhook: management,
	getLearners: app("read:learner"),
	createRegistration: app("write:registration"),
	getRegistrations: app("read:registration"),
	putRegistrationTagsBatch: app("write:registration"),
	getRegistrationProgress: app("read:registration"),
	deleteRegistration: app("delete:registration"),
	getRegistration: app("read:registration"),
	getRegistrationTags: app("read:registration"),
	putRegistrationTags: app("write:registration"),
	deleteRegistrationTags: app("write:registration"),
	// Job status: read:learner, and the management credentials too.
	getJob: { access: "app+management", scope: "read:learner" },
	// An erasure's receipt: as its job status. The key that verifies receipts is public.
	getJobReceipt: { access: "app+management", scope: "read:learner" },
	// An export's document holds everything about a learner: admin, as the export itself.
	getJobExport: { access: "app+management", scope: "admin" },
	exportLearnerData: app("admin"),
	exportLearnerDataEverywhere: management,
	setRetentionPolicy: management,
	getRetentionPolicy: management,
	deleteRetentionPolicy: management,
	getAuditTrail: management,
	getAuditHead: management,
	// The application's job list; the realm's, usage and where a learner is held are the management API's.
	getJobs: app("read:learner"),
	getRealmJobs: management,
	getRealmUsage: management,
	getApplicationUsage: management,
	getLearnerApplications: management,
	getErasureReceiptKey: { access: "public" },
	getOpenApiDocument: { access: "public" },
	getDocsPage: { access: "public" },
	getDocsAsset: { access: "public" },
};

/** This application's data that no other caller may ever see: each value is unique to this file's run. */
interface World {
	own: TestApp;
	/** Another application, with a learner and a registration of its own. */
	other: TestApp;
	otherLearnerId: string;
	otherRegistrationId: string;
	/** An application the management cells change (credentials), so neither test application is touched. */
	spare: TestApp;
	learnerId: string;
	registrationId: string;
	jobId: string;
	/** A completed erasure of a learner of this application's own (GET /jobs/{jobId}/receipt). */
	erasureJobId: string;
	/** A completed export of a learner of this application's own (GET /jobs/{jobId}/export). */
	exportJobId: string;
	adminEmail: string;
	secrets: { email: string; tag: string; courseId: string };
}

interface Cell {
	world: World;
	column: Column;
	/** The tag a write carries: other applications' writes carry one that must never reach this application. */
	tag: string;
}

interface RequestSpec {
	params?: Record<string, string>;
	query?: Record<string, string>;
	body?: unknown;
	form?: Record<string, string>;
}

const isOther = (column: Column) => column === "otherBasic" || column === "otherToken";
const CROSS_TENANT_TAG = uniqueValue("cross-tenant-tag");

/** A registration of this application with a learner of its own; returns both ids. */
async function freshRegistration(world: World): Promise<{ registrationId: string; learnerId: string }> {
	const learnerId = uniqueValue("matrix-learner");
	return { learnerId, registrationId: await enrol(world.own, { id: learnerId }) };
}

/** Gives the application a webhook (again) for the cell; answers its id. */
async function withWebhook(app: TestApp, url = "https://hooks.invalid/matrix"): Promise<string> {
	const response = await call("PUT", `/appManagement/${app.appId}/webhook`, { auth: MANAGEMENT, body: { url } });
	expect(response.status).toBe(200);
	return app.appId;
}

/** Gives the application a webhook whose URL the destination rule refuses, as a row from before the rule holds one. */
async function withUnsendableWebhook(app: TestApp): Promise<string> {
	await withWebhook(app);
	await env.DB.prepare("UPDATE webhooks SET url = ?2 WHERE app_id = ?1").bind(app.appId, "http://127.0.0.1:9/matrix").run();
	return app.appId;
}

/** Gives the application a retention policy (again) for the cell; answers its id. */
async function withRetention(app: TestApp): Promise<string> {
	const response = await call("PUT", `/appManagement/applications/${app.appId}/retention`, { auth: MANAGEMENT, body: { learnerInactiveDays: 3650 } });
	expect(response.status).toBe(200);
	return app.appId;
}

async function freshCredential(app: TestApp): Promise<string> {
	const response = await call("POST", `/appManagement/${app.appId}/credentials`, { auth: MANAGEMENT, body: { name: "spare" } });
	expect(response.status).toBe(200);
	return ((await response.json()) as { id: string }).id;
}

/** A valid request for each operation; resources a successful call consumes are made afresh for each cell. */
const REQUESTS: Record<string, (cell: Cell) => Promise<RequestSpec>> = {
	pingAppId: async () => ({}),
	getAbout: async () => ({}),
	getAppToken: async () => ({ form: { scope: "read:ping" } }),
	createToken: async () => ({
		body: { permissions: { scopes: ["read:ping"] }, expiry: new Date(Date.now() + 3_600_000).toISOString() },
	}),
	putRealmUser: async () => ({ params: { email: `${uniqueValue("matrix")}@example.com` }, body: { role: "member" } }),
	deleteRealmUser: async () => ({ params: { email: await realmUser("member") } }),
	getRealmUsers: async () => ({}),
	createApplication: async () => ({ body: { name: uniqueValue("matrix-app") } }),
	getApplicationList: async () => ({}),
	getApplications: async () => ({ query: { includeRegistrationCount: "true" } }),
	getApplicationInfo: async ({ world }) => ({ params: { childAppId: world.own.appId } }),
	updateApplication: async () => ({ params: { childAppId: (await createApp()).appId }, body: { name: uniqueValue("renamed") } }),
	deleteApplication: async () => ({ params: { childAppId: (await createApp()).appId } }),
	// A learner of this application made for the cell, erased wherever it is held.
	deleteLearnerDataEverywhere: async ({ world }) => ({
		params: { learnerId: (await freshRegistration(world)).learnerId },
		query: { userEmail: world.adminEmail },
	}),
	// To the other shard of the application's region (no region change).
	moveApplication: async () => {
		const { appId } = await createApp();
		const from = (await findPlacement(env.DB, appId))?.shard;
		const to = SHARDS.find((shard) => shard.region === "default" && shard.name !== from);
		return { params: { childAppId: appId }, body: { shard: to?.name } };
	},
	createCredential: async ({ world }) => ({ params: { childAppId: world.spare.appId }, body: { name: "matrix" } }),
	getCredentials: async ({ world }) => ({ params: { childAppId: world.spare.appId } }),
	updateCredential: async ({ world }) => ({
		params: { childAppId: world.spare.appId, credentialId: await freshCredential(world.spare) },
		body: { name: "renamed" },
	}),
	deleteCredential: async ({ world }) => ({
		params: { childAppId: world.spare.appId, credentialId: await freshCredential(world.spare) },
	}),
	// The other application names one of its own learners too: the batch is refused whole, its own learner untouched.
	putLearnerTagsBatch: async ({ world, column, tag }) => ({
		body: { ids: isOther(column) ? [world.otherLearnerId, world.learnerId] : [world.learnerId], tags: [tag] },
	}),
	getLearnerTags: async ({ world }) => ({ params: { learnerId: world.learnerId } }),
	putLearnerTags: async ({ world, tag }) => ({ params: { learnerId: world.learnerId }, body: { tags: [tag] } }),
	deleteLearnerTags: async ({ world }) => ({ params: { learnerId: world.learnerId }, body: { tags: [world.secrets.tag] } }),
	updateLearnerInfo: async ({ world }) => ({
		params: { learnerId: world.learnerId },
		body: { id: world.learnerId, firstName: "Matrix" },
	}),
	// Each cell erases a learner of its own, so the erasure jobs the queue runs meanwhile touch nothing else.
	deleteAllLearnerData: async ({ world }) => ({
		params: { learnerId: (await freshRegistration(world)).learnerId },
		query: { userEmail: world.adminEmail },
	}),
	// A suppression of this application's, recorded for the cell (as an erasure with suppress=true leaves it).
	deleteLearnerSuppression: async ({ world }) => {
		const learnerId = uniqueValue("matrix-suppressed");
		const hash = await learnerHash(env, world.own.appId, learnerId);
		await (await shardOf(world.own.appId))
			.prepare("INSERT INTO suppressions (app_id, learner_hash, job_id, created_at) VALUES (?1, ?2, 'matrix', ?3)")
			.bind(world.own.appId, hash, new Date().toISOString())
			.run();
		return { params: { learnerId } };
	},
	getSuppressions: async ({ world }) => ({ params: { childAppId: world.own.appId } }),
	setWebhook: async ({ world }) => ({ params: { childAppId: world.spare.appId }, body: { url: "https://hooks.invalid/matrix" } }),
	getWebhook: async ({ world }) => ({ params: { childAppId: await withWebhook(world.spare) } }),
	deleteWebhook: async ({ world }) => ({ params: { childAppId: await withWebhook(world.spare) } }),
	// No request leaves the test: the stored URL is one the destination rule refuses, so the answer says it was not
	// sent (200, delivered false).
	testWebhook: async ({ world }) => ({ params: { childAppId: await withUnsendableWebhook(world.spare) } }),
	deleteLearnersData: async ({ world }) => ({
		query: { userEmail: world.adminEmail },
		body: { ids: [(await freshRegistration(world)).learnerId] },
	}),
	// A learner of this application carrying its secrets, made for the cell: another application listing the
	// learners with its tag must not find it.
	getLearners: async ({ world }) => {
		await enrol(world.own, { id: uniqueValue("matrix-listed-learner"), email: world.secrets.email }, { learnerTags: [world.secrets.tag] });
		return { query: { tags: world.secrets.tag } };
	},
	createRegistration: async ({ world, column, tag }) => ({
		body: {
			courseId: "matrix-course",
			// The other application reuses an id this application holds: it must neither see nor touch it.
			registrationId: isOther(column) ? (await freshRegistration(world)).registrationId : uniqueValue("matrix-registration"),
			learner: { id: uniqueValue("matrix-learner") },
			learnerTags: [tag],
		},
	}),
	getRegistrations: async ({ world }) => ({ query: { learnerId: world.learnerId } }),
	putRegistrationTagsBatch: async ({ world, column, tag }) => ({
		body: { ids: isOther(column) ? [world.otherRegistrationId, world.registrationId] : [world.registrationId], tags: [tag] },
	}),
	getRegistrationProgress: async ({ world }) => ({ params: { registrationId: world.registrationId } }),
	deleteRegistration: async ({ world }) => ({ params: { registrationId: (await freshRegistration(world)).registrationId } }),
	getRegistration: async ({ world }) => ({ params: { registrationId: world.registrationId } }),
	getRegistrationTags: async ({ world }) => ({ params: { registrationId: world.registrationId } }),
	putRegistrationTags: async ({ world, tag }) => ({ params: { registrationId: world.registrationId }, body: { tags: [tag] } }),
	deleteRegistrationTags: async ({ world }) => ({
		params: { registrationId: world.registrationId },
		body: { tags: [world.secrets.tag] },
	}),
	getJob: async ({ world }) => ({ params: { jobId: world.jobId } }),
	getJobs: async () => ({}),
	getRealmJobs: async ({ world }) => ({ query: { appId: world.own.appId } }),
	getRealmUsage: async () => ({}),
	getApplicationUsage: async ({ world }) => ({ params: { childAppId: world.own.appId } }),
	getLearnerApplications: async ({ world }) => ({ params: { learnerId: world.learnerId } }),
	getJobReceipt: async ({ world }) => ({ params: { jobId: world.erasureJobId } }),
	getJobExport: async ({ world }) => ({ params: { jobId: world.exportJobId } }),
	// A learner of this application made for the cell: each cell's export is of its own learner.
	exportLearnerData: async ({ world }) => ({
		params: { learnerId: (await freshRegistration(world)).learnerId },
		query: { userEmail: world.adminEmail },
	}),
	exportLearnerDataEverywhere: async ({ world }) => ({
		params: { learnerId: (await freshRegistration(world)).learnerId },
		query: { userEmail: world.adminEmail },
	}),
	// The spare application's policy: ten years, so no sweep meanwhile erases anything.
	setRetentionPolicy: async ({ world }) => ({ params: { childAppId: world.spare.appId }, body: { learnerInactiveDays: 3650 } }),
	getRetentionPolicy: async ({ world }) => ({ params: { childAppId: await withRetention(world.spare) } }),
	deleteRetentionPolicy: async ({ world }) => ({ params: { childAppId: await withRetention(world.spare) } }),
	getAuditTrail: async () => ({}),
	getAuditHead: async () => ({}),
	getErasureReceiptKey: async () => ({}),
	getOpenApiDocument: async () => ({}),
	getDocsPage: async () => ({}),
	getDocsAsset: async () => ({ params: { file: "init.js" } }),
};

/** Authorization headers that are not well-formed, one per operation in turn. */
const MALFORMED = [
	"Basic",
	"Basic !!!not-base64!!!",
	`Basic ${btoa("no-colon-at-all")}`,
	`Basic ${btoa(":secret-without-id")}`,
	"Bearer",
	"Bearer a.b",
	"Bearer ..",
	"Token abc",
	`Digest username="${MANAGEMENT}"`,
	`Bearer ${"A".repeat(4096)}`,
	`${MANAGEMENT} trailing`,
	"Basic dGVzdC1tYW5hZ2VtZW50OnRlc3QtbWFuYWdlbWVudC1zZWNyZXQ=,Basic x",
];

const tokens = new Map<string, Promise<string>>();
/** A bearer token of the application with exactly these scopes, minted once. */
function token(app: TestApp, scopes: string): Promise<string> {
	const key = `${app.appId} ${scopes}`;
	let minted = tokens.get(key);
	if (!minted) {
		minted = mintToken(app, scopes);
		tokens.set(key, minted);
	}
	return minted;
}

async function authorizationFor(world: World, operation: Operation, column: Column, index: number): Promise<string | undefined> {
	const scope = ACCESS[operation.operationId]?.scope ?? "admin";
	const withoutScope = SCOPES.filter((entry) => entry !== scope && entry !== "admin").join(" ");
	switch (column) {
		case "ownBasic":
			return world.own.auth;
		case "ownToken":
			return token(world.own, scope);
		case "tokenWithoutScope":
			return token(world.own, withoutScope);
		case "otherBasic":
			return world.other.auth;
		case "otherToken":
			return token(world.other, scope);
		case "management":
			return MANAGEMENT;
		case "none":
			return undefined;
		case "malformed":
			return MALFORMED[index % MALFORMED.length];
	}
}

let worldPromise: Promise<World> | undefined;
function world(): Promise<World> {
	worldPromise ??= (async () => {
		const own = await createApp();
		// The other application shares this one's shard: the same tables, where only each statement's application
		// keeps them apart (applications on other shards cannot even reach these rows).
		const other = await appOnShard((await findPlacement(env.DB, own.appId))?.shard ?? "");
		const spare = await createApp();
		const secrets = {
			email: `${uniqueValue("secret")}@example.com`,
			tag: uniqueValue("secret-tag"),
			courseId: uniqueValue("secret-course"),
		};
		const learnerId = uniqueValue("matrix-learner");
		const registrationId = uniqueValue("matrix-registration");
		const created = await call("POST", "/registrations", {
			auth: own.auth,
			body: {
				courseId: secrets.courseId,
				registrationId,
				learner: { id: learnerId, email: secrets.email, firstName: "Secret" },
				learnerTags: [secrets.tag],
				registrationTags: [secrets.tag],
			},
		});
		expect(created.status).toBe(204);
		const update = await call("POST", `/learner/${encodeURIComponent(learnerId)}/updateInfo`, {
			auth: own.auth,
			body: { id: learnerId, lastName: "Secret" },
		});
		expect(update.status).toBe(204);
		const jobId = jobIdOf(update);
		// Finished before any cell runs, so that what a cell finds stored changes only by what it sends.
		await waitForJob(own.auth, jobId);
		const otherLearnerId = uniqueValue("matrix-other-learner");
		const otherRegistrationId = await enrol(other, otherLearnerId);
		const adminEmail = await realmUser("admin");
		const erased = uniqueValue("matrix-erased-learner");
		await enrol(own, erased);
		const erasure = await call("POST", `/learner/${encodeURIComponent(erased)}/delete-information?userEmail=${encodeURIComponent(adminEmail)}`, {
			auth: own.auth,
		});
		expect(erasure.status).toBe(204);
		const erasureJobId = jobIdOf(erasure);
		await waitForJob(own.auth, erasureJobId);
		const exported = await call("POST", `/learner/${encodeURIComponent(learnerId)}/export?userEmail=${encodeURIComponent(adminEmail)}`, { auth: own.auth });
		expect(exported.status).toBe(204);
		const exportJobId = jobIdOf(exported);
		await waitForJob(own.auth, exportJobId);
		return { own, other, otherLearnerId, otherRegistrationId, spare, learnerId, registrationId, jobId, erasureJobId, exportJobId, adminEmail, secrets };
	})();
	return worldPromise;
}

const operations = await loadOperations();

/**
 * Every row this application stores, and the other application's too when its request must be refused whole
 * (read straight from D1: what no answer of the API shows changed either). A refused write still spends the
 * caller's write budget: that is the caller's metering, not its data, so it is left out.
 */
async function storedData(world: World, withOther: boolean): Promise<unknown> {
	const own = await rowsOf(world.own.appId);
	if (!withOther) return { own };
	const { app_storage: storage = [], ...other } = await rowsOf(world.other.appId);
	const unmetered = storage.map(({ budget_minute: _minute, budget_spent: _spent, write_budget: _budget, row_quota: _quota, ...row }) => row);
	return { own, other: { ...other, app_storage: unmetered } };
}

const tally = { requests: 0, crossTenant2xx: 0, scopeViolating2xx: 0 };
const is2xx = (status: number) => status >= 200 && status < 300;

async function send(operation: Operation, spec: RequestSpec, auth: string | undefined): Promise<Response> {
	const query = spec.query ? `?${new URLSearchParams(spec.query)}` : "";
	const path = `${fillPath(operation.template, spec.params ?? {})}${query}`;
	if (spec.form) {
		return call(operation.method, path, {
			auth,
			body: new URLSearchParams(spec.form).toString(),
			headers: { "Content-Type": "application/x-www-form-urlencoded" },
		});
	}
	return call(operation.method, path, { auth, ...(spec.body !== undefined && { body: spec.body as Record<string, unknown> }) });
}

describe("authorization matrix", () => {
	it("has a row of expected statuses, an access and a valid request for exactly the operations the document lists", () => {
		const listed = operations.map((operation) => operation.operationId).sort();
		expect(Object.keys(EXPECTED).sort()).toEqual(listed);
		expect(Object.keys(ACCESS).sort()).toEqual(listed);
		expect(Object.keys(REQUESTS).sort()).toEqual(listed);
	});

	it("has the not-found message for exactly the operations that answer another application 404", () => {
		const otherColumns = [COLUMNS.indexOf("otherBasic"), COLUMNS.indexOf("otherToken")];
		const refused = Object.entries(EXPECTED)
			.filter(([, row]) => otherColumns.some((position) => row[position] === 404))
			.map(([operationId]) => operationId);
		expect(Object.keys(NOT_FOUND).sort()).toEqual(refused.sort());
	});

	it("documents for every operation the credentials and scope the contract gives it", () => {
		const documented = Object.fromEntries(
			operations.map(({ operationId, access, scope }) => [operationId, { access, ...(scope !== undefined && { scope }) }]),
		);
		expect(documented).toEqual(ACCESS);
	});

	describe.each(operations.map((operation, index) => ({ ...operation, index })))("$method $template ($operationId)", (operation) => {
		it("answers each kind of caller the status in the table, and another application nothing of this one's", async () => {
			const expected = EXPECTED[operation.operationId];
			const prepare = REQUESTS[operation.operationId];
			if (!expected || !prepare) throw new Error(`no row for ${operation.operationId}`);
			const setting = await world();
			const answered: Record<string, number> = {};
			for (const [position, column] of COLUMNS.entries()) {
				const spec = await prepare({ world: setting, column, tag: isOther(column) ? CROSS_TENANT_TAG : uniqueValue("matrix-tag") });
				const wanted = expected[position] ?? 0;
				const stored = isOther(column) ? await storedData(setting, wanted === 404) : undefined;
				const response = await send(operation, spec, await authorizationFor(setting, operation, column, operation.index));
				const text = await response.text();
				tally.requests++;
				answered[column] = response.status;
				if (operation.method === "HEAD") expect(text, `${column}: a HEAD answer has no body`).toBe("");
				// A job the cell started runs now, not while a later cell looks at what is stored.
				const location = response.headers.get("Location");
				if (is2xx(response.status) && location) await waitForJob(MANAGEMENT, jobIdOf(response));
				if (is2xx(response.status) && (wanted === 401 || wanted === 403)) tally.scopeViolating2xx++;
				const leaked = Object.values(setting.secrets).some((secret) => text.includes(secret));
				if (isOther(column) && ((is2xx(response.status) && wanted === 404) || leaked)) tally.crossTenant2xx++;
				if (!is2xx(response.status) && operation.method !== "HEAD") {
					expect(Object.keys(JSON.parse(text) as object), `${column}: ${text}`).toEqual(["message"]);
				}
				if (response.status === 401) expect(response.headers.get("WWW-Authenticate")).toContain("Basic");
				if (column !== "ownBasic" && column !== "ownToken" && column !== "management") {
					expect(leaked, `${column} saw this application's data: ${text}`).toBe(false);
				}
				if (stored) {
					if (response.status === 404 && operation.method !== "HEAD") {
						expect(JSON.parse(text), column).toEqual({ message: NOT_FOUND[operation.operationId]?.(spec, setting) });
					}
					expect(await storedData(setting, wanted === 404), `${column} changed stored data`).toEqual(stored);
				}
			}
			expect(answered).toEqual(Object.fromEntries(COLUMNS.map((column, position) => [column, expected[position]])));
		}, 30_000); // every kind of caller, each on its own fixtures: seconds of requests on a busy machine
	});

	it.each([
		["/registrations", "read:registration"],
		["/learners", "read:learner"],
	])("answers the other application 400 to this one's paging token of GET %s, with none of its data", async (listing, scope) => {
		const setting = await world();
		// Each registration has a learner of its own: past one page of either listing.
		await seedRegistrations(setting.own.appId, uniqueValue("matrix-page"), Math.max(LIMITS.registrationsPerPage, LIMITS.learnersPerPage) + 1);
		const first = await call("GET", listing, { auth: setting.own.auth });
		const { more } = (await first.json()) as { more?: string };
		expect(more).toEqual(expect.any(String));
		for (const auth of [setting.other.auth, await token(setting.other, scope)]) {
			const response = await call("GET", `${listing}?more=${encodeURIComponent(more ?? "")}`, { auth });
			tally.requests++;
			if (is2xx(response.status)) tally.crossTenant2xx++;
			expect(await response.json()).toEqual({ message: "more is not a paging token issued by this API for this application" });
			expect(response.status).toBe(400);
		}
	});

	it("left this application's learner and registration untouched by the other application's writes", async () => {
		const { own, learnerId, registrationId, secrets } = await world();
		const tags = await call("GET", `/learner/${encodeURIComponent(learnerId)}/tags`, { auth: own.auth });
		expect(tags.status).toBe(200);
		const { tags: learnerTags } = (await tags.json()) as { tags: string[] };
		expect(learnerTags).not.toContain(CROSS_TENANT_TAG);
		const registration = await call("GET", `/registrations/${encodeURIComponent(registrationId)}`, { auth: own.auth });
		expect(registration.status).toBe(200);
		const body = (await registration.json()) as { course: { id: string }; learner: { email?: string }; tags: string[] };
		expect(body.course.id).toBe(secrets.courseId);
		expect(body.learner.email).toBe(secrets.email);
		expect(body.tags).not.toContain(CROSS_TENANT_TAG);
	});

	it("crossed no tenant and no scope", () => {
		console.log(
			`${tally.requests} requests, cross-tenant 2xx = ${tally.crossTenant2xx}, scope-violating 2xx = ${tally.scopeViolating2xx}`,
		);
		expect(tally.requests).toBe(operations.length * COLUMNS.length + 4);
		expect(tally.crossTenant2xx).toBe(0);
		expect(tally.scopeViolating2xx).toBe(0);
	});
});
