"""captureProperties: first contact, identity keys, auto-capture (SPEC §5)."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.integration.queries import BY_IDENTITY, CAPTURE, PROFILE, capture_input

IN_MOBILE = "+919876543210"
US_MOBILE = "+14155552671"


async def capture(api: Api, *args: Any, **kw: Any) -> dict[str, Any]:
    data = await api.ok(CAPTURE, capture_input(*args, **kw))
    result: dict[str, Any] = data["captureProperties"]
    return result


async def test_first_capture_creates_an_unidentified_profile_bound_to_the_sender(api: Api) -> None:
    result = await capture(api, "WEB", "visitor-1", {"firstName": "Asha"})
    profile = result["profile"]
    assert result["created"] is True
    assert profile["identified"] is False
    assert profile["userId"] is None
    assert profile["firstName"] == "Asha"
    assert profile["identities"] == [{"type": "VISITOR", "value": "visitor-1", "channels": ["WEB"]}]


async def test_a_known_sender_reaches_the_same_profile_and_updates_it(api: Api) -> None:
    first = await capture(api, "WEB", "visitor-1", {"firstName": "Asha"})
    second = await capture(api, "WEB", "visitor-1", {"firstName": "Asha-Rani", "gender": "f"})
    assert second["created"] is False
    assert second["profile"]["id"] == first["profile"]["id"]
    assert second["profile"]["firstName"] == "Asha-Rani"
    assert second["profile"]["properties"]["gender"] == "f"


async def test_whatsapp_and_sms_from_one_number_reach_one_profile(api: Api) -> None:
    whatsapp = await capture(api, "WHATSAPP", "919876543210")
    sms = await capture(api, "SMS", "+91 98765 43210")
    assert sms["created"] is False
    assert sms["profile"]["id"] == whatsapp["profile"]["id"]
    assert sms["profile"]["identities"] == [
        {"type": "PHONE", "value": IN_MOBILE, "channels": ["WHATSAPP", "SMS"]}
    ]


async def test_an_email_sender_and_a_whatsapp_sender_never_merge_by_themselves(api: Api) -> None:
    email = await capture(api, "EMAIL", "asha@example.com", {"phone": IN_MOBILE})
    whatsapp = await capture(api, "WHATSAPP", IN_MOBILE, {"email": "asha@example.com"})
    assert email["profile"]["id"] != whatsapp["profile"]["id"]


async def test_an_email_sender_is_identified_by_its_address(api: Api) -> None:
    result = await capture(api, "EMAIL", "Asha.Rao@Example.COM")
    profile = result["profile"]
    assert profile["userId"] == "asha.rao@example.com"
    assert profile["identified"] is True
    kinds = sorted(i["type"] for i in profile["identities"])
    assert kinds == ["EMAIL", "USER_ID"]
    again = await capture(api, "EMAIL", "asha.rao@example.com", {"firstName": "Asha"})
    assert again["profile"]["id"] == profile["id"]


async def test_web_capture_fills_country_and_timezone_from_the_ip(api: Api) -> None:
    result = await capture(api, "WEB", "visitor-1", {}, ip="49.36.0.1")
    profile = result["profile"]
    assert profile["country"] == "IN"
    assert profile["timezone"] == "Asia/Kolkata"
    assert profile["properties"]["ip"] == "49.36.0.1"


async def test_the_browser_timezone_wins_over_the_country_zone(api: Api) -> None:
    result = await capture(api, "WEB", "visitor-1", {}, ip="8.8.8.8", timezone="America/Chicago")
    assert result["profile"]["country"] == "US"
    assert result["profile"]["timezone"] == "America/Chicago"


async def test_auto_captured_values_never_overwrite_present_ones(api: Api) -> None:
    await capture(api, "WEB", "visitor-1", {"country": "GB", "timezone": "Europe/London"})
    result = await capture(api, "WEB", "visitor-1", {}, ip="49.36.0.1")
    assert result["profile"]["country"] == "GB"
    assert result["profile"]["timezone"] == "Europe/London"


async def test_explicit_values_win_over_auto_captured_ones_in_the_same_call(api: Api) -> None:
    result = await capture(api, "WEB", "visitor-1", {"country": "GB"}, ip="49.36.0.1")
    assert result["profile"]["country"] == "GB"


async def test_a_private_ip_fills_nothing(api: Api) -> None:
    result = await capture(api, "WEB", "visitor-1", {}, ip="10.1.2.3")
    assert result["profile"]["country"] is None
    assert result["profile"]["timezone"] is None


async def test_whatsapp_capture_fills_phone_country_and_names(api: Api) -> None:
    result = await capture(api, "WHATSAPP", "14155552671", {}, displayName="Mary Jane Watson")
    profile = result["profile"]
    assert profile["phone"] == US_MOBILE
    assert profile["country"] == "US"
    assert profile["firstName"] == "Mary"
    assert profile["lastName"] == "Jane Watson"
    assert profile["contactCard"]["complete"] is True


async def test_a_display_name_with_digits_or_symbols_is_skipped_silently(api: Api) -> None:
    result = await capture(api, "WHATSAPP", "14155552671", {}, displayName="M@ry 2000")
    profile = result["profile"]
    assert profile["firstName"] is None
    assert profile["lastName"] is None
    assert profile["phone"] == US_MOBILE


async def test_names_in_any_script_are_accepted(api: Api) -> None:
    result = await capture(api, "WHATSAPP", "919876543210", {}, displayName="प्रिया शर्मा")
    assert result["profile"]["firstName"] == "प्रिया"
    assert result["profile"]["lastName"] == "शर्मा"


async def test_every_capture_updates_last_channel_and_last_session(api: Api) -> None:
    first = await capture(api, "WHATSAPP", IN_MOBILE)
    second = await capture(api, "SMS", IN_MOBILE)
    assert first["profile"]["lastChannel"] == "WHATSAPP"
    assert second["profile"]["lastChannel"] == "SMS"
    assert second["profile"]["lastSession"] >= first["profile"]["lastSession"]


async def test_profile_by_identity_finds_the_sender_with_any_phone_channel(api: Api) -> None:
    created = await capture(api, "WHATSAPP", IN_MOBILE)
    data = await api.ok(BY_IDENTITY, {"channel": "VOICE", "senderId": "+91-98765-43210"})
    assert data["profileByIdentity"]["id"] == created["profile"]["id"]
    data = await api.ok(BY_IDENTITY, {"channel": "WEB", "senderId": "nobody"})
    assert data["profileByIdentity"] is None


async def test_profile_by_id_reads_what_capture_wrote(api: Api) -> None:
    created = await capture(api, "API", "crm-42", {"firstName": "Ravi"})
    data = await api.ok(PROFILE, {"id": created["profile"]["id"]})
    assert data["profile"]["firstName"] == "Ravi"
    assert data["profile"]["mergedInto"] is None
