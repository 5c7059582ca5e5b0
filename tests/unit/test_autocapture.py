"""Auto-capture: what each channel reveals by itself."""

from __future__ import annotations

from domain.autocapture import AutoValues, CaptureContext, auto_values, split_display_name
from domain.identity import Channel, identity_key
from domain.ports import Location


class FakeGeo:
    def locate(self, ip: str) -> Location | None:
        return Location(country="IN", timezone="Asia/Kolkata") if ip == "49.36.0.1" else None


def test_a_display_name_splits_into_first_and_last_names() -> None:
    assert split_display_name("Mary Jane Watson") == {
        "firstName": "Mary",
        "lastName": "Jane Watson",
    }
    assert split_display_name("Cher") == {"firstName": "Cher"}


def test_a_display_name_with_symbols_gives_nothing() -> None:
    assert split_display_name("Mary 🌸") == {}
    assert split_display_name("call me 2day") == {}


def test_web_fills_the_ip_and_country_with_timezone_as_a_group() -> None:
    values = auto_values(
        Channel.WEB, identity_key(Channel.WEB, "v"), CaptureContext(ip="49.36.0.1"), FakeGeo()
    )
    assert values == AutoValues(
        fill={"ip": "49.36.0.1"}, groups=({"country": "IN", "timezone": "Asia/Kolkata"},)
    )


def test_a_browser_timezone_alone_is_a_group_that_names_the_country_too() -> None:
    context = CaptureContext(timezone="Europe/Paris")
    values = auto_values(Channel.WEB, identity_key(Channel.WEB, "v"), context, FakeGeo())
    assert values.groups == ({"country": None, "timezone": "Europe/Paris"},)


def test_whatsapp_fills_phone_and_groups_country_and_names() -> None:
    key = identity_key(Channel.WHATSAPP, "14155552671")
    values = auto_values(Channel.WHATSAPP, key, CaptureContext(display_name="Ann Lee"), FakeGeo())
    assert values == AutoValues(
        fill={"phone": "+14155552671"},
        groups=(
            {"country": "US", "timezone": None},
            {"firstName": "Ann", "lastName": "Lee"},
        ),
    )


def test_sms_and_voice_reveal_the_phone_and_its_country_but_no_names() -> None:
    for channel in (Channel.SMS, Channel.VOICE):
        key = identity_key(channel, "14155552671")
        values = auto_values(channel, key, CaptureContext(display_name="Ann Lee"), FakeGeo())
        assert values == AutoValues(
            fill={"phone": "+14155552671"}, groups=({"country": "US", "timezone": None},)
        )


def test_an_email_sender_reveals_its_address() -> None:
    key = identity_key(Channel.EMAIL, "Kim@Example.com")
    values = auto_values(Channel.EMAIL, key, CaptureContext(), FakeGeo())
    assert values == AutoValues(fill={"email": "kim@example.com"})
