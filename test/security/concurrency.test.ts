import { afterEach, describe, expect, it, vi } from "vitest";
import { runJob } from "../../src/jobs/run";
import { call, liftRateLimit } from "../support/client";
import { expectMessage, getJob } from "../support/expect";
import { createApp, enrol, realmUser, tagsOf, type TestApp, uniqueValue } from "../support/fixtures";
import { acceptErasure, type SentMessage, stubSends } from "../support/queue";
import { countOf, registrationCount, shardOf } from "../support/seed";

/**
 * Concurrent writers against an erasure. The erasure's chunks are driven one at a time (small chunks, so there
 * are many), and each chunk runs at the same moment as a wave of concurrent tag writes, single and batch, on
 * learners and registrations that overlap the erased learner. Afterwards: every write the API accepted is
 * there for the learners not erased, nothing a refused batch carried is, the tag counts agree with the tags,
 * and nothing is left of the erased learner.
 */

const ERASED_REGISTRATIONS = 45;
const CHUNK_SIZE = 3;
const LEARNERS = 8;

afterEach(() => {
	vi.restoreAllMocks();
});

/** What the writers were told: per owner, tags that must be there and tags that must not. */
class Ledger {
	readonly present = new Map<string, Set<string>>();
	readonly absent = new Map<string, Set<string>>();
	writes = 0;

	private entry(map: Map<string, Set<string>>, owner: string): Set<string> {
		let set = map.get(owner);
		if (!set) map.set(owner, (set = new Set()));
		return set;
	}

	added(owners: string[], tags: string[]): void {
		for (const owner of owners) for (const tag of tags) this.entry(this.present, owner).add(tag);
	}

	/** Removed, or refused all-or-nothing: must not be there (each tag is written by one request only). */
	missing(owners: string[], tags: string[]): void {
		for (const owner of owners) {
			for (const tag of tags) {
				this.entry(this.present, owner).delete(tag);
				this.entry(this.absent, owner).add(tag);
			}
		}
	}
}

interface Writer {
	kind: "learner" | "registrations";
	ids: string[];
	tags: string[];
	batch: boolean;
}

async function write(app: TestApp, ledger: Ledger, writer: Writer): Promise<number> {
	const { kind, ids, tags } = writer;
	const response = writer.batch
		? await call("PUT", `/${kind}/tags`, { auth: app.auth, body: { ids, tags } })
		: await call("PUT", `/${kind}/${encodeURIComponent(ids[0] ?? "")}/tags`, { auth: app.auth, body: { tags } });
	ledger.writes++;
	const key = (id: string) => `${kind}:${id}`;
	if (response.status === 204) ledger.added(ids.map(key), tags);
	else if (response.status === 404) ledger.missing(ids.map(key), tags);
	else throw new Error(`PUT ${kind} tags answered ${response.status}: ${await response.text()}`);
	return response.status;
}

async function remove(app: TestApp, ledger: Ledger, kind: "learner" | "registrations", id: string, tags: string[]) {
	const response = await call("DELETE", `/${kind}/${encodeURIComponent(id)}/tags`, { auth: app.auth, body: { tags } });
	ledger.writes++;
	if (response.status !== 204) throw new Error(`DELETE ${kind} tags answered ${response.status}`);
	ledger.missing([`${kind}:${id}`], tags);
}

describe("tag writers racing an erasure", () => {
	it("lose no write for the learners not erased and leave nothing of the erased one", async () => {
		const app = await createApp();
		const erased = uniqueValue("erased");
		const erasedRegistrations: string[] = [];
		for (let i = 0; i < ERASED_REGISTRATIONS; i++) {
			erasedRegistrations.push(await enrol(app, { id: erased, email: "erased@example.com" }, { registrationTags: ["erased"] }));
		}
		const learners = Array.from({ length: LEARNERS }, (_, i) => uniqueValue(`writer-${i}`));
		const registrations: string[] = [];
		for (const learner of learners) registrations.push(await enrol(app, { id: learner }, { learnerTags: ["initial"] }));
		const ledger = new Ledger();
		ledger.added(learners.map((learner) => `learner:${learner}`), ["initial"]);

		const message = await acceptErasure(app, erased, await realmUser("admin"));
		// The waves are one client's burst: no rate limit, and anything they sent would be kept from the queue.
		liftRateLimit();
		const sent: SentMessage[] = [];
		stubSends(async (next) => {
			sent.push(next);
		});
		const db = (await shardOf(app.appId)).withSession("first-primary");
		let wave = 0;
		let previous: string[] = [];
		const statuses: Record<number, number> = {};
		for (;;) {
			wave++;
			const tag = (label: string) => `w${wave}-${label}-${crypto.randomUUID().slice(0, 8)}`;
			const waveTags: string[] = [];
			const writers: Writer[] = [
				...learners.map((learner, i) => ({ kind: "learner" as const, ids: [learner], tags: [tag(`l${i}`)], batch: false })),
				{ kind: "learner", ids: learners, tags: [tag("batch-all")], batch: true },
				{ kind: "learner", ids: [learners[0] ?? "", erased], tags: [tag("batch-with-erased")], batch: true },
				{ kind: "learner", ids: [erased], tags: [tag("erased-single")], batch: false },
				{ kind: "learner", ids: [erased, ...learners.slice(1, 3)], tags: [tag("batch-erased-first")], batch: true },
				...registrations.map((registration, i) => ({ kind: "registrations" as const, ids: [registration], tags: [tag(`r${i}`)], batch: false })),
				{ kind: "registrations", ids: registrations, tags: [tag("reg-batch")], batch: true },
				{ kind: "registrations", ids: [registrations[0] ?? "", erasedRegistrations[wave % ERASED_REGISTRATIONS] ?? ""], tags: [tag("reg-batch-with-erased")], batch: true },
			];
			for (const writer of writers) waveTags.push(...writer.tags);
			// The chunk runs in the middle of the wave: half the writers start before it, half after.
			const half = Math.floor(writers.length / 2);
			const pending: Promise<unknown>[] = writers.slice(0, half).map((writer) => write(app, ledger, writer));
			const chunk = runJob(db, message, { bounds: { registrations: CHUNK_SIZE, rows: 10 * CHUNK_SIZE }, chunks: 1 });
			pending.push(...writers.slice(half).map((writer) => write(app, ledger, writer)));
			// And tags the previous wave added to the first learner go again, concurrently.
			pending.push(remove(app, ledger, "learner", learners[0] ?? "", previous.filter((entry) => entry.includes("-l0-"))));
			const [outcome, ...results] = await Promise.all([chunk, ...pending]);
			for (const result of results) if (typeof result === "number") statuses[result] = (statuses[result] ?? 0) + 1;
			previous = waveTags;
			if (outcome === "done" && (await getJob(app.auth, message.jobId)).status === "completed") break;
			expect(wave).toBeLessThan(100);
		}

		const lost: string[] = [];
		const leaked: string[] = [];
		for (const [owner, tags] of ledger.present) {
			const [kind, id] = owner.split(/:(.*)/s) as ["learner" | "registrations", string];
			if (id === erased || erasedRegistrations.includes(id)) continue;
			const stored = new Set((await tagsOf(app, kind, id)) ?? []);
			for (const tag of tags) if (!stored.has(tag)) lost.push(`${owner} ${tag}`);
			for (const tag of ledger.absent.get(owner) ?? []) if (stored.has(tag)) leaked.push(`${owner} ${tag}`);
		}
		const left = {
			registrations: await registrationCount(app.appId, erased),
			registrationTags: await countOf(
				"SELECT count(*) AS n FROM registration_tags t JOIN json_each(?2) j ON t.registration_id = j.value WHERE t.app_id = ?1",
				app.appId,
				JSON.stringify(erasedRegistrations),
			),
			learnerTags: await countOf("SELECT count(*) AS n FROM learner_tags WHERE app_id = ?1 AND learner_id = ?2", app.appId, erased),
			tagCounts: await countOf("SELECT count(*) AS n FROM learner_tag_counts WHERE app_id = ?1 AND learner_id = ?2", app.appId, erased),
		};
		const countsOff = await countOf(
			`SELECT count(*) AS n FROM learner_tag_counts c WHERE c.app_id = ?1
			   AND c.tag_count <> (SELECT count(*) FROM learner_tags t WHERE t.app_id = c.app_id AND t.learner_id = c.learner_id)`,
			app.appId,
		);
		const registrationCountsOff = await countOf(
			`SELECT count(*) AS n FROM registrations r WHERE r.app_id = ?1
			   AND r.tag_count <> (SELECT count(*) FROM registration_tags t WHERE t.app_id = r.app_id AND t.registration_id = r.id)`,
			app.appId,
		);
		const remaining = Object.values(left).reduce((sum, n) => sum + n, 0);
		console.log(
			`${ledger.writes} concurrent writes over ${wave} erasure chunks, lost writes = ${lost.length}, left of the erased learner = ${remaining}`,
		);

		expect(statuses[204]).toBeGreaterThan(0);
		expect(statuses[404]).toBeGreaterThan(0);
		expect(lost).toEqual([]);
		expect(leaked).toEqual([]);
		expect(left).toEqual({ registrations: 0, registrationTags: 0, learnerTags: 0, tagCounts: 0 });
		expect(await expectMessage(await call("GET", `/learner/${encodeURIComponent(erased)}/tags`, { auth: app.auth }), 404)).toBe(
			`Learner [${erased}] was not found`,
		);
		// Tag writes send no job message (docs/api.md, Endpoints).
		expect(sent).toEqual([]);
		expect({ countsOff, registrationCountsOff }).toEqual({ countsOff: 0, registrationCountsOff: 0 });
		expect((await getJob(app.auth, message.jobId)).registrationsAffected).toBe(ERASED_REGISTRATIONS);
	}, 120_000);
});
