/**
 * The docs page's files: Swagger UI's, bundled with the Worker straight from node_modules/swagger-ui-dist
 * (wrangler.toml [[rules]]: Text and Data modules), and the script that starts it. Swagger UI's modules are
 * imported when a file is first asked for, not when the Worker starts: API requests never load 1.9 MB of text.
 */

// Starts Swagger UI. A file of its own because the page's Content-Security-Policy allows no inline script; the
// page names the document's URL in data-url, so the script holds no path. The default validator is a third-party
// service (validatorUrl: null): this page talks to its own origin only.
const INIT_SCRIPT = `const root = document.getElementById("swagger-ui");
SwaggerUIBundle({ url: root.dataset.url, domNode: root, deepLinking: true, validatorUrl: null });
`;

const JAVASCRIPT = "text/javascript; charset=utf-8";

type Body = string | ArrayBuffer;

/** Only these names are served. */
const DOCS_FILES: Record<string, { type: string; load: () => Promise<Body> }> = {
	"init.js": { type: JAVASCRIPT, load: async () => INIT_SCRIPT },
	"swagger-ui-bundle.js": {
		type: JAVASCRIPT,
		load: async () => (await import("swagger-ui-dist/swagger-ui-bundle.js")).default,
	},
	"swagger-ui.css": {
		type: "text/css; charset=utf-8",
		load: async () => (await import("swagger-ui-dist/swagger-ui.css")).default,
	},
	"favicon-32x32.png": { type: "image/png", load: async () => (await import("swagger-ui-dist/favicon-32x32.png")).default },
};

/** The names of the files the page loads. */
export const DOCS_FILE_NAMES = Object.keys(DOCS_FILES);

/** A file with its media type and ETag. */
export interface DocsFile {
	body: Body;
	type: string;
	etag: string;
}

async function hashEtag(body: Body): Promise<string> {
	const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
	return `"${Array.from(digest.subarray(0, 16), (byte) => byte.toString(16).padStart(2, "0")).join("")}"`;
}

// Each file with its ETag, loaded and hashed on its first request in this isolate: the files change only with a
// deploy.
const loaded = new Map<string, Promise<DocsFile>>();

/** The named file, or null when the page has no such file. */
export function docsFile(name: string): Promise<DocsFile> | null {
	// Own keys only: `constructor` and the like are on every object's prototype.
	const file = Object.hasOwn(DOCS_FILES, name) ? DOCS_FILES[name] : undefined;
	if (!file) return null;
	let entry = loaded.get(name);
	if (!entry) {
		entry = file.load().then(async (body) => ({ body, type: file.type, etag: await hashEtag(body) }));
		// A failed load is not remembered: the next request tries again.
		entry.catch(() => loaded.delete(name));
		loaded.set(name, entry);
	}
	return entry;
}

/** Whether an If-None-Match header names this ETag (weak comparison, RFC 9110 §13.1.2) or is "*". */
export function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
	if (!ifNoneMatch) return false;
	return ifNoneMatch.split(",").some((candidate) => {
		const tag = candidate.trim();
		return tag === "*" || tag.replace(/^W\//, "") === etag;
	});
}
