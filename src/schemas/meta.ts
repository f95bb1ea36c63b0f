import type * as classic from "zod";
import * as z from "zod/mini";
import "./openapi-meta";

/** Ping and about (SPEC §4). */

export const PingSchema = z.object({ apiMessage: z.string(), currentTime: z.string() }).openapi("PingSchema") as unknown as classic.ZodObject<{
	apiMessage: classic.ZodString;
	currentTime: classic.ZodString;
}>;

export const AboutSchema = z.object({ version: z.string(), distribution: z.string() }).openapi("AboutSchema") as unknown as classic.ZodObject<{
	version: classic.ZodString;
	distribution: classic.ZodString;
}>;
