import { createRouter } from "../context";

export const learnerRoutes = createRouter();
