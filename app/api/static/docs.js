// Renders /api/v1/openapi.json with the vendored Swagger UI (no CDN); "Authorize" takes a bearer token.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    persistAuthorization: false,
  });
});
