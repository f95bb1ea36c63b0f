import { createRouter } from "../context";

export const registrationRoutes = createRouter();
