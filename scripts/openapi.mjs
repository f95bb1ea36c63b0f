// Generates the OpenAPI document from the app's routes and zod schemas in Node (Vite's module runner compiles the
// TypeScript), with the version from wrangler.toml's SERVICE_VERSION, and writes it to
// src/openapi/openapi.json.txt, which GET /api/v2/openapi.json serves (src/openapi/served.ts), and to
// .wrangler/openapi.json for `redocly lint`.
//   npm run openapi                       writes both (run it after changing a route's declaration)
//   node scripts/openapi.mjs --check      writes the lint copy; fails if the served file differs from the routes'
//                                          (npm run lint:openapi, in npm run check:static)
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { runnerImport } from "vite";
import { unstable_readConfig } from "wrangler";

const root = path.join(import.meta.dirname, "..");
const check = process.argv.includes("--check");
const served = path.join(root, "src/openapi/openapi.json.txt");
const lintCopy = path.join(root, ".wrangler/openapi.json");

const config = unstable_readConfig({ config: path.join(root, "wrangler.toml") });
const version = config.vars.SERVICE_VERSION;
if (typeof version !== "string") throw new Error("wrangler.toml [vars] has no SERVICE_VERSION");

/**
 * wrangler.toml's Text and Data module rules, for Vite: an import whose specifier a rule's glob matches loads as
 * the file's text or bytes, as wrangler bundles it (Vite would otherwise compile swagger-ui-dist's CSS and JS).
 */
function wranglerModuleRules(rules) {
	const require = createRequire(path.join(root, "package.json"));
	const matchers = rules
		.filter((rule) => rule.type === "Text" || rule.type === "Data")
		.flatMap((rule) =>
			rule.globs.map((glob) => ({
				type: rule.type,
				// wrangler's globs: `*` matches anything, the rest literally, against the whole specifier.
				regex: new RegExp(`^${glob.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`),
			})),
		);
	// Virtual ids by number: an id ending in .css or .js would go through Vite's own plugins for those.
	const loaded = [];
	const prefix = "\0wrangler-module:";
	return {
		name: "wrangler-module-rules",
		enforce: "pre",
		resolveId(source) {
			const rule = matchers.find((matcher) => matcher.regex.test(source));
			if (!rule) return null;
			const file = require.resolve(source);
			let index = loaded.findIndex((entry) => entry.file === file);
			if (index < 0) index = loaded.push({ type: rule.type, file }) - 1;
			return `${prefix}${index}`;
		},
		load(id) {
			if (!id.startsWith(prefix)) return null;
			const { type, file } = loaded[Number(id.slice(prefix.length))];
			const content = readFileSync(file);
			return type === "Text"
				? `export default ${JSON.stringify(content.toString("utf8"))};`
				: `export default new Uint8Array(${JSON.stringify([...content])}).buffer;`;
		},
	};
}

const viteConfig = { root, plugins: [wranglerModuleRules(config.rules)] };
const { module: entry } = await runnerImport(path.join(root, "scripts/openapi-entry.ts"), viteConfig);
const document = entry.documentFor(version);

const text = `${JSON.stringify(document, null, "\t")}\n`;
mkdirSync(path.dirname(lintCopy), { recursive: true });
writeFileSync(lintCopy, text);
const relative = (file) => path.relative(process.cwd(), file);
if (check) {
	const current = existsSync(served) ? readFileSync(served, "utf8") : "";
	if (current !== text) {
		console.error(`openapi: ${relative(served)} is not the document the routes declare: run npm run openapi and commit it`);
		process.exit(1);
	}
	console.log(`openapi: ${relative(served)} matches the routes (${Object.keys(document.paths).length} paths)`);
} else {
	writeFileSync(served, text);
	console.log(`openapi: wrote ${Object.keys(document.paths).length} paths to ${relative(served)} and ${relative(lintCopy)}`);
}
