import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * The one error type domain code throws. `app.onError` renders it as MessageSchema `{ "message" }` with the
 * given status and extra headers (Retry-After, WWW-Authenticate, ...).
 */
export class ApiError extends HTTPException {
	readonly headers: Record<string, string>;

	constructor(status: ContentfulStatusCode, message: string, headers: Record<string, string> = {}) {
		super(status, { message });
		this.headers = headers;
	}
}

export const badRequest = (message: string) => new ApiError(400, message);
export const notFound = (message: string) => new ApiError(404, message);
export const forbidden = (message: string) => new ApiError(403, message);

/** 401 with the challenges for both schemes this API accepts (RFC 9110 §11.6.1). */
export const unauthorized = (message: string) =>
	new ApiError(401, message, {
		"WWW-Authenticate": 'Basic realm="learner-service", Bearer realm="learner-service"',
	});

export const learnerNotFound = (learnerId: string) => notFound(`Learner [${learnerId}] was not found`);
export const appNotFound = (appId: string) => notFound(`Application [${appId}] was not found`);
export const registrationNotFound = (registrationId: string) =>
	notFound(`Registration [${registrationId}] was not found`);

/** "1 second", "40 seconds": for Retry-After messages. */
export const seconds = (count: number | string) => `${count} second${Number(count) === 1 ? "" : "s"}`;

/**
 * 429: the application holds as many exports as APP_EXPORT_LIMIT allows (queued, running, or completed and kept in
 * R2). One goes when an export completes and its EXPORT_RETENTION_DAYS pass, or its learner is erased: Retry-After
 * says when the oldest completed one expires, when there is one.
 */
export function exportLimitReached(appId: string, limit: number, oldest: string | null, retentionMs: number, nowMs: number): ApiError {
	const wait = oldest === null ? null : Math.max(1, Math.ceil((Date.parse(oldest) + retentionMs - nowMs) / 1000));
	return new ApiError(
		429,
		`Export limit reached for application ${appId}: it may hold ${limit} exports at once (queued, running, or completed and kept ` +
			`EXPORT_RETENTION_DAYS), and holds ${limit}; ${wait === null ? "retry once one of them has completed and expired" : `the oldest expires in ${seconds(wait)}`}, ` +
			"or ask the operator to raise APP_EXPORT_LIMIT",
		wait === null ? {} : { "Retry-After": String(wait) },
	);
}
