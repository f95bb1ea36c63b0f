import { LIMITS } from "../limits";

/** The document's introduction: what the service is, its limits and the statuses every operation shares. */
export const DESCRIPTION = `A self-hostable implementation of the SCORM Cloud API v2 Learner Service, with the registrations, \
application management, OAuth tokens and ping/about it needs. Clients written for SCORM Cloud (such as the official \
generated clients) work by changing only their base path to this server's \`/api/v2\`.

Every error body is \`MessageSchema\` \`{ "message": string }\`.

## Limits

Each violation answers 400 with a message naming the limit.

| what | limit |
|---|---|
| ids (learner, registration, course) | 1-${LIMITS.idLength} characters, no control characters, valid Unicode |
| a tag | 1-${LIMITS.tagLength} characters, no control characters, no comma, valid Unicode |
| tags in one request | ${LIMITS.tagsPerRequest} |
| ids in one batch | ${LIMITS.idsPerBatch} |
| tags on one learner | ${LIMITS.tagsPerLearner} |
| tags on one registration | ${LIMITS.tagsPerRegistration} |
| registrations in one page of GET /registrations | ${LIMITS.registrationsPerPage} |
| learners in one page of GET /learners | ${LIMITS.learnersPerPage} |
| email | ${LIMITS.emailLength} characters, a valid address when non-empty |
| first and last names | ${LIMITS.nameLength} characters |
| request body | ${LIMITS.bodyBytes} bytes (1 MiB): 413 beyond |
| token expiration | ${LIMITS.tokenExpirationMax} seconds (default ${LIMITS.tokenExpirationDefault}) |

## Statuses every operation shares

- 400 also answers a malformed \`X-D1-Bookmark\` request header, and a JSON body whose bytes are not UTF-8.
- 405 (with \`Allow\`) answers a method that no operation of a known path takes.
- 413 and 415 answer, on operations that take a body, a body over 1 MiB or of the wrong media type.
- 429 (with \`Retry-After\`) answers, on every operation that takes credentials, a client address or an application \
whose authentication failed too often this minute; on application writes, also an application past its write budget.
- 403 answers, on application writes that add rows, an application past its storage quota.
- 503 (with \`Retry-After\`) answers when the database is overloaded or did not answer after retries.
- 500 answers genuine faults and a misconfigured service (a secret missing or short), with the request id to quote.

## Tenant limits

| what | limit |
|---|---|
| rows one application stores (registrations + learner tags + registration tags) | \`APP_ROW_QUOTA\`, default 5 000 000: 403 beyond |
| rows one application's writes may touch per minute (a batch costs ids x tags, a tag write its tags, a registration 1 + its tags, other writes 1) | \`APP_WRITE_BUDGET\`, default 300 000: 429 until the minute ends |
| requests per application | 1200 per minute: 429 |
| failed authentications | 30 per minute per client address, 120 per minute per application named: 429 for the rest of the minute |

## Read your own writes

Every response carries \`X-Request-Id\` and, once the request touched the database, \`X-D1-Bookmark\`: send that \
bookmark back (request header of the same name) to read at least your own writes from any replica.`;

/** Descriptions of the tags routes use (a tag not listed here is described by its name). */
export const TAG_DESCRIPTIONS: Record<string, string> = {
	LearnerService: "Learner tags, information updates, GDPR erasure, and the learner directory",
	RegistrationService: "Registrations: the records that make a learner exist",
	Jobs: "Status of the asynchronous jobs behind updateInfo, delete-information and application deletion",
	ApplicationManagement: "Applications, their credentials and the realm's users (APP_MANAGEMENT)",
	Authentication: "OAuth bearer tokens",
	Ping: "Liveness and credential check",
	About: "Version information",
	Documentation: "This document and the page that renders it",
};
