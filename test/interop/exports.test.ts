import { createPublicKey, verify } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, inject, it } from "vitest";
import { basePath, basicAuthorization, canonical, putRealmUser, unique } from "./helpers";

/**
 * SPEC §12 subject-access exports against `wrangler dev` (local D1, Queues and R2): a learner with registrations in
 * two applications on two shards, one in the EU, exported realm-wide; the signed document is downloaded and verified
 * offline with Node's crypto, and checked against what the API shows; then the learner is erased, and nothing of the
 * export is left in R2's local store (a byte scan of wrangler's state), and a second export answers 404.
 */

const management = () => basicAuthorization(inject("managementAppId"), inject("managementSecretKey"));

async function api(method: string, pathname: string, authorization: string, body?: unknown): Promise<Response> {
	return fetch(`${basePath()}${pathname}`, {
		method,
		headers: { Authorization: authorization, ...(body !== undefined && { "Content-Type": "application/json" }) },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
}

/** An application in `dataRegion`, with a credential; its id, shard and Basic header. */
async function application(dataRegion: "default" | "eu"): Promise<{ appId: string; shard: string; auth: string }> {
	const created = await api("POST", "/appManagement/applications", management(), { name: unique("export"), dataRegion });
	expect(created.status).toBe(200);
	const { id: appId, shard } = (await created.json()) as { id: string; shard: string };
	const credential = await api("POST", `/appManagement/${appId}/credentials`, management(), { name: "export" });
	expect(credential.status).toBe(200);
	const { credential: secret } = (await credential.json()) as { credential: string };
	return { appId, shard, auth: basicAuthorization(appId, secret) };
}

/** Waits for a job (management credentials see every job) to finish. */
async function finished(location: string): Promise<{ status: string; registrationsAffected: number }> {
	const deadline = Date.now() + 45_000;
	for (;;) {
		const response = await fetch(new URL(location, basePath()), { headers: { Authorization: management() } });
		expect(response.status).toBe(200);
		const job = (await response.json()) as { status: string; registrationsAffected: number };
		if (job.status === "completed" || job.status === "failed") return job;
		if (Date.now() > deadline) throw new Error(`${location} did not finish: ${JSON.stringify(job)}`);
		await new Promise((resolve) => setTimeout(resolve, 250));
	}
}

/** Every file under `dir`. */
function filesUnder(dir: string): string[] {
	return readdirSync(dir).flatMap((name) => {
		const file = path.join(dir, name);
		return statSync(file).isDirectory() ? filesUnder(file) : [file];
	});
}

interface ApplicationDocument {
	applicationId: string;
	dataRegion: string;
	learnerId: string;
	learner: { id: string; email?: string; firstName?: string; tags: string[]; registrationCount: number; suppressed: boolean };
	registrations: { id: string; courseId: string; createdDate: string; updatedDate: string; xapiRegistrationId: string; instance: number; learner: unknown; tags: string[] }[];
}

describe("subject-access exports against wrangler dev", () => {
	it("exports a learner held on two shards (one EU), verifiably signed, and leaves nothing in R2 once it is erased", async () => {
		const admin = `${unique("dpo")}@example.com`;
		await putRealmUser(admin, "admin");
		const [home, eu] = [await application("default"), await application("eu")];
		expect(home.shard).not.toBe(eu.shard);
		const learnerId = unique("exported-learner");
		const email = `${learnerId}@example.com`;
		for (const [app, tags] of [[home, ["home-tag"]], [eu, ["eu-tag"]]] as const) {
			const created = await api("POST", "/registrations", app.auth, {
				courseId: "export-course",
				registrationId: unique("export-registration"),
				learner: { id: learnerId, email, firstName: "Exported" },
				learnerTags: tags,
				registrationTags: ["registration-tag"],
			});
			expect(created.status).toBe(204);
		}

		const realm = await api("POST", `/appManagement/learners/${learnerId}/export?userEmail=${encodeURIComponent(admin)}`, management());
		expect(realm.status).toBe(204);
		const realmLocation = realm.headers.get("Location") ?? "";
		expect(await finished(realmLocation)).toMatchObject({ status: "completed", registrationsAffected: 2 });
		const realmJobId = realmLocation.split("/").pop() ?? "";

		// Downloaded, then verified offline with Node's crypto and the published key.
		const download = await api("GET", `/jobs/${realmJobId}/export`, management());
		expect(download.status).toBe(200);
		const signed = (await download.json()) as { document: { learnerId: string; applications: ApplicationDocument[] }; signature: string; keyId: string };
		const jwk = (await (await fetch(`${basePath()}/.well-known/erasure-receipt-key`)).json()) as { kty: string; crv: string; x: string; kid: string };
		const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: "jwk" });
		expect(signed.keyId).toBe(jwk.kid);
		expect(verify(null, Buffer.from(canonical(signed.document)), key, Buffer.from(signed.signature, "base64url"))).toBe(true);
		// A document changed by one byte no longer verifies.
		const altered = { ...signed.document, learnerId: `${learnerId}x` };
		expect(verify(null, Buffer.from(canonical(altered)), key, Buffer.from(signed.signature, "base64url"))).toBe(false);

		// It holds what the API shows, application by application, each in its own region.
		expect(signed.document.learnerId).toBe(learnerId);
		expect(signed.document.applications.map((document) => [document.applicationId, document.dataRegion])).toEqual([
			[home.appId, "default"],
			[eu.appId, "eu"],
		]);
		for (const [app, document] of [[home, signed.document.applications[0]], [eu, signed.document.applications[1]]] as const) {
			const listed = (await (await api("GET", `/registrations?learnerId=${learnerId}`, app.auth)).json()) as {
				registrations: { id: string; course: { id: string }; createdDate: string; updated: string; xapiRegistrationId: string; instance: number; learner: unknown; tags: string[] }[];
			};
			expect(document?.registrations).toEqual(
				listed.registrations.map((registration) => ({
					id: registration.id,
					courseId: registration.course.id,
					instance: registration.instance,
					xapiRegistrationId: registration.xapiRegistrationId,
					createdDate: registration.createdDate,
					updatedDate: registration.updated,
					learner: registration.learner,
					tags: registration.tags,
				})),
			);
			const tags = (await (await api("GET", `/learner/${learnerId}/tags`, app.auth)).json()) as { tags: string[] };
			expect(document?.learner).toEqual({ id: learnerId, email, firstName: "Exported", tags: tags.tags, registrationCount: 1, suppressed: false });
		}

		// An application's own export, with its own credentials.
		const own = await api("POST", `/learner/${learnerId}/export?userEmail=${encodeURIComponent(admin)}`, home.auth);
		expect(own.status).toBe(204);
		const ownLocation = own.headers.get("Location") ?? "";
		expect(await finished(ownLocation)).toMatchObject({ status: "completed" });
		const ownJobId = ownLocation.split("/").pop() ?? "";
		expect((await api("GET", `/jobs/${ownJobId}/export`, home.auth)).status).toBe(200);

		// The documents are in R2's local store (v3/r2/<bucket>/blobs/…), in each region's bucket.
		const r2Files = () => filesUnder(inject("persistDir")).filter((file) => file.split(path.sep).includes("r2"));
		const naming = (needles: string[]) => r2Files().filter((file) => needles.some((needle) => readFileSync(file).includes(needle)));
		// The two default-region documents (the realm export's child, the application's own), and the EU one.
		const bucketOf = (file: string) => path.relative(inject("persistDir"), file).split(path.sep)[2];
		expect(naming([learnerId]).map(bucketOf).sort()).toEqual(["learner-service-exports", "learner-service-exports", "learner-service-exports-eu"]);

		// Erased everywhere: every export of the learner goes with it.
		const erasure = await api("POST", `/appManagement/learners/${learnerId}/delete-information?userEmail=${encodeURIComponent(admin)}`, management());
		expect(erasure.status).toBe(204);
		expect(await finished(erasure.headers.get("Location") ?? "")).toMatchObject({ status: "completed", registrationsAffected: 2 });

		expect(naming([learnerId, email, "Exported"])).toEqual([]);
		for (const [jobId, auth] of [[realmJobId, management()], [ownJobId, home.auth]] as const) {
			const gone = await api("GET", `/jobs/${jobId}/export`, auth);
			expect(gone.status).toBe(404);
			expect(((await gone.json()) as { message: string }).message).toMatch(/is gone/);
		}
		const again = await api("POST", `/appManagement/learners/${learnerId}/export?userEmail=${encodeURIComponent(admin)}`, management());
		expect(again.status).toBe(404);
		expect((await api("POST", `/learner/${learnerId}/export?userEmail=${encodeURIComponent(admin)}`, eu.auth)).status).toBe(404);
	});
});
