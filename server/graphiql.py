"""GraphiQL served by the service itself, from vendored npm assets, under a Content-Security-
Policy that allows only the service's own origin; and the landing page at `/`."""

from __future__ import annotations

import html
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
ASSETS_PATH = "/static/graphiql"
GRAPHQL_PATH = "/graphql"
CONSOLE_PATH = "/console"

# Sent with every response. Everything is 'self' except:
# - img-src and font-src also allow data: URLs: GraphiQL's stylesheet embeds its fonts (woff2)
#   and a few icons (png) as data: URLs, so they come from no network at all;
# - object-src, base-uri and frame-ancestors are closed: nothing needs them, and framing the
#   console would invite clickjacking.
# No 'unsafe-inline' and no 'unsafe-eval': the page has no inline script (init.js is a served
# file) and GraphiQL's bundle needs no eval. The page's own response adds one style nonce (see
# graphiql_page).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)

_SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """Adds the Content-Security-Policy (and nosniff, no-referrer) to every HTTP response."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in _SECURITY_HEADERS if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self._app(scope, receive, with_headers)


def wants_html(request: Any) -> bool:
    """A browser navigating to the page (curl's `*/*` gets JSON, not a page)."""
    return "text/html" in (request.headers.get("accept") or "")


def graphiql_page() -> Response:
    """The page, with a fresh style nonce: GraphiQL's dialogs (settings, shortcuts) add a <style>
    element to lock scrolling behind them, which `style-src 'self'` alone would block. The
    nonce allows those elements and nothing else (scripts stay 'self' only); init.js hands it
    to the bundle as `__webpack_nonce__`, where the dialog code looks for one."""
    nonce = secrets.token_urlsafe(16)
    # Read per request: small, and a `make assets` refresh shows without a restart.
    page = (STATIC_DIR / "index.html").read_text().replace("__STYLE_NONCE__", nonce)
    policy = f"{CONTENT_SECURITY_POLICY}; style-src 'self' 'nonce-{nonce}'"
    return HTMLResponse(
        page, headers={"Cache-Control": "no-store", "Content-Security-Policy": policy}
    )


def graphiql_assets() -> Mount:
    """The vendored files (`assets.json` lists them with their versions, licences, checksums)."""
    return Mount(ASSETS_PATH, app=StaticFiles(directory=STATIC_DIR), name="graphiql-assets")


def home(graphiql_enabled: bool) -> Callable[[Request], Awaitable[Response]]:
    """`GET /`: where the API is (and GraphiQL, when it is on), as a page or as JSON."""

    async def endpoint(request: Request) -> Response:
        links = {
            "graphql": GRAPHQL_PATH,
            "graphiql": GRAPHQL_PATH if graphiql_enabled else None,
            "console": CONSOLE_PATH,
        }
        if not wants_html(request):
            return JSONResponse(links)
        path = html.escape(GRAPHQL_PATH)
        console = (
            f'<p>Explore it in <a href="{path}">GraphiQL</a> (your API key goes in its headers).'
            "</p>"
            if graphiql_enabled
            else ""
        )
        return HTMLResponse(
            "<!doctype html><html lang=en><meta charset=utf-8><title>profile360</title>"
            f'<h1>profile360</h1><p>The GraphQL API is at <a href="{path}">{path}</a> '
            f"(POST, JSON).</p>{console}"
            f'<p>Agents and admins: the <a href="{CONSOLE_PATH}">console</a>.</p></html>'
        )

    return endpoint
