import * as z from "zod/mini";
import { asClassic } from "../schemas/openapi-meta";
import { createRouter } from "../context";
import { DOCS_FILE_NAMES, docsFile, matchesEtag } from "../docs/assets";
import { DOCS_CSP, docsPage } from "../docs/page";
import { notFound } from "../errors";
import { declareRoute } from "../http/route";
import { OpenApiDocumentSchema, servedDocument } from "../openapi/served";

const AssetParams = asClassic(
	z.object({
		file: z.string().openapi({ param: { name: "file", in: "path" }, enum: DOCS_FILE_NAMES, example: "init.js" }),
	}),
);

const fileContent = (mediaType: string) => ({ [mediaType]: { schema: asClassic(z.string().openapi({ format: "binary" })) } });

const FileHeaders = asClassic(
	z.object({
		ETag: z.string().openapi({ description: "The file's SHA-256 (first 128 bits), for If-None-Match" }),
		"Cache-Control": z.string().openapi({ description: "no-cache: revalidate on each load; unchanged files answer 304" }),
	}),
);

/** GET {base}/openapi.json, {base}/docs and {base}/docs/assets/{file}, public. */
export function docsRoutes(base: string) {
	const router = createRouter();

	router.openapi(
		declareRoute({
			method: "get",
			path: "/openapi.json",
			tags: ["Documentation"],
			operationId: "getOpenApiDocument",
			summary: "This OpenAPI 3.1 document",
			access: "public",
			responses: {
				200: {
					description: "The OpenAPI document",
					content: { "application/json": { schema: OpenApiDocumentSchema } },
				},
			},
		}),
		async (c) => c.json(await servedDocument(c.env.SERVICE_VERSION), 200),
	);

	router.openapi(
		declareRoute({
			method: "get",
			path: "/docs",
			tags: ["Documentation"],
			operationId: "getDocsPage",
			summary: "A page that renders this document (Swagger UI, served from this Worker)",
			access: "public",
			responses: {
				200: {
					description: "The HTML page, under a strict Content-Security-Policy",
					headers: asClassic(z.object({ "Content-Security-Policy": z.string() })),
					content: { "text/html": { schema: asClassic(z.string()) } },
				},
			},
		}),
		(c) =>
			c.html(docsPage(base), 200, {
				"Content-Security-Policy": DOCS_CSP,
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy": "no-referrer",
			}),
	);

	router.openapi(
		declareRoute({
			method: "get",
			path: "/docs/assets/{file}",
			tags: ["Documentation"],
			operationId: "getDocsAsset",
			summary: "A file the docs page loads (Swagger UI, its init script)",
			access: "public",
			request: { params: AssetParams },
			errors: [404],
			responses: {
				200: {
					description: "The file",
					headers: FileHeaders,
					content: {
						...fileContent("text/javascript"),
						...fileContent("text/css"),
						...fileContent("image/png"),
					},
				},
				304: { description: "Not modified since the ETag sent in If-None-Match", headers: FileHeaders },
			},
		}),
		async (c) => {
			const { file: name } = c.req.valid("param");
			const found = docsFile(name);
			if (!found) throw notFound(`The docs page has no file [${name}]; it loads ${DOCS_FILE_NAMES.join(", ")}`);
			const file = await found;
			// Revalidated on every load (a deploy may change a file under the same name); unchanged files answer 304.
			const headers = { ETag: file.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff" };
			if (matchesEtag(c.req.header("If-None-Match"), file.etag)) return c.body(null, 304, headers);
			return c.body(file.body, 200, { ...headers, "Content-Type": file.type });
		},
	);

	return router;
}
