/**
 * Every limit the API enforces; docs/api.md (Limits) and the OpenAPI document publish the same numbers. It imports
 * nothing, so every layer, src/db included, reads the limits from here.
 */
export const LIMITS = {
	idLength: 255,
	tagLength: 255,
	tagsPerRequest: 100,
	idsPerBatch: 1000,
	tagsPerLearner: 1000,
	/** Not in SCORM Cloud's documentation; bounded here for the same reason as learners' tags. */
	tagsPerRegistration: 1000,
	registrationsPerPage: 100,
	applicationsPerPage: 100,
	learnersPerPage: 100,
	emailLength: 320,
	nameLength: 255,
	bodyBytes: 1024 * 1024,
	tokenExpirationDefault: 300,
	tokenExpirationMax: 2_592_000,
} as const;
