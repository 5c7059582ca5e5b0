"""Race scenarios written against any HTTP client, so they run in-process and against a real
uvicorn server alike. Each asserts the invariant by reading the database directly."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.integration.queries import CAPTURE, IDENTIFY, capture_input, identify_input, raw_id


async def _post(
    http: httpx.AsyncClient, key: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert not body.get("errors"), body["errors"]
    return body["data"]  # type: ignore[no-any-return]


async def active_profiles(db: Any, tenant: str) -> list[dict[str, Any]]:
    query = {"tenant": tenant, "state": None}
    return await db["profiles"].find(query).to_list(None)  # type: ignore[no-any-return]


async def identities(db: Any, tenant: str) -> list[dict[str, Any]]:
    return await db["identities"].find({"tenant": tenant}).to_list(None)  # type: ignore[no-any-return]


async def many_senders_identify_as_one_new_user(
    http: httpx.AsyncClient, key: str, db: Any, tenant: str, senders: int = 50
) -> None:
    """N senders, each with a tag of its own, identify concurrently as one new userId."""
    for i in range(senders):
        await _post(http, key, CAPTURE, capture_input("WEB", f"s{i}", {"tags": [f"t{i}"]}))
    results = await asyncio.gather(
        *(
            _post(http, key, IDENTIFY, identify_input("WEB", f"s{i}", "new-user"))
            for i in range(senders)
        )
    )
    outcomes = sorted(r["identify"]["outcome"] for r in results)
    assert outcomes == ["IDENTIFIED"] + ["MERGED"] * (senders - 1), outcomes

    [survivor] = await active_profiles(db, tenant)  # no orphan profile is left
    assert survivor["userId"] == "new-user"
    assert {raw_id(r["identify"]["profile"]["id"]) for r in results} == {survivor["_id"]}
    bindings = await identities(db, tenant)
    assert len(bindings) == senders + 1  # every sender, plus the userId key
    assert {b["profileId"] for b in bindings} == {survivor["_id"]}
    # Nothing was lost: every sender's tag reached the survivor exactly once.
    assert sorted(survivor["props"]["tags"]) == sorted(f"t{i}" for i in range(senders))
    assert len(survivor["mergeHistory"]) == senders - 1


async def one_sender_first_captures_at_once(
    http: httpx.AsyncClient, key: str, db: Any, tenant: str, calls: int = 50
) -> None:
    results = await asyncio.gather(
        *(
            _post(http, key, CAPTURE, capture_input("WHATSAPP", "919876543210", {"gender": "f"}))
            for _ in range(calls)
        )
    )
    assert sum(r["captureProperties"]["created"] for r in results) == 1
    [profile] = await active_profiles(db, tenant)
    assert {raw_id(r["captureProperties"]["profile"]["id"]) for r in results} == {profile["_id"]}
    [binding] = await identities(db, tenant)
    assert binding["profileId"] == profile["_id"]
    assert profile["props"]["phone"] == "+919876543210"
