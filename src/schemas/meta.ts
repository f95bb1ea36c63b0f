import * as z from "zod/mini";
import { asClassic } from "./openapi-meta";

/** Ping and about (SPEC §4). */

export const PingSchema = asClassic(z.object({ apiMessage: z.string(), currentTime: z.string() }).openapi("PingSchema"));

export const AboutSchema = asClassic(z.object({ version: z.string(), distribution: z.string() }).openapi("AboutSchema"));
