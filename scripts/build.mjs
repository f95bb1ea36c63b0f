// The Worker's build (wrangler.toml [build]; wrangler runs it before `wrangler deploy` and `wrangler dev`, and again
// when src/ changes): src/index.ts bundled into dist/ as one small entry module and a module per route group and
// handler, minified, with source maps. wrangler uploads them as they are (no_bundle, find_additional_modules).
//
// Why not wrangler's own bundling: it puts the whole Worker in one module, which a new isolate parses whole before
// its first request, although that request runs one route group (SPEC §6, cold start; docs/benchmarks.md). Split
// at the dynamic imports (src/index.ts, src/app.ts), an isolate parses and compiles only what its requests load.
//
// The files served as they are (the OpenAPI document, the docs page's Swagger UI files) stay separate Text and Data
// modules, copied beside the code: wrangler.toml's [[rules]] say which.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const out = path.join(root, "dist");
// Every module but the entry goes in chunks/ (wrangler.toml's ESModule rule names that folder).
const CHUNKS = "chunks";

/** Imports of files served as they are: where each is copied in dist/, as a chunk (in chunks/) imports it. */
const ASSETS = [
	{ filter: /^swagger-ui-dist\/swagger-ui-bundle\.js$/, from: "node_modules/swagger-ui-dist/swagger-ui-bundle.js", to: "swagger-ui-dist/swagger-ui-bundle.js" },
	{ filter: /^swagger-ui-dist\/swagger-ui\.css$/, from: "node_modules/swagger-ui-dist/swagger-ui.css", to: "swagger-ui-dist/swagger-ui.css" },
	{ filter: /^swagger-ui-dist\/favicon-32x32\.png$/, from: "node_modules/swagger-ui-dist/favicon-32x32.png", to: "swagger-ui-dist/favicon-32x32.png" },
	{ filter: /openapi\.json\.txt$/, from: "src/openapi/openapi.json.txt", to: "openapi.json.txt" },
];

const assets = {
	name: "served-files",
	setup(builder) {
		for (const asset of ASSETS) {
			// Only lazily loaded modules import them, so the import is always made from a module in chunks/.
			builder.onResolve({ filter: asset.filter }, () => ({ path: `../${asset.to}`, external: true }));
		}
	},
};

const started = Date.now();
rmSync(out, { recursive: true, force: true });
const result = await build({
	absWorkingDir: root,
	entryPoints: ["src/index.ts"],
	outdir: out,
	bundle: true,
	splitting: true,
	format: "esm",
	platform: "neutral",
	target: "es2024",
	conditions: ["workerd", "worker", "browser"],
	mainFields: ["module", "main"],
	external: ["cloudflare:*", "node:*"],
	chunkNames: `${CHUNKS}/[name]-[hash]`,
	minify: true,
	sourcemap: true,
	legalComments: "none",
	plugins: [assets],
	logLevel: "warning",
	metafile: true,
});
for (const asset of ASSETS) {
	mkdirSync(path.dirname(path.join(out, asset.to)), { recursive: true });
	copyFileSync(path.join(root, asset.from), path.join(out, asset.to));
}
const modules = Object.keys(result.metafile.outputs).filter((file) => file.endsWith(".js"));
console.log(`Built dist/: ${modules.length} modules in ${Date.now() - started} ms`);
