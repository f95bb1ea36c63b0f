// Writes the OpenAPI document to a file (default .wrangler/openapi.json) for `redocly lint` in `npm run check`:
// the same document GET /api/v2/openapi.json serves, generated from the app's routes and zod schemas in Node
// (Vite's module runner compiles the TypeScript), with the version from wrangler.toml's SERVICE_VERSION.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { runnerImport } from "vite";
import { unstable_readConfig } from "wrangler";

const root = path.join(import.meta.dirname, "..");
const output = path.resolve(root, process.argv[2] ?? ".wrangler/openapi.json");

const config = unstable_readConfig({ config: path.join(root, "wrangler.toml") });
const version = config.vars.SERVICE_VERSION;
if (typeof version !== "string") throw new Error("wrangler.toml [vars] has no SERVICE_VERSION");

const { module: appModule } = await runnerImport(path.join(root, "src/app.ts"), { root });
const { module: docsModule } = await runnerImport(path.join(root, "src/routes/docs.ts"), { root });
const document = docsModule.openApiDocument(appModule.app, appModule.API_BASE, version);

mkdirSync(path.dirname(output), { recursive: true });
writeFileSync(output, `${JSON.stringify(document, null, "\t")}\n`);
console.log(`openapi: wrote ${Object.keys(document.paths).length} paths to ${path.relative(process.cwd(), output)}`);
