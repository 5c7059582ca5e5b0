"""The storable-value rules: text, keys, numbers, JSON and datetimes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from domain.errors import ValidationFailed
from domain.values import (
    INT64_MAX,
    INT64_MIN,
    check_datetime,
    check_json,
    check_key,
    check_number,
    check_optional_text,
    check_text,
)

PLUS_14 = timezone(timedelta(hours=14))
MINUS_14 = timezone(timedelta(hours=-14))


def _refusal(call: Any, *args: Any, **kw: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        call(*args, **kw)
    return caught.value


@pytest.mark.parametrize("text", ["", "plain", "Zoë", "日本語", "emoji 🙂", "\U0010ffff", "\t\n"])
def test_text_of_any_script_and_astral_characters_is_kept(text: str) -> None:
    assert check_text(text, field="note") == text


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("\x00", "NUL"),
        ("trailing\x00", "NUL"),
        ("\ud800", "U+D800"),
        ("a\udbffb", "U+DBFF"),
        ("x\udc00", "U+DC00"),
        ("end\udfff", "U+DFFF"),
    ],
)
def test_text_refuses_nul_and_lone_surrogates_naming_the_field(text: str, rule: str) -> None:
    error = _refusal(check_text, text, field="properties.note")
    assert error.field == "properties.note"
    assert rule in error.message
    assert text not in error.message


def test_optional_text_allows_none_and_bounds_the_length() -> None:
    assert check_optional_text(None, field="subject", max_length=5) is None
    assert check_optional_text("hello", field="subject", max_length=5) == "hello"
    assert (
        "longer than 5"
        in _refusal(check_optional_text, "hello!", field="subject", max_length=5).message
    )
    assert _refusal(check_optional_text, "a\x00", field="subject", max_length=5).field == "subject"


@pytest.mark.parametrize("key", ["", "$set", "a.b", ".", 3, None, "\ud800", "k\x00"])
def test_a_key_must_be_storable_and_the_refusal_names_the_object(key: Any) -> None:
    error = _refusal(check_key, key, field="properties.meta")
    assert error.field == "properties.meta"
    assert "\ud800" not in error.message
    assert "\x00" not in error.message


def test_an_ordinary_key_is_kept() -> None:
    assert check_key("coupon_code-2", field="properties") == "coupon_code-2"
    assert check_key("a$b", field="properties") == "a$b"


@pytest.mark.parametrize("value", [0, 1, -1, INT64_MAX, INT64_MIN, 0.5, -0.0, 1e308, 5e-324])
def test_numbers_within_64_bits_and_finite_floats_are_kept(value: float) -> None:
    assert check_number(value, field="n") == value


@pytest.mark.parametrize(
    "value",
    [INT64_MAX + 1, INT64_MIN - 1, 10**30, -(10**30), 10**400, math.nan, math.inf, -math.inf],
)
def test_numbers_outside_64_bits_or_not_finite_are_refused(value: float) -> None:
    assert _refusal(check_number, value, field="properties.n").field == "properties.n"


def test_json_is_copied_and_kept_as_it_is() -> None:
    value = {"a": 1, "b": [True, None, "x", 2.5], "c": {"d": []}}
    checked = check_json(value, field="properties", max_depth=3)
    assert checked == value
    assert checked is not value
    assert checked["b"] is not value["b"]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"k": "\ud800"}, "properties.k"),
        ({"k": ["ok", ["a\x00"]]}, "properties.k[1][0]"),
        ({"\ud800": 1}, "properties"),
        ({"meta": {"$inc": 1}}, "properties.meta"),
        ({"meta": {"a.b": 1}}, "properties.meta"),
        ({"list": [{"": 1}]}, "properties.list[0]"),
        ({"n": [1, 2**63]}, "properties.n[1]"),
        ({"n": -(2**63) - 1}, "properties.n"),
        ({"n": math.nan}, "properties.n"),
        ({"n": -math.inf}, "properties.n"),
        ({"when": datetime(2024, 1, 1, tzinfo=UTC)}, "properties.when"),
        ({"set": {1, 2}}, "properties.set"),
        ({"tuple": (1, 2)}, "properties.tuple"),
        ({"d": Decimal("1.5")}, "properties.d"),
        ({1: "non-text key"}, "properties"),
    ],
)
def test_json_refuses_what_cannot_be_stored_naming_the_path(value: Any, field: str) -> None:
    assert _refusal(check_json, value, field="properties", max_depth=3).field == field


def test_depth_counts_lists_as_well_as_objects() -> None:
    assert check_json({"a": [[1]]}, field="p", max_depth=3) == {"a": [[1]]}
    assert check_json({"a": {"b": {"c": 1}}}, field="p", max_depth=3) == {"a": {"b": {"c": 1}}}
    assert _refusal(check_json, {"a": [[[1]]]}, field="p", max_depth=3).field == "p.a[0][0]"
    assert _refusal(check_json, {"a": {"b": {"c": []}}}, field="p", max_depth=3).field == "p.a.b.c"
    assert _refusal(check_json, [[[[[1]]]]], field="p", max_depth=3).field == "p[0][0][0]"


def test_depth_zero_allows_only_scalars() -> None:
    assert check_json("text", field="v", max_depth=0) == "text"
    assert _refusal(check_json, [], field="v", max_depth=0).field == "v"


def test_a_deeply_nested_value_is_refused_without_walking_all_of_it() -> None:
    value: Any = 1
    for _ in range(100_000):
        value = [value]
    assert _refusal(check_json, value, field="p", max_depth=3).field == "p[0][0][0]"


def test_a_datetime_is_brought_to_utc() -> None:
    moment = datetime(2024, 5, 1, 15, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    checked = check_datetime(moment, field="occurredAt")
    assert checked == moment
    assert checked.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, 14, tzinfo=PLUS_14),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(9999, 12, 31, 9, 59, 59, tzinfo=MINUS_14),
    ],
)
def test_the_first_and_last_instants_of_the_utc_calendar_are_accepted(moment: datetime) -> None:
    assert check_datetime(moment, field="at") == moment


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=PLUS_14),
        datetime(1, 1, 1, 13, 59, 59, tzinfo=PLUS_14),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=MINUS_14),
        datetime(9999, 12, 31, 10, tzinfo=MINUS_14),
    ],
)
def test_an_instant_outside_the_utc_calendar_is_refused(moment: datetime) -> None:
    error = _refusal(check_datetime, moment, field="startedAt")
    assert error.field == "startedAt"
    assert "out of range" in error.message


def test_a_datetime_without_a_time_zone_is_refused() -> None:
    naive = datetime(2024, 1, 1)  # noqa: DTZ001
    assert "time zone" in _refusal(check_datetime, naive, field="closedAt").message
