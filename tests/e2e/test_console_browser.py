"""The console at /console in a real headless Chromium, against a real server: sign in, search
and filter, a profile (edit with a validation error, merge a suggestion, detach an identity), a
segment whose count follows a capture made through the API, export, and a viewer who sees no
write control. Every test checks that no request left the host and the console logged no
error, and writes a screenshot into test-artifacts/.

The browser is Debian's Chromium driven by Playwright through `executable_path` (see
test_graphiql_browser.py); without one the tests are skipped and say so.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

from domain.access import Role
from store.client import open_client
from store.keys import KeyStore
from tests.e2e.conftest import ROOT, ServerProcess
from tests.e2e.test_graphiql_browser import _browser

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "test-artifacts"
STEP_TIMEOUT_MS = 15_000  # each browser step; a stuck step fails the test instead of hanging
TENANT = "console"
FILLERS = 55  # more than one page of 50


@dataclass
class Console:
    """A server seeded for the console, with a key per role."""

    server: ServerProcess
    keys: dict[Role, str]
    ids: dict[str, str] = field(default_factory=dict)

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(
            f"{self.server.base_url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.keys[Role.ADMIN]}"},
            timeout=30,
        )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data


CAPTURE = """mutation C($input: CapturePropertiesInput!) {
  captureProperties(input: $input) { profile { id } } }"""
IDENTIFY = """mutation I($input: IdentifyInput!) { identify(input: $input) { profile { id } } }"""
TRACK = """mutation T($input: TrackEventInput!) { trackEvent(input: $input) { counted } }"""
TAG = """mutation U($input: UpdateProfileInput!) {
  updateProfile(input: $input) { profile { id } } }"""


def _capture(console: Console, channel: str, sender: str, properties: dict[str, Any]) -> str:
    data = console.gql(
        CAPTURE, {"input": {"channel": channel, "senderId": sender, "properties": properties}}
    )
    return str(data["captureProperties"]["profile"]["id"])


def _identify(console: Console, channel: str, sender: str, user_id: str, **properties: Any) -> str:
    data = console.gql(
        IDENTIFY,
        {
            "input": {
                "channel": channel,
                "senderId": sender,
                "userId": user_id,
                "properties": properties,
            }
        },
    )
    return str(data["identify"]["profile"]["id"])


async def _role_keys(uri: str, db_name: str) -> dict[Role, str]:
    client = open_client(uri)
    try:
        keys = KeyStore(client[db_name])
        now = datetime.now(UTC)
        made = {}
        for role in (Role.AGENT, Role.VIEWER, Role.SDK):
            _, made[role] = await keys.create(TENANT, role, f"console {role.value}", now)
        return made
    finally:
        closed = client.close()
        if asyncio.iscoroutine(closed):  # pymongo's async client; motor's close is plain
            await closed


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, mongo_uri: str) -> Iterator[Console]:
    db_name = f"console_{secrets.token_hex(4)}"
    admin = f"p360_{secrets.token_urlsafe(24)}"
    environment = {
        "MONGODB_URI": mongo_uri,
        "MONGODB_DB": db_name,
        "BOOTSTRAP_TENANT": TENANT,
        "BOOTSTRAP_API_KEY": admin,
    }
    server = ServerProcess(environment, tmp_path_factory.mktemp("console") / "server.log")
    try:
        # A thread of its own: the test session may already run an event loop here.
        with ThreadPoolExecutor(1) as thread:
            made = thread.submit(asyncio.run, _role_keys(mongo_uri, db_name)).result()
        keys = {Role.ADMIN: admin, **made}
        console = Console(server, keys)
        ids = console.ids
        ids["asha"] = _identify(
            console,
            "WHATSAPP",
            "919812345001",
            "asha-1",
            firstName="Asha",
            lastName="Rao",
            email="asha@example.com",
        )
        console.gql(TAG, {"input": {"id": ids["asha"], "addTags": ["vip"]}})
        for n in range(2):
            console.gql(
                TRACK,
                {"input": {"name": "purchase", "profileId": ids["asha"], "eventId": f"p-{n}"}},
            )
        # An anonymous chat that gave Asha's email: a merge suggestion for her.
        ids["lookalike"] = _capture(
            console,
            "MESSENGER",
            "lookalike-1",
            {"email": "asha@example.com", "city": "Pune", "latitude": 18.5},
        )
        ids["ravi"] = _identify(
            console, "SMS", "919812345002", "ravi-2", firstName="Ravi", lastName="Iyer"
        )
        _identify(console, "WEB", "visitor-ravi", "ravi-2")
        console.gql(
            """mutation S($input: CreateSegmentInput!) { createSegment(input: $input) {
              segment { id } } }""",
            {"input": {"name": "Seeded", "filter": {"tag": "vip"}}},
        )
        for i in range(FILLERS):
            _capture(console, "WEB", f"filler-{i}", {"firstName": "Filler", "country": "GB"})
        yield console
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _browser()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, timeout=STEP_TIMEOUT_MS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Session:
    page: Page
    requests: list[Request]
    problems: list[str]


@pytest.fixture
def session(
    browser: Browser, console: Console, request: pytest.FixtureRequest
) -> Iterator[Session]:
    """A fresh tab (its own sessionStorage); afterwards its screenshot, and the checks that
    every request stayed on the host and nothing was logged as an error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    page.set_default_navigation_timeout(STEP_TIMEOUT_MS)
    opened = Session(page, [], [])

    def logged(message: ConsoleMessage) -> None:
        if message.type == "error":
            opened.problems.append(message.text)

    page.on("request", lambda sent: opened.requests.append(sent))
    page.on("console", logged)
    page.on("pageerror", lambda error: opened.problems.append(str(error)))
    try:
        yield opened
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"console-{request.node.name.removeprefix('test_')[:60]}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 5_000
    finally:
        context.close()
    origin = urlsplit(console.server.base_url).netloc
    left = [r.url for r in opened.requests if urlsplit(r.url).scheme not in ("data", "blob")]
    assert [url for url in left if urlsplit(url).netloc != origin] == []
    assert opened.problems == []


def _sign_in(session: Session, console: Console, role: Role) -> Page:
    page = session.page
    page.goto(f"{console.server.base_url}/console", wait_until="load")
    page.get_by_label("API key").fill(console.keys[role])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("profile-count").get_by_text("profiles").wait_for()
    return page


def _count(page: Page, expected: str) -> None:
    page.get_by_test_id("profile-count").get_by_text(expected, exact=True).wait_for()


def _open(page: Page, console: Console, profile_id: str) -> None:
    page.goto(f"{console.server.base_url}/console#/profile/{profile_id}")
    page.get_by_role("heading", name="Contact card").wait_for()


def test_an_admin_signs_in_sees_tenant_role_and_count_and_pages_through_profiles(
    session: Session, console: Console
) -> None:
    page = _sign_in(session, console, Role.ADMIN)
    assert page.get_by_test_id("tenant").inner_text() == f"tenant {TENANT}"
    assert page.get_by_test_id("role").inner_text() == "role admin"
    _count(page, f"{FILLERS + 3} profiles")
    assert page.locator("tbody tr").count() == 50
    page.get_by_role("button", name="Next page").click()
    page.get_by_text("Page 2").wait_for()
    assert page.locator("tbody tr").count() == FILLERS + 3 - 50
    key = console.keys[Role.ADMIN]
    assert page.evaluate("JSON.stringify(sessionStorage)").count(key) == 1
    assert key not in page.evaluate("JSON.stringify(localStorage)")


def test_search_and_the_filter_builder_narrow_the_list_and_its_count(
    session: Session, console: Console
) -> None:
    page = _sign_in(session, console, Role.ADMIN)
    page.get_by_label("Search").fill("rao")
    page.get_by_role("button", name="Apply").click()
    _count(page, "1 profile")
    page.get_by_role("link", name="Asha Rao").wait_for()

    page.get_by_label("Search").fill("")
    page.get_by_role("button", name="+ Tag").click()
    page.get_by_label("Has tag").fill("vip")
    page.get_by_role("button", name="+ Event").click()
    page.get_by_label("Event", exact=True).fill("purchase")
    page.get_by_label("At least (times)").fill("2")
    page.get_by_role("button", name="Apply").click()
    _count(page, "1 profile")

    page.get_by_role("button", name="Remove").first.click()  # the tag condition
    page.get_by_label("At least (times)").fill("3")
    page.get_by_role("button", name="Apply").click()
    _count(page, "0 profiles")


def test_an_agent_edits_a_property_and_sees_the_validation_error_at_the_field(
    session: Session, console: Console
) -> None:
    page = _sign_in(session, console, Role.AGENT)
    page.get_by_role("link", name="Ravi Iyer").click()
    page.get_by_role("heading", name="Contact card").wait_for()
    page.get_by_role("button", name="Edit email", exact=True).click()
    page.get_by_label("New value of email", exact=True).fill("not an email")
    page.get_by_role("button", name="Save").click()
    error = page.locator("#error-email")
    error.get_by_text("email").wait_for()
    assert (
        page.get_by_label("New value of email", exact=True).get_attribute("aria-invalid") == "true"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-validation-error.png"))

    page.get_by_label("New value of email", exact=True).fill("ravi@example.com")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("ravi@example.com").first.wait_for()
    assert page.locator("#error-email").count() == 0


def test_an_agent_merges_a_suggestion_after_seeing_what_it_fills_then_unmerges_it(
    session: Session, console: Console
) -> None:
    page = _sign_in(session, console, Role.AGENT)
    _open(page, console, console.ids["asha"])
    suggestions = page.locator("section[aria-labelledby=suggestions]")
    suggestions.get_by_text("email").wait_for()
    suggestions.get_by_role("button", name="Merge…").click()
    fills = page.get_by_test_id("fills")
    assert "city: Pune" in fills.inner_text()
    assert "latitude: 18.5" in fills.inner_text()
    assert "identities: + lookalike-1" in page.get_by_test_id("unions").inner_text()
    page.keyboard.press("Escape")  # the confirmation closes from the keyboard, and reopens
    assert page.get_by_test_id("fills").count() == 0
    suggestions.get_by_role("button", name="Merge…").press("Enter")
    page.get_by_role("button", name="Confirm merge").click()
    merges = page.locator("section[aria-labelledby=merges]")
    merges.get_by_text(console.ids["lookalike"], exact=True).wait_for()
    page.get_by_text("Pune").first.wait_for()

    # The merged-away id now opens the survivor.
    page.goto(f"{console.server.base_url}/console")  # from elsewhere: no stale heading
    page.get_by_test_id("profile-count").get_by_text("profiles").wait_for()
    _open(page, console, console.ids["lookalike"])
    page.wait_for_url(f"**/console#/profile/{console.ids['asha']}")
    page.get_by_role("heading", name="Asha Rao").wait_for()
    page.screenshot(path=str(ARTIFACTS / "console-merged.png"), full_page=True)

    # Undone from the merge history, after a preview of what goes back.
    merges = page.locator("section[aria-labelledby=merges]")
    merges.get_by_role("button", name=f"Unmerge {console.ids['lookalike']}").click()
    removed = page.get_by_test_id("removed").inner_text()
    assert "city: Pune" in removed
    page.get_by_role("button", name="Confirm unmerge").click()
    page.get_by_text("Merge undone").wait_for()
    merges.get_by_text("undone").first.wait_for()
    assert "Pune" not in page.locator("section[aria-labelledby=props]").inner_text()
    page.get_by_role("link", name="Open the profile that came back").click()
    page.wait_for_url(f"**/console#/profile/{console.ids['lookalike']}")
    page.locator("section[aria-labelledby=props]").get_by_text("Pune").wait_for()


def test_an_agent_detaches_an_identity_into_a_profile_of_its_own(
    session: Session, console: Console
) -> None:
    page = _sign_in(session, console, Role.AGENT)
    _open(page, console, console.ids["ravi"])
    identities = page.locator("section[aria-labelledby=identities]")
    identities.get_by_text("visitor-ravi").wait_for()
    page.get_by_role("button", name="Detach visitor-ravi on web").click()
    page.get_by_text("Detached visitor-ravi (web) into a new profile").wait_for()
    assert "visitor-ravi" not in identities.locator("table").inner_text()
    page.get_by_role("link", name="Open the detached profile").click()
    page.locator("section[aria-labelledby=identities]").get_by_text("visitor-ravi").wait_for()


def test_an_admin_creates_a_segment_whose_count_follows_a_capture_and_exports_it(
    session: Session, console: Console
) -> None:
    page = _sign_in(session, console, Role.ADMIN)
    page.get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="New segment").click()
    page.get_by_label("Name", exact=True).fill("Goa")
    page.get_by_role("button", name="+ Property").click()
    page.get_by_label("Property", exact=True).select_option("city")
    page.get_by_label("Value", exact=True).fill("Goa")
    page.get_by_role("button", name="Create segment").click()
    page.get_by_role("heading", name="Goa").wait_for()
    page.get_by_test_id("segment-count").get_by_text("0 profiles").wait_for()

    _capture(console, "WHATSAPP", "919812345099", {"firstName": "Gita", "city": "Goa"})
    page.reload()
    page.get_by_test_id("segment-count").get_by_text("1 profile", exact=True).wait_for()
    page.get_by_role("link", name="Gita").wait_for()

    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(csv_download.value.path()).read_text())))
    assert [row["firstName"] for row in rows] == ["Gita"]
    with page.expect_download() as ndjson_download:
        page.get_by_role("button", name="Export NDJSON").click()
    lines = Path(ndjson_download.value.path()).read_text().splitlines()
    assert [json.loads(line)["properties"]["city"] for line in lines] == ["Goa"]
    assert ndjson_download.value.suggested_filename == "Goa.ndjson"

    # The saved filter comes back into the builder; an edit saves and recounts.
    assert page.get_by_label("Property", exact=True).input_value() == "city"
    assert page.get_by_label("Value", exact=True).input_value() == "Goa"
    page.get_by_label("Value", exact=True).fill("Nowhere")
    page.get_by_role("button", name="Save segment").click()
    page.get_by_test_id("segment-count").get_by_text("0 profiles").wait_for()

    page.get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="Goa").wait_for()


def test_a_viewer_sees_no_write_control_anywhere(session: Session, console: Console) -> None:
    page = _sign_in(session, console, Role.VIEWER)
    assert page.get_by_test_id("role").inner_text() == "role viewer"
    _open(page, console, console.ids["ravi"])
    for name in ("Edit", "Merge…", "Detach", "Add tag", "Save"):
        assert page.get_by_role("button", name=name).count() == 0, name
    assert page.get_by_label("New tag").count() == 0
    page.get_by_role("link", name="Segments").click()
    page.get_by_role("heading", name="Segments").wait_for()
    assert page.get_by_role("link", name="New segment").count() == 0
    page.get_by_role("link", name="Seeded").click()
    page.get_by_role("heading", name="Members").wait_for()
    for name in ("Export CSV", "Export NDJSON", "Save segment", "+ Property"):
        assert page.get_by_role("button", name=name).count() == 0, name
    page.get_by_role("link", name="Properties").click()
    page.get_by_role("heading", name="Properties").wait_for()
    assert page.get_by_role("button", name="Define").count() == 0
    page.set_viewport_size({"width": 390, "height": 844})
    _open(page, console, console.ids["asha"])
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_an_admin_defines_a_property_that_the_filter_builder_then_offers(
    session: Session, console: Console
) -> None:
    page = _sign_in(session, console, Role.ADMIN)
    page.get_by_role("link", name="Properties").click()
    page.get_by_label("Name", exact=True).fill("loyaltyTier")
    page.get_by_label("Type", exact=True).select_option("NUMBER")
    page.get_by_label("Description", exact=True).fill("Tier in the loyalty programme")
    page.get_by_role("button", name="Define").click()
    page.get_by_role("cell", name="loyaltyTier").wait_for()

    page.get_by_role("link", name="Profiles").click()
    page.get_by_role("button", name="+ Property").click()
    page.get_by_label("Property", exact=True).select_option("loyaltyTier")
    operators = page.get_by_label("Operator").locator("option").all_inner_texts()
    assert "between (low, high)" in operators
    assert "contains" not in operators


def test_a_wrong_key_and_a_bot_key_are_refused_at_sign_in_with_a_reason(
    session: Session, console: Console
) -> None:
    page = session.page
    page.goto(f"{console.server.base_url}/console", wait_until="load")
    page.get_by_label("API key").fill("p360_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").get_by_text("API key").wait_for()
    page.get_by_label("API key").fill(console.keys[Role.SDK])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").get_by_text("role sdk cannot use the console").wait_for()
    assert page.evaluate("sessionStorage.length") == 0
