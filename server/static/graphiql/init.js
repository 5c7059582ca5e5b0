// profile360's GraphiQL: started from a served file, so the page needs no inline script.
"use strict";

(function () {
  var DEFAULT_QUERY = [
    "# profile360. Put your API key in Headers",
    "# below: Authorization: Bearer p360_…",
    "# (or X-API-Key). The schema is in the",
    "# docs pane (the book icon).",
    "",
    "query PropertyDefinitions {",
    "  propertyDefinitions {",
    "    name",
    "    type",
    "  }",
    "}",
    "",
  ].join("\n");

  var DEFAULT_HEADERS = '{\n  "Authorization": "Bearer <your API key>"\n}\n';

  // GraphiQL's history saves each query it runs with its headers, whatever shouldPersistHeaders
  // says. This storage writes those records without headers, so an API key never lands in
  // localStorage; everything else is stored as GraphiQL stores it.
  var WITHOUT_HEADERS = ["graphiql:queries", "graphiql:favorites", "graphiql:tabState"];
  var PREFIX = "graphiql:";
  function withoutHeaders(key, value) {
    if (WITHOUT_HEADERS.indexOf(key) < 0) {
      return value;
    }
    try {
      return JSON.stringify(JSON.parse(value), function (name, item) {
        return name === "headers" ? null : item;
      });
    } catch (notJson) {
      return value;
    }
  }
  function ownKeys() {
    return Object.keys(window.localStorage).filter(function (key) {
      return key.indexOf(PREFIX) === 0;
    });
  }
  var storage = {
    getItem: function (key) {
      return window.localStorage.getItem(key);
    },
    setItem: function (key, value) {
      window.localStorage.setItem(key, withoutHeaders(key, value));
    },
    removeItem: function (key) {
      window.localStorage.removeItem(key);
    },
    get length() {
      return ownKeys().length;
    },
    clear: function () {
      ownKeys().forEach(function (key) {
        window.localStorage.removeItem(key);
      });
    },
  };

  var container = document.getElementById("graphiql");
  // The page's style nonce (see server/graphiql.py): GraphiQL's dialogs tag the <style> they
  // add with it, the only inline style the Content-Security-Policy lets through.
  window.__webpack_nonce__ = container.dataset.styleNonce;
  // The page is served at the GraphQL endpoint itself, so its own path is the endpoint.
  var fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
  ReactDOM.createRoot(container).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: DEFAULT_QUERY,
      defaultHeaders: DEFAULT_HEADERS,
      defaultEditorToolsVisibility: "headers",
      // Keys stay out of localStorage: they are typed (or pasted) for each session.
      shouldPersistHeaders: false,
      storage: storage,
    }),
  );
})();
