"""Merge rules (SPEC §6) as pure functions, with the seed example's values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.merge import apply_plan, plan_merge
from domain.model import Profile

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _profile(properties: dict[str, Any]) -> Profile:
    return Profile(
        id="p",
        tenant="t",
        user_id=None,
        properties=properties,
        created_at=T0,
        updated_at=T0,
    )


def _merge(survivor: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    return apply_plan(survivor, plan_merge(_profile(source)))


def test_survivor_keeps_its_first_name_and_gains_missing_email_optin() -> None:
    merged = _merge({"firstName": "John"}, {"firstName": "Johnny", "emailOptin": True})
    assert merged == {"firstName": "John", "emailOptin": True}


def test_a_false_value_counts_as_present_and_is_kept() -> None:
    assert _merge({"smsOptin": False}, {"smsOptin": True}) == {"smsOptin": False}


def test_lists_are_unioned_keeping_the_survivors_order_first() -> None:
    merged = _merge({"labels": ["b", "a"]}, {"labels": ["a", "c", "b", "d"]})
    assert merged["labels"] == ["b", "a", "c", "d"]


def test_a_list_the_survivor_lacks_is_copied() -> None:
    assert _merge({}, {"tags": ["x", "y"]}) == {"tags": ["x", "y"]}


def test_country_and_timezone_stay_together_when_the_survivor_has_either() -> None:
    source = {"country": "US", "timezone": "America/New_York"}
    assert _merge({"country": "IN"}, source) == {"country": "IN"}
    assert _merge({"timezone": "Asia/Kolkata"}, source) == {"timezone": "Asia/Kolkata"}


def test_country_and_timezone_are_both_copied_when_the_survivor_has_neither() -> None:
    source = {"country": "US", "timezone": "America/New_York"}
    assert _merge({"firstName": "A"}, source) == {"firstName": "A", **source}


def test_the_plan_depends_on_the_source_only() -> None:
    plan = plan_merge(_profile({"gender": "f", "tags": ["t"], "country": "IN", "firstName": "A"}))
    assert dict(plan.fill) == {"gender": "f"}
    assert dict(plan.union) == {"tags": ["t"]}
    assert plan.groups == (
        {"country": "IN", "timezone": None},
        {"firstName": "A", "lastName": None},
    )


def test_first_and_last_names_move_together_or_not_at_all() -> None:
    source = {"firstName": "Johnny", "lastName": "Doe"}
    assert _merge({"firstName": "John"}, source) == {"firstName": "John"}
    assert _merge({"lastName": "Roe"}, {"firstName": "Johnny"}) == {"lastName": "Roe"}
    assert _merge({"gender": "m"}, source) == {"gender": "m", **source}


def test_a_city_moves_with_its_coordinates_or_not_at_all() -> None:
    source = {"city": "Mumbai", "latitude": 19.076, "longitude": 72.8777}
    assert _merge({"city": "Delhi"}, source) == {"city": "Delhi"}
    assert _merge({"latitude": 28.6}, source) == {"latitude": 28.6}
    assert _merge({}, source) == source
