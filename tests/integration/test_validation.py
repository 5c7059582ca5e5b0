"""Bad input of every kind: each refused with its code and field, and nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.integration.queries import (
    CAPTURE,
    DEFINE,
    IDENTIFY,
    UPDATE,
    capture_input,
    identify_input,
)

TYPES = ["STRING", "NUMBER", "TIME", "DATE", "DATETIME", "LIST", "BOOLEAN", "PHONE", "URL", "EMAIL"]

# For each type: a valid value with its normalised form, and values it must refuse.
CASES: dict[str, tuple[Any, Any, list[Any]]] = {
    "STRING": ("hello", "hello", [42, True, ["a"], {"a": 1}, "x" * 1001]),
    "NUMBER": (42.5, 42.5, ["42", True, [1], {"n": 1}, 1e16]),
    "TIME": ("09:30:00", "09:30:00", ["9:30", "25:00:00", "09:30", 930, "noon"]),
    "DATE": (
        "1990-04-21",
        "1990-04-21",
        ["1990-13-01", "21/04/1990", "1990-04-21T00:00", 19900421],
    ),
    "DATETIME": (
        "2024-05-01 10:00:00",
        "2024-05-01T10:00:00Z",
        ["2024-05-01", "yesterday", 1714557600, "2024-05-01 25:00:00"],
    ),
    "LIST": (["a", "b", "a"], ["a", "b"], ["a", [1, 2], [""], ["x" * 257], ["a"] * 101]),
    "BOOLEAN": (True, True, ["true", 1, 0, None]),
    "PHONE": (
        "+1 415 555 2671",
        "+14155552671",
        ["4155552671", "+1 555", "+999123456789", 14155552671],
    ),
    "URL": (
        "https://example.com/a?b=c",
        "https://example.com/a?b=c",
        ["example.com", "ftp://example.com", "javascript:alert(1)", "https://", "http://a b.com"],
    ),
    "EMAIL": (
        "Asha@Example.com",
        "asha@example.com",
        ["asha", "asha@", "@example.com", "a@b@c.com", 7],
    ),
}


@pytest.fixture
async def profile_id(api: Api) -> str:
    for type_ in TYPES:
        await api.ok(DEFINE, {"input": {"name": f"my{type_.title()}", "type": type_}})
    data = await api.ok(CAPTURE, capture_input("API", "crm-1"))
    profile_id: str = data["captureProperties"]["profile"]["id"]
    return profile_id


@pytest.mark.parametrize("type_", TYPES)
async def test_each_type_accepts_and_normalises_a_valid_value(
    api: Api, profile_id: str, type_: str
) -> None:
    name = f"my{type_.title()}"
    valid, normalised, _ = CASES[type_]
    data = await api.ok(UPDATE, {"input": {"id": profile_id, "set": {name: valid}}})
    assert data["updateProfile"]["profile"]["properties"][name] == normalised


@pytest.mark.parametrize("type_", TYPES)
async def test_each_type_refuses_wrong_values_and_writes_nothing(
    api: Api, profile_id: str, type_: str
) -> None:
    name = f"my{type_.title()}"
    for bad in CASES[type_][2]:
        error = await api.refused(
            "VALIDATION_FAILED", UPDATE, {"input": {"id": profile_id, "set": {name: bad}}}
        )
        assert error["extensions"]["field"] == f"set.{name}"
        assert name in error["message"]


async def test_capture_refuses_a_wrong_type_naming_the_property(api: Api) -> None:
    error = await api.refused(
        "VALIDATION_FAILED", CAPTURE, capture_input("WEB", "v1", {"emailOptin": "yes"})
    )
    assert error["extensions"]["field"] == "properties.emailOptin"
    assert "emailOptin" in error["message"]
    assert "true or false" in error["message"]


async def test_a_refused_capture_of_a_new_sender_creates_no_profile(api: Api) -> None:
    await api.refused(
        "VALIDATION_FAILED",
        CAPTURE,
        capture_input("WEB", "v1", {"firstName": "Asha", "phone": "12"}),
    )


async def test_an_undefined_property_is_refused(api: Api) -> None:
    error = await api.refused(
        "PROPERTY_NOT_DEFINED", CAPTURE, capture_input("WEB", "v1", {"favouriteColour": "red"})
    )
    assert error["extensions"]["field"] == "properties.favouriteColour"
    assert "defineProperty" in error["message"]


async def test_an_invalid_property_name_is_refused(api: Api) -> None:
    for name in ["a.b", "$set", "1abc", "with space", "x" * 65]:
        await api.refused("VALIDATION_FAILED", CAPTURE, capture_input("WEB", "v1", {name: "x"}))


async def test_properties_must_be_an_object(api: Api) -> None:
    for bad in [["a"], "text", 3]:
        error = await api.refused(
            "VALIDATION_FAILED",
            CAPTURE,
            {"input": {"channel": "WEB", "senderId": "v", "properties": bad}},
        )
        assert error["extensions"]["field"] == "properties"


async def test_an_oversized_property_map_is_refused(api: Api) -> None:
    await api.ok(DEFINE, {"input": {"name": "note", "type": "STRING"}})
    many = {f"p{i}": "x" for i in range(101)}
    await api.refused("VALIDATION_FAILED", CAPTURE, capture_input("WEB", "v1", many))
    await api.refused(
        "VALIDATION_FAILED", CAPTURE, capture_input("WEB", "v1", {"note": "x" * 100_000})
    )


async def test_first_and_last_names_refuse_digits_and_symbols(api: Api, profile_id: str) -> None:
    for bad in ["R2D2", "Anna!", "<b>", " "]:
        await api.refused(
            "VALIDATION_FAILED", UPDATE, {"input": {"id": profile_id, "set": {"firstName": bad}}}
        )
    data = await api.ok(
        UPDATE,
        {"input": {"id": profile_id, "set": {"firstName": "Zoë", "lastName": "O'Neil-Smith"}}},
    )
    assert data["updateProfile"]["profile"]["lastName"] == "O'Neil-Smith"


async def test_system_properties_keep_their_rules(api: Api, profile_id: str) -> None:
    for name, bad in [
        ("country", "India"),
        ("timezone", "Mars/Olympus"),
        ("latitude", 91),
        ("ip", "999.1.1.1"),
        ("createdAt", "2024-01-01 00:00:00"),
        ("lastSession", "soon"),
    ]:
        await api.refused(
            "VALIDATION_FAILED", UPDATE, {"input": {"id": profile_id, "set": {name: bad}}}
        )


async def test_a_user_id_change_is_refused(api: Api) -> None:
    data = await api.ok(IDENTIFY, identify_input("WEB", "v1", "user-1"))
    profile_id = data["identify"]["profile"]["id"]
    error = await api.refused(
        "USER_ID_IMMUTABLE", UPDATE, {"input": {"id": profile_id, "set": {"userId": "user-2"}}}
    )
    assert error["extensions"]["field"] == "set.userId"
    await api.refused(
        "USER_ID_IMMUTABLE", UPDATE, {"input": {"id": profile_id, "unset": ["userId"]}}
    )
    same = await api.ok(UPDATE, {"input": {"id": profile_id, "set": {"userId": "user-1"}}})
    assert same["updateProfile"]["profile"]["userId"] == "user-1"


async def test_capture_cannot_write_a_user_id(api: Api) -> None:
    await api.refused("USER_ID_IMMUTABLE", CAPTURE, capture_input("WEB", "v1", {"userId": "u"}))


@pytest.mark.parametrize(
    "value",
    [
        "null",
        "undefined",
        "anonymous",
        "None",
        "NaN",
        "0",
        "-1",
        "[object Object]",
        "0000",
        "   ",
        "",
    ],
)
async def test_blocked_identifier_values_never_bind(api: Api, value: str) -> None:
    error = await api.refused("BLOCKED_IDENTIFIER", CAPTURE, capture_input("WEB", value))
    assert error["extensions"]["field"] == "senderId"
    error = await api.refused("BLOCKED_IDENTIFIER", IDENTIFY, identify_input("WEB", "v1", value))
    assert error["extensions"]["field"] == "userId"


async def test_a_blocked_user_id_does_not_touch_an_existing_profile(api: Api) -> None:
    await api.ok(CAPTURE, capture_input("WEB", "v1", {"firstName": "Asha"}))
    await api.refused("BLOCKED_IDENTIFIER", IDENTIFY, identify_input("WEB", "v1", "undefined"))


async def test_an_all_zero_phone_is_blocked(api: Api) -> None:
    await api.refused("BLOCKED_IDENTIFIER", CAPTURE, capture_input("WHATSAPP", "+000000000"))


async def test_an_invalid_phone_sender_is_refused(api: Api) -> None:
    error = await api.refused("VALIDATION_FAILED", CAPTURE, capture_input("WHATSAPP", "12345"))
    assert error["extensions"]["field"] == "senderId"


async def test_an_invalid_email_sender_is_refused(api: Api) -> None:
    await api.refused("VALIDATION_FAILED", CAPTURE, capture_input("EMAIL", "not-an-email"))


async def test_an_oversized_identifier_is_refused(api: Api) -> None:
    await api.refused("VALIDATION_FAILED", CAPTURE, capture_input("WEB", "v" * 257))
    await api.refused("VALIDATION_FAILED", IDENTIFY, identify_input("WEB", "v1", "u" * 257))


async def test_a_bad_context_ip_is_refused(api: Api) -> None:
    error = await api.refused(
        "VALIDATION_FAILED", CAPTURE, capture_input("WEB", "v1", {}, ip="not-an-ip")
    )
    assert error["extensions"]["field"] == "context.ip"


async def test_wrong_graphql_types_are_refused_before_anything_runs(api: Api) -> None:
    await api.refused("VALIDATION_FAILED", CAPTURE, {"input": {"channel": "FAX", "senderId": "v1"}})
    await api.refused("VALIDATION_FAILED", CAPTURE, {"input": {"channel": "WEB", "senderId": 12}})
    await api.refused("VALIDATION_FAILED", CAPTURE, {"input": {"channel": "WEB"}})
    await api.refused(
        "VALIDATION_FAILED", CAPTURE, {"input": {"channel": "WEB", "senderId": "v", "extra": 1}}
    )


async def test_update_of_an_unknown_or_foreign_profile_is_not_found(api: Api) -> None:
    data = await api.ok(CAPTURE, capture_input("WEB", "v1"), tenant="globex")
    foreign = data["captureProperties"]["profile"]["id"]
    for profile_id in [foreign, "0" * 32, "x"]:
        error = await api.refused(
            "NOT_FOUND", UPDATE, {"input": {"id": profile_id, "set": {"gender": "f"}}}
        )
        assert error["extensions"]["field"] == "id"


async def test_update_sets_unsets_and_edits_tags_atomically(api: Api, profile_id: str) -> None:
    await api.ok(UPDATE, {"input": {"id": profile_id, "set": {"gender": "f", "tags": ["a", "b"]}}})
    data = await api.ok(
        UPDATE,
        {
            "input": {
                "id": profile_id,
                "unset": ["gender"],
                "addTags": ["c", "a"],
                "removeTags": ["b"],
            }
        },
    )
    profile = data["updateProfile"]["profile"]
    assert profile["tags"] == ["a", "c"]
    assert "gender" not in profile["properties"]


async def test_update_refuses_unset_of_undefined_or_read_only_properties(
    api: Api, profile_id: str
) -> None:
    await api.refused(
        "PROPERTY_NOT_DEFINED", UPDATE, {"input": {"id": profile_id, "unset": ["nope"]}}
    )
    await api.refused(
        "VALIDATION_FAILED", UPDATE, {"input": {"id": profile_id, "unset": ["createdAt"]}}
    )
    await api.refused(
        "VALIDATION_FAILED", UPDATE, {"input": {"id": profile_id, "addTags": ["x" * 300]}}
    )
    await api.refused(
        "VALIDATION_FAILED",
        UPDATE,
        {"input": {"id": profile_id, "set": {"tags": ["a"]}, "addTags": ["b"]}},
    )


async def test_a_definition_cannot_change_type_and_a_repeat_is_harmless(api: Api) -> None:
    first = await api.ok(
        DEFINE, {"input": {"name": "plan", "type": "STRING", "description": "Plan"}}
    )
    again = await api.ok(DEFINE, {"input": {"name": "plan", "type": "STRING"}})
    assert (
        again["defineProperty"]["propertyDefinition"]["type"]
        == first["defineProperty"]["propertyDefinition"]["type"]
        == "STRING"
    )
    error = await api.refused(
        "PROPERTY_TYPE_IMMUTABLE", DEFINE, {"input": {"name": "plan", "type": "NUMBER"}}
    )
    assert error["extensions"]["field"] == "type"
    await api.refused(
        "PROPERTY_TYPE_IMMUTABLE", DEFINE, {"input": {"name": "email", "type": "STRING"}}
    )
    await api.refused(
        "VALIDATION_FAILED", DEFINE, {"input": {"name": "bad name", "type": "STRING"}}
    )
    await api.refused(
        "VALIDATION_FAILED",
        DEFINE,
        {"input": {"name": "long", "type": "STRING", "description": "d" * 501}},
    )


async def test_property_definitions_list_system_and_custom_properties(api: Api) -> None:
    await api.ok(DEFINE, {"input": {"name": "plan", "type": "STRING"}})
    data = await api.ok("{ propertyDefinitions { name type system } }")
    found = {d["name"]: d for d in data["propertyDefinitions"]}
    assert found["email"] == {"name": "email", "type": "EMAIL", "system": True}
    assert found["lastSession"]["type"] == "DATETIME"
    assert found["plan"] == {"name": "plan", "type": "STRING", "system": False}
    assert len([d for d in found.values() if d["system"]]) == 22
