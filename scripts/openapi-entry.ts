// What scripts/openapi.mjs loads (through Vite's module runner, which closes once this module has evaluated): the
// whole API app, built here at the top level so that the route groups it loads on demand are loaded in time.
import { API_BASE, fullApp } from "../src/app";
import { openApiDocument } from "../src/openapi/document";

export const documentFor = openApiDocument.bind(null, await fullApp(), API_BASE);
