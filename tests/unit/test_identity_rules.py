"""Identity keys: one key per identifier, however it is written; placeholders refused."""

from __future__ import annotations

import pytest

from domain.errors import BlockedIdentifier, ValidationFailed
from domain.identity import Channel, IdentityType, identity_key


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


def test_a_web_sender_with_a_separator_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        identity_key(Channel.WEB, "a|b")
