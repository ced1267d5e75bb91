// Starts GraphiQL in #graphiql. A file rather than an inline script, so that the page's
// Content-Security-Policy can say script-src 'self'. The endpoint comes from the page
// (data-endpoint), so this file is the same wherever the endpoint is mounted.
(function () {
  "use strict";

  var DEFAULT_QUERY = [
    "# Run a query with Ctrl-Enter or the play button.",
    "# Ctrl-Space completes; the Docs button shows the schema.",
    "#",
    "# Fields that need a session take an access token",
    "# (POST /api/auth/login) in the Headers tab below:",
    '#   {"Authorization": "Bearer <access_token>"}',
    "",
    "query {",
    "  __typename",
    "}",
    "",
  ].join("\n");

  var container = document.getElementById("graphiql");
  var endpoint = container.getAttribute("data-endpoint");
  if (!endpoint) {
    container.textContent = "GraphiQL: the page names no endpoint (data-endpoint).";
    return;
  }

  var fetcher = GraphiQL.createFetcher({ url: endpoint });

  ReactDOM.createRoot(container).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: DEFAULT_QUERY,
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: "headers",
      // An access token typed into the headers editor stays in this tab: not in localStorage.
      shouldPersistHeaders: false,
      inputValueDeprecation: true,
    })
  );
})();
