import * as z from "zod/mini";
import { asClassic } from "../schemas/openapi-meta";
import { auditRecord, emailHash } from "../audit";
import { forgetApplication, forgetCredential } from "../auth/credentials";
import { randomId, randomSecret, sha256Hex } from "../auth/crypto";
import { createRouter } from "../context";
import {
	type Application,
	countApplicationsByShard,
	findApplication,
	findPlacement,
	insertApplication,
	listApplicationPage,
	listApplications,
	markApplicationDeleted,
	noteDeletionRecorded,
	updateApplication,
} from "../db/applications";
import { countRegistrationsOf } from "../db/registrations";
import { LIMITS } from "../limits";
import { APPLICATION_PAGES, type ApplicationPageCursor, decodeCursor, encodeCursor } from "../paging";
import {
	type CredentialChange,
	deleteCredential,
	insertCredential,
	listCredentials,
	updateCredential,
} from "../db/credentials";
import { acceptMove, claimStep, getJobById, recordApplicationDeletion, recordRealmErasure } from "../db/jobs";
import { listSuppressions } from "../db/suppressions";
import { learnerHash } from "../jobs/contract";
import { deleteRealmUser, getRealmUserRole, listRealmUsers, upsertRealmUser } from "../db/realm-users";
import { retryTransient } from "../db/retry";
import { nowIso } from "../db/types";
import { describeFault, log } from "../log";
import { ApiError, appNotFound, badRequest, forbidden, learnerNotFound, notFound } from "../errors";
import { dispatch, jobLocation } from "../jobs/contract";
import { fanOut, realmHolders } from "../jobs/realm-erasure";
import { type MovePlan, newMovePlan } from "../jobs/move";
import { choosePlacement, shardDatabase } from "../shards";
import { ErasureQuerySchema } from "../schemas/learners";
import {
	ApplicationInfoListSchema,
	ApplicationInfoQuery,
	ApplicationInfoSchema,
	ApplicationListQuery,
	ApplicationListSchema,
	ApplicationMoveSchema,
	ApplicationRequestSchema,
	ApplicationSchema,
	ChildAppParams,
	CredentialCreatedSchema,
	CredentialListSchema,
	CredentialRequestSchema,
	CredentialUpdateSchema,
	RealmUserListSchema,
	RealmUserRequestSchema,
	SuppressionListSchema,
	UpdateApplicationSchema,
} from "../schemas/management";
import { EmailSchema } from "../schemas/learner";
import { IdSchema } from "../schemas/text";
import { IdempotencyHeaders, idempotent } from "../http/idempotency";
import { declareRoute, json, jsonBody } from "../http/route";

const tags = ["ApplicationManagement"];

const CredentialParams = asClassic(
	z.object({
		childAppId: ChildAppParams.shape.childAppId,
		credentialId: z.string().check(z.minLength(1), z.maxLength(255)).openapi({ minLength: 1, maxLength: 255, param: { name: "credentialId", in: "path" } }),
	}),
);
const UserParams = asClassic(z.object({ email: EmailSchema.openapi({ param: { name: "email", in: "path" } }) }));
const RealmLearnerParams = asClassic(z.object({ learnerId: IdSchema("learnerId").openapi({ param: { name: "learnerId", in: "path" } }) }));

/** The 403 an erasure requested by a realm user who is not an owner or admin gets (as for one application). */
const ERASURE_PRIVILEGE =
	"The initiating email address does not have sufficient privilege in this realm to perform this delete operation (a realm owner or admin is required)";

const credentialNotFound = (credentialId: string) => notFound(`Credential [${credentialId}] was not found`);

// Application ids: 10 characters of a 32-symbol alphabet (50 bits), the shape of SCORM Cloud's.
const APP_ID_LENGTH = 10;

/** 404 naming what a credential change did not find: the application first, then the credential. */
function changedOr404(outcome: CredentialChange, appId: string, credentialId: string): void {
	if (outcome === "no-application") throw appNotFound(appId);
	if (outcome === "no-credential") throw credentialNotFound(credentialId);
}

/** An application as the management API shows it: with its data region and the shard holding its data. */
const presentApplication = (app: Application) => ({
	id: app.id,
	name: app.name,
	createDate: app.createdAt,
	dataRegion: app.dataRegion,
	shard: app.shard,
});

/** What applicationList and GET .../applications/{childAppId} may add to an application. */
interface Counts {
	courseCount?: number;
	registrationCount?: number;
}

/** An application as SCORM Cloud's ApplicationInfoSchema shows it, with its placement and any counts asked for. */
const presentApplicationInfo = (app: Application, counts: Counts) => ({
	id: app.id,
	name: app.name,
	createDate: app.createdAt,
	updateDate: app.updatedAt,
	allowDelete: app.allowDelete,
	...counts,
	dataRegion: app.dataRegion,
	shard: app.shard,
});

/**
 * The counts asked for, per application: courseCount is 0 (no course content is hosted here); registrationCount
 * is read from each application's shard, one statement per shard, the shards in parallel.
 */
async function countsOf(
	env: Env,
	apps: Application[],
	asked: { includeCourseCount?: boolean | undefined; includeRegistrationCount?: boolean | undefined },
): Promise<Map<string, Counts>> {
	const registrations = new Map<string, number>();
	if (asked.includeRegistrationCount) {
		const byShard = Map.groupBy(apps, (app) => app.shard);
		const counted = await Promise.all(
			[...byShard].map(([shard, held]) => countRegistrationsOf(shardDatabase(env, shard), held.map((app) => app.id))),
		);
		for (const counts of counted) for (const [appId, count] of counts) registrations.set(appId, count);
	}
	return new Map(
		apps.map((app) => [
			app.id,
			{
				...(asked.includeCourseCount && { courseCount: 0 }),
				...(asked.includeRegistrationCount && { registrationCount: registrations.get(app.id) ?? 0 }),
			},
		]),
	);
}

const statusOf = (enabled: boolean) => (enabled ? ("Enabled" as const) : ("Disabled" as const));

export const appManagementRoutes = createRouter();

// Realm-wide erasure (SPEC §9), before the routes under /appManagement/{childAppId}/.
appManagementRoutes.openapi(
	declareRoute({
		method: "post",
		path: "/appManagement/learners/{learnerId}/delete-information",
		tags,
		operationId: "deleteLearnerDataEverywhere",
		summary: "Erase a learner in every application of the realm (GDPR), as one realm job",
		description:
			"SCORM Cloud offers this only on its website. userEmail must be a realm user with role owner or admin. One " +
			"erasure per application that holds the learner, on whichever shard it lives, followed by a realm job whose " +
			"status and counts add them up (GET /jobs/{jobId} with the management credentials). Applications that never " +
			"held the learner are read, never written. 404 when no application holds the learner, whoever asks.",
		access: "management",
		request: { params: RealmLearnerParams, query: ErasureQuerySchema, headers: IdempotencyHeaders },
		// 403: a requester who is not a realm owner or admin (the credentials themselves are all-powerful).
		errors: [403, 404, 409, 422],
		responses: {
			204: {
				description: "Realm erasure started; Location names the realm job",
				headers: asClassic(z.object({ Location: z.string().openapi({ description: "/api/v2/jobs/{jobId}" }) })),
			},
		},
	}),
	async (c) => {
		const { learnerId } = c.req.valid("param");
		const { userEmail, suppress } = c.req.valid("query");
		const control = c.var.db;
		// The key first: a retry replays the first answer even once the learner is gone, and the same key for
		// another learner is refused before anything is looked at, let alone erased.
		return idempotent(c, control, "", null, null, async (keyed) => {
			const [role, holders] = await Promise.all([
				retryTransient(() => getRealmUserRole(control, userEmail)),
				realmHolders(c.env, control, learnerId, { forErasure: true }),
			]);
			if (holders.length === 0) throw learnerNotFound(learnerId);
			if (role !== "owner" && role !== "admin") throw forbidden(ERASURE_PRIVILEGE);
			// The realm job is recorded, with the key and its audit entry, before any application is asked: none is asked
			// outside it.
			const jobId = crypto.randomUUID();
			const realmHash = await learnerHash(c.env, "", learnerId);
			await recordRealmErasure(
				control,
				{
					id: jobId,
					learnerId,
					learnerHash: realmHash,
					requestedBy: userEmail,
					suppress: suppress === "true",
					holders: holders.map((holder) => holder.appId),
					createdAt: nowIso(),
				},
				keyed?.({ status: 204, location: jobLocation(jobId), body: null }, "EXISTS (SELECT 1 FROM jobs WHERE id = ?3)", [jobId]),
				auditRecord(c, "learner.eraseEverywhere", {
					jobId,
					learnerHash: realmHash,
					requester: await emailHash(c.env, userEmail),
					suppress: suppress === "true",
					applications: holders.map((holder) => holder.appId),
				}),
			);
			// Then each application is asked now, so an erasure already pending there takes this one's suppression at
			// once; whatever this request does not get to, the job's first step does (its message is sent either way).
			try {
				const job = await retryTransient(() => getJobById(control, jobId));
				const lease = crypto.randomUUID();
				if (job && (await retryTransient(() => claimStep(control, job, lease, nowIso())))) await fanOut(c.env, control, job, lease);
			} catch (error) {
				log(c.env, "warn", { msg: "realm erasure's applications left to its job", requestId: c.var.requestId, jobId, ...describeFault(error) });
			}
			await dispatch(c.env, control, { type: "deleteRealmLearnerData", jobId });
			return c.body(null, 204, { Location: jobLocation(jobId) });
		}, { consultFirst: true });
	},
);

appManagementRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/appManagement/{childAppId}/suppressions",
		tags,
		operationId: "getSuppressions",
		summary: "The learners an erasure suppressed in an application, as HMACs and dates",
		description:
			"Not in SCORM Cloud (SPEC §9). Each is a learner erased with suppress=true: only the HMAC of its id is kept " +
			"(as jobs and receipts name it), with the erasure's job id and the date.",
		access: "management",
		request: { params: ChildAppParams },
		errors: [404],
		responses: { 200: json(SuppressionListSchema, "Suppressions, oldest first") },
	}),
	async (c) => {
		const { childAppId } = c.req.valid("param");
		const placement = await retryTransient(() => findPlacement(c.var.db, childAppId));
		if (!placement || placement.deletedAt !== null) throw appNotFound(childAppId);
		const suppressions = await listSuppressions(shardDatabase(c.env, placement.shard), childAppId);
		return c.json(
			{
				suppressions: suppressions.map(({ learnerHash: hash, jobId, createdAt }) => ({ learnerHash: hash, jobId, createdDate: createdAt })),
			},
			200,
		);
	},
);

// Realm users first: /appManagement/users/{email} must not be taken for /appManagement/{childAppId}/...
appManagementRoutes.openapi(
	declareRoute({
		method: "put",
		path: "/appManagement/users/{email}",
		tags,
		operationId: "putRealmUser",
		summary: "Create a realm user or change its role (owners and admins may request GDPR erasure)",
		access: "management",
		request: { params: UserParams, body: jsonBody(RealmUserRequestSchema) },
		responses: { 204: { description: "Saved" } },
	}),
	async (c) => {
		const { email } = c.req.valid("param");
		const { role } = c.req.valid("json");
		await upsertRealmUser(c.var.db, { email, role }, nowIso(), auditRecord(c, "realmUser.put", { user: await emailHash(c.env, email), role }));
		return c.body(null, 204);
	},
);

appManagementRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/appManagement/users",
		tags,
		operationId: "getRealmUsers",
		summary: "List realm users",
		access: "management",
		responses: { 200: json(RealmUserListSchema, "Realm users") },
	}),
	async (c) => c.json({ users: await listRealmUsers(c.var.db) }, 200),
);

appManagementRoutes.openapi(
	declareRoute({
		method: "delete",
		path: "/appManagement/users/{email}",
		tags,
		operationId: "deleteRealmUser",
		summary: "Remove a realm user",
		access: "management",
		request: { params: UserParams },
		errors: [404],
		responses: { 204: { description: "Removed" } },
	}),
	async (c) => {
		const { email } = c.req.valid("param");
		const audit = auditRecord(c, "realmUser.delete", { user: await emailHash(c.env, email) });
		if (!(await deleteRealmUser(c.var.db, email, audit))) throw notFound(`Realm user [${email}] was not found`);
		return c.body(null, 204);
	},
);

appManagementRoutes.openapi(
	declareRoute({
		method: "post",
		path: "/appManagement/applications",
		tags,
		operationId: "createApplication",
		summary: "Create an application",
		access: "management",
		request: { body: jsonBody(ApplicationRequestSchema), headers: IdempotencyHeaders },
		errors: [409, 422],
		responses: { 200: json(ApplicationSchema, "The new application") },
	}),
	async (c) => {
		const body = c.req.valid("json");
		const { name, dataRegion = "default" } = body;
		// The management API's keys are the realm's (scope ""), kept in the control database.
		return idempotent(c, c.var.db, "", body, null, async (keyed) => {
			const shard = choosePlacement(c.var.config.shards, dataRegion, await retryTransient(() => countApplicationsByShard(c.var.db)));
			if (!shard) {
				throw new ApiError(503, `No shard of data region [${dataRegion}] is open to new applications; the operator must open or add one (SHARDS)`);
			}
			const now = nowIso();
			const app: Application = { id: randomId(APP_ID_LENGTH), name, dataRegion, shard: shard.name, createdAt: now, updatedAt: now, allowDelete: true };
			const presented = presentApplication(app);
			await insertApplication(
				c.var.db,
				shardDatabase(c.env, shard.name),
				app,
				keyed?.(
					{ status: 200, location: null, body: JSON.stringify(presented) },
					"EXISTS (SELECT 1 FROM applications WHERE id = ?3)",
					[app.id],
				),
				auditRecord(c, "application.create", { applicationId: app.id, dataRegion, shard: shard.name }),
			);
			return c.json(presented, 200);
		});
	},
);

appManagementRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/appManagement/applications",
		tags,
		operationId: "getApplicationList",
		summary: "List the realm's applications",
		access: "management",
		responses: { 200: json(ApplicationListSchema, "Applications") },
	}),
	async (c) => {
		const applications = await listApplications(c.var.db);
		return c.json({ applications: applications.map(presentApplication) }, 200);
	},
);

appManagementRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/appManagement/applicationList",
		tags,
		operationId: "getApplications",
		summary: `List the realm's applications with their properties, ${LIMITS.applicationsPerPage} per page`,
		description:
			"SCORM Cloud's current list call (the older GET /appManagement/applications stays). since and until bound the " +
			"date datetimeFilter names (inclusive); filter is text the field filterBy names must contain, case-insensitive; " +
			"`more` carries the original filters and order. includeTotalCount=true adds X-Total-Count on the first page. " +
			"Counts are exact, never cached.",
		access: "management",
		request: { query: ApplicationListQuery },
		responses: {
			200: {
				...json(ApplicationInfoListSchema, "A page of applications; `more` fetches the next"),
				headers: asClassic(
					z.object({
						"X-Total-Count": z
							.optional(z.string())
							.openapi({ description: "How many applications match, with includeTotalCount=true (first page only)" }),
					}),
				),
			},
		},
	}),
	async (c) => {
		const query = c.req.valid("query");
		const secret = c.env.TOKEN_SIGNING_SECRET;
		// The realm's listing: its tokens are bound to no application ("").
		const cursor: Omit<ApplicationPageCursor, "app" | "after"> & { after?: ApplicationPageCursor["after"] } =
			query.more !== undefined
				? await decodeCursor(secret, APPLICATION_PAGES, query.more, "")
				: {
						filter: {
							datetimeFilter: query.datetimeFilter,
							since: query.since,
							until: query.until,
							filter: query.filter,
							filterBy: query.filterBy,
						},
						order: query.orderBy,
					};
		const pageSize = LIMITS.applicationsPerPage;
		// One row past the page tells whether another page exists, without a count.
		const { applications, total } = await retryTransient(() =>
			listApplicationPage(c.var.db, {
				filter: cursor.filter,
				order: cursor.order,
				after: cursor.after,
				limit: pageSize + 1,
				count: query.includeTotalCount === true && query.more === undefined,
			}),
		);
		const page = applications.slice(0, pageSize);
		const last = page.at(-1);
		const more =
			applications.length > pageSize && last
				? await encodeCursor(secret, APPLICATION_PAGES, { ...cursor, app: "", after: { id: last.id, createdAt: last.createdAt, updatedAt: last.updatedAt } })
				: undefined;
		const counts = await countsOf(c.env, page, query);
		if (total !== undefined) c.header("X-Total-Count", String(total));
		return c.json({ applications: page.map((app) => presentApplicationInfo(app, counts.get(app.id) ?? {})), ...(more && { more }) }, 200);
	},
);

appManagementRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/appManagement/applications/{childAppId}",
		tags,
		operationId: "getApplicationInfo",
		summary: "An application's properties (SCORM Cloud's ApplicationInfoSchema), with counts when asked",
		access: "management",
		request: { params: ChildAppParams, query: ApplicationInfoQuery },
		errors: [404],
		responses: { 200: json(ApplicationInfoSchema, "The application") },
	}),
	async (c) => {
		const { childAppId } = c.req.valid("param");
		const app = await retryTransient(() => findApplication(c.var.db, childAppId));
		if (!app) throw appNotFound(childAppId);
		const counts = await countsOf(c.env, [app], c.req.valid("query"));
		return c.json(presentApplicationInfo(app, counts.get(app.id) ?? {}), 200);
	},
);

appManagementRoutes.openapi(
	declareRoute({
		method: "put",
		path: "/appManagement/applications/{childAppId}",
		tags,
		operationId: "updateApplication",
		summary: "Rename an application, or guard it against deletion (allowDelete: false)",
		access: "management",
		request: { params: ChildAppParams, body: jsonBody(UpdateApplicationSchema) },
		errors: [404],
		responses: { 204: { description: "Updated" } },
	}),
	async (c) => {
		const { childAppId } = c.req.valid("param");
		const { name, allowDelete } = c.req.valid("json");
		// The entry names what changed and the new allowDelete; a name is the operator's text, kept out of the trail.
		const audit = auditRecord(c, "application.update", {
			applicationId: childAppId,
			changed: [...(name !== undefined ? ["name"] : []), ...(allowDelete !== undefined ? ["allowDelete"] : [])],
			...(allowDelete !== undefined && { allowDelete }),
		});
		if (!(await updateApplication(c.var.db, childAppId, { name, allowDelete }, nowIso(), audit))) throw appNotFound(childAppId);
		return c.body(null, 204);
	},
);

appManagementRoutes.openapi(
	declareRoute({
		method: "delete",
		path: "/appManagement/applications/{childAppId}",
		tags,
		operationId: "deleteApplication",
		summary: "Delete an application: its credentials stop working at once, a job deletes its data",
		description: "Refused (409, naming allowDelete) while the application's allowDelete is false, or while it is being moved.",
		access: "management",
		request: { params: ChildAppParams },
		errors: [404, 409],
		responses: {
			204: {
				description: "Deletion started; Location names the job",
				headers: asClassic(z.object({ Location: z.string().openapi({ description: "/api/v2/jobs/{jobId}" }) })),
			},
		},
	}),
	async (c) => {
		const { childAppId } = c.req.valid("param");
		// The control database first (the credentials stop working), then the shard records the job; a failure in
		// between is finished by the sweeper (src/jobs/sweeper.ts).
		const audit = auditRecord(c, "application.delete", { applicationId: childAppId });
		const placement = await retryTransient(() => markApplicationDeleted(c.var.db, childAppId, nowIso(), audit));
		if (placement === "protected") {
			throw new ApiError(
				409,
				`Application [${childAppId}] has allowDelete: false, which guards it against deletion; set allowDelete to true (PUT /appManagement/applications/${childAppId}) to delete it`,
			);
		}
		if (placement === "moving") {
			throw new ApiError(409, `Application [${childAppId}] is being moved between shards; delete it once the move job has finished`);
		}
		if (!placement) throw appNotFound(childAppId);
		forgetApplication(childAppId);
		const shard = shardDatabase(c.env, placement.shard);
		const job = await recordApplicationDeletion(shard, childAppId, nowIso());
		if (!job) throw appNotFound(childAppId);
		await retryTransient(() => noteDeletionRecorded(c.var.db, childAppId, nowIso()));
		// Re-sending for an unfinished job is safe (the consumer is idempotent) and repairs a send that failed.
		await dispatch(c.env, shard, { type: "deleteApplication", jobId: job.id });
		return c.body(null, 204, { Location: jobLocation(job.id) });
	},
);

appManagementRoutes.openapi(
	declareRoute({
		method: "post",
		path: "/appManagement/applications/{childAppId}/move",
		tags,
		operationId: "moveApplication",
		summary: "Move an application's data to another shard, as a job",
		description:
			"Copies the application's rows to `shard` chunk by chunk while it keeps working, then briefly refuses its writes " +
			"(503 with Retry-After) while the last changes are copied, the counts compared and its placement flipped; " +
			"reads go on throughout, and the rows left behind are deleted. Moving into another data region needs " +
			"`allowRegionChange: true`. While a move is unfinished, asking again for the same shard returns its job.",
		access: "management",
		request: { params: ChildAppParams, body: jsonBody(ApplicationMoveSchema), headers: IdempotencyHeaders },
		errors: [404, 409, 422],
		responses: {
			204: {
				description: "Move started; Location names the job (GET /jobs/{jobId} with the management credentials)",
				headers: asClassic(z.object({ Location: z.string().openapi({ description: "/api/v2/jobs/{jobId}" }) })),
			},
		},
	}),
	async (c) => {
		const { childAppId } = c.req.valid("param");
		const body = c.req.valid("json");
		const { shard: target, allowRegionChange = false } = body;
		// The checks run under the key too: a retry after the move finished replays its 204, not "already there".
		return idempotent(c, c.var.db, "", body, null, async (keyed) => {
			const { shards } = c.var.config;
			const to = shards.find((shard) => shard.name === target);
			if (!to) throw badRequest(`shard [${target}] is not a shard of this service; shards: ${shards.map((shard) => shard.name).join(", ")}`);
			const placement = await retryTransient(() => findPlacement(c.var.db, childAppId));
			if (!placement || placement.deletedAt !== null) throw appNotFound(childAppId);
			if (placement.shard === to.name) throw new ApiError(409, `Application [${childAppId}] is on shard [${to.name}] already`);
			if (!to.open) throw new ApiError(409, `Shard [${to.name}] is closed to new applications`);
			if (to.region !== placement.dataRegion && !allowRegionChange) {
				throw badRequest(
					`Moving application [${childAppId}] from data region [${placement.dataRegion}] to [${to.region}] needs allowRegionChange: true`,
				);
			}
			const underWaySql = `FROM jobs WHERE app_id = ?3 AND type = 'moveApplication' AND status IN ('queued', 'running')
			  AND json_extract(payload, '$.to') = ?4`;
			const moveId = crypto.randomUUID();
			const job = await acceptMove(
				c.var.db,
				{
					id: moveId,
					appId: childAppId,
					from: placement.shard,
					to: to.name,
					payload: JSON.stringify(newMovePlan(placement.shard, to.name, to.region)),
					createdAt: nowIso(),
				},
				keyed?.(
					{ status: 204, location: { sql: `(SELECT '/api/v2/jobs/' || id ${underWaySql} LIMIT 1)` }, body: null },
					`EXISTS (SELECT 1 ${underWaySql})`,
					[childAppId, to.name],
				),
				auditRecord(c, "application.move", { applicationId: childAppId, jobId: moveId, from: placement.shard, to: to.name }),
			);
			if (!job) throw appNotFound(childAppId);
			const underWay = JSON.parse(job.payload ?? "{}") as Partial<MovePlan>;
			if (underWay.to !== to.name) {
				throw new ApiError(409, `Application [${childAppId}] is being moved to shard [${underWay.to}] already`, {
					Location: jobLocation(job.id),
				});
			}
			await dispatch(c.env, c.var.db, { type: "moveApplication", jobId: job.id });
			return c.body(null, 204, { Location: jobLocation(job.id) });
		});
	},
);

appManagementRoutes.openapi(
	declareRoute({
		method: "post",
		path: "/appManagement/{childAppId}/credentials",
		tags,
		operationId: "createCredential",
		summary: "Create a credential; the secret is shown in this response only",
		access: "management",
		request: { params: ChildAppParams, body: jsonBody(CredentialRequestSchema) },
		errors: [404],
		responses: { 200: json(CredentialCreatedSchema, "The credential with its secret") },
	}),
	async (c) => {
		const { childAppId } = c.req.valid("param");
		const { name, active = true } = c.req.valid("json");
		const secret = randomSecret();
		const credential = { id: crypto.randomUUID(), appId: childAppId, name, enabled: active, createdAt: nowIso() };
		const audit = auditRecord(c, "credential.create", { applicationId: childAppId, credentialId: credential.id, active });
		if (!(await insertCredential(c.var.db, credential, await sha256Hex(secret), audit))) throw appNotFound(childAppId);
		const { createdAt } = credential;
		return c.json({ id: credential.id, name, credential: secret, status: statusOf(active), created: createdAt, updated: createdAt }, 200);
	},
);

appManagementRoutes.openapi(
	declareRoute({
		method: "get",
		path: "/appManagement/{childAppId}/credentials",
		tags,
		operationId: "getCredentials",
		summary: "List an application's credentials (without secrets)",
		access: "management",
		request: { params: ChildAppParams },
		errors: [404],
		responses: { 200: json(CredentialListSchema, "Credentials") },
	}),
	async (c) => {
		const { childAppId } = c.req.valid("param");
		const credentials = await listCredentials(c.var.db, childAppId);
		if (!credentials) throw appNotFound(childAppId);
		return c.json(
			{
				credentials: credentials.map(({ id, name, enabled, createdAt, updatedAt }) => ({
					id,
					name,
					status: statusOf(enabled),
					created: createdAt,
					updated: updatedAt,
				})),
			},
			200,
		);
	},
);

appManagementRoutes.openapi(
	declareRoute({
		method: "put",
		path: "/appManagement/{childAppId}/credentials/{credentialId}",
		tags,
		operationId: "updateCredential",
		summary: "Rename, enable or disable a credential",
		access: "management",
		request: { params: CredentialParams, body: jsonBody(CredentialUpdateSchema) },
		errors: [404],
		responses: { 204: { description: "Updated" } },
	}),
	async (c) => {
		const { childAppId, credentialId } = c.req.valid("param");
		const { name, active } = c.req.valid("json");
		const changes = { name, enabled: active };
		const audit = auditRecord(c, "credential.update", {
			applicationId: childAppId,
			credentialId,
			changed: [...(name !== undefined ? ["name"] : []), ...(active !== undefined ? ["active"] : [])],
			...(active !== undefined && { active }),
		});
		changedOr404(await updateCredential(c.var.db, childAppId, credentialId, changes, nowIso(), audit), childAppId, credentialId);
		forgetCredential(credentialId);
		return c.body(null, 204);
	},
);

appManagementRoutes.openapi(
	declareRoute({
		method: "delete",
		path: "/appManagement/{childAppId}/credentials/{credentialId}",
		tags,
		operationId: "deleteCredential",
		summary: "Delete a credential: it and its tokens stop working",
		access: "management",
		request: { params: CredentialParams },
		errors: [404],
		responses: { 204: { description: "Deleted" } },
	}),
	async (c) => {
		const { childAppId, credentialId } = c.req.valid("param");
		const audit = auditRecord(c, "credential.delete", { applicationId: childAppId, credentialId });
		changedOr404(await deleteCredential(c.var.db, childAppId, credentialId, audit), childAppId, credentialId);
		forgetCredential(credentialId);
		return c.body(null, 204);
	},
);
