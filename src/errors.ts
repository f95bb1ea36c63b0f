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
