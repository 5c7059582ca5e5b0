"""The races SPEC §5-6 name, run as many concurrent calls through the application."""

from __future__ import annotations

import asyncio

from domain.access import Role
from tests import scenarios
from tests.conftest import TENANT, Api
from tests.integration.queries import CAPTURE, DEFINE, IDENTIFY, capture_input, identify_input


async def test_fifty_senders_identifying_as_one_new_user_end_with_one_profile(api: Api) -> None:
    key = await api.key(Role.SDK)
    await scenarios.many_senders_identify_as_one_new_user(api.http, key, api.db, TENANT, 50)


async def test_fifty_first_captures_from_one_sender_end_with_one_profile(api: Api) -> None:
    key = await api.key(Role.SDK)
    await scenarios.one_sender_first_captures_at_once(api.http, key, api.db, TENANT, 50)


async def test_one_sender_identifying_as_two_users_at_once_ends_consistent(api: Api) -> None:
    # Ten rounds: this race once let a userId key be released between two reads and claimed
    # again for a second profile.
    for round_ in range(10):
        sender, users = f"v{round_}", [f"r{round_}-a", f"r{round_}-b"]
        await api.ok(CAPTURE, capture_input("WEB", sender, {"gender": "f"}))
        await asyncio.gather(
            *(api.ok(IDENTIFY, identify_input("WEB", sender, users[i % 2])) for i in range(10))
        )
        profiles = await scenarios.active_profiles(api.db, TENANT)
        holders = sorted(p["userId"] for p in profiles if p.get("userId") in users)
        assert holders == users  # each userId on exactly one profile
        for binding in await scenarios.identities(api.db, TENANT):
            if binding["type"] == "USER_ID":
                [owner] = [p for p in profiles if p["_id"] == binding["profileId"]]
                assert owner["userId"] == binding["value"]


async def test_captures_racing_a_merge_lose_no_value(api: Api) -> None:
    for i in range(8):
        await api.ok(DEFINE, {"input": {"name": f"note{i}", "type": "STRING"}})
    await api.ok(IDENTIFY, identify_input("API", "crm-1", "user-1"))
    await api.ok(CAPTURE, capture_input("WEB", "v1", {"gender": "f"}))
    calls = [api.ok(IDENTIFY, identify_input("WEB", "v1", "user-1"))]
    calls += [api.ok(CAPTURE, capture_input("WEB", "v1", {f"note{i}": f"n{i}"})) for i in range(8)]
    await asyncio.gather(*calls)

    [survivor] = await scenarios.active_profiles(api.db, TENANT)
    assert survivor["userId"] == "user-1"
    # A capture either reached the anonymous record before the merge claimed it (and was
    # folded in) or was sent on to the survivor: none is lost.
    assert {k: v for k, v in survivor["props"].items() if k.startswith("note")} == {
        f"note{i}": f"n{i}" for i in range(8)
    }
    assert survivor["props"]["gender"] == "f"
