import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The Worker as built for deployment (scripts/build.mjs; wrangler dev, which the interop suite runs, built it into
 * dist/ just before): an entry module and a module per route group, so that a new isolate parses and compiles only
 * what its requests load (SPEC §6, cold start). Each module's source map names the sources in it, which is how these
 * tests see what a request loads.
 */

const DIST = path.resolve(import.meta.dirname, "../../dist");

/** The modules a module imports, statically or dynamically, as paths relative to dist/. */
function importsOf(file: string): { static: string[]; dynamic: string[] } {
	const code = readFileSync(path.join(DIST, file), "utf8");
	const resolve = (specifier: string) => path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
	const local = (matches: IterableIterator<RegExpMatchArray>) =>
		[...matches].map((match) => match[1] as string).filter((specifier) => specifier.startsWith(".")).map(resolve);
	return {
		static: local(code.matchAll(/(?:^|[;}\s])(?:import|export)\s*(?:[^"'();]*?[\s}*]from\s*)?["']([^"']+)["']/g)),
		dynamic: local(code.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)),
	};
}

/** The module and everything it imports statically: what loading it loads. */
function staticClosure(file: string, seen = new Set<string>()): Set<string> {
	if (seen.has(file)) return seen;
	seen.add(file);
	for (const imported of importsOf(file).static) staticClosure(imported, seen);
	return seen;
}

/** The src/ and node_modules/ files a module was built from (its source map's sources), relative to the project. */
function sourcesOf(file: string): string[] {
	const map = JSON.parse(readFileSync(path.join(DIST, `${file}.map`), "utf8")) as { sources: string[] };
	const root = path.resolve(DIST, "..");
	return map.sources.map((source) => path.relative(root, path.resolve(DIST, path.dirname(file), source)).split(path.sep).join("/"));
}

/** The one module that `from` imports dynamically and that was built from `source`. */
function dynamicTarget(from: string, source: string): string {
	const targets = importsOf(from).dynamic.filter((target) => sourcesOf(target).includes(source));
	expect(targets, `${from} imports ${source} lazily, in one module`).toHaveLength(1);
	return targets[0] as string;
}

describe("the built Worker", () => {
	it("is built into dist/: an entry module that loads nothing until a handler runs", () => {
		expect(existsSync(path.join(DIST, "index.js"))).toBe(true);
		// What it imports statically is at most the bundler's helpers (built from no source).
		expect([...staticClosure("index.js")].flatMap(sourcesOf)).toEqual(["src/index.ts"]);
		// Every other module is one wrangler.toml's ESModule rule uploads.
		expect(readdirSync(path.join(DIST, "chunks")).filter((file) => file.endsWith(".js")).length).toBeGreaterThan(10);
	});

	it("loads, for a learner's tags, the HTTP app and the tags routes but no other route group, the console, the jobs or the docs", () => {
		const app = dynamicTarget("index.js", "src/app.ts");
		const tags = dynamicTarget(app, "src/routes/learner-tags.ts");
		const loaded = new Set([...staticClosure(app), ...staticClosure(tags)]);
		const sources = [...loaded].flatMap(sourcesOf);
		expect(sources).toContain("src/db/tags.ts");
		expect(sources).toContain("src/auth/middleware.ts");
		const foreign = sources.filter((source) =>
			/^src\/(console\/|jobs\/|docs\/|routes\/(?!learner-tags\.ts))|^src\/openapi\/document|node_modules\/(swagger-ui-dist|@asteasolutions)|node_modules\/zod\/v4\/classic/.test(source),
		);
		expect(foreign).toEqual([]);
		// What it loads is a fraction of the Worker's code.
		const bytes = (files: Iterable<string>) => [...files].reduce((total, file) => total + readFileSync(path.join(DIST, file)).length, 0);
		const all = ["index.js", ...readdirSync(path.join(DIST, "chunks")).filter((file) => file.endsWith(".js")).map((file) => `chunks/${file}`)];
		expect(bytes(loaded)).toBeLessThan(bytes(all) / 2);
	});
});
