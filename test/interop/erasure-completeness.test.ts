import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, inject, it } from "vitest";
import { basePath, basicAuthorization, provisionApp, putRealmUser, unique, type ProvisionedApp } from "./helpers";

/**
 * SPEC §9 completeness, against `wrangler dev` with its local D1, Queues, R2 and platform stores: after a bulk and a
 * realm-wide erasure, no table of any database (the control database and every shard, read straight from the local
 * files) holds a value naming an erased learner, and no other file wrangler keeps — queue storage, R2's objects (the
 * learners' exports, SPEC §12), any local log or trace store — holds the learner's id or email in any byte. The other
 * learners are untouched.
 */

const management = () => basicAuthorization(inject("managementAppId"), inject("managementSecretKey"));

async function api(method: string, pathname: string, authorization: string, body?: unknown): Promise<Response> {
	return fetch(`${basePath()}${pathname}`, {
		method,
		headers: { Authorization: authorization, ...(body !== undefined && { "Content-Type": "application/json" }) },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
}

async function enrol(app: ProvisionedApp, learnerId: string, email: string): Promise<void> {
	const response = await api("POST", "/registrations", basicAuthorization(app.appId, app.secret), {
		courseId: "completeness-course",
		learner: { id: learnerId, email, firstName: "Erasable" },
		registrationId: unique("completeness-registration"),
		learnerTags: ["completeness-tag"],
	});
	expect(response.status).toBe(204);
}

/** Waits for a job (management credentials see every job, realm jobs included) to finish. */
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

/** Every cell of every table of a local D1 file that contains one of the needles, as `table.column`. */
function cellsNaming(file: string, needles: string[]): string[] {
	const db = new DatabaseSync(file, { readOnly: true });
	try {
		const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[];
		return tables.flatMap(({ name }) =>
			(db.prepare(`SELECT * FROM "${name.replace(/"/g, '""')}"`).all() as Record<string, unknown>[]).flatMap((row) =>
				Object.entries(row)
					.filter(([, value]) => needles.some((needle) => String(value instanceof Uint8Array ? Buffer.from(value).toString() : value).includes(needle)))
					.map(([column]) => `${name}.${column}`),
			),
		);
	} finally {
		db.close();
	}
}

describe("erasure completeness against wrangler dev", () => {
	it("leaves no value naming an erased learner in any database, queue or local log store, and the others untouched", async () => {
		const admin = `${unique("dpo")}@example.com`;
		await putRealmUser(admin, "admin");
		const [one, two] = [await provisionApp(), await provisionApp()];
		const bulkErased = unique("completeness-bulk");
		const realmErased = unique("completeness-realm");
		const kept = unique("completeness-kept");
		const emails = { bulk: `${bulkErased}@example.com`, realm: `${realmErased}@example.com`, kept: `${kept}@example.com` };
		await enrol(one, bulkErased, emails.bulk);
		for (const app of [one, two]) await enrol(app, realmErased, emails.realm);
		await enrol(one, kept, emails.kept);
		// An export of each learner about to be erased (SPEC §12): its document in R2 must go with the erasure.
		for (const [app, learnerId] of [[one, bulkErased], [two, realmErased]] as const) {
			const exported = await api("POST", `/learner/${learnerId}/export?userEmail=${encodeURIComponent(admin)}`, basicAuthorization(app.appId, app.secret));
			expect(exported.status).toBe(204);
			expect(await finished(exported.headers.get("Location") ?? "")).toMatchObject({ status: "completed" });
		}

		const bulk = await api("POST", `/learners/delete-information?userEmail=${encodeURIComponent(admin)}`, basicAuthorization(one.appId, one.secret), {
			ids: [bulkErased],
		});
		expect(bulk.status).toBe(204);
		const realm = await api("POST", `/appManagement/learners/${realmErased}/delete-information?userEmail=${encodeURIComponent(admin)}`, management());
		expect(realm.status).toBe(204);
		expect(await finished(bulk.headers.get("Location") ?? "")).toMatchObject({ status: "completed", registrationsAffected: 1 });
		expect(await finished(realm.headers.get("Location") ?? "")).toMatchObject({ status: "completed", registrationsAffected: 2 });

		const needles = [bulkErased, realmErased, emails.bulk, emails.realm];
		const files = filesUnder(inject("persistDir"));
		const databases = files.filter((file) => file.endsWith(".sqlite") && file.includes(`${path.sep}d1${path.sep}`));
		// The control database and the three shards, at least (wrangler.toml).
		expect(databases.length).toBeGreaterThanOrEqual(4);
		expect(databases.flatMap((file) => cellsNaming(file, needles).map((cell) => `${path.basename(file)}: ${cell}`))).toEqual([]);
		// The same scan finds the learner nobody erased: it reads the databases the service writes.
		expect(databases.flatMap((file) => cellsNaming(file, [kept, emails.kept])).length).toBeGreaterThan(0);
		// Everything else wrangler keeps locally: queue storage, caches, any log or trace store. (A database file's
		// free pages may still hold deleted bytes until SQLite reuses them, as D1's Time Travel keeps history: the
		// docs/privacy.md's "What survives an erasure" says so; its live rows are what the check above reads.)
		const others = files.filter((file) => !/\.sqlite(-wal|-shm)?$/.test(file) || !file.includes(`${path.sep}d1${path.sep}`));
		const leaking = others.filter((file) => {
			const bytes = readFileSync(file);
			return needles.some((needle) => bytes.includes(needle));
		});
		expect(leaking).toEqual([]);

		// The learner nobody erased is as it was.
		const keptTags = await api("GET", `/learner/${kept}/tags`, basicAuthorization(one.appId, one.secret));
		expect(keptTags.status).toBe(200);
		expect(await keptTags.json()).toEqual({ tags: ["completeness-tag"] });
	});
});
