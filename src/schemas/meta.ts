import * as z from "zod";
import "./openapi-meta";

/** Ping and about (SPEC §4). */

export const PingSchema = z.object({ apiMessage: z.string(), currentTime: z.string() }).openapi("PingSchema");

export const AboutSchema = z.object({ version: z.string(), distribution: z.string() }).openapi("AboutSchema");
