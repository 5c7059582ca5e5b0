"""Property values against their types, and the person-name rule."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.errors import ValidationFailed
from domain.properties import (
    SYSTEM_PROPERTIES,
    PropertyDefinition,
    PropertyType,
    is_valid_person_name,
    normalise_phone,
    validate_value,
)


def _check(type_: PropertyType, value: Any, name: str = "custom") -> Any:
    return validate_value(PropertyDefinition(name, type_), value, field=name)


def test_a_datetime_in_the_spec_format_is_read_as_utc() -> None:
    assert _check(PropertyType.DATETIME, "2024-05-01 10:00:00") == datetime(
        2024, 5, 1, 10, tzinfo=UTC
    )


def test_an_iso_datetime_with_an_offset_is_stored_in_utc() -> None:
    value = _check(PropertyType.DATETIME, "2024-05-01T15:30:00+05:30")
    assert value == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_a_number_refuses_booleans_and_non_finite_values() -> None:
    for bad in [True, float("nan"), float("inf"), "3"]:
        with pytest.raises(ValidationFailed):
            _check(PropertyType.NUMBER, bad)


def test_a_list_drops_duplicates_and_keeps_order() -> None:
    assert _check(PropertyType.LIST, ["b", "a", "b"]) == ["b", "a"]


def test_a_phone_is_normalised_to_e164_and_must_be_valid_for_its_country() -> None:
    assert normalise_phone("+44 20 7946 0958") == "+442079460958"
    assert normalise_phone("919876543210") == "+919876543210"
    assert normalise_phone("+1 555 0100") is None
    assert normalise_phone("hello") is None


def test_an_email_is_lower_cased() -> None:
    assert _check(PropertyType.EMAIL, "Asha.Rao@Example.COM") == "asha.rao@example.com"


@pytest.mark.parametrize(
    "name", ["Asha", "Zoë", "O'Neil", "Jean-Luc", "José María", "李小龍", "प्रिया"]
)
def test_names_of_any_script_are_valid(name: str) -> None:
    assert is_valid_person_name(name)


@pytest.mark.parametrize("name", ["R2D2", "", "  ", "Anna!", "<script>", "a_b", "😀"])
def test_names_with_digits_or_symbols_are_not(name: str) -> None:
    assert not is_valid_person_name(name)


def test_the_error_names_the_property_and_the_rule() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_value(SYSTEM_PROPERTIES["dob"], "21/04/1990", field="set.dob")
    assert "dob" in str(caught.value)
    assert "YYYY-MM-DD" in str(caught.value)
    assert caught.value.field == "set.dob"


def test_country_must_be_an_iso_code_and_is_upper_cased() -> None:
    assert validate_value(SYSTEM_PROPERTIES["country"], "in", field="country") == "IN"
    with pytest.raises(ValidationFailed):
        validate_value(SYSTEM_PROPERTIES["country"], "India", field="country")


def test_there_are_twenty_two_system_properties() -> None:
    assert len(SYSTEM_PROPERTIES) == 22
