/** The docs page: Swagger UI rendering this service's OpenAPI document, every file from this origin. */
export const docsPage = (base: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Learner Service API</title>
<link rel="stylesheet" href="${base}/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="${base}/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-url="${base}/openapi.json"></div>
<script src="${base}/docs/assets/swagger-ui-bundle.js"></script>
<script src="${base}/docs/assets/init.js"></script>
</body>
</html>
`;

/**
 * The docs page's policy: everything from this origin, no inline or eval'd script or style (the init script is
 * its own file). Swagger UI's CSS draws its icons as data: SVG images, the one allowance.
 */
export const DOCS_CSP = [
	"default-src 'self'",
	"script-src 'self'",
	"style-src 'self'",
	"img-src 'self' data:",
	"connect-src 'self'",
	"object-src 'none'",
	"base-uri 'none'",
	"form-action 'none'",
	"frame-ancestors 'none'",
].join("; ");
