"""identify: the five outcomes of SPEC §6 and the merge rules with the seed example's values."""

from __future__ import annotations

from typing import Any

from domain.access import Role
from tests.conftest import Api
from tests.integration.queries import (
    BY_IDENTITY,
    BY_USER_ID,
    CAPTURE,
    DEFINE,
    IDENTIFY,
    PROFILE,
    PROFILES,
    capture_input,
    identify_input,
)


async def capture(
    api: Api, channel: str, sender: str, props: dict[str, Any] | None = None, **context: Any
) -> dict[str, Any]:
    data = await api.ok(CAPTURE, capture_input(channel, sender, props, **context))
    profile: dict[str, Any] = data["captureProperties"]["profile"]
    return profile


async def identify(
    api: Api,
    channel: str,
    sender: str,
    user_id: str,
    props: dict[str, Any] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    data = await api.ok(IDENTIFY, identify_input(channel, sender, user_id, props), **kw)
    result: dict[str, Any] = data["identify"]
    return result


async def by_identity(api: Api, channel: str, sender: str) -> dict[str, Any] | None:
    data = await api.ok(BY_IDENTITY, {"channel": channel, "senderId": sender})
    found: dict[str, Any] | None = data["profileByIdentity"]
    return found


async def all_profiles(api: Api) -> list[dict[str, Any]]:
    data = await api.ok(PROFILES, {"first": 100})
    return [edge["node"] for edge in data["profiles"]["edges"]]


# ----- the table -----------------------------------------------------------------------------


async def test_identified_when_no_profile_has_the_user_id(api: Api) -> None:
    anonymous = await capture(api, "WEB", "v1", {"firstName": "Asha"})
    result = await identify(api, "WEB", "v1", "user-1")
    assert result["outcome"] == "IDENTIFIED"
    assert result["mergedProfileId"] is None
    profile = result["profile"]
    assert profile["id"] == anonymous["id"]
    assert profile["userId"] == "user-1"
    assert profile["firstName"] == "Asha"  # nothing else changes
    assert profile["mergeHistory"] == []


async def test_merged_when_another_profile_has_the_user_id(api: Api) -> None:
    existing = await capture(api, "WHATSAPP", "919876543210")
    await identify(api, "WHATSAPP", "919876543210", "user-1")
    anonymous = await capture(api, "WEB", "v1", {"gender": "f"})

    result = await identify(api, "WEB", "v1", "user-1", role=Role.SDK)

    assert result["outcome"] == "MERGED"
    assert result["mergedProfileId"] == anonymous["id"]
    survivor = result["profile"]
    assert survivor["id"] == existing["id"]
    assert survivor["properties"]["gender"] == "f"
    assert (await by_identity(api, "WEB", "v1"))["id"] == existing["id"]  # type: ignore[index]
    [entry] = survivor["mergeHistory"]
    assert entry["sourceId"] == anonymous["id"]
    assert entry["trigger"] == "IDENTIFY"
    assert entry["actor"] == "sdk-key"
    assert survivor["mergedFrom"] == [anonymous["id"]]
    # The merged record is gone from listings, and its id redirects to the survivor.
    assert [p["id"] for p in await all_profiles(api)] == [existing["id"]]
    redirected = (await api.ok(PROFILE, {"id": anonymous["id"]}))["profile"]
    assert redirected["id"] == existing["id"]
    assert redirected["mergedInto"] == existing["id"]
    assert redirected["requestedId"] == anonymous["id"]


async def test_switched_when_the_profile_has_another_user_id_and_the_new_one_exists(
    api: Api,
) -> None:
    alice = await identify(api, "WEB", "alice-laptop", "alice")
    bob = await identify(api, "WEB", "shared-kiosk", "bob", {"firstName": "Bob"})
    assert bob["outcome"] == "IDENTIFIED"

    result = await identify(api, "WEB", "shared-kiosk", "alice")

    assert result["outcome"] == "SWITCHED"
    assert result["profile"]["id"] == alice["profile"]["id"]
    assert result["profile"]["firstName"] is None  # nothing merged
    assert result["profile"]["mergeHistory"] == []
    assert (await by_identity(api, "WEB", "shared-kiosk"))["id"] == alice["profile"]["id"]  # type: ignore[index]
    bob_now = (await api.ok(BY_USER_ID, {"userId": "bob"}))["profileByUserId"]
    assert bob_now["id"] == bob["profile"]["id"]
    assert bob_now["firstName"] == "Bob"


async def test_created_when_the_profile_has_another_user_id_and_the_new_one_is_unknown(
    api: Api,
) -> None:
    bob = await identify(api, "WEB", "kiosk", "bob", {"firstName": "Bob"})

    result = await identify(api, "WEB", "kiosk", "carol")

    assert result["outcome"] == "CREATED"
    created = result["profile"]
    assert created["id"] != bob["profile"]["id"]
    assert created["userId"] == "carol"
    assert created["firstName"] is None  # it starts empty
    assert (await by_identity(api, "WEB", "kiosk"))["id"] == created["id"]  # type: ignore[index]
    assert (await api.ok(BY_USER_ID, {"userId": "bob"}))["profileByUserId"]["firstName"] == "Bob"


async def test_unchanged_when_the_profile_already_has_the_user_id(api: Api) -> None:
    first = await identify(api, "WEB", "v1", "user-1")
    result = await identify(api, "WEB", "v1", "user-1")
    assert result["outcome"] == "UNCHANGED"
    assert result["profile"]["id"] == first["profile"]["id"]
    assert result["mergedProfileId"] is None


async def test_identify_applies_its_properties_to_the_resulting_profile(api: Api) -> None:
    result = await identify(api, "WEB", "v1", "user-1", {"firstName": "Asha", "emailOptin": True})
    assert result["profile"]["firstName"] == "Asha"
    assert result["profile"]["emailOptin"] is True


async def test_a_sender_never_seen_before_is_identified_on_first_contact(api: Api) -> None:
    result = await identify(api, "WHATSAPP", "14155552671", "user-9")
    assert result["outcome"] == "IDENTIFIED"
    kinds = sorted(i["type"] for i in result["profile"]["identities"])
    assert kinds == ["PHONE", "USER_ID"]


async def test_the_user_id_identity_moves_with_the_merge_of_all_identities(api: Api) -> None:
    await identify(api, "WHATSAPP", "14155552671", "user-1")
    await capture(api, "WEB", "v1")
    await capture(api, "WEB", "v1")
    result = await identify(api, "WEB", "v1", "user-1")
    values = sorted(i["value"] for i in result["profile"]["identities"])
    assert values == ["+14155552671", "user-1", "v1"]


# ----- merge rules (the seed example) --------------------------------------------------------


async def _existing_and_anonymous(
    api: Api, existing: dict[str, Any], anonymous: dict[str, Any]
) -> dict[str, Any]:
    await api.ok(DEFINE, {"input": {"name": "labels", "type": "LIST"}})
    await capture(api, "API", "crm-7", existing)  # API senders auto-capture nothing
    await identify(api, "API", "crm-7", "john@example.com")
    await capture(api, "WEB", "visitor-7", anonymous)
    result = await identify(api, "WEB", "visitor-7", "john@example.com")
    assert result["outcome"] == "MERGED"
    profile: dict[str, Any] = result["profile"]
    return profile


async def test_survivor_keeps_its_first_name_and_gains_the_missing_email_optin(api: Api) -> None:
    survivor = await _existing_and_anonymous(
        api,
        {"firstName": "John", "whatsAppOptin": True},
        {"firstName": "Johnny", "emailOptin": True, "whatsAppOptin": False},
    )
    assert survivor["firstName"] == "John"
    assert survivor["emailOptin"] is True
    assert survivor["properties"]["whatsAppOptin"] is True


async def test_list_properties_and_tags_are_unioned_in_order_without_duplicates(
    api: Api,
) -> None:
    survivor = await _existing_and_anonymous(
        api,
        {"labels": ["premium", "loyal"], "tags": ["vip"]},
        {"labels": ["loyal", "new", "$weird"], "tags": ["web", "vip"]},
    )
    assert survivor["properties"]["labels"] == ["premium", "loyal", "new", "$weird"]
    assert survivor["tags"] == ["vip", "web"]


async def test_the_location_pair_is_kept_when_the_survivor_has_a_country(api: Api) -> None:
    survivor = await _existing_and_anonymous(
        api, {"country": "IN"}, {"country": "US", "timezone": "America/New_York"}
    )
    assert survivor["country"] == "IN"
    assert survivor["timezone"] is None  # neither value moves when either exists


async def test_the_location_pair_is_kept_when_the_survivor_has_only_a_timezone(api: Api) -> None:
    survivor = await _existing_and_anonymous(
        api, {"timezone": "Asia/Kolkata"}, {"country": "US", "timezone": "America/New_York"}
    )
    assert survivor["country"] is None
    assert survivor["timezone"] == "Asia/Kolkata"


async def test_the_location_pair_is_filled_when_the_survivor_has_neither(api: Api) -> None:
    await capture(api, "WHATSAPP", "14155552671")  # auto-captures country US for this number
    identified = await identify(api, "API", "crm-1", "jane")
    assert identified["profile"]["country"] is None
    await capture(api, "WEB", "visitor-8", {}, ip="49.36.0.1")
    result = await identify(api, "WEB", "visitor-8", "jane")
    assert result["profile"]["country"] == "IN"
    assert result["profile"]["timezone"] == "Asia/Kolkata"


async def test_a_merge_into_a_profile_with_whatsapp_auto_capture_keeps_its_country(
    api: Api,
) -> None:
    await capture(api, "WHATSAPP", "919876543210")  # auto-captures country IN
    await identify(api, "WHATSAPP", "919876543210", "ravi")
    await capture(api, "WEB", "visitor-9", {}, timezone="Europe/Paris")
    result = await identify(api, "WEB", "visitor-9", "ravi")
    assert result["profile"]["country"] == "IN"
    assert result["profile"]["timezone"] is None
