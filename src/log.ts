const LEVELS = { info: 1, warn: 2, error: 3 } as const;
export type LogLevel = keyof typeof LEVELS;

/**
 * Writes one structured JSON log line if `level` reaches the configured LOG_LEVEL (default info). Callers pass
 * ids, route patterns and counts — never learner ids, emails, names or tags.
 */
export function log(env: { LOG_LEVEL?: string }, level: LogLevel, fields: Record<string, unknown>): void {
	const threshold = LEVELS[(env.LOG_LEVEL ?? "info") as LogLevel] ?? LEVELS.info;
	if (LEVELS[level] < threshold) return;
	// One stream for every level: the platform tags lines by level from the JSON itself.
	console.log(JSON.stringify({ level, ...fields }));
}
