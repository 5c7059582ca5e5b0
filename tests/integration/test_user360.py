"""What User 360 users expect from identification, auto-capture and their data (the vendor's
help pages): one userId per person however it is typed, every sender's own identifier on its
profile, auto-captured values that never contradict given ones, and exports that are safe to
open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from domain.access import check_tenant
from domain.errors import ValidationFailed
from server.config import Settings
from server.geo import GeoIP
from tests.conftest import Api, CommandCounter, running
from tests.integration.queries import (
    BY_USER_ID,
    CAPTURE,
    DEFINE,
    IDENTIFY,
    UPDATE,
    capture_input,
    identify_input,
    profile_gid,
)

INDIAN_IP = "49.36.0.1"

WHERE = """
query Where($where: ProfileFilter) {
  profiles(where: $where, first: 10) { edges { node { id userId } } }
}
"""


async def capture(
    api: Api, channel: str, sender: str, props: dict[str, Any] | None = None, **context: Any
) -> dict[str, Any]:
    data = await api.ok(CAPTURE, capture_input(channel, sender, props or {}, **context))
    profile: dict[str, Any] = data["captureProperties"]["profile"]
    return profile


async def identify(api: Api, channel: str, sender: str, user_id: str) -> dict[str, Any]:
    data = await api.ok(IDENTIFY, identify_input(channel, sender, user_id))
    result: dict[str, Any] = data["identify"]
    return result


async def by_user_id(api: Api, user_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (await api.ok(BY_USER_ID, {"userId": user_id}))[
        "profileByUserId"
    ]
    return found


async def active_ids(api: Api) -> set[str]:
    found = api.db["profiles"].find({"state": None}, {"_id": 1})
    return {profile_gid(p["_id"]) async for p in found}


# ----- 1. an email userId is an email --------------------------------------------------------


@pytest.mark.parametrize("first", ["EMAIL sender first", "web identify first"])
async def test_an_email_user_id_and_an_email_sender_are_one_person_in_either_order(
    api: Api, first: str
) -> None:
    if first == "EMAIL sender first":
        email = await capture(api, "EMAIL", "Kim.X@Example.com")
        await capture(api, "WEB", "v1", {"firstName": "Kim"})
        result = await identify(api, "WEB", "v1", "Kim.X@Example.com")
        assert (result["outcome"], result["profile"]["id"]) == ("MERGED", email["id"])
    else:
        await capture(api, "WEB", "v1", {"firstName": "Kim"})
        result = await identify(api, "WEB", "v1", "Kim.X@Example.com")
        assert result["outcome"] == "IDENTIFIED"
        email = await capture(api, "EMAIL", "Kim.X@Example.com")
        assert email["id"] == result["profile"]["id"]
    [survivor] = await active_ids(api)
    found = await by_user_id(api, " KIM.X@example.COM ")
    assert found is not None
    assert (found["id"], found["userId"], found["firstName"]) == (
        survivor,
        "kim.x@example.com",
        "Kim",
    )
    assert sorted(i["type"] for i in found["identities"]) == ["EMAIL", "USER_ID", "VISITOR"]


@pytest.mark.parametrize(
    ("typed", "stored", "looked_up"),
    [
        (" Kim.X@Example.com ", "kim.x@example.com", "kim.x@EXAMPLE.com"),
        ("Zoe\u0308-42", "Zo\u00eb-42", "Zoe\u0308-42"),  # combining diaeresis: NFC
        ("Zo\u00eb-42", "Zo\u00eb-42", "Zoe\u0308-42"),
        ("crm-Kim-42", "crm-Kim-42", "crm-Kim-42"),  # not an email: case is kept
    ],
)
async def test_a_user_id_is_stored_and_looked_up_in_one_normal_form(
    api: Api, typed: str, stored: str, looked_up: str
) -> None:
    result = await identify(api, "API", "crm-1", typed)
    assert result["profile"]["userId"] == stored
    found = await by_user_id(api, looked_up)
    assert found is not None
    assert found["id"] == result["profile"]["id"]
    again = await identify(api, "WEB", "v1", looked_up)
    assert again["profile"]["id"] == result["profile"]["id"]


@pytest.mark.parametrize(
    "user_id",
    [
        "asha@example.com\u200b",  # zero-width space
        "\u200basha@example.com",
        "as\u200cha",  # zero-width non-joiner
        "as\u200dha",  # zero-width joiner
        "asha\u2060x",  # word joiner
        "\ufeffasha",  # byte order mark
        "as\u00adha",  # soft hyphen (Cf)
        "asha\u202e",  # right-to-left override (Cf)
        "as\nha",  # a control character inside
        "as\x7fha",
    ],
)
async def test_a_user_id_with_invisible_or_control_characters_is_refused(
    api: Api, user_id: str
) -> None:
    await capture(api, "WEB", "v1")
    error = await api.refused("VALIDATION_FAILED", IDENTIFY, identify_input("WEB", "v1", user_id))
    assert error["extensions"]["field"] == "userId"


async def test_a_lookup_or_a_filter_uses_the_normal_form_of_a_user_id(api: Api) -> None:
    identified = await identify(api, "WEB", "v1", "asha@example.com")
    profile_id = identified["profile"]["id"]
    found = await by_user_id(api, "Asha@Example.com")
    assert found is not None
    assert found["id"] == profile_id
    assert await by_user_id(api, "asha@example.com\u200b") is None  # no userId can hold it
    assert await by_user_id(api, "null") is None
    for op, value in (("EQ", "ASHA@example.com"), ("IN", ["Asha@Example.com "])):
        where = {"property": {"name": "userId", "op": op, "value": value}}
        edges = (await api.ok(WHERE, {"where": where}))["profiles"]["edges"]
        assert [e["node"]["id"] for e in edges] == [profile_id], (op, value)


async def test_writing_the_profiles_own_user_id_in_another_spelling_changes_nothing(
    api: Api,
) -> None:
    identified = await identify(api, "WEB", "v1", "Kim@Example.com")
    same = {"id": identified["profile"]["id"], "set": {"userId": "KIM@example.com"}}
    data = await api.ok(UPDATE, {"input": same})
    assert data["updateProfile"]["profile"]["userId"] == "kim@example.com"


# ----- 3. every sender's own identifier is on its profile ------------------------------------


async def test_an_email_sender_has_its_email(api: Api) -> None:
    profile = await capture(api, "EMAIL", "Kim@Example.com", {"firstName": "Kim"})
    assert (profile["email"], profile["firstName"]) == ("kim@example.com", "Kim")
    assert profile["contactCard"]["complete"] is True


@pytest.mark.parametrize("channel", ["SMS", "VOICE"])
async def test_sms_and_voice_senders_have_their_phone_and_country_but_no_names(
    api: Api, channel: str
) -> None:
    profile = await capture(api, channel, "14155552671", {}, displayName="Ann Lee")
    assert (profile["phone"], profile["country"]) == ("+14155552671", "US")
    assert (profile["firstName"], profile["lastName"]) == (None, None)


# ----- 5. auto-captured values fill as a group or not at all ---------------------------------


async def test_an_explicit_country_keeps_the_timezone_of_an_ip_out(api: Api) -> None:
    await capture(api, "WEB", "v1", {"country": "FR"})
    profile = await capture(api, "WEB", "v1", {}, ip=INDIAN_IP)
    assert (profile["country"], profile["timezone"]) == ("FR", None)


async def test_an_explicit_timezone_keeps_the_country_of_an_ip_out_of_the_same_capture(
    api: Api,
) -> None:
    profile = await capture(api, "WEB", "v1", {"timezone": "Europe/Paris"}, ip=INDIAN_IP)
    assert (profile["country"], profile["timezone"]) == (None, "Europe/Paris")
    assert profile["properties"]["ip"] == INDIAN_IP


async def test_an_explicit_first_name_keeps_a_display_names_last_name_out(api: Api) -> None:
    await capture(api, "WHATSAPP", "919876543210", {"firstName": "Asha"})
    profile = await capture(api, "WHATSAPP", "919876543210", {}, displayName="Priya Nair")
    assert (profile["firstName"], profile["lastName"]) == ("Asha", None)


def _mumbai_database(path: Path) -> Path:
    writer = MMDBWriter(
        ip_version=6, database_type="GeoLite2-City", languages=["en"], ipv4_compatible=True
    )
    writer.insert_network(
        IPSet(["49.36.0.0/24"]),
        {
            "country": {"iso_code": "IN", "names": {"en": "India"}},
            "city": {"names": {"en": "Mumbai"}},
            "location": {"latitude": 19.076, "longitude": 72.8777, "time_zone": "Asia/Kolkata"},
        },
    )
    writer.to_db_file(str(path))
    return path


@pytest.fixture
async def city_api(
    settings: Settings, commands: CommandCounter, tmp_path: Path
) -> AsyncIterator[Api]:
    geo = GeoIP(_mumbai_database(tmp_path / "city.mmdb"))
    async with running(settings, commands, geo) as started:
        yield started
    geo.close()


async def test_a_given_city_keeps_the_coordinates_of_another_city_out(city_api: Api) -> None:
    await capture(city_api, "WEB", "v1", {"city": "Delhi"})
    profile = await capture(city_api, "WEB", "v1", {}, ip=INDIAN_IP)
    values = profile["properties"]
    assert values["city"] == "Delhi"
    assert "latitude" not in values
    assert "longitude" not in values
    assert (profile["country"], profile["timezone"]) == ("IN", "Asia/Kolkata")  # its own group
    elsewhere = await capture(city_api, "WEB", "v2", {}, ip=INDIAN_IP)
    assert elsewhere["properties"]["city"] == "Mumbai"
    assert elsewhere["properties"]["latitude"] == pytest.approx(19.076)


async def _merged(
    api: Api, survivor: dict[str, Any], source: dict[str, Any], n: int = 1
) -> dict[str, Any]:
    """An identified profile with `survivor`'s values, and an anonymous one with `source`'s
    that identifies as the same person."""
    await capture(api, "API", f"crm-{n}", survivor)
    await identify(api, "API", f"crm-{n}", f"user-{n}")
    await capture(api, "WEB", f"v{n}", source)
    result = await identify(api, "WEB", f"v{n}", f"user-{n}")
    assert result["outcome"] == "MERGED"
    profile: dict[str, Any] = result["profile"]
    return profile


async def test_a_merge_moves_first_and_last_names_as_a_pair(api: Api) -> None:
    kept = await _merged(api, {"firstName": "John"}, {"firstName": "Johnny", "lastName": "Doe"})
    assert (kept["firstName"], kept["lastName"]) == ("John", None)
    filled = await _merged(api, {"gender": "m"}, {"lastName": "Doe"}, n=2)
    assert (filled["firstName"], filled["lastName"]) == (None, "Doe")


async def test_a_merge_moves_a_city_with_its_coordinates(api: Api) -> None:
    mumbai = {"city": "Mumbai", "latitude": 19.076, "longitude": 72.8777}
    kept = (await _merged(api, {"city": "Delhi"}, mumbai))["properties"]
    assert (kept["city"], "latitude" in kept, "longitude" in kept) == ("Delhi", False, False)
    filled = (await _merged(api, {"gender": "f"}, mumbai, n=2))["properties"]
    assert (filled["city"], filled["latitude"], filled["longitude"]) == ("Mumbai", 19.076, 72.8777)


# ----- 7. a userId may contain '|' -----------------------------------------------------------


async def test_an_email_senders_user_id_with_a_bar_identifies_on_every_channel(api: Api) -> None:
    email = await capture(api, "EMAIL", "x|y@example.com")
    assert email["userId"] == "x|y@example.com"
    await capture(api, "WEB", "v1", {"firstName": "Xy"})
    result = await identify(api, "WEB", "v1", "X|Y@example.com")
    assert (result["outcome"], result["profile"]["id"]) == ("MERGED", email["id"])
    # Storage keys end with the value, so a bar in a value (or in a sender) is just a character.
    other = await identify(api, "API", "crm|7", "acme|USER_ID|u")
    assert other["profile"]["userId"] == "acme|USER_ID|u"
    found = await by_user_id(api, "acme|USER_ID|u")
    assert found is not None
    assert sorted(i["value"] for i in found["identities"]) == ["acme|USER_ID|u", "crm|7"]


# ----- 8. names, codes and tenants match as a whole, not up to a trailing newline ------------


async def test_a_country_with_a_trailing_newline_is_refused(api: Api) -> None:
    error = await api.refused(
        "VALIDATION_FAILED", CAPTURE, capture_input("WEB", "v1", {"country": "IN\n"})
    )
    assert error["extensions"]["field"] == "properties.country"


@pytest.mark.parametrize("tenant", ["acme\n", "acme\n\n", "\nacme"])
def test_a_tenant_with_a_newline_is_refused(tenant: str) -> None:
    with pytest.raises(ValidationFailed):
        check_tenant(tenant)


async def test_a_bootstrap_tenant_that_is_no_tenant_is_refused_at_start_up(
    settings: Settings, commands: CommandCounter, geo: GeoIP
) -> None:
    bad = replace(settings, bootstrap_tenant="acme\n", bootstrap_api_key="p360_" + "k" * 32)
    with pytest.raises(ValidationFailed):
        async with running(bad, commands, geo):
            pass


# ----- 10. a CSV export is safe to open in a spreadsheet -------------------------------------


FORMULAS = [
    '=HYPERLINK("http://evil.example","click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


async def test_a_csv_export_neutralises_formulas_and_keeps_numbers_exact(api: Api) -> None:
    for name, type_ in (("note", "STRING"), ("score", "NUMBER")):
        await api.ok(DEFINE, {"input": {"name": name, "type": type_}})
    for i, text in enumerate(FORMULAS):
        await capture(api, "API", f"crm-{i}", {"note": text, "score": -5 - i / 2})
    await capture(api, "WHATSAPP", "919876543210", {"note": "plain", "score": -7})
    await identify(api, "API", "crm-0", "=2+5")
    headers = {"Authorization": f"Bearer {await api.key()}"}
    columns = "properties=note,score,phone,tags"

    response = await api.http.get(f"/export?format=csv&{columns}", headers=headers)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    notes = {r["note"]: r for r in rows}
    assert set(notes) == {"'" + text for text in FORMULAS} | {"plain"}
    assert {r["score"] for r in rows} == {str(-5 - i / 2) for i in range(6)} | {"-7"}
    assert notes["plain"]["phone"] == "+919876543210"  # a number, not a formula: kept
    assert notes["'" + FORMULAS[0]]["userId"] == "'=2+5"

    response = await api.http.get(f"/export?format=ndjson&{columns}", headers=headers)
    records = [json.loads(line) for line in response.text.splitlines()]
    assert sorted(r["properties"]["note"] for r in records) == sorted([*FORMULAS, "plain"])
    assert "=2+5" in {r["userId"] for r in records}
    assert {r["properties"]["score"] for r in records} == {-5 - i / 2 for i in range(6)} | {-7}
