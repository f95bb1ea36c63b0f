/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";

// The auditor's page and the script it shows, as text (Vite's import.meta.glob: read at build time, so this runs
// inside workerd too).
const files = import.meta.glob(["../../docs/privacy-audit.md", "../../scripts/verify-audit.mjs"], {
	query: "?raw",
	import: "default",
	eager: true,
}) as Record<string, string>;

const page = files["../../docs/privacy-audit.md"] ?? "";
const script = files["../../scripts/verify-audit.mjs"] ?? "";

/** The fenced code blocks of a Markdown page, with their info strings. */
const blocks = (markdown: string) => [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map(([, info, body]) => ({ info, body: body ?? "" }));

describe("docs/privacy-audit.md", () => {
	it("shows scripts/verify-audit.mjs in full, exactly as the file is", () => {
		expect(script).toMatch(/^#!\/usr\/bin\/env node\n/);
		const shown = blocks(page).filter((block) => block.info === "js");
		expect(shown).toHaveLength(1);
		// Compared whole: a change to either, even of a comment or a space, fails here until the other follows.
		expect(shown[0]?.body).toBe(script);
	});

	it("runs it with the arguments the script reads, on the files the download writes", () => {
		const usage = /console\.error\("usage: (node scripts\/verify-audit\.mjs [^"]+)"\)/.exec(script)?.[1] ?? "";
		expect(usage).not.toBe("");
		expect(page).toContain(usage);
		for (const file of ["chain.json", "head.json", "key.json"]) expect(page).toContain(`writeFileSync("${file}"`);
		for (const path of ["/appManagement/audit", "/appManagement/audit/head", "/.well-known/erasure-receipt-key"]) expect(page).toContain(path);
	});
});
