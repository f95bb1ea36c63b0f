import { type Shard, parseShards, shardDatabase } from "./shards";

/**
 * The service's configuration, read from the Worker's env and checked once per env object. Missing or short
 * secrets, a malformed receipt signing key and malformed numbers fail closed: every request answers 500 naming
 * no secret, and the log names the setting to fix (SPEC §11), rather than an empty management password opening
 * the realm.
 */

/** Secrets and the least number of characters each must have. */
const SECRETS = {
	MANAGEMENT_APP_ID: 1,
	MANAGEMENT_SECRET_KEY: 32,
	TOKEN_SIGNING_SECRET: 32,
	LEARNER_HASH_KEY: 32,
} as const;

/** Numeric settings, their defaults and least values. */
const NUMBERS = {
	/** Rows (registrations + learner tags + registration tags) one application may store. */
	APP_ROW_QUOTA: { fallback: 5_000_000, min: 1 },
	/** Rows one application's writes may touch per minute (a batch of ids x tags spends ids x tags). */
	APP_WRITE_BUDGET: { fallback: 300_000, min: 100_000 },
	/**
	 * Seconds a moved application's rows stay on the shard it left, after the flip: an isolate that verified a
	 * credential before the flip may read there until its cache entry expires (30 s). Lower only in tests.
	 */
	MOVE_LINGER_SECONDS: { fallback: 40, min: 0 },
	/** Days a finished job (an update, an application's move) is kept before the sweeper deletes it. */
	JOB_RETENTION_DAYS: { fallback: 30, min: 1 },
	/**
	 * Days a finished erasure is kept: its row is its signed receipt's record (HMAC, requester, dates, counts; no
	 * learner data), kept longer than other jobs so the receipt can be shown when an erasure is questioned.
	 */
	RECEIPT_RETENTION_DAYS: { fallback: 1095, min: 1 },
	/**
	 * Days a subject-access export's signed document can be fetched after its job completed; then the sweeper
	 * deletes it from R2 (SPEC §12). It holds everything about a learner: kept no longer than it takes to collect.
	 */
	EXPORT_RETENTION_DAYS: { fallback: 7, min: 1 },
	/**
	 * Exports one application may hold at once: queued, running, or completed and kept (SPEC §12). With the largest
	 * export (64 MiB, src/jobs/export.ts) it bounds what an application keeps in R2, which the row quota does not count.
	 */
	APP_EXPORT_LIMIT: { fallback: 100, min: 1 },
	/**
	 * Days an audit entry is kept (SPEC §12). Entries are ids and HMACs only; older ones are deleted oldest first, and
	 * a chain verified from then on starts at a head the auditor kept (docs/privacy.md, "Audit trail").
	 */
	AUDIT_RETENTION_DAYS: { fallback: 1095, min: 1 },
} as const;

/**
 * Switches: "true" or "false", unset meaning off. Anything else fails closed rather than being guessed at: a "yes"
 * or "TRUE" meant as on would otherwise silently stay off.
 */
type Switch = "WEBHOOK_ALLOW_LOCALHOST";

const DAY_MS = 24 * 60 * 60_000;

/** An Ed25519 private key as a JWK (RFC 8037): both halves, base64url of 32 bytes each. */
export interface Ed25519PrivateJwk {
	kty: "OKP";
	crv: "Ed25519";
	d: string;
	x: string;
}

export interface Config {
	rowQuota: number;
	writeBudget: number;
	/** APP_EXPORT_LIMIT: exports one application may hold at once (src/db/exports.ts acceptLearnerExport). */
	exportLimit: number;
	/** MOVE_LINGER_SECONDS, in ms (src/jobs/move.ts). */
	moveLingerMs: number;
	/** JOB_RETENTION_DAYS and RECEIPT_RETENTION_DAYS, in ms (src/jobs/sweeper.ts). */
	jobRetentionMs: number;
	receiptRetentionMs: number;
	/** EXPORT_RETENTION_DAYS and AUDIT_RETENTION_DAYS, in ms (src/jobs/sweeper.ts, src/routes/jobs.ts). */
	exportRetentionMs: number;
	auditRetentionMs: number;
	/** RECEIPT_SIGNING_KEY: signs erasure receipts, exports and audit heads (src/receipts.ts). */
	receiptSigningKey: Ed25519PrivateJwk;
	/** SHARDS: the shard databases, each checked to be a D1 binding (src/shards.ts). */
	shards: Shard[];
	/**
	 * WEBHOOK_ALLOW_LOCALHOST: a webhook may name the local machine (localhost, 127.0.0.1, [::1]), over plain http:
	 * too — local development only (SPEC §8; src/jobs/webhook-destination.ts). On in .dev.vars.example, "false" in
	 * wrangler.toml.
	 */
	webhookAllowLocalhost: boolean;
}

/** What the service refuses to run with; the message names the setting, never its value. */
export class ConfigError extends Error {
	override readonly name = "ConfigError";
}

type ConfigEnv = { [K in keyof typeof SECRETS]?: string } & { [K in keyof typeof NUMBERS]?: string } & {
	[K in Switch]?: string;
} & {
	RECEIPT_SIGNING_KEY?: string;
	SHARDS?: string;
};

/** 32 bytes as unpadded base64url: 43 characters, the last of which carries 2 unused zero bits. */
const KEY_HALF = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/**
 * RECEIPT_SIGNING_KEY as a private Ed25519 JWK. Whether `x` is the public half of `d` can only be learnt by
 * importing the key (asynchronous): src/receipts.ts checks that once, when it first signs.
 */
function receiptSigningKey(text: string | undefined): Ed25519PrivateJwk {
	if (typeof text !== "string" || text === "") throw new ConfigError("RECEIPT_SIGNING_KEY is not set");
	let parsed: unknown;
	try {
		parsed = JSON.parse(text);
	} catch {
		parsed = null;
	}
	const jwk = (typeof parsed === "object" && parsed !== null ? parsed : {}) as Record<string, unknown>;
	const { kty, crv, d, x } = jwk;
	if (kty !== "OKP" || crv !== "Ed25519" || typeof d !== "string" || typeof x !== "string" || !KEY_HALF.test(d) || !KEY_HALF.test(x)) {
		throw new ConfigError('RECEIPT_SIGNING_KEY is not an Ed25519 private key as a JWK ({"kty":"OKP","crv":"Ed25519","d":…,"x":…})');
	}
	return { kty, crv, d, x };
}

function check(env: ConfigEnv): Config {
	for (const [name, min] of Object.entries(SECRETS) as [keyof typeof SECRETS, number][]) {
		const value = env[name];
		if (typeof value !== "string" || value.length < min) {
			throw new ConfigError(`${name} is ${value ? `shorter than ${min} characters` : "not set"}`);
		}
	}
	const number = (name: keyof typeof NUMBERS) => {
		const { fallback, min } = NUMBERS[name];
		const text = env[name];
		if (text === undefined || text === "") return fallback;
		const value = Number(text);
		if (!Number.isSafeInteger(value) || value < min) {
			throw new ConfigError(`${name} must be a whole number of at least ${min}`);
		}
		return value;
	};
	const on = (name: Switch) => {
		const text = env[name];
		if (text === undefined || text === "" || text === "false") return false;
		if (text === "true") return true;
		throw new ConfigError(`${name} must be "true" or "false" (unset: false)`);
	};
	return {
		rowQuota: number("APP_ROW_QUOTA"),
		writeBudget: number("APP_WRITE_BUDGET"),
		exportLimit: number("APP_EXPORT_LIMIT"),
		moveLingerMs: number("MOVE_LINGER_SECONDS") * 1000,
		jobRetentionMs: number("JOB_RETENTION_DAYS") * DAY_MS,
		receiptRetentionMs: number("RECEIPT_RETENTION_DAYS") * DAY_MS,
		exportRetentionMs: number("EXPORT_RETENTION_DAYS") * DAY_MS,
		auditRetentionMs: number("AUDIT_RETENTION_DAYS") * DAY_MS,
		receiptSigningKey: receiptSigningKey(env.RECEIPT_SIGNING_KEY),
		shards: shardsOf(env),
		webhookAllowLocalhost: on("WEBHOOK_ALLOW_LOCALHOST"),
	};
}

/** SHARDS, parsed, with every binding it names present. */
function shardsOf(env: ConfigEnv): Shard[] {
	try {
		const shards = parseShards(env.SHARDS);
		for (const shard of shards) shardDatabase(env, shard.name);
		return shards;
	} catch (error) {
		throw new ConfigError(error instanceof Error ? error.message : "SHARDS is malformed");
	}
}

// The env object is the same for every request an isolate serves: checked once, remembered by identity.
const checked = new WeakMap<object, Config | ConfigError>();

/**
 * The checked configuration; throws ConfigError when a secret is missing or short, the receipt signing key is
 * not an Ed25519 JWK, or a number or a switch malformed.
 */
export function config(env: ConfigEnv): Config {
	let result = checked.get(env);
	if (!result) {
		try {
			result = check(env);
		} catch (error) {
			if (!(error instanceof ConfigError)) throw error;
			result = error;
		}
		checked.set(env, result);
	}
	if (result instanceof ConfigError) throw result;
	return result;
}
