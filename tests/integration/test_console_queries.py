"""The console's own GraphQL documents (server/static/console/api.js), run against the API:
its page of 50 profiles costs what the README's dashboard query costs, and the `viewer` and
`profileCount` fields it relies on answer as described."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from domain.access import Role
from tests.conftest import TENANT, Api, CommandCounter
from tests.integration.test_batched_loading import (
    DASHBOARD_COMMANDS,
    _cost,
    _customers,
    _readme_dashboard,
)

API_JS = Path(__file__).resolve().parents[2] / "server" / "static" / "console" / "api.js"

# The README dashboard's filter and search, as the console's builder would send them.
WHERE = {
    "and": [
        {"property": {"name": "country", "op": "EQ", "value": "IN"}},
        {"event": {"name": "purchase", "minCount": 2, "withinLastDays": 30}},
        {"not": {"tag": "churned"}},
    ]
}


def console_document(name: str) -> str:
    """One of the console's documents, as the page sends it (plain template literals)."""
    found = re.search(rf"export const {name} = `(.*?)`;", API_JS.read_text(), re.DOTALL)
    assert found, f"api.js has no {name}"
    assert "${" not in found.group(1), f"{name} is built from parts; read it another way"
    return found.group(1)


async def test_the_console_page_of_50_costs_the_dashboard_queries_constant_commands(
    api: Api, commands: CommandCounter
) -> None:
    page = console_document("PROFILES_PAGE")
    variables: dict[str, Any] = {"where": WHERE, "search": "rao", "after": None}
    await _customers(api, 0, 5)
    small, data = await _cost(api, commands, page, variables)
    assert len(data["profiles"]["edges"]) == 5
    await _customers(api, 5, 50)
    large, data = await _cost(api, commands, page, variables)
    assert len(data["profiles"]["edges"]) == 50
    dashboard, _ = await _cost(api, commands, _readme_dashboard())
    assert len(large) == len(small) == len(dashboard) == DASHBOARD_COMMANDS, (large, dashboard)


async def test_the_profile_count_counts_what_the_filter_and_search_find(
    api: Api, commands: CommandCounter
) -> None:
    await _customers(api, 0, 7)
    query = console_document("PROFILE_COUNT")
    costs, data = await _cost(api, commands, query, {"where": WHERE, "search": "rao"})
    assert data == {"profileCount": 7}
    assert len(costs) == 2, costs  # the event window's aggregation, then one count
    _, data = await _cost(api, commands, query, {"where": {"tag": "churned"}, "search": None})
    assert data == {"profileCount": 0}
    refused = await api.post(query, {}, role=Role.SDK)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_viewer_field_tells_the_tenant_the_role_and_what_it_may_do(api: Api) -> None:
    query = console_document("VIEWER")
    seen = {role: (await api.ok(query, role=role))["viewer"] for role in Role}
    assert {role: v["role"] for role, v in seen.items()} == {r: r.name for r in Role}
    assert {v["tenant"] for v in seen.values()} == {TENANT}
    assert [r for r, v in seen.items() if v["canEdit"]] == [Role.AGENT, Role.ADMIN]
    assert [r for r, v in seen.items() if v["canAdminister"]] == [Role.ADMIN]
    assert [r for r, v in seen.items() if v["canList"]] == [Role.VIEWER, Role.AGENT, Role.ADMIN]
    anonymous = await api.post(query, {}, key="")
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
