/**
 * The console's words for what the API names in codes: job types, statuses and move phases, why a job waits, and
 * refusals. An API message stays available (in a `title`), but a person reads these.
 */

/** Each job type as an operator says it. */
export const JOB_TYPE_WORDS: Record<string, string> = {
	updateLearnerInfo: "Update of a learner's details",
	deleteAllLearnerData: "Erasure of one learner",
	deleteLearnersData: "Bulk erasure",
	deleteRealmLearnerData: "Realm-wide erasure",
	deleteApplication: "Deletion of an application",
	moveApplication: "Application move",
};

export const jobTypeWords = (type: string) => JOB_TYPE_WORDS[type] ?? type;

export const STATUS_WORDS: Record<string, string> = {
	queued: "queued",
	running: "running",
	completed: "completed",
	failed: "failed",
};

/** A move's phase (the job resource's `move.phase`) as a sentence, naming the shards. */
export function movePhaseWords(move: { from: string; to: string; phase: string }): string {
	switch (move.phase) {
		case "copying":
			return `Copying the application's rows from ${move.from} to ${move.to}, while the application keeps working.`;
		case "catchingUp":
			return `Catching up: copying again the rows written on ${move.from} since the copy began.`;
		case "frozen":
			return `Frozen: the application's writes wait a few seconds (they answer 503 with Retry-After) while the last rows are copied, the counts compared and its placement flipped to ${move.to}.`;
		case "lingering":
			return `Moved to ${move.to}. The rows left on ${move.from} are kept a little while (about 40 seconds) for isolates that still read there.`;
		case "cleaningUp":
			return `Moved to ${move.to}; deleting the rows left on ${move.from}.`;
		case "abandoning":
			return `The copy did not count up: deleting it from ${move.to}; the application stays on ${move.from}.`;
		default:
			return move.phase;
	}
}

/** Why an unfinished job is where it is: what it waits for, in words. */
export function waitingWords(job: { type: string; status: string; move?: { from: string; to: string; phase: string }; progress?: { done: number; total: number; unit: string } }): string | null {
	if (job.status === "queued") {
		return "Waiting for the queue: a worker normally takes it within seconds. If none has within 10 minutes (a lost message), the sweeper sends it again.";
	}
	if (job.status !== "running") return null;
	if (job.move) return movePhaseWords(job.move);
	if (job.type === "deleteRealmLearnerData") return "Waiting for each application's erasure of the learner to finish; it looks again every 5 seconds.";
	if (job.type === "deleteApplication") return "Deleting the application's data, chunk by chunk.";
	if (job.progress) return `Running: ${job.progress.done} of ${job.progress.total} ${job.progress.unit} done.`;
	return "Running.";
}
