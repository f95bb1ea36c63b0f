import type * as classic from "zod";
import {
	type ZodMiniArray,
	type ZodMiniDefault,
	type ZodMiniNullable,
	type ZodMiniObject,
	type ZodMiniOptional,
	type ZodMiniType,
	ZodMiniType as MiniType,
	globalRegistry,
	type input,
	type output,
} from "zod/mini";
import type { ZodOpenAPIMetadata } from "@asteasolutions/zod-to-openapi";

/**
 * `.openapi(refId?, metadata?)` on the schemas built with zod's functional build (`zod/mini`, ./text.ts), as
 * ./openapi-meta.ts gives it to the method-chaining build: the metadata is zod's own (its global registry, as
 * `.meta()` keeps it: `id` names a component, the rest is the schema's OpenAPI metadata), on a copy of the
 * schema. And `.meta()`, which the OpenAPI generator asks every schema for (the functional build has no such
 * method). Loading this module loads nothing of the method-chaining build.
 */

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
	T extends ZodMiniObject<infer Shape>
		? classic.ZodObject<{ [K in keyof Shape]: AsClassic<Shape[K]> }>
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
