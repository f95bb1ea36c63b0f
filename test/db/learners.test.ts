import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { findPlacement } from "../../src/db/applications";
import { listLearners } from "../../src/db/learners";
import { insertRegistrations, seedApplication, shardOf, tagLearners } from "../support/seed";

// src/db/learners.ts on its own, apart from the route: the directory's pages and the details it shows, from
// registration rows written with the versions an update or a registration would have given them. It reads the
// application's shard.

/** A registration of the learner with these details and the versions of its three fields (email_seq, …). */
interface VersionedRegistration {
	id: string;
	email: string | null;
	firstName: string | null;
	lastName: string | null;
	/** [email_seq, first_name_seq, last_name_seq] */
	seqs: [number, number, number];
}

/** Inserts the learner's registrations in array order (so in pk order), with their details and versions. */
async function insertVersioned(appId: string, learnerId: string, rows: VersionedRegistration[]): Promise<void> {
	await (await shardOf(appId)).prepare(
		`INSERT INTO registrations (app_id, id, course_id, learner_id, learner_email, learner_first_name, learner_last_name,
		   email_seq, first_name_seq, last_name_seq, xapi_registration_id, created_at, updated_at)
		 SELECT ?1, value ->> '$.id', 'course-1', ?2, value ->> '$.email', value ->> '$.firstName', value ->> '$.lastName',
		   value ->> '$.seqs[0]', value ->> '$.seqs[1]', value ->> '$.seqs[2]', lower(hex(randomblob(16))), ?3, ?3
		 FROM json_each(?4) ORDER BY key`,
	)
		.bind(appId, learnerId, new Date().toISOString(), JSON.stringify(rows))
		.run();
}

describe("listLearners", () => {
	it("shows each field from the registration holding its highest version, the newest registration among equals", async () => {
		const appId = await seedApplication();
		await insertVersioned(appId, "ada", [
			{ id: "r1", email: "first@example.com", firstName: "Ada", lastName: "Byron", seqs: [7, 2, 2] },
			{ id: "r2", email: "second@example.com", firstName: "Augusta", lastName: "King", seqs: [3, 2, 9] },
			{ id: "r3", email: "third@example.com", firstName: "A.", lastName: "Lovelace", seqs: [7, 1, 4] },
		]);
		expect(await listLearners(await shardOf(appId), appId, { filter: { tagMatch: "any" }, limit: 10 })).toEqual({
			learners: [
				{ id: "ada", email: "third@example.com", firstName: "Augusta", lastName: "King", tags: [], registrationCount: 3 },
			],
		});
	});

	it("passes over registrations without a value, and answers null for a field no registration has", async () => {
		const appId = await seedApplication();
		await insertVersioned(appId, "ada", [
			{ id: "r1", email: "ada@example.com", firstName: null, lastName: null, seqs: [1, 1, 1] },
			{ id: "r2", email: null, firstName: "", lastName: null, seqs: [5, 5, 5] },
		]);
		expect(await listLearners(await shardOf(appId), appId, { filter: { tagMatch: "any" }, limit: 10 })).toEqual({
			learners: [{ id: "ada", email: "ada@example.com", firstName: "", lastName: null, tags: [], registrationCount: 2 }],
		});
	});

	it("counts a tagged learner without registrations toward its page without listing it, and pages on after it", async () => {
		const appId = await seedApplication();
		await insertRegistrations(appId, [
			{ id: "r-a", courseId: "c", learnerId: "a" },
			{ id: "r-c", courseId: "c", learnerId: "c" },
		]);
		// As while an application's data is being deleted: a learner's tags outlive its registrations for a moment.
		await tagLearners(appId, ["a", "b", "c"], ["t", "u"]);
		for (const filter of [{ tags: ["t"], tagMatch: "any" }, { tags: ["t", "u"], tagMatch: "any" }, { tags: ["t", "u"], tagMatch: "all" }] as const) {
			const query = { filter: { tags: [...filter.tags], tagMatch: filter.tagMatch }, limit: 2 };
			const first = await listLearners(await shardOf(appId), appId, query);
			expect(first, JSON.stringify(filter)).toEqual({
				learners: [{ id: "a", email: null, firstName: null, lastName: null, tags: ["t", "u"], registrationCount: 1 }],
				next: "b",
			});
			expect(await listLearners(await shardOf(appId), appId, { ...query, after: first.next })).toEqual({
				learners: [{ id: "c", email: null, firstName: null, lastName: null, tags: ["t", "u"], registrationCount: 1 }],
			});
		}
	});

	it("pages after the given learner id in byte order, and lists nothing of another application", async () => {
		const appId = await seedApplication();
		// On the same shard: only the application id keeps the other application's learner out.
		const placement = await findPlacement(env.DB, appId);
		const other = await seedApplication({ shard: placement?.shard ?? "" });
		await insertRegistrations(other, [{ id: "r-0", courseId: "c", learnerId: "0" }]);
		await insertRegistrations(appId, ["é", "b", "B", "a"].map((learnerId) => ({ id: `r-${learnerId}`, courseId: "c", learnerId })));
		const ids = async (after?: string) =>
			(await listLearners(await shardOf(appId), appId, { filter: { tagMatch: "any" }, after, limit: 10 })).learners.map((learner) => learner.id);
		expect(await ids()).toEqual(["B", "a", "b", "é"]);
		expect(await ids("a")).toEqual(["b", "é"]);
		expect(await ids("é")).toEqual([]);
	});
});
