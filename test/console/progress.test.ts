import { describe, expect, it } from "vitest";
import { type JobView, progressOf } from "../../src/console/views";

// The job page's bar (SPEC §10: a progress bar from the job's counts): the share the API reports done.

const job = (fields: Partial<JobView>): JobView => ({
	id: "J",
	type: "deleteAllLearnerData",
	status: "running",
	createdDate: "2026-12-01T00:00:00.000Z",
	registrationsAffected: 0,
	...fields,
});

describe("the job page's progress bar", () => {
	it("stands at the share of the total done, and at 100 % only once the job has finished", () => {
		expect(progressOf(job({ status: "queued", progress: { done: 0, total: 4, unit: "registrations" } })).percent).toBe(0);
		expect(progressOf(job({ progress: { done: 1, total: 4, unit: "registrations" } })).percent).toBe(24);
		expect(progressOf(job({ progress: { done: 4, total: 4, unit: "registrations" } })).percent).toBeLessThan(100);
		expect(progressOf(job({ status: "completed", registrationsAffected: 4 })).percent).toBe(100);
		expect(progressOf(job({ status: "failed" })).percent).toBe(100);
	});

	it("says what the counts are", () => {
		expect(progressOf(job({ registrationsAffected: 1, tagsRemoved: 2, progress: { done: 1, total: 3, unit: "registrations" } })).counts).toBe(
			"1 of 3 registrations done; 1 registration affected, 2 tags removed",
		);
	});
});
