// Starts Swagger UI on the docs page. A file of its own because the page's Content-Security-Policy allows no
// inline script; the page names the document's URL in data-url so this file holds no path.
const root = document.getElementById("swagger-ui");
SwaggerUIBundle({
	url: root.dataset.url,
	domNode: root,
	deepLinking: true,
	// The default validator is a third-party service; this page talks to its own origin only.
	validatorUrl: null,
});
