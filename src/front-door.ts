/**
 * The service's front door (SPEC §10): `GET /` answers a small page pointing to the console, the API's docs page and
 * its OpenAPI document. Built without any route group of the API (src/app.ts loads this module for `/` only).
 */

/** The page, for the API served under `base`. */
const page = (base: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Learner Service</title>
</head>
<body>
<main>
<h1>Learner Service</h1>
<p>A self-hostable SCORM Cloud API v2 Learner Service. Its API is served under <code>${base}</code>.</p>
<ul>
<li><a href="/console">The operator console</a>: sign in with the realm's management credentials.</li>
<li><a href="${base}/docs">The API's documentation</a>, rendered from its OpenAPI document.</li>
<li><a href="${base}/openapi.json">The OpenAPI document</a> (OpenAPI 3.1, JSON).</li>
</ul>
</main>
</body>
</html>
`;

/** No script, style or frame: the page is text and three links. */
const HEADERS = {
	"Content-Type": "text/html; charset=utf-8",
	"Content-Security-Policy": "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy": "no-referrer",
	"Cache-Control": "public, max-age=300",
};

/** Answers the front door of the API served under `base`: the page to GET and HEAD, 405 to any other method. */
export function frontDoor(request: Request, base: string): Response {
	if (request.method === "GET" || request.method === "HEAD") {
		return new Response(request.method === "HEAD" ? null : page(base), { status: 200, headers: HEADERS });
	}
	return Response.json({ message: `Method ${request.method} is not allowed here; use GET, HEAD` }, { status: 405, headers: { Allow: "GET, HEAD" } });
}
