import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { markJobFailed } from "../../src/db/jobs";
import { learnerHash } from "../../src/jobs/contract";
import { canonicalJson } from "../../src/receipts";
import { call } from "../support/client";
import { expectMessage, getJob } from "../support/expect";
import { appOnShard, createApp, enrol, MANAGEMENT, mintToken, realmUser, type TestApp, uniqueValue } from "../support/fixtures";
import { acceptErasure, acceptUpdate, drain } from "../support/queue";
import { SHARDS, shardOf } from "../support/seed";

interface SignedReceipt {
	receipt: Record<string, string | number | null>;
	signature: string;
	algorithm: string;
	keyId: string;
}

interface PublishedKey {
	kty: string;
	crv: string;
	x: string;
	kid: string;
	alg: string;
	use: string;
}

const fromBase64Url = (text: string) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (char) => char.charCodeAt(0));

async function publishedKey(): Promise<PublishedKey> {
	const response = await call("GET", "/.well-known/erasure-receipt-key");
	expect(response.status).toBe(200);
	return (await response.json()) as PublishedKey;
}

/** Whether the published key verifies the signature over the UTF-8 bytes of `canonical`, inside workerd. */
async function verifies(canonical: string, signature: string): Promise<boolean> {
	const { kty, crv, x } = await publishedKey();
	const key = await crypto.subtle.importKey("jwk", { kty, crv, x }, { name: "Ed25519" }, false, ["verify"]);
	return crypto.subtle.verify("Ed25519", key, fromBase64Url(signature), new TextEncoder().encode(canonical));
}

/** A learner with two registrations, two learner tags and a registration tag on each, erased to completion. */
async function completedErasure(app: TestApp, requester: string): Promise<{ jobId: string; learnerId: string }> {
	const learnerId = uniqueValue("receipt-learner");
	for (let i = 0; i < 2; i++) await enrol(app, learnerId, { learnerTags: ["alpha", "beta"], registrationTags: ["cohort"] });
	const erasure = await acceptErasure(app, learnerId, requester);
	await drain(erasure);
	return { jobId: erasure.jobId, learnerId };
}

async function receiptOf(auth: string, jobId: string): Promise<SignedReceipt> {
	const response = await call("GET", `/jobs/${jobId}/receipt`, { auth });
	expect(response.status).toBe(200);
	return (await response.json()) as SignedReceipt;
}

describe("GET /jobs/{jobId}/receipt", () => {
	it("signs a completed erasure's receipt, which the published key verifies, naming its counts and requester", async () => {
		const app = await createApp();
		const requester = await realmUser("admin");
		const { jobId, learnerId } = await completedErasure(app, requester);
		const job = await getJob(app.auth, jobId);
		const key = await publishedKey();

		const signed = await receiptOf(app.auth, jobId);

		expect(signed).toEqual({
			receipt: {
				kind: "erasure-receipt",
				version: 1,
				jobId,
				applicationId: app.appId,
				learnerHash: await learnerHash(env, app.appId, learnerId),
				requestedBy: requester,
				requestedDate: job.createdDate,
				completedDate: job.completedDate,
				registrationsDeleted: 2,
				tagsRemoved: 4,
				// Not asked to suppress: the learner may be registered again.
				suppressed: false,
				keyId: key.kid,
			},
			signature: expect.stringMatching(/^[A-Za-z0-9_-]{86}$/),
			algorithm: "Ed25519",
			keyId: key.kid,
		});
		expect(JSON.stringify(signed)).not.toContain(learnerId);
		expect(await verifies(canonicalJson(signed.receipt), signed.signature)).toBe(true);
	});

	it("is signed over the canonical form: keys sorted, no whitespace", async () => {
		const app = await createApp();
		const { jobId } = await completedErasure(app, await realmUser("owner"));
		const { receipt, signature } = await receiptOf(app.auth, jobId);
		const sorted = Object.fromEntries(Object.entries(receipt).sort(([a], [b]) => (a < b ? -1 : 1)));

		expect(canonicalJson(receipt)).toBe(JSON.stringify(sorted));
		expect(await verifies(JSON.stringify(sorted), signature)).toBe(true);
		// The receipt as sent (unsorted keys) is not what was signed.
		expect(await verifies(JSON.stringify(receipt), signature)).toBe(false);
	});

	it("fails verification when one byte of the canonical form changes", async () => {
		const app = await createApp();
		const { jobId } = await completedErasure(app, await realmUser("admin"));
		const { receipt, signature } = await receiptOf(app.auth, jobId);
		const canonical = canonicalJson(receipt);
		const altered = canonical.replace('"registrationsDeleted":2', '"registrationsDeleted":3');

		expect(altered).not.toBe(canonical);
		expect(altered.length).toBe(canonical.length);
		expect(await verifies(altered, signature)).toBe(false);
	});

	it("answers 409 for an erasure that has not completed", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("receipt-learner");
		await enrol(app, learnerId);
		const erasure = await acceptErasure(app, learnerId, await realmUser("admin"));

		const response = await call("GET", `/jobs/${erasure.jobId}/receipt`, { auth: app.auth });

		expect(await expectMessage(response, 409)).toBe(
			`Erasure [${erasure.jobId}] is queued: a receipt is issued once it has completed`,
		);
		await drain(erasure);
	});

	it("answers 409 for an erasure that failed: only a completed erasure is proven", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("receipt-learner");
		await enrol(app, learnerId);
		const erasure = await acceptErasure(app, learnerId, await realmUser("admin"));
		await markJobFailed(await shardOf(app.appId), erasure.jobId, "Gave up after 5 attempts", new Date().toISOString());

		const response = await call("GET", `/jobs/${erasure.jobId}/receipt`, { auth: app.auth });

		expect(await expectMessage(response, 409)).toBe(
			`Erasure [${erasure.jobId}] is failed: a receipt is issued once it has completed`,
		);
	});

	it("answers 404 for a job of another type, saying only erasures have receipts", async () => {
		const app = await createApp();
		const learnerId = uniqueValue("receipt-learner");
		await enrol(app, learnerId);
		const update = await acceptUpdate(app, { id: learnerId, firstName: "Changed" });
		await drain(update);

		const response = await call("GET", `/jobs/${update.jobId}/receipt`, { auth: app.auth });

		expect(await expectMessage(response, 404)).toBe(
			`Job [${update.jobId}] is not an erasure (deleteAllLearnerData, deleteLearnersData, deleteRealmLearnerData): only erasures have receipts`,
		);
	});

	it("answers 404 for an unknown job and for another application's erasure, whichever shard holds it", async () => {
		const app = await createApp();
		const admin = await realmUser("admin");
		for (const unknown of [crypto.randomUUID(), `${app.appId}.${crypto.randomUUID()}`]) {
			expect(await expectMessage(await call("GET", `/jobs/${unknown}/receipt`, { auth: app.auth }), 404)).toBe(
				`Job [${unknown}] was not found`,
			);
		}
		for (const shard of SHARDS) {
			const other = await appOnShard(shard.name);
			const { jobId } = await completedErasure(other, admin);
			// The other application's job, and its UUID under this application's id: neither is this application's.
			const forged = `${app.appId}.${jobId.slice(jobId.lastIndexOf(".") + 1)}`;
			for (const id of [jobId, forged]) {
				expect(await expectMessage(await call("GET", `/jobs/${id}/receipt`, { auth: app.auth }), 404)).toBe(
					`Job [${id}] was not found`,
				);
			}
			expect(await expectMessage(await call("GET", `/jobs/${forged}/receipt`, { auth: MANAGEMENT }), 404)).toBe(
				`Job [${forged}] was not found`,
			);
		}
	});

	it("answers the management credentials and a read:learner token the same receipt, on every shard", async () => {
		const admin = await realmUser("admin");
		for (const shard of SHARDS) {
			const app = await appOnShard(shard.name);
			const { jobId } = await completedErasure(app, admin);
			const own = await receiptOf(app.auth, jobId);

			expect(own.receipt).toMatchObject({ applicationId: app.appId, jobId });
			expect(await receiptOf(MANAGEMENT, jobId)).toEqual(own);
			expect(await receiptOf(await mintToken(app, "read:learner"), jobId)).toEqual(own);
		}
	});
});

describe("GET /.well-known/erasure-receipt-key", () => {
	it("publishes the public JWK without credentials, its kid the RFC 7638 thumbprint, and no private half", async () => {
		const response = await call("GET", "/.well-known/erasure-receipt-key");
		expect(response.status).toBe(200);
		const jwk = (await response.json()) as Record<string, string>;
		const { x } = JSON.parse(env.RECEIPT_SIGNING_KEY) as { x: string };
		const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`));
		const kid = btoa(String.fromCharCode(...new Uint8Array(digest))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

		expect(jwk).toEqual({ kty: "OKP", crv: "Ed25519", x, kid, alg: "EdDSA", use: "sig" });
		expect(jwk).not.toHaveProperty("d");
	});
});
