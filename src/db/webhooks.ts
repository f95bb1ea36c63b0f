import { type AuditRecord, auditRecorded, auditStatement, wasRecorded } from "./audit-append";
import { retryTransient } from "./retry";
import type { Db } from "./types";

/**
 * Applications' webhooks (SPEC §8), in the control database (migrations/control: webhooks): one endpoint per
 * application, with its signing secret sealed (src/jobs/webhook-secret.ts).
 */

export interface Webhook {
	appId: string;
	url: string;
	/** The sealed signing secret; src/jobs/webhook-secret.ts opens it. */
	sealedSecret: string;
	createdAt: string;
	updatedAt: string;
}

interface WebhookRow {
	app_id: string;
	url: string;
	secret: string;
	created_at: string;
	updated_at: string;
}

const toWebhook = (row: WebhookRow): Webhook => ({
	appId: row.app_id,
	url: row.url,
	sealedSecret: row.secret,
	createdAt: row.created_at,
	updatedAt: row.updated_at,
});

/** A live application (`app`, an SQL expression), as the webhook writes check it. */
const LIVE_APPLICATION_OF = (app: string) => `EXISTS (SELECT 1 FROM applications WHERE id = ${app} AND deleted_at IS NULL)`;

/**
 * Sets a live application's webhook (its URL and a new sealed secret), in one statement that checks the
 * application; false when it is unknown or deleted. Safe to repeat: the last one's secret stands.
 */
export async function putWebhook(
	control: Db,
	appId: string,
	url: string,
	sealedSecret: string,
	now: string,
	audit?: AuditRecord,
): Promise<boolean> {
	const results = await retryTransient(() =>
		control.batch([
			...(audit ? [auditStatement(control, audit, { sql: LIVE_APPLICATION_OF("?6"), params: [appId] })] : []),
			control
				.prepare(
					`INSERT INTO webhooks (app_id, url, secret, created_at, updated_at)
					 SELECT ?1, ?2, ?3, ?4, ?4 WHERE ${LIVE_APPLICATION_OF("?1")}
					 ON CONFLICT (app_id) DO UPDATE SET url = excluded.url, secret = excluded.secret, updated_at = excluded.updated_at`,
				)
				.bind(appId, url, sealedSecret, now),
		]),
	);
	return (results.at(-1)?.meta.changes ?? 0) > 0;
}

/** An application's webhook, or null. The caller checks that the application is live where that matters. */
export async function getWebhook(control: Db, appId: string): Promise<Webhook | null> {
	const row = await retryTransient(() => control.prepare("SELECT * FROM webhooks WHERE app_id = ?1").bind(appId).first<WebhookRow>());
	return row ? toWebhook(row) : null;
}

/** Removes a live application's webhook; false when there was none (or the application is deleted). */
export async function deleteWebhook(control: Db, appId: string, audit: AuditRecord): Promise<boolean> {
	const results = await retryTransient(() =>
		control.batch([
			auditStatement(control, audit, { sql: `EXISTS (SELECT 1 FROM webhooks WHERE app_id = ?6) AND ${LIVE_APPLICATION_OF("?6")}`, params: [appId] }),
			control.prepare(`DELETE FROM webhooks WHERE app_id = ?1 AND ${LIVE_APPLICATION_OF("?1")}`).bind(appId),
			// Removed by this request: its entry says so, to a repeat after a lost reply too (which finds nothing to delete).
			auditRecorded(control, audit),
		]),
	);
	return wasRecorded(results.at(-1));
}

/** Which of these applications have a webhook (deleted ones included: a deletion's own event is delivered). */
export async function applicationsWithWebhooks(control: Db, appIds: string[]): Promise<Set<string>> {
	if (appIds.length === 0) return new Set();
	const { results } = await retryTransient(() =>
		control
			.prepare("SELECT app_id FROM webhooks WHERE app_id IN (SELECT value FROM json_each(?1))")
			.bind(JSON.stringify(appIds))
			.all<{ app_id: string }>(),
	);
	return new Set(results.map((row) => row.app_id));
}
