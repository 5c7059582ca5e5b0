"""Identity keys: one key per identifier, however it is written; placeholders refused."""

from __future__ import annotations

import pytest

from domain.errors import BlockedIdentifier, ValidationFailed
from domain.identity import (
    Channel,
    IdentityType,
    identity_key,
    lookup_user_id,
    normalise_user_id,
)


def test_whatsapp_sms_and_voice_share_one_phone_key() -> None:
    keys = {
        identity_key(Channel.WHATSAPP, "919876543210"),
        identity_key(Channel.SMS, "+91 98765 43210"),
        identity_key(Channel.VOICE, "+91-98765-43210"),
    }
    assert len(keys) == 1
    [key] = keys
    assert key.type is IdentityType.PHONE
    assert key.value == "+919876543210"


def test_email_keys_ignore_case() -> None:
    assert identity_key(Channel.EMAIL, "A@Example.com") == identity_key(
        Channel.EMAIL, "a@example.com"
    )


def test_channel_scoped_senders_keep_their_channel() -> None:
    assert identity_key(Channel.MESSENGER, "42").type is IdentityType.MESSENGER
    assert identity_key(Channel.WEB, "42").type is IdentityType.VISITOR


@pytest.mark.parametrize(
    "value",
    [
        "null",
        "NULL",
        "undefined",
        "anonymous",
        "none",
        "nan",
        "0",
        "-1",
        "[object Object]",
        "000000",
        "+0000",
        " ",
        "\t",
    ],
)
def test_placeholder_values_are_blocked(value: str) -> None:
    with pytest.raises(BlockedIdentifier):
        identity_key(Channel.WEB, value)


def test_a_sender_may_hold_a_bar_since_a_storage_id_ends_with_the_value() -> None:
    assert identity_key(Channel.WEB, "a|b").storage_id("acme") == "acme|VISITOR|a|b"


def test_a_web_sender_with_white_space_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        identity_key(Channel.WEB, "a b")


@pytest.mark.parametrize(
    "sender", ["Kim.X@Example.com", " x|y@example.com", "Zoe\u0308@example.com", "a+b@gmail.com"]
)
def test_an_email_senders_address_is_already_a_user_id_in_normal_form(sender: str) -> None:
    address = identity_key(Channel.EMAIL, sender).value
    assert normalise_user_id(address) == address


def test_a_user_id_that_is_not_an_email_keeps_its_case_and_its_bars() -> None:
    assert normalise_user_id("CRM|Kim-42") == "CRM|Kim-42"
    assert normalise_user_id("kim@localhost") == "kim@localhost"  # not a deliverable address


@pytest.mark.parametrize("value", ["\t", " null ", "NULL", "0000"])
def test_a_placeholder_user_id_is_blocked_before_any_other_rule(value: str) -> None:
    with pytest.raises(BlockedIdentifier):
        normalise_user_id(value)


@pytest.mark.parametrize("value", ["u\u200b", "u\ufeff", "u\x85v", " u", "u ", "u" * 257])
def test_a_user_id_that_cannot_be_is_refused_and_looked_up_as_none(value: str) -> None:
    with pytest.raises(ValidationFailed):
        normalise_user_id(value)
    assert lookup_user_id(value) is None
