"""GraphiQL in a real headless Chromium, against a real server: the editor renders, a query runs
with the key typed into the headers editor, the docs pane opens, and no request leaves the host.

The browser is Debian's `chromium-headless-shell` or `chromium` (`.ci/run` installs one), driven
by Playwright through `executable_path`; CHROMIUM_PATH names another. Without one the test is
skipped and says so.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Request, sync_playwright

from tests.e2e.conftest import ROOT, StartServer
from tests.e2e.test_server import _dev_key

pytestmark = pytest.mark.e2e

SCREENSHOT = ROOT / "test-artifacts" / "graphiql.png"
STEP_TIMEOUT_MS = 20_000  # each browser step; the whole test is bounded by a few of them
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")


def _browser() -> str:
    named = os.environ.get("CHROMIUM_PATH")
    if named:
        return named
    for name in BROWSERS:
        if found := shutil.which(name):
            return found
    pytest.skip(
        "GraphiQL browser test skipped: no Chromium found (looked for CHROMIUM_PATH and "
        f"{', '.join(BROWSERS)} on PATH). Install one: apt-get install -y chromium-headless-shell"
    )


def test_graphiql_runs_a_keyed_query_and_shows_the_docs_with_no_request_leaving_the_host(
    start_server: StartServer, tmp_path: Path
) -> None:
    executable = _browser()
    server = start_server({"DATA_DIR": str(tmp_path / "data")})
    key = _dev_key(server.output)
    origin = urlsplit(server.base_url).netloc
    requests: list[Request] = []
    problems: list[str] = []  # page errors, and console errors (CSP violations are reported there)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, timeout=STEP_TIMEOUT_MS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(STEP_TIMEOUT_MS)
            page.set_default_navigation_timeout(STEP_TIMEOUT_MS)
            page.on("request", lambda request: requests.append(request))
            page.on("console", console)
            page.on("pageerror", lambda error: problems.append(str(error)))

            page.goto(f"{server.base_url}/graphql", wait_until="load")
            query_editor = page.locator(".graphiql-query-editor .CodeMirror")
            query_editor.wait_for()
            assert "propertyDefinitions" in query_editor.inner_text()

            # The key goes in through GraphiQL's own headers editor, as a user pastes it.
            page.locator(".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror").click()
            page.keyboard.press("Control+A")
            page.keyboard.insert_text(f'{{"Authorization": "Bearer {key}"}}')
            page.locator(".graphiql-execute-button").click()
            response = page.locator(".graphiql-response")
            response.get_by_text('"userId"').wait_for()
            assert '"data"' in response.inner_text()
            assert "UNAUTHENTICATED" not in response.inner_text()
            keyed = [r for r in requests if r.method == "POST" and r.url.endswith("/graphql")]
            assert any(r.headers.get("authorization") == f"Bearer {key}" for r in keyed)
            # History keeps the query, never the key (GraphiQL's own history would).
            page.wait_for_function("(localStorage.getItem('graphiql:queries') || '').length > 0")
            stored = page.evaluate("JSON.stringify(window.localStorage)")
            assert "PropertyDefinitions" in stored
            assert key not in stored, "the API key was saved in the browser's storage"

            page.get_by_label("Show Documentation Explorer").click()
            docs = page.locator(".graphiql-doc-explorer")
            docs.get_by_text("Root Types").wait_for()
            docs.get_by_role("link", name="Query", exact=True).click()
            docs.get_by_text("profiles", exact=True).first.wait_for()

            # A dialog adds a <style>: allowed by the page's nonce, so no CSP violation.
            page.get_by_label("Open settings dialog").click()
            page.get_by_role("dialog").wait_for()
            page.keyboard.press("Escape")
            page.get_by_role("dialog").wait_for(state="detached")

            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()

    assert SCREENSHOT.stat().st_size > 10_000
    left = [r.url for r in requests if urlsplit(r.url).scheme != "data"]
    assert [url for url in left if urlsplit(url).netloc != origin] == []
    assert {urlsplit(url).path for url in left} >= {
        "/graphql",
        "/static/graphiql/graphiql.min.js",
        "/static/graphiql/init.js",
    }
    assert problems == []
