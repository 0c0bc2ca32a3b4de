// Starts Swagger UI on /docs. Everything it loads comes from this sandbox: the contract
// from /openapi.json and the assets from /docs/static, so the page works offline.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  var settings = root.dataset;
  window.ui = SwaggerUIBundle({
    url: settings.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    displayOperationId: true,
    // The default online validator badge would call out to the internet.
    validatorUrl: null,
    onComplete: function () {
      // Pre-fill the default key so "try it out" works at once; "Authorize" changes it.
      window.ui.preauthorizeApiKey(settings.securityScheme, settings.apiKey);
    },
  });
});
