"""Auto-capture: what each channel reveals by itself."""

from __future__ import annotations

from domain.autocapture import CaptureContext, auto_values, split_display_name
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


def test_web_fills_location_from_the_ip() -> None:
    values = auto_values(
        Channel.WEB, identity_key(Channel.WEB, "v"), CaptureContext(ip="49.36.0.1"), FakeGeo()
    )
    assert values == {"ip": "49.36.0.1", "country": "IN", "timezone": "Asia/Kolkata"}


def test_whatsapp_fills_phone_country_and_names() -> None:
    key = identity_key(Channel.WHATSAPP, "14155552671")
    values = auto_values(Channel.WHATSAPP, key, CaptureContext(display_name="Ann Lee"), FakeGeo())
    assert values == {
        "phone": "+14155552671",
        "country": "US",
        "firstName": "Ann",
        "lastName": "Lee",
    }


def test_sms_reveals_nothing_by_itself() -> None:
    key = identity_key(Channel.SMS, "14155552671")
    assert auto_values(Channel.SMS, key, CaptureContext(), FakeGeo()) == {}
