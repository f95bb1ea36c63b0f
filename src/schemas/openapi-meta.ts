import { ZodType } from "zod";
import type {} from "@hono/zod-openapi";

/**
 * `.openapi(refId?, metadata?)` on every zod schema, as @asteasolutions/zod-to-openapi (through @hono/zod-openapi)
 * declares it, but kept as zod's own metadata (`.meta()`, which the generator reads too: `id` names a component,
 * the rest is the schema's OpenAPI metadata). The schemas every request validates with can then be built without
 * loading the OpenAPI generator or its zod extension, which only the document loads (SPEC §6: cold start); and
 * imported by name (`import * as z from "zod"`, members only), zod's bundle keeps only what the service uses.
 * Every module that declares schemas imports this one. When the generator's extension loads later, it finds the
 * method present and leaves it as it is.
 */

type Metadata = Record<string, unknown> & { param?: Record<string, unknown> };

function openapi(this: ZodType, ...args: unknown[]): ZodType {
	const [refId, metadata] = typeof args[0] === "string" ? [args[0], args[1] as Metadata | undefined] : [undefined, args[0] as Metadata | undefined];
	const current = (this.meta() ?? {}) as Metadata;
	const param = current.param || metadata?.param ? { param: { ...current.param, ...metadata?.param } } : {};
	return this.meta({ ...current, ...(refId !== undefined && { id: refId }), ...metadata, ...param });
}

// Enumerable, as zod copies its prototype's own enumerable members onto each schema it builds.
if (!("openapi" in ZodType.prototype)) {
	Object.defineProperty(ZodType.prototype, "openapi", { value: openapi, enumerable: true, writable: true, configurable: true });
}
