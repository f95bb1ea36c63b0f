// Webhooks and Idempotency-Key against `wrangler dev` (SPEC §8): a receiver on 127.0.0.1 gets the signed
// job.completed events of an update, an erasure and an application deletion through the local queues, verifies
// each one with the Standard Webhooks library (`standardwebhooks`, one call, as the receiver in
// docs/jobs-and-webhooks.md does), and sees an event delivered again after it answered 500 once.
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import {
	ScormCloud,
	type Job,
	basePath,
	basicAuthorization,
	invoke,
	jobLocation,
	managementClient,
	openSession,
	provisionApp,
	putRealmUser,
	register,
	unique,
	waitForJob,
} from "./helpers";

interface Delivery {
	path: string;
	headers: Record<string, string>;
	body: string;
	status: number;
}

interface Event {
	id: string;
	type: string;
	createdDate: string;
	job: Job & { notification?: unknown };
}

const deliveries: Delivery[] = [];
/** Paths whose first delivery is answered 500. */
const failOnce = new Set<string>();
let server: Server;
let hookBase = "";

beforeAll(async () => {
	server = createServer((req, res) => {
		let body = "";
		req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
		req.on("end", () => {
			const path = req.url ?? "";
			const status = failOnce.delete(path) ? 500 : 204;
			const headers = Object.fromEntries(Object.entries(req.headers).map(([name, value]) => [name, String(value)]));
			deliveries.push({ path, headers, body, status });
			res.writeHead(status).end();
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	hookBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
	await new Promise((resolve) => server.close(resolve));
});

const management = () => basicAuthorization(inject("managementAppId"), inject("managementSecretKey"));

/** Registers the application's webhook (not in the SCORM Cloud client: plain fetch); answers the signing secret. */
async function setWebhook(appId: string, path: string): Promise<string> {
	const response = await fetch(`${basePath()}/appManagement/${appId}/webhook`, {
		method: "PUT",
		headers: { Authorization: management(), "Content-Type": "application/json" },
		body: JSON.stringify({ url: `${hookBase}${path}` }),
	});
	expect(response.status).toBe(200);
	return ((await response.json()) as { signingSecret: string }).signingSecret;
}

/**
 * The receiver's check, as docs/jobs-and-webhooks.md shows it: one call of the Standard Webhooks library, which
 * checks the signature over webhook-id, webhook-timestamp and the body, and refuses a timestamp more than 5 minutes
 * off.
 * Answers what it refused, or null when it verifies.
 */
function refusal(secret: string, delivery: Pick<Delivery, "headers" | "body">): string | null {
	try {
		new Webhook(secret).verify(delivery.body, delivery.headers);
		return null;
	} catch (error) {
		return error instanceof Error ? error.message : String(error);
	}
}

const verifies = (secret: string, delivery: Delivery) => refusal(secret, delivery) === null;

/** A secret of the same form that is not the application's. */
const anotherSecret = () => `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;

/** Waits for the receiver to hold `count` deliveries of the job's event. */
async function deliveriesOf(jobId: string, count: number, timeoutMs = 60_000): Promise<Delivery[]> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const found = deliveries.filter((delivery) => (JSON.parse(delivery.body) as Event).job?.id === jobId);
		if (found.length >= count) return found;
		if (Date.now() > deadline) throw new Error(`${found.length} of ${count} deliveries of job ${jobId}'s event within ${timeoutMs} ms`);
		await new Promise((resolve) => setTimeout(resolve, 200));
	}
}

/** GET /jobs/{id} with the management credentials. */
async function jobResource(jobId: string): Promise<Event["job"]> {
	const response = await fetch(`${basePath()}/jobs/${jobId}`, { headers: { Authorization: management() } });
	expect(response.status).toBe(200);
	return (await response.json()) as Event["job"];
}

/** Waits until the job's notification reads delivered (its row is written after the receiver answered). */
async function deliveredNotification(jobId: string): Promise<unknown> {
	return (await deliveredResource(jobId)).notification;
}

async function deliveredResource(jobId: string): Promise<Event["job"]> {
	for (let tries = 0; tries < 50; tries++) {
		const resource = await jobResource(jobId);
		if ((resource.notification as { status?: string } | undefined)?.status === "delivered") return resource;
		await new Promise((resolve) => setTimeout(resolve, 200));
	}
	return jobResource(jobId);
}

/** The job's one delivery, once the receiver has it, and the job resource once that delivery is recorded. */
async function deliveredEvent(jobId: string): Promise<{ delivery: Delivery; resource: Event["job"] }> {
	const [delivery] = await deliveriesOf(jobId, 1);
	if (!delivery) throw new Error(`no delivery of job ${jobId}'s event`);
	return { delivery, resource: await deliveredResource(jobId) };
}

const jobIdOf = (location: string) => location.slice(location.lastIndexOf("/") + 1);

describe("webhooks against wrangler dev", () => {
	it("tell the receiver of an update, an erasure and an application deletion, each event signed", async () => {
		const app = await provisionApp();
		const path = `/hooks/${app.appId}`;
		const secret = await setWebhook(app.appId, path);
		const session = await openSession("Basic", app);
		const learner = { learnerId: unique("hooked"), email: `${unique("mail")}@example.com`, firstName: "Ada", lastName: "Lovelace" };
		await register(session, learner);

		const info = new ScormCloud.LearnerSchema(learner.learnerId);
		info.firstName = "Augusta";
		const { response: updated } = await invoke<null>((done) => session.learners.updateLearnerInfo(learner.learnerId, info, done));
		const updateJob = jobIdOf(jobLocation(updated));
		const adminEmail = `${unique("admin")}@example.com`;
		await putRealmUser(adminEmail, "admin");
		// Each event as the receiver got it, and the job resource read once it was delivered (the application's
		// deletion takes its other jobs with it).
		const updateEvent = await deliveredEvent(updateJob);
		const { response: erased } = await invoke<null>((done) => session.eraser.deleteAllLearnerData(learner.learnerId, adminEmail, done));
		const erasureJob = jobIdOf(jobLocation(erased));
		const erasureEvent = await deliveredEvent(erasureJob);
		const { response: deleted } = await invoke<null>((done) =>
			new ScormCloud.ApplicationManagementApi(managementClient()).deleteApplication(app.appId, done),
		);
		const deletionJob = jobIdOf(jobLocation(deleted));
		const deletionEvent = await deliveredEvent(deletionJob);

		expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
		const received = [updateEvent, erasureEvent, deletionEvent].map(({ delivery, resource }) => {
			expect(delivery.path).toBe(path);
			expect(refusal(secret, delivery)).toBeNull();
			expect(delivery.headers["webhook-id"]).toBe((JSON.parse(delivery.body) as Event).id);
			// A tampered body, another secret, or the same delivery replayed later is refused by the library.
			expect(refusal(secret, { ...delivery, body: delivery.body.replace('"completed"', '"failed"') })).toBe("No matching signature found");
			expect(refusal(anotherSecret(), delivery)).toBe("No matching signature found");
			vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 6 * 60_000 });
			try {
				expect(refusal(secret, delivery)).toBe("Message timestamp too old");
			} finally {
				vi.useRealTimers();
			}
			for (const value of [learner.learnerId, learner.email, "Ada", "Lovelace", "Augusta"]) expect(delivery.body).not.toContain(value);
			const event = JSON.parse(delivery.body) as Event;
			const { notification, ...job } = resource;
			expect(notification).toEqual({ status: "delivered", attempts: 1, lastStatus: 204 });
			// The payload is the job resource as GET /jobs answers it, without its own delivery state.
			expect(event.job).toEqual(job);
			expect(event.id).toMatch(/^evt_[0-9a-f]{32}$/);
			expect(event.createdDate).toBe(job.completedDate);
			return event;
		});
		expect(received.map((event) => [event.type, event.job.type, event.job.id, event.job.status])).toEqual([
			["job.completed", "updateLearnerInfo", updateJob, "completed"],
			["job.completed", "deleteAllLearnerData", erasureJob, "completed"],
			["job.completed", "deleteApplication", deletionJob, "completed"],
		]);
		expect(new Set(received.map((event) => event.id)).size).toBe(3);
	});

	it("delivers an event again after the receiver answered 500, the same event signed afresh", async () => {
		const app = await provisionApp();
		const path = `/flaky/${app.appId}`;
		const secret = await setWebhook(app.appId, path);
		failOnce.add(path);
		const session = await openSession("Basic", app);
		const { learnerId } = await register(session);
		const info = new ScormCloud.LearnerSchema(learnerId);
		info.lastName = "Again";
		const { response } = await invoke<null>((done) => session.learners.updateLearnerInfo(learnerId, info, done));
		const jobId = jobIdOf(jobLocation(response));
		expect((await waitForJob(session, jobLocation(response))).status).toBe("completed");

		const [first, second] = await deliveriesOf(jobId, 2, 75_000);
		expect([first?.status, second?.status]).toEqual([500, 204]);
		expect(JSON.parse(second?.body ?? "").id).toBe(JSON.parse(first?.body ?? "").id);
		expect(verifies(secret, first as Delivery) && verifies(secret, second as Delivery)).toBe(true);
		expect(await deliveredNotification(jobId)).toEqual({ status: "delivered", attempts: 2, lastStatus: 204 });
	}, 90_000);

	it("answer a test event at once with how it went", async () => {
		const app = await provisionApp();
		const secret = await setWebhook(app.appId, `/test/${app.appId}`);
		const response = await fetch(`${basePath()}/appManagement/${app.appId}/webhook/test`, { method: "POST", headers: { Authorization: management() } });
		expect(response.status).toBe(200);
		const result = (await response.json()) as { eventId: string };
		expect(result).toEqual({ eventId: expect.stringMatching(/^evt_/), delivered: true, status: 204 });
		const delivery = deliveries.find((entry) => (JSON.parse(entry.body) as Event).id === result.eventId);
		expect(delivery && refusal(secret, delivery)).toBeNull();
		expect(delivery && refusal(anotherSecret(), delivery)).toBe("No matching signature found");
		expect(JSON.parse(delivery?.body ?? "")).toEqual({ id: result.eventId, type: "webhook.test", createdDate: expect.any(String) });
	});
});

describe("Idempotency-Key against wrangler dev", () => {
	it("a POST retried with the same key after the first succeeded changes nothing and answers as the first did", async () => {
		const app = await provisionApp();
		const auth = basicAuthorization(app.appId, app.secret);
		const learnerId = unique("keyed");
		const post = (path: string, body: unknown, key: string) =>
			fetch(`${basePath()}${path}`, {
				method: "POST",
				headers: { Authorization: auth, "Content-Type": "application/json", "Idempotency-Key": key },
				body: JSON.stringify(body),
			});
		const registration = { courseId: "c", registrationId: unique("reg"), learner: { id: learnerId, firstName: "Keyed" } };
		const registrationKey = unique("key");
		const created = await post("/registrations", registration, registrationKey);
		expect(created.status).toBe(204);
		const updateKey = unique("key");
		const update = { id: learnerId, firstName: "Once" };
		const first = await post(`/learner/${learnerId}/updateInfo`, update, updateKey);
		expect(first.status).toBe(204);
		const location = first.headers.get("Location");
		expect(location).toMatch(/^\/api\/v2\/jobs\//);

		const [createdAgain, updatedAgain] = [await post("/registrations", registration, registrationKey), await post(`/learner/${learnerId}/updateInfo`, update, updateKey)];
		expect([createdAgain.status, createdAgain.headers.get("Idempotent-Replayed")]).toEqual([204, "true"]);
		expect([updatedAgain.status, updatedAgain.headers.get("Location"), updatedAgain.headers.get("Idempotent-Replayed")]).toEqual([
			204,
			location,
			"true",
		]);
		// One registration, one update job: the learner's registrations list holds one.
		const listed = await fetch(`${basePath()}/registrations?learnerId=${encodeURIComponent(learnerId)}`, { headers: { Authorization: auth } });
		expect(((await listed.json()) as { registrations: unknown[] }).registrations).toHaveLength(1);
		// The same key with another body is refused, naming the key, and does nothing.
		const other = await post(`/learner/${learnerId}/updateInfo`, { id: learnerId, firstName: "Twice" }, updateKey);
		expect(other.status).toBe(422);
		expect(((await other.json()) as { message: string }).message).toContain(updateKey);
	});
});
