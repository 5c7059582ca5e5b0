"""What a bot builder or an agent expects of identify, suggestions and list caps (the User 360
help pages): an identify's values never override, a never-seen sender is not made into a record
only to be merged, suggestions work both ways, and lists never pass their cap."""

from __future__ import annotations

from typing import Any

from domain.access import Role
from domain.model import MergeTrigger
from domain.ports import MergeLimits
from tests.conftest import Api
from tests.integration.queries import (
    CAPTURE,
    DEFINE,
    IDENTIFY,
    MERGE,
    SUGGESTIONS,
    UPDATE,
    capture_input,
    identify_input,
    merge_input,
    raw_id,
)


async def _identify(api: Api, channel: str, sender: str, user_id: str, **props: Any) -> Any:
    data = await api.ok(IDENTIFY, identify_input(channel, sender, user_id, props or None))
    return data["identify"]


async def test_identify_that_merges_fills_the_survivor_without_overriding_it(api: Api) -> None:
    await _identify(api, "API", "crm-1", "u1", firstName="Asha", tags=["vip"])
    await api.ok(CAPTURE, capture_input("WEB", "visitor", {"gender": "f"}))

    merged = await _identify(
        api, "WEB", "visitor", "u1", firstName="Typed", language="hi", tags=["web"]
    )

    assert merged["outcome"] == "MERGED"
    profile = merged["profile"]
    assert profile["firstName"] == "Asha"  # kept, not replaced by the identify's value
    assert profile["properties"]["language"] == "hi"  # filled
    assert profile["tags"] == ["vip", "web"]  # unioned
    assert profile["properties"]["gender"] == "f"


async def test_identify_that_switches_fills_the_profile_without_overriding_it(api: Api) -> None:
    await _identify(api, "API", "crm-1", "u1", firstName="Asha")
    await _identify(api, "WEB", "laptop", "u2", firstName="Kim")

    switched = await _identify(api, "WEB", "laptop", "u1", firstName="Typed", language="hi")

    assert switched["outcome"] == "SWITCHED"
    assert switched["profile"]["firstName"] == "Asha"
    assert switched["profile"]["properties"]["language"] == "hi"


async def test_a_never_seen_sender_with_a_known_user_id_joins_its_profile(api: Api) -> None:
    first = await _identify(api, "API", "crm-1", "u1", firstName="Asha")
    before = await api.db["profiles"].count_documents({})

    joined = await _identify(api, "WHATSAPP", "919876543210", "u1", firstName="Typed")

    assert joined["outcome"] == "SWITCHED"
    assert joined["mergedProfileId"] is None
    assert joined["profile"]["id"] == first["profile"]["id"]
    assert joined["profile"]["firstName"] == "Asha"
    assert {(i["type"], i["value"]) for i in joined["profile"]["identities"]} == {
        ("API", "crm-1"),
        ("PHONE", "+919876543210"),
        ("USER_ID", "u1"),
    }
    assert await api.db["profiles"].count_documents({}) == before  # no record made to merge


async def test_a_never_seen_sender_with_a_new_user_id_is_identified_in_one_profile(
    api: Api,
) -> None:
    result = await _identify(api, "WEB", "visitor", "u9", firstName="Kim")

    assert result["outcome"] == "IDENTIFIED"
    assert result["profile"]["userId"] == "u9"
    assert result["profile"]["firstName"] == "Kim"
    assert await api.db["profiles"].count_documents({}) == 1


async def test_suggestions_are_symmetric_for_values_set_by_an_agent_or_an_identify(
    api: Api,
) -> None:
    whatsapp = (await api.ok(CAPTURE, capture_input("WHATSAPP", "919876543210")))[
        "captureProperties"
    ]["profile"]["id"]
    email = (await api.ok(CAPTURE, capture_input("WEB", "visitor-1")))["captureProperties"][
        "profile"
    ]["id"]
    await api.ok(
        UPDATE, {"input": {"id": email, "set": {"phone": "+919876543210"}}}, role=Role.AGENT
    )
    other = (await _identify(api, "API", "crm-7", "u7", email="kim@example.com"))["profile"]["id"]
    anonymous = (await api.ok(CAPTURE, capture_input("WEB", "v2", {"email": "Kim@Example.com"})))[
        "captureProperties"
    ]["profile"]["id"]

    async def suggested(profile_id: str) -> set[str]:
        data = await api.ok(SUGGESTIONS, {"id": profile_id}, role=Role.AGENT)
        return {s["profile"]["id"] for s in data["mergeSuggestions"]}

    assert email in await suggested(whatsapp)  # the agent's phone is indexed
    assert whatsapp in await suggested(email)
    assert other in await suggested(anonymous)  # the identify's email is indexed too


async def test_tags_never_pass_their_cap_and_a_refusal_writes_nothing(api: Api) -> None:
    profile = (await api.ok(CAPTURE, capture_input("WEB", "v1")))["captureProperties"]["profile"]
    await api.ok(
        UPDATE,
        {"input": {"id": profile["id"], "addTags": [f"t{i}" for i in range(100)]}},
        role=Role.AGENT,
    )
    error = await api.refused(
        "LIMIT_EXCEEDED",
        UPDATE,
        {"input": {"id": profile["id"], "addTags": ["one-more"]}},
        role=Role.AGENT,
    )
    assert error["extensions"]["field"] == "addTags"
    again = await api.ok(
        UPDATE, {"input": {"id": profile["id"], "addTags": ["t5", "t7"]}}, role=Role.AGENT
    )
    assert len(again["updateProfile"]["profile"]["tags"]) == 100  # tags it already has still fit


async def test_a_merge_whose_list_union_would_pass_the_cap_is_refused_before_writing(
    api: Api,
) -> None:
    await api.ok(DEFINE, {"input": {"name": "interests", "type": "LIST"}})
    target = (
        await api.ok(
            CAPTURE, capture_input("WEB", "t", {"interests": [f"a{i}" for i in range(60)]})
        )
    )["captureProperties"]["profile"]["id"]
    source = (
        await api.ok(
            CAPTURE, capture_input("WEB", "s", {"interests": [f"b{i}" for i in range(60)]})
        )
    )["captureProperties"]["profile"]["id"]
    overlapping = (
        await api.ok(
            CAPTURE, capture_input("WEB", "o", {"interests": [f"a{i}" for i in range(40)]})
        )
    )["captureProperties"]["profile"]["id"]

    error = await api.refused("LIMIT_EXCEEDED", MERGE, merge_input(target, source), role=Role.AGENT)
    assert "interests" in error["message"]
    merged = await api.ok(MERGE, merge_input(target, overlapping), role=Role.AGENT)
    assert len(merged["mergeProfiles"]["profile"]["properties"]["interests"]) == 60


async def test_the_list_cap_holds_in_the_fold_itself(api: Api) -> None:
    """A merge that passes the early check but meets a longer list at the fold is refused by
    the fold's own condition, and the source is released intact."""
    services = api.app.state.runtime.get().services
    services.merger.limits = MergeLimits(merges=100, identities=100, list_items=3)
    target = (await api.ok(CAPTURE, capture_input("WEB", "t", {"tags": ["a", "b"]})))[
        "captureProperties"
    ]["profile"]["id"]
    source = (await api.ok(CAPTURE, capture_input("WEB", "s", {"tags": ["c", "d"]})))[
        "captureProperties"
    ]["profile"]["id"]
    target, source = raw_id(target), raw_id(source)
    result = await services.merger.merge(
        "acme", source, target, trigger=MergeTrigger.MANUAL, actor="t", unidentified_only=False
    )
    assert result == "LIST_LIMIT"
    assert (await api.db["profiles"].find_one({"_id": source})).get("state") is None
    assert (await api.db["profiles"].find_one({"_id": target}))["props"]["tags"] == ["a", "b"]
