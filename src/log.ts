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
