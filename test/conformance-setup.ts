// Setup file (vitest.config.ts): after each test, hands the responses it checked to the reporter as task meta
// and fails the test on a response that does not conform to the OpenAPI document (test/conformance.ts).
import { afterAll, afterEach, expect } from "vitest";
import { takeConformance } from "./conformance";

afterEach(({ task }) => {
	const { checked, violations, messages } = takeConformance();
	task.meta.conformance = { checked, violations };
	expect(messages, "responses that do not conform to the OpenAPI document").toEqual([]);
});

// Responses from beforeAll/afterAll hooks belong to no test: they are counted on the file.
// Vitest parses hook arguments: the first must be a destructuring pattern, though nothing from it is needed.
// eslint-disable-next-line no-empty-pattern
afterAll(({}, suite) => {
	const { checked, violations, messages } = takeConformance();
	suite.meta.conformance = { checked, violations };
	expect(messages, "responses that do not conform to the OpenAPI document").toEqual([]);
});
