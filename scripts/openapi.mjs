// Writes the OpenAPI document to a file (default .wrangler/openapi.json) for `redocly lint` in `npm run check`:
// the same document GET /api/v2/openapi.json serves, generated from the app's routes and zod schemas in Node
// (Vite's module runner compiles the TypeScript), with the version from wrangler.toml's SERVICE_VERSION.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { runnerImport } from "vite";
import { unstable_readConfig } from "wrangler";

const root = path.join(import.meta.dirname, "..");
const output = path.resolve(root, process.argv[2] ?? ".wrangler/openapi.json");

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
const { module: appModule } = await runnerImport(path.join(root, "scripts/openapi-app.ts"), viteConfig);
const { module: docsModule } = await runnerImport(path.join(root, "src/openapi/document.ts"), viteConfig);
const document = docsModule.openApiDocument(appModule.app, appModule.API_BASE, version);

mkdirSync(path.dirname(output), { recursive: true });
writeFileSync(output, `${JSON.stringify(document, null, "\t")}\n`);
console.log(`openapi: wrote ${Object.keys(document.paths).length} paths to ${path.relative(process.cwd(), output)}`);
