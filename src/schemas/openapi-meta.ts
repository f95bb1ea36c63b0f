import type * as classic from "zod";
import {
	type ZodMiniArray,
	type ZodMiniDefault,
	type ZodMiniNullable,
	type ZodMiniObject,
	type ZodMiniOptional,
	type ZodMiniType,
	ZodMiniType as MiniType,
	config,
	globalRegistry,
	type input,
	type output,
} from "zod/mini";
import { en } from "zod/locales";
import type { ZodOpenAPIMetadata } from "@asteasolutions/zod-to-openapi";

/**
 * The service's schemas are built with zod's functional build (`zod/mini`: the same validation and errors as the
 * method-chaining build, checks passed as arguments — `z.optional(x)`, `x.check(z.maxLength(n))` — instead of
 * chained methods), which an isolate evaluates and compiles in much less time on its first request (SPEC §6: cold
 * start); the method-chaining build is never loaded at run time. This module gives those schemas what the OpenAPI
 * document needs:
 * - `.openapi(refId?, metadata?)`, as @asteasolutions/zod-to-openapi declares it, kept as zod's own metadata (its
 *   global registry: `id` names a component, the rest is the schema's OpenAPI metadata), on a copy of the schema;
 *   the generator (loaded by the document's build alone) reads it. The generator reads some facts from properties
 *   only the method-chaining build has (a string's length bounds, a number being an integer, a string's format, a
 *   record's values): a schema states those in its metadata too (the document stayed byte-for-byte what the
 *   method-chaining build gave; `npm run lint:openapi` holds the routes to the committed document);
 * - `.meta()`, which the generator asks every schema for;
 * - asClassic, typing a schema as the method-chaining build's (what the route declarations' types ask for);
 * - English messages for the issues a schema gives no message of its own (the method-chaining build sets them when
 *   it loads; the functional build leaves that to its user).
 */

config(en());

type Metadata = Record<string, unknown> & { param?: Record<string, unknown> };

declare module "zod/mini" {
	// An augmentation repeats the interface's type parameters by name, used here or not.
	// eslint-disable-next-line @typescript-eslint/no-unused-vars
	interface ZodMiniType<out Output, out Input> {
		openapi(metadata: Partial<ZodOpenAPIMetadata<Input>>): this;
		openapi(refId: string, metadata?: Partial<ZodOpenAPIMetadata<Input>>): this;
		meta(): Metadata | undefined;
	}
}

function openapi(this: ZodMiniType, ...args: unknown[]): ZodMiniType {
	const [refId, metadata] = typeof args[0] === "string" ? [args[0], args[1] as Metadata | undefined] : [undefined, args[0] as Metadata | undefined];
	const current = (globalRegistry.get(this) ?? {}) as Metadata;
	const param = current.param || metadata?.param ? { param: { ...current.param, ...metadata?.param } } : {};
	const copy = this.clone();
	globalRegistry.add(copy, { ...current, ...(refId !== undefined && { id: refId }), ...metadata, ...param });
	return copy;
}

function meta(this: ZodMiniType): Metadata | undefined {
	return globalRegistry.get(this) as Metadata | undefined;
}

// Enumerable, as zod copies its prototype's own enumerable members onto each schema it builds.
for (const [name, value] of Object.entries({ openapi, meta })) {
	if (!(name in MiniType.prototype)) {
		Object.defineProperty(MiniType.prototype, name, { value, enumerable: true, writable: true, configurable: true });
	}
}

/**
 * The method-chaining build's type of a schema built with the functional one, parsing to the same types: what the
 * route declarations' types ask for (@hono/zod-openapi's RouteConfig wants an object's fields typed too). Types
 * only: the schema keeps the functional build's members (parse, safeParse, check, `.openapi()`), so a route
 * group wraps one with `z.optional(...)`, never `.optional()`.
 */
export type AsClassic<T> =
	T extends ZodMiniObject<infer Shape, infer Config>
		? classic.ZodObject<{ [K in keyof Shape]: AsClassic<Shape[K]> }, Config>
		: T extends ZodMiniOptional<infer Inner>
			? classic.ZodOptional<AsClassic<Inner>>
			: T extends ZodMiniDefault<infer Inner>
				? classic.ZodDefault<AsClassic<Inner>>
				: T extends ZodMiniNullable<infer Inner>
					? classic.ZodNullable<AsClassic<Inner>>
					: T extends ZodMiniArray<infer Element>
						? classic.ZodArray<AsClassic<Element>>
						: classic.ZodType<output<T>, input<T>>;

export const asClassic = <T extends ZodMiniType>(schema: T) => schema as unknown as AsClassic<T>;
