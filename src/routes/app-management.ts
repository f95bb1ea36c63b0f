import { createRoute, z } from "@hono/zod-openapi";
import { forgetApplication, forgetCredential } from "../auth/credentials";
import { randomId, randomSecret, sha256Hex } from "../auth/crypto";
import { requireManagement } from "../auth/middleware";
import { createRouter } from "../context";
import { insertApplication, listApplications } from "../db/applications";
import {
	type CredentialChange,
	deleteCredential,
	insertCredential,
	listCredentials,
	updateCredential,
} from "../db/credentials";
import { requestApplicationDeletion } from "../db/jobs";
import { deleteRealmUser, listRealmUsers, upsertRealmUser } from "../db/realm-users";
import { nowIso } from "../db/types";
import { notFound } from "../errors";
import { dispatch, jobLocation } from "../jobs/contract";
import {
	ApplicationListSchema,
	ApplicationRequestSchema,
	ApplicationSchema,
	CredentialCreatedSchema,
	CredentialListSchema,
	CredentialRequestSchema,
	CredentialUpdateSchema,
	EmailSchema,
	RealmUserListSchema,
	RealmUserRequestSchema,
} from "../schemas";
import { MANAGEMENT_SECURITY, errors, json, jsonBody } from "./openapi";

const MANAGEMENT_ERRORS = [401] as const;
const tags = ["ApplicationManagement"];
const middleware = [requireManagement];

const ChildAppParams = z.object({
	childAppId: z.string().min(1).max(255).openapi({ param: { name: "childAppId", in: "path" } }),
});
const CredentialParams = ChildAppParams.extend({
	credentialId: z.string().min(1).max(255).openapi({ param: { name: "credentialId", in: "path" } }),
});
const UserParams = z.object({ email: EmailSchema.openapi({ param: { name: "email", in: "path" } }) });

const appNotFound = (appId: string) => notFound(`Application [${appId}] was not found`);
const credentialNotFound = (credentialId: string) => notFound(`Credential [${credentialId}] was not found`);

// Application ids: 10 characters of a 32-symbol alphabet (50 bits), the shape of SCORM Cloud's.
const APP_ID_LENGTH = 10;

const createApplication = createRoute({
	method: "post",
	path: "/appManagement/applications",
	tags,
	operationId: "createApplication",
	summary: "Create an application",
	security: MANAGEMENT_SECURITY,
	middleware,
	request: { body: jsonBody(ApplicationRequestSchema) },
	responses: {
		200: json(ApplicationSchema, "The new application"),
		...errors(400, 413, 415, ...MANAGEMENT_ERRORS),
	},
});

const getApplications = createRoute({
	method: "get",
	path: "/appManagement/applications",
	tags,
	operationId: "getApplicationList",
	summary: "List the realm's applications",
	security: MANAGEMENT_SECURITY,
	middleware,
	responses: { 200: json(ApplicationListSchema, "Applications"), ...errors(...MANAGEMENT_ERRORS) },
});

const deleteApplication = createRoute({
	method: "delete",
	path: "/appManagement/applications/{childAppId}",
	tags,
	operationId: "deleteApplication",
	summary: "Delete an application: its credentials stop working at once, a job deletes its data",
	security: MANAGEMENT_SECURITY,
	middleware,
	request: { params: ChildAppParams },
	responses: {
		204: {
			description: "Deletion started; Location names the job",
			headers: z.object({ Location: z.string().openapi({ description: "/api/v2/jobs/{jobId}" }) }),
		},
		...errors(404, ...MANAGEMENT_ERRORS),
	},
});

const createCredential = createRoute({
	method: "post",
	path: "/appManagement/{childAppId}/credentials",
	tags,
	operationId: "createCredential",
	summary: "Create a credential; the secret is shown in this response only",
	security: MANAGEMENT_SECURITY,
	middleware,
	request: { params: ChildAppParams, body: jsonBody(CredentialRequestSchema) },
	responses: {
		200: json(CredentialCreatedSchema, "The credential with its secret"),
		...errors(400, 404, 413, 415, ...MANAGEMENT_ERRORS),
	},
});

const getCredentials = createRoute({
	method: "get",
	path: "/appManagement/{childAppId}/credentials",
	tags,
	operationId: "getCredentials",
	summary: "List an application's credentials (without secrets)",
	security: MANAGEMENT_SECURITY,
	middleware,
	request: { params: ChildAppParams },
	responses: { 200: json(CredentialListSchema, "Credentials"), ...errors(404, ...MANAGEMENT_ERRORS) },
});

const putCredential = createRoute({
	method: "put",
	path: "/appManagement/{childAppId}/credentials/{credentialId}",
	tags,
	operationId: "updateCredential",
	summary: "Rename, enable or disable a credential",
	security: MANAGEMENT_SECURITY,
	middleware,
	request: { params: CredentialParams, body: jsonBody(CredentialUpdateSchema) },
	responses: { 204: { description: "Updated" }, ...errors(400, 404, 413, 415, ...MANAGEMENT_ERRORS) },
});

const removeCredential = createRoute({
	method: "delete",
	path: "/appManagement/{childAppId}/credentials/{credentialId}",
	tags,
	operationId: "deleteCredential",
	summary: "Delete a credential: it and its tokens stop working",
	security: MANAGEMENT_SECURITY,
	middleware,
	request: { params: CredentialParams },
	responses: { 204: { description: "Deleted" }, ...errors(404, ...MANAGEMENT_ERRORS) },
});

const putUser = createRoute({
	method: "put",
	path: "/appManagement/users/{email}",
	tags,
	operationId: "putRealmUser",
	summary: "Create a realm user or change its role (owners and admins may request GDPR erasure)",
	security: MANAGEMENT_SECURITY,
	middleware,
	request: { params: UserParams, body: jsonBody(RealmUserRequestSchema) },
	responses: { 204: { description: "Saved" }, ...errors(400, 413, 415, ...MANAGEMENT_ERRORS) },
});

const getUsers = createRoute({
	method: "get",
	path: "/appManagement/users",
	tags,
	operationId: "getRealmUsers",
	summary: "List realm users",
	security: MANAGEMENT_SECURITY,
	middleware,
	responses: { 200: json(RealmUserListSchema, "Realm users"), ...errors(...MANAGEMENT_ERRORS) },
});

const removeUser = createRoute({
	method: "delete",
	path: "/appManagement/users/{email}",
	tags,
	operationId: "deleteRealmUser",
	summary: "Remove a realm user",
	security: MANAGEMENT_SECURITY,
	middleware,
	request: { params: UserParams },
	responses: { 204: { description: "Removed" }, ...errors(400, 404, ...MANAGEMENT_ERRORS) },
});

/** 404 naming what a credential change did not find: the application first, then the credential. */
function changedOr404(outcome: CredentialChange, appId: string, credentialId: string): void {
	if (outcome === "no-application") throw appNotFound(appId);
	if (outcome === "no-credential") throw credentialNotFound(credentialId);
}

const statusOf = (enabled: boolean) => (enabled ? ("Enabled" as const) : ("Disabled" as const));

export const appManagementRoutes = createRouter()
	// Realm users first: /appManagement/users/{email} must not be taken for /appManagement/{childAppId}/...
	.openapi(putUser, async (c) => {
		const { email } = c.req.valid("param");
		const { role } = c.req.valid("json");
		await upsertRealmUser(c.var.db, { email, role }, nowIso());
		return c.body(null, 204);
	})
	.openapi(getUsers, async (c) => c.json({ users: await listRealmUsers(c.var.db) }, 200))
	.openapi(removeUser, async (c) => {
		const { email } = c.req.valid("param");
		if (!(await deleteRealmUser(c.var.db, email))) throw notFound(`Realm user [${email}] was not found`);
		return c.body(null, 204);
	})
	.openapi(createApplication, async (c) => {
		const { name } = c.req.valid("json");
		const app = { id: randomId(APP_ID_LENGTH), name, createdAt: nowIso() };
		await insertApplication(c.var.db, app);
		return c.json({ id: app.id, name: app.name, createDate: app.createdAt }, 200);
	})
	.openapi(getApplications, async (c) => {
		const applications = await listApplications(c.var.db);
		return c.json({ applications: applications.map(({ id, name, createdAt }) => ({ id, name, createDate: createdAt })) }, 200);
	})
	.openapi(deleteApplication, async (c) => {
		const { childAppId } = c.req.valid("param");
		const job = await requestApplicationDeletion(c.var.db, childAppId, nowIso());
		if (!job) throw appNotFound(childAppId);
		forgetApplication(childAppId);
		// Re-sending for an unfinished job is safe (the consumer is idempotent) and repairs a send that failed.
		await dispatch(c.env, c.var.db, { type: "deleteApplication", jobId: job.id });
		return c.body(null, 204, { Location: jobLocation(job.id) });
	})
	.openapi(createCredential, async (c) => {
		const { childAppId } = c.req.valid("param");
		const { name, active = true } = c.req.valid("json");
		const secret = randomSecret();
		const credential = { id: crypto.randomUUID(), appId: childAppId, name, enabled: active, createdAt: nowIso() };
		if (!(await insertCredential(c.var.db, credential, await sha256Hex(secret)))) throw appNotFound(childAppId);
		return c.json({ id: credential.id, name, credential: secret, status: statusOf(active) }, 200);
	})
	.openapi(getCredentials, async (c) => {
		const { childAppId } = c.req.valid("param");
		const credentials = await listCredentials(c.var.db, childAppId);
		if (!credentials) throw appNotFound(childAppId);
		return c.json(
			{
				credentials: credentials.map(({ id, name, enabled, createdAt }) => ({
					id,
					name,
					status: statusOf(enabled),
					createDate: createdAt,
				})),
			},
			200,
		);
	})
	.openapi(putCredential, async (c) => {
		const { childAppId, credentialId } = c.req.valid("param");
		const { name, active } = c.req.valid("json");
		const changes = { name, enabled: active };
		changedOr404(await updateCredential(c.var.db, childAppId, credentialId, changes, nowIso()), childAppId, credentialId);
		forgetCredential(credentialId);
		return c.body(null, 204);
	})
	.openapi(removeCredential, async (c) => {
		const { childAppId, credentialId } = c.req.valid("param");
		changedOr404(await deleteCredential(c.var.db, childAppId, credentialId), childAppId, credentialId);
		forgetCredential(credentialId);
		return c.body(null, 204);
	});
