// The conformance check itself (test/conformance.ts), on made-up responses: it must catch what it exists to catch.
import { describe, expect, it } from "vitest";
import { checkConformance, takeConformance } from "./conformance";
import { BASE } from "./support/client";

/** The violations the check reports for one response (made up here, so not counted as the service's). */
async function violations(method: string, path: string, response: Response): Promise<string[]> {
	await checkConformance(BASE, new Request(`${BASE}${path}`, { method }), response);
	return takeConformance().messages;
}

const pong = { apiMessage: "pong", currentTime: "2026-01-01T00:00:00.000Z" };
const message = (status: number, headers?: Record<string, string>) =>
	Response.json({ message: "Something a person can act on" }, { status, headers });

describe("response conformance check", () => {
	it("accepts a response that matches its operation", async () => {
		expect(await violations("GET", "/ping", Response.json(pong))).toEqual([]);
		expect(await violations("GET", "/ping", message(401))).toEqual([]);
	});

	it("reports a field the schema does not declare (objects are closed)", async () => {
		const [problem] = await violations("GET", "/ping", Response.json({ ...pong, extra: 1 }));
		expect(problem).toMatch(/^GET \/api\/v2\/ping -> 200: GET \/ping: 200 body does not match the schema: .*extra/);
		const [leak] = await violations("GET", "/ping", Response.json({ message: "no", stack: "at ..." }, { status: 401 }));
		expect(leak).toMatch(/stack/);
	});

	it("reports a wrong type and a missing required field", async () => {
		expect(await violations("GET", "/ping", Response.json({ ...pong, apiMessage: 1 }))).toHaveLength(1);
		expect(await violations("GET", "/ping", Response.json({ apiMessage: "pong" }))).toHaveLength(1);
	});

	it("reports a status the operation does not declare", async () => {
		const [problem] = await violations("GET", "/ping", message(404));
		expect(problem).toMatch(/GET \/ping: status 404 is not declared \(declared: 200, 400, 401, 403, 429, 500, 503\)/);
	});

	it("reports a media type the operation does not declare", async () => {
		const [problem] = await violations("GET", "/ping", new Response("pong", { headers: { "Content-Type": "text/plain" } }));
		expect(problem).toMatch(/GET \/ping: 200 answered text\/plain, declared application\/json/);
	});

	it("holds unknown paths to a MessageSchema 404 and wrong methods to a 405 naming the documented ones", async () => {
		expect(await violations("GET", "/no/such/route", message(404))).toEqual([]);
		expect(await violations("GET", "/no/such/route", Response.json(pong))).toHaveLength(1);
		expect(await violations("POST", "/ping", message(405, { Allow: "GET, HEAD" }))).toEqual([]);
		expect(await violations("POST", "/ping", message(405, { Allow: "GET, POST" }))).toHaveLength(1);
		expect(await violations("POST", "/ping", message(404))).toHaveLength(1);
	});
});
