import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { findPlacement, listApplications, markApplicationDeleted } from "../../src/db/applications";
import {
	type Credential,
	deleteCredential,
	findActiveCredentialById,
	findActiveCredentialBySecret,
	insertCredential,
	listCredentials,
	updateCredential,
} from "../../src/db/credentials";
import { uniqueValue } from "../support/fixtures";
import { SHARDS, countOf, seedApplication } from "../support/seed";

// src/db/credentials.ts on its own, apart from the routes: SPEC §2 and §4. A credential belongs to one
// application; only the SHA-256 of its secret is stored; a disabled or deleted credential, or one of an
// application whose deletion was accepted, authenticates nothing; another application's credential does not
// exist for the caller (§1). Credentials live in the control database with the applications; a credential found
// carries its application's shard (§7: the placement is read with the credential). An application's deletion is
// accepted by the control database (markApplicationDeleted) before its shard records the job.

/**
 * A credential of the application, created `createdAt`, and the hash it is stored under; its shard is the
 * application's (none for an unknown application).
 */
async function credential(appId: string, fields: Partial<Credential> = {}): Promise<{ credential: Credential; hash: string }> {
	const shard = (await findPlacement(env.DB, appId))?.shard ?? "none";
	const createdAt = fields.createdAt ?? new Date().toISOString();
	return {
		// Stored, a credential's updatedAt is its createdAt until it changes.
		credential: { id: crypto.randomUUID(), appId, name: "main", enabled: true, createdAt, updatedAt: createdAt, shard, ...fields },
		hash: uniqueValue("sha-256-of-a-secret"),
	};
}

/** Accepts the application's deletion in the control database, asserting it was accepted. */
async function acceptDeletion(appId: string): Promise<void> {
	expect(await markApplicationDeleted(env.DB, appId, new Date().toISOString())).toMatchObject({ appId, deletedAt: expect.any(String) });
}

/** Stores the credential, asserting it was stored. */
async function store(made: { credential: Credential; hash: string }): Promise<Credential> {
	expect(await insertCredential(env.DB, made.credential, made.hash)).toBe(true);
	return made.credential;
}

describe("insertCredential", () => {
	it("stores a credential that its hash and its id then find, with its application and its shard", async () => {
		for (const region of ["default", "eu"] as const) {
			const appId = await seedApplication({ region });
			const made = await credential(appId);
			expect(SHARDS.find((shard) => shard.name === made.credential.shard)?.region).toBe(region);

			await store(made);

			expect(await findActiveCredentialBySecret(env.DB, appId, made.hash)).toEqual(made.credential);
			expect(await findActiveCredentialById(env.DB, made.credential.id)).toEqual(made.credential);
		}
	});

	it("answers false for an unknown application and for one whose deletion was accepted, storing nothing", async () => {
		const deleted = await seedApplication();
		await acceptDeletion(deleted);

		for (const appId of [uniqueValue("unknown-app"), deleted]) {
			const made = await credential(appId);
			expect(await insertCredential(env.DB, made.credential, made.hash)).toBe(false);
			expect(await findActiveCredentialById(env.DB, made.credential.id)).toBeNull();
		}
		expect((await listApplications(env.DB)).map(({ id }) => id)).not.toContain(deleted);
	});
});

describe("listCredentials", () => {
	it("lists the application's credentials oldest first, and no other application's", async () => {
		const appId = await seedApplication();
		const other = await seedApplication();
		const newer = await store(await credential(appId, { name: "newer", createdAt: "2024-02-01T00:00:00.000Z" }));
		const older = await store(await credential(appId, { name: "older", enabled: false, createdAt: "2024-01-01T00:00:00.000Z" }));
		await store(await credential(other));

		expect(await listCredentials(env.DB, appId)).toEqual([older, newer]);
	});

	it("answers an empty list for an application without credentials, and null for an unknown one", async () => {
		expect(await listCredentials(env.DB, await seedApplication())).toEqual([]);
		expect(await listCredentials(env.DB, uniqueValue("unknown-app"))).toBeNull();
	});
});

describe("findActiveCredentialBySecret and findActiveCredentialById", () => {
	it("find nothing for a wrong hash, or for the hash under another application's id", async () => {
		const appId = await seedApplication();
		const other = await seedApplication();
		const made = await credential(appId);
		await store(made);

		expect(await findActiveCredentialBySecret(env.DB, appId, uniqueValue("wrong-hash"))).toBeNull();
		expect(await findActiveCredentialBySecret(env.DB, other, made.hash)).toBeNull();
	});

	it("find nothing of a disabled credential", async () => {
		const made = await credential(await seedApplication(), { enabled: false });
		await store(made);

		expect(await findActiveCredentialBySecret(env.DB, made.credential.appId, made.hash)).toBeNull();
		expect(await findActiveCredentialById(env.DB, made.credential.id)).toBeNull();
	});

	it("find nothing once the application's deletion was accepted, before its shard records the job", async () => {
		const made = await credential(await seedApplication());
		await store(made);

		await acceptDeletion(made.credential.appId);

		expect(await findActiveCredentialBySecret(env.DB, made.credential.appId, made.hash)).toBeNull();
		expect(await findActiveCredentialById(env.DB, made.credential.id)).toBeNull();
		// The credentials go with the acceptance, from every database.
		expect(await countOf("SELECT count(*) AS n FROM credentials WHERE app_id = ?1", made.credential.appId)).toBe(0);
	});

	it("find nothing of an application marked deleted, even while a credential row of it is still there", async () => {
		// Deleting the credentials with the mark is one guard; the lookup's own check of the application is the
		// other, for a row any future path might leave behind.
		const made = await credential(await seedApplication());
		await store(made);
		await env.DB.prepare("UPDATE applications SET deleted_at = ?2 WHERE id = ?1").bind(made.credential.appId, new Date().toISOString()).run();

		expect(await findActiveCredentialBySecret(env.DB, made.credential.appId, made.hash)).toBeNull();
		expect(await findActiveCredentialById(env.DB, made.credential.id)).toBeNull();
	});
});

describe("updateCredential", () => {
	it("renames, disables and enables again a credential", async () => {
		const made = await credential(await seedApplication());
		const { id, appId } = await store(made);
		const later = new Date().toISOString();

		expect(await updateCredential(env.DB, appId, id, { name: "renamed" }, later)).toBe("done");
		expect(await findActiveCredentialById(env.DB, id)).toEqual({ ...made.credential, name: "renamed", updatedAt: later });
		expect(await updateCredential(env.DB, appId, id, { enabled: false }, later)).toBe("done");
		expect(await findActiveCredentialBySecret(env.DB, appId, made.hash)).toBeNull();
		expect(await updateCredential(env.DB, appId, id, { enabled: true }, later)).toBe("done");
		expect(await findActiveCredentialBySecret(env.DB, appId, made.hash)).toEqual({ ...made.credential, name: "renamed", updatedAt: later });
	});

	it("answers no-credential for an unknown credential and for another application's, which keeps working", async () => {
		const appId = await seedApplication();
		const theirs = await credential(await seedApplication());
		await store(theirs);

		expect(await updateCredential(env.DB, appId, crypto.randomUUID(), { enabled: false }, new Date().toISOString())).toBe("no-credential");
		expect(await updateCredential(env.DB, appId, theirs.credential.id, { enabled: false }, new Date().toISOString())).toBe("no-credential");

		expect(await findActiveCredentialBySecret(env.DB, theirs.credential.appId, theirs.hash)).toEqual(theirs.credential);
	});

	it("answers no-application for an unknown application", async () => {
		expect(await updateCredential(env.DB, uniqueValue("unknown-app"), crypto.randomUUID(), { name: "x" }, new Date().toISOString())).toBe(
			"no-application",
		);
	});
});

describe("deleteCredential", () => {
	it("deletes a credential, which then finds nothing and is not listed; a second time answers no-credential", async () => {
		const made = await credential(await seedApplication());
		const { id, appId } = await store(made);

		expect(await deleteCredential(env.DB, appId, id)).toBe("done");

		expect(await findActiveCredentialBySecret(env.DB, appId, made.hash)).toBeNull();
		expect(await listCredentials(env.DB, appId)).toEqual([]);
		expect(await deleteCredential(env.DB, appId, id)).toBe("no-credential");
	});

	it("answers no-credential for another application's credential, which keeps working", async () => {
		const appId = await seedApplication();
		const theirs = await credential(await seedApplication());
		await store(theirs);

		expect(await deleteCredential(env.DB, appId, theirs.credential.id)).toBe("no-credential");

		expect(await findActiveCredentialById(env.DB, theirs.credential.id)).toEqual(theirs.credential);
	});

	it("answers no-application for an unknown application", async () => {
		expect(await deleteCredential(env.DB, uniqueValue("unknown-app"), crypto.randomUUID())).toBe("no-application");
	});
});
