import { createRouter } from "../context";

export const jobRoutes = createRouter();
