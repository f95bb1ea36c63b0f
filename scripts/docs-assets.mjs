// Copies Swagger UI from node_modules/swagger-ui-dist into the Workers Static Assets directory (wrangler.toml
// [assets]), so the docs page is served by this Worker's own origin: no third-party CDN, a strict CSP, offline.
// Run by `postinstall`, so a fresh clone has the files after `npm ci`; the copies are not committed.
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const source = path.dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
const target = path.join(import.meta.dirname, "..", "public", "swagger-ui");
const FILES = ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE", "NOTICE"];

mkdirSync(target, { recursive: true });
for (const file of FILES) copyFileSync(path.join(source, file), path.join(target, file));
console.log(`docs assets: copied ${FILES.length} files from swagger-ui-dist to ${path.relative(process.cwd(), target)}`);
