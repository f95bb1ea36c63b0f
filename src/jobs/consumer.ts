/** Queue consumer entry: dispatches learner-jobs and dead-letter batches. */
export async function handleQueue(batch: MessageBatch, _env: Env, _ctx: ExecutionContext): Promise<void> {
	batch.retryAll();
}
