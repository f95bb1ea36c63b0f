import * as z from "zod/mini";
import { asClassic } from "../schemas/openapi-meta";

/** The shape GET /openapi.json promises: an OpenAPI object, open to everything the specification allows. */
export const OpenApiDocumentSchema = asClassic(
	z
		.looseObject({
			openapi: z.string(),
			info: z.looseObject({}),
			// The generator reads a record's value schema from the method-chaining build only: stated here.
			paths: z.record(z.string(), z.looseObject({})).openapi({ additionalProperties: { type: "object", properties: {}, additionalProperties: {} } }),
		})
		.openapi("OpenApiDocument"),
);
export type OpenApiDocument = z.infer<typeof OpenApiDocumentSchema>;

let generated: OpenApiDocument | undefined;

/**
 * The OpenAPI document GET /openapi.json answers: the one `npm run openapi` generated from the routes' declarations
 * (src/openapi/document.ts) and wrote to src/openapi/openapi.json.txt — a Text module, loaded by the first request
 * for it and never parsed as script by any other — with this deployment's SERVICE_VERSION. Generating it on a
 * request would cost that isolate the generator and every route group's schemas (SPEC §6: cold start).
 * test/routes/docs.test.ts and `npm run check:static` fail when the file no longer matches the routes.
 */
export async function servedDocument(version: string): Promise<OpenApiDocument> {
	generated ??= JSON.parse((await import("./openapi.json.txt")).default) as OpenApiDocument;
	return generated.info.version === version ? generated : { ...generated, info: { ...generated.info, version } };
}
