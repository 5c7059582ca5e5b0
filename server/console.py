"""The console at `/console`: a web page for agents and admins, written as plain ES modules
(no build step, no third-party code) and served by the service itself. It is a client of the
public GraphQL API and of `/export` only, under the same Content-Security-Policy as GraphiQL's
page (every script, style and request from the service's own origin)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from server.graphiql import CONSOLE_PATH

STATIC_DIR = Path(__file__).resolve().parent / "static" / "console"
ASSETS_PATH = "/static/console"


async def _page(request: Request) -> Response:
    # Read per request: small, and an edit shows without a restart. The CSP comes from
    # SecurityHeaders (server/graphiql.py): the page has no inline script or style at all.
    return HTMLResponse(
        (STATIC_DIR / "index.html").read_text(), headers={"Cache-Control": "no-store"}
    )


async def _slash(request: Request) -> Response:
    return RedirectResponse(CONSOLE_PATH)


def console_routes() -> list[BaseRoute]:
    """The page and its files."""
    return [
        Route(CONSOLE_PATH, _page),
        Route(f"{CONSOLE_PATH}/", _slash),
        Mount(ASSETS_PATH, app=StaticFiles(directory=STATIC_DIR), name="console-assets"),
    ]
