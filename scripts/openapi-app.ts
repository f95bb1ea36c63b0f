// The whole API as one app, for scripts/openapi.mjs. src/app.ts builds its route groups with dynamic imports, which
// must run while the module runner importing this file is open: hence the top-level await here.
import { API_BASE, fullApp } from "../src/app";

export { API_BASE };
export const app = await fullApp();
