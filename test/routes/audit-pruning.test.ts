import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { type SignedHead, auditHead, auditTrail, chainProblem } from "../support/audit";
import { realmUser } from "../support/fixtures";

/**
 * The audit trail past AUDIT_RETENTION_DAYS (docs/privacy-audit.md, "Download the chain"): the sweeper deletes
 * entries older than the retention, oldest first, but keeps the newest of them, so a trail that no longer starts at
 * entry 1 starts with an entry recorded before the retention's cutoff, and an auditor can tell that everything
 * deleted before it was older still, whichever heads they kept.
 */

const DAY_MS = 24 * 60 * 60 * 1000;

/** Appends an entry recorded `daysAgo` days ago, as the service would have then (the trail starts empty here). */
async function recordedDaysAgo(daysAgo: number, index: number): Promise<void> {
	await env.DB.prepare(
		`INSERT INTO audit_log (seq, at, actor, action, target, request_id)
		 SELECT coalesce((SELECT max(seq) FROM audit_log), 0) + 1, ?1, 'management', 'realmUser.delete', json_object('user', ?2), ?3`,
	)
		.bind(new Date(Date.now() - daysAgo * DAY_MS).toISOString(), `old-user-${index}`, `old-request-${index}`)
		.run();
}

describe("the audit trail past AUDIT_RETENTION_DAYS (1095, its real value)", () => {
	it("keeps the newest entry older than the retention, so the trail starts with it and verifies from there", async () => {
		expect((await auditHead()).head.seq).toBe(0);
		// Ten entries, a day apart: five past the retention (1100 to 1096 days ago), five within it (1094 to 1090).
		const kept: SignedHead[] = [];
		for (const [index, daysAgo] of [1100, 1099, 1098, 1097, 1096, 1094, 1093, 1092, 1091, 1090].entries()) {
			await recordedDaysAgo(daysAgo, index);
			// An auditor keeping a head every third entry: after entries 3, 6 and 9.
			if ((index + 1) % 3 === 0) kept.push(await auditHead());
		}
		await realmUser("member");
		const before = await auditTrail();
		expect(before.map((entry) => entry.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);

		await worker.scheduled(createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" }), env);

		// Entries 1 to 4 went; entry 5, the newest recorded before the cutoff, stays and starts the trail.
		const after = await auditTrail();
		expect(after.map((entry) => entry.seq)).toEqual([5, 6, 7, 8, 9, 10, 11]);
		const first = after[0];
		expect(Date.parse(first?.at ?? "")).toBeLessThan(Date.now() - 1095 * DAY_MS);
		// What stays is what was there: the same entries with the same hashes, up to the head signed now.
		expect(after).toEqual(before.slice(4));
		const latest = await auditHead();
		const from = { ...latest, head: { ...latest.head, seq: 4, hash: first?.prevHash ?? "" } };
		expect(await chainProblem(after, latest, from)).toBeNull();
		expect(before[3]?.hash).toBe(first?.prevHash);
		// The heads kept after entries 6 and 9 are in what stays, with their hashes; the one after entry 3 names an
		// entry deleted past the retention.
		for (const signed of kept.slice(1)) expect(after.find((entry) => entry.seq === signed.head.seq)?.hash).toBe(signed.head.hash);
		expect(kept[0]?.head.seq).toBeLessThan(first?.seq ?? 0);

		// A later sweep deletes nothing more: entry 5 is still the newest past the retention.
		await worker.scheduled(createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" }), env);
		expect((await auditTrail()).map((entry) => entry.seq)).toEqual([5, 6, 7, 8, 9, 10, 11]);
	}, 60_000);
});
