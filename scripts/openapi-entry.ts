// What scripts/openapi.mjs loads (through Vite's module runner, which closes once this module has evaluated): every
// route of the API, loaded here at the top level so that the route groups it loads on demand are loaded in time.
import { API_BASE, allRouters } from "../src/app";
import { openApiDocument } from "../src/openapi/document";
import { docsRoutes } from "../src/routes/docs";

const routers = await allRouters();
export const documentFor = (version: string) => openApiDocument([...routers, docsRoutes(routers, API_BASE)], API_BASE, version);
