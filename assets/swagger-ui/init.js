// No validatorUrl: its default badge is an image from validator.swagger.io, which the page's
// policy forbids and which would send the document's URL elsewhere.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
});
