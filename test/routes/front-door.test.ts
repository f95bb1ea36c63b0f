import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { BASE } from "../support/client";

// SPEC §10: GET / points to the console, the docs page and the OpenAPI document.

const ROOT = new URL("/", BASE).toString();

describe("GET /", () => {
	it("answers a small page linking the console, the docs page and the OpenAPI document", async () => {
		const response = await exports.default.fetch(new Request(ROOT));
		expect(response.status).toBe(200);
		expect(response.headers.get("Content-Type")).toBe("text/html; charset=utf-8");
		expect(response.headers.get("Content-Security-Policy")).toBe("default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
		const html = await response.text();
		expect([...html.matchAll(/<a href="([^"]+)">/g)].map((match) => match[1])).toEqual(["/console", "/api/v2/docs", "/api/v2/openapi.json"]);
		expect(html).not.toMatch(/<script|style=/);
	});

	it("answers HEAD without a body, and 405 naming GET and HEAD to other methods", async () => {
		const head = await exports.default.fetch(new Request(ROOT, { method: "HEAD" }));
		expect(head.status).toBe(200);
		expect(await head.text()).toBe("");
		const post = await exports.default.fetch(new Request(ROOT, { method: "POST" }));
		expect(post.status).toBe(405);
		expect(post.headers.get("Allow")).toBe("GET, HEAD");
		expect(await post.json()).toEqual({ message: "Method POST is not allowed here; use GET, HEAD" });
	});
});
