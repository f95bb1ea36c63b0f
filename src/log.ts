const LEVELS = { info: 1, warn: 2, error: 3 } as const;
export type LogLevel = keyof typeof LEVELS;

/** Whether a line of this level would be written: lets callers skip building fields nobody will read. */
export function logs(env: { LOG_LEVEL?: string }, level: LogLevel): boolean {
	return LEVELS[level] >= (LEVELS[(env.LOG_LEVEL ?? "info") as LogLevel] ?? LEVELS.info);
}

/**
 * Writes one structured JSON log line if `level` reaches the configured LOG_LEVEL (default info). Callers pass
 * ids, route patterns and counts — never learner ids, emails, names or tags.
 */
export function log(env: { LOG_LEVEL?: string }, level: LogLevel, fields: Record<string, unknown>): void {
	if (!logs(env, level)) return;
	// One stream for every level: the platform tags lines by level from the JSON itself.
	console.log(JSON.stringify({ level, ...fields }));
}

/**
 * What the log may say of an unexpected error: its kind, and D1's own message. Any other message may quote
 * values (a learner id, an email), and a stack is no one's business outside a debugger; D1 names the failing
 * constraint or statement, never a bound value, so its first line is kept.
 */
export function describeFault(error: unknown): Record<string, string | undefined> {
	if (!(error instanceof Error)) return { error: typeof error };
	return { error: error.name, detail: error.message.startsWith("D1_") ? error.message.split("\n")[0] : undefined };
}
