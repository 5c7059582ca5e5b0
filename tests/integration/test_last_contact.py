"""lastChannel and lastSession follow every contact (capture, identify, event, conversation),
never backwards; a merge keeps the later contact; the seed's merge example end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from domain.access import Role
from tests.conftest import Api
from tests.integration.queries import (
    CAPTURE,
    DEFINE,
    IDENTIFY,
    MERGE,
    PROFILE,
    RECORD,
    TRACK,
    capture_input,
    identify_input,
    merge_input,
    track_input,
)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _profile(api: Api, profile_id: str) -> dict[str, Any]:
    data: dict[str, Any] = (await api.ok(PROFILE, {"id": profile_id}))["profile"]
    return data


async def test_an_event_is_a_contact_and_a_late_older_event_does_not_move_it_back(
    api: Api,
) -> None:
    tracked = await api.ok(
        TRACK, track_input("purchase", channel="WHATSAPP", sender="919876543210")
    )
    profile_id = tracked["trackEvent"]["profile"]["id"]
    first = await _profile(api, profile_id)
    assert first["lastChannel"] == "WHATSAPP"  # a profile made by an event has a last contact

    old = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    await api.ok(CAPTURE, capture_input("SMS", "+91 98765 43210"))
    await api.ok(TRACK, track_input("purchase", channel="WHATSAPP", sender="919876543210", at=old))
    latest = await _profile(api, profile_id)
    assert latest["lastChannel"] == "SMS"  # the older event arrived late: nothing moved back
    assert _at(latest["lastSession"]) >= _at(first["lastSession"])


async def test_a_conversation_and_an_identify_are_contacts(api: Api) -> None:
    captured = await api.ok(CAPTURE, capture_input("WEB", "visitor"))
    profile_id = captured["captureProperties"]["profile"]["id"]
    await api.ok(
        RECORD,
        {"input": {"conversationId": "chat-1", "channel": "MESSENGER", "profileId": profile_id}},
    )
    assert (await _profile(api, profile_id))["lastChannel"] == "MESSENGER"
    await api.ok(IDENTIFY, identify_input("WEB", "visitor", "u1"))
    assert (await _profile(api, profile_id))["lastChannel"] == "WEB"


async def test_an_sdk_key_may_record_a_contact_outside_the_bots(api: Api) -> None:
    visit = datetime.now(UTC).replace(microsecond=0).isoformat()
    captured = await api.ok(
        CAPTURE,
        capture_input("API", "crm-1", {"lastChannel": "VOICE", "lastSession": visit}),
        role=Role.SDK,
    )
    profile = captured["captureProperties"]["profile"]
    assert profile["lastChannel"] == "VOICE"  # a phone call the CRM logged
    assert _at(profile["lastSession"]) == _at(visit)
    error = await api.refused(
        "VALIDATION_FAILED",
        CAPTURE,
        capture_input("API", "crm-1", {"lastChannel": "STORE"}),
        role=Role.SDK,
    )
    assert error["extensions"]["field"] == "properties.lastChannel"


async def test_a_merge_keeps_the_later_contact_with_its_channel(api: Api) -> None:
    await api.ok(IDENTIFY, identify_input("API", "crm-1", "u1"))
    await api.ok(CAPTURE, capture_input("WHATSAPP", "919876543210"))
    merged = await api.ok(IDENTIFY, identify_input("WHATSAPP", "919876543210", "u1"))
    profile = merged["identify"]["profile"]
    assert profile["lastChannel"] == "WHATSAPP"

    # A manual merge: the survivor keeps its own contact when the source's is older, and takes
    # the source's (with its channel) when it is later.
    older = await api.ok(CAPTURE, capture_input("WEB", "old-visitor"))
    newer = await api.ok(CAPTURE, capture_input("EMAIL", "later@example.com"))
    kept = await api.ok(
        MERGE,
        merge_input(
            newer["captureProperties"]["profile"]["id"], older["captureProperties"]["profile"]["id"]
        ),
        role=Role.AGENT,
    )
    assert kept["mergeProfiles"]["profile"]["lastChannel"] == "EMAIL"
    late = await api.ok(CAPTURE, capture_input("MESSENGER", "m-1"))
    taken = await api.ok(
        MERGE,
        merge_input(
            newer["captureProperties"]["profile"]["id"], late["captureProperties"]["profile"]["id"]
        ),
        role=Role.AGENT,
    )
    assert taken["mergeProfiles"]["profile"]["lastChannel"] == "MESSENGER"


async def test_the_seed_example_of_merging_an_unidentified_record_into_an_identified_one(
    api: Api,
) -> None:
    """Identified John with labels [a, b]; an unidentified WhatsApp record "Johnny Doe" with
    labels [b, c] and both opt-ins; the WhatsApp sender identifies as John."""
    await api.ok(DEFINE, {"input": {"name": "labels", "type": "LIST"}})
    john = await api.ok(
        IDENTIFY,
        identify_input("API", "crm-john", "john", {"firstName": "John", "labels": ["a", "b"]}),
    )
    john_id = john["identify"]["profile"]["id"]
    whatsapp = await api.ok(
        CAPTURE,
        capture_input(
            "WHATSAPP",
            "14155552671",
            {"labels": ["b", "c"], "emailOptin": True, "whatsAppOptin": True, "gender": "m"},
            displayName="Johnny Doe",
        ),
    )
    record = whatsapp["captureProperties"]["profile"]
    assert (record["firstName"], record["lastName"]) == ("Johnny", "Doe")
    before = datetime.now(UTC)

    merged = await api.ok(IDENTIFY, identify_input("WHATSAPP", "14155552671", "john"))

    result = merged["identify"]
    assert result["outcome"] == "MERGED"
    assert result["mergedProfileId"] == record["id"]
    survivor = result["profile"]
    assert survivor["id"] == john_id
    assert survivor["userId"] == "john"
    assert survivor["firstName"] == "John"  # existing values are kept
    # First and last name are one group (one display name): John's first name stays, and
    # "Doe" is not set beside it, since it is the other half of another name.
    assert survivor["lastName"] is None
    assert survivor["properties"]["gender"] == "m"  # a missing single value is added
    assert survivor["properties"]["labels"] == ["a", "b", "c"]  # lists are unified
    assert survivor["emailOptin"] is True
    assert survivor["properties"]["whatsAppOptin"] is True
    assert survivor["phone"] == "+14155552671"
    assert survivor["country"] == "US"  # John had no location: the pair moves
    assert survivor["timezone"] is None
    assert survivor["lastChannel"] == "WHATSAPP"
    assert _at(survivor["lastSession"]) >= before - timedelta(seconds=1)
    assert sorted((i["type"], i["value"]) for i in survivor["identities"]) == [
        ("API", "crm-john"),
        ("PHONE", "+14155552671"),
        ("USER_ID", "john"),
    ]
    assert [(m["sourceId"], m["trigger"]) for m in survivor["mergeHistory"]] == [
        (record["id"], "IDENTIFY")
    ]
    redirected = await _profile(api, record["id"])  # the unidentified record is gone
    assert redirected["id"] == john_id
