/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";

// Every module of src/ as text (Vite's import.meta.glob: read at build time, so this runs inside workerd too).
const sources = import.meta.glob("../../src/**/*.{ts,tsx}", { query: "?raw", import: "default", eager: true }) as Record<
	string,
	string
>;

const modules = Object.fromEntries(Object.entries(sources).map(([file, text]) => [file.replace("../../", ""), text]));

// Static imports and re-exports (type-only ones too: a type cycle is a cycle to a reader), and dynamic import().
const IMPORT = /(?:^|\n)\s*(?:import|export)\s(?:[^;"']*?\sfrom\s)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

/** The src/ modules `file` imports. */
function importsOf(file: string, text = modules[file] ?? ""): string[] {
	const directory = file.split("/").slice(0, -1);
	const found: string[] = [];
	for (const match of text.matchAll(IMPORT)) {
		const specifier = match[1] ?? match[2] ?? "";
		// Text and Data modules (wrangler's rules: the generated OpenAPI document) are files, not modules of the graph.
		if (!specifier.startsWith(".") || /\.(txt|html|bin)$/.test(specifier)) continue;
		const parts = [...directory];
		for (const part of specifier.split("/")) {
			if (part === "..") parts.pop();
			else if (part !== ".") parts.push(part);
		}
		const target = [`${parts.join("/")}.ts`, `${parts.join("/")}.tsx`, `${parts.join("/")}/index.ts`].find((candidate) => candidate in modules);
		if (!target) throw new Error(`${file} imports ${specifier}, which is not a module of src/`);
		found.push(target);
	}
	return found;
}

/** The src/ modules `file` loads at run time: its imports less those of types only (`import type`, `export type`). */
function valueImportsOf(file: string): string[] {
	const text = (modules[file] ?? "").replace(/(?:^|\n)\s*(?:import|export)\s+type\s[^;]*;/g, "\n");
	return importsOf(file, text);
}

const graph = new Map(Object.keys(modules).map((file) => [file, importsOf(file)]));

/** The src/ modules that running `file` loads: its value imports, theirs, and so on. */
function loadedBy(file: string): Set<string> {
	const loaded = new Set<string>();
	const visit = (current: string) => {
		for (const next of valueImportsOf(current)) {
			if (loaded.has(next)) continue;
			loaded.add(next);
			visit(next);
		}
	};
	visit(file);
	return loaded;
}

/** Every import cycle, each once, as the list of modules around it. */
function cycles(): string[][] {
	const found = new Map<string, string[]>();
	const visit = (file: string, path: string[]) => {
		const at = path.indexOf(file);
		if (at >= 0) {
			const cycle = path.slice(at);
			found.set([...cycle].sort().join(" "), cycle);
			return;
		}
		for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
	};
	for (const file of graph.keys()) visit(file, []);
	return [...found.values()];
}

describe("the module structure of src/", () => {
	it("reads every module (the glob found the sources)", () => {
		expect(Object.keys(modules)).toEqual(expect.arrayContaining(["src/index.ts", "src/app.ts", "src/db/jobs.ts"]));
	});

	it("has src/db at the bottom: its modules import only each other and src/limits.ts", () => {
		const upward = [...graph]
			.filter(([file]) => file.startsWith("src/db/"))
			.flatMap(([file, imports]) =>
				imports.filter((target) => !target.startsWith("src/db/") && target !== "src/limits.ts").map((target) => `${file} -> ${target}`),
			);
		expect(upward).toEqual([]);
	});

	it("has src/limits.ts import nothing, so every layer can read the limits", () => {
		expect(graph.get("src/limits.ts")).toEqual([]);
	});

	it("mounts routes only in src/app.ts", () => {
		const importers = [...graph]
			.filter(([file, imports]) => file !== "src/app.ts" && imports.some((target) => target.startsWith("src/routes/")))
			.map(([file]) => file);
		expect(importers).toEqual([]);
	});

	it("has the learner tag routes load only what they use (SPEC §6: cold start)", () => {
		const loaded = [...loadedBy("src/routes/learner-tags.ts")];
		expect(loaded).toEqual(expect.arrayContaining(["src/schemas/text.ts", "src/db/tags.ts"]));
		const foreign = loaded.filter(
			(file) =>
				/^src\/(routes|console|openapi|docs|jobs)\//.test(file) ||
				["src/schemas/learner.ts", "src/schemas/management.ts", "src/receipts.ts", "src/db/jobs.ts", "src/db/job-chunks.ts"].includes(file),
		);
		expect(foreign).toEqual([]);
	});

	// The specifiers a module imports at run time when it is loaded: static imports, type-only ones aside (an
	// import() loads another route group, when a request asks for it).
	const specifiers = (file: string) =>
		[...(modules[file] ?? "").replace(/(?:^|\n)\s*(?:import|export)\s+type\s[^;]*;/g, "\n").matchAll(IMPORT)]
			.map((match) => match[1])
			.filter((specifier) => specifier !== undefined);
	/** What an isolate's first request to a route group loads: the app (src/app.ts) and the group's routes. */
	const loadedByFirstRequest = (routes: string) => {
		const loaded = new Set<string>();
		const visit = (file: string) => {
			if (loaded.has(file)) return;
			loaded.add(file);
			const local = specifiers(file).filter((specifier) => specifier.startsWith("."));
			for (const target of importsOf(file, local.map((specifier) => `import "${specifier}";`).join("\n"))) visit(target);
		};
		visit("src/app.ts");
		visit(routes);
		return [...loaded];
	};
	const packages = (file: string) => specifiers(file).filter((specifier) => !specifier.startsWith("."));
	const chainingBuild = (specifier: string) => specifier === "zod" || specifier.startsWith("zod/v4/classic");

	it("has the learner tag routes validate with zod's functional build alone, never loading its method-chaining build", () => {
		const loaded = loadedByFirstRequest("src/routes/learner-tags.ts");
		expect(loaded.filter((file) => packages(file).some(chainingBuild))).toEqual([]);
		expect(loaded.filter((file) => packages(file).includes("zod/mini"))).toEqual(["src/schemas/text.ts", "src/schemas/openapi-meta.ts"]);
	});

	it("has no module load zod's method-chaining build at run time: every schema is built with the functional one", () => {
		const files = Object.keys(modules);
		expect(files.filter((file) => packages(file).includes("zod/mini")).length).toBeGreaterThan(10);
		expect(files.filter((file) => packages(file).some(chainingBuild))).toEqual([]);
	});

	it("keeps the learner tags group light: it loads none of the export, retention or audit trail modules", () => {
		// What GET/PUT /learner/{id}/tags loads (src/app.ts GROUPS.learnerTags), type-only imports aside.
		const loaded = loadedBy("src/routes/learner-tags.ts");
		const heavy = [
			"src/audit.ts",
			"src/db/audit.ts",
			"src/db/exports.ts",
			"src/db/retention.ts",
			"src/jobs/export.ts",
			"src/jobs/export-objects.ts",
			"src/jobs/realm-export.ts",
			"src/jobs/retention.ts",
			"src/receipts.ts",
			"src/routes/privacy.ts",
			"src/schemas/privacy.ts",
		];
		expect(heavy.every((file) => file in modules)).toBe(true);
		expect(heavy.filter((file) => loaded.has(file))).toEqual([]);
	});

	it("has no import cycle", () => {
		expect(cycles()).toEqual([]);
	});
});
