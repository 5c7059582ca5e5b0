"""Where an IP address is: country from the bundled geoip2fast data, timezone from the
country's principal zone (tzdata's zone.tab), city and coordinates from a MaxMind city
database when GEOIP_DB names one."""

from __future__ import annotations

import ipaddress
import logging
import warnings
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from domain.ports import Location

log = logging.getLogger("profile360.geo")


@cache
def country_timezones() -> dict[str, str]:
    """The first zone zone.tab lists for each country: its most populous region's."""
    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text()
    zones: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) >= 3:
            zones.setdefault(fields[0], fields[2])
    return zones


class GeoIP:
    """Locates public IP addresses; private and unknown ones locate nowhere."""

    def __init__(self, city_db: Path | None = None) -> None:
        with warnings.catch_warnings():
            # geoip2fast 1.2.2 has two invalid escapes ('\.') in its source: compiled on first
            # import (a fresh install without bytecode), each would print a SyntaxWarning.
            warnings.simplefilter("ignore", SyntaxWarning)
            from geoip2fast import GeoIP2Fast

        self._countries: Any = GeoIP2Fast(
            geoip2fast_data_file="geoip2fast-ipv6.dat.gz", verbose=False
        )
        self._cities: Any = None
        if city_db is not None:
            import geoip2.database

            self._cities = geoip2.database.Reader(str(city_db))
            log.info("city-level geolocation from %s", city_db)

    def locate(self, ip: str) -> Location | None:
        try:
            address = ipaddress.ip_address(ip.strip())
        except ValueError:
            return None
        if not address.is_global:
            return None
        if self._cities is not None:
            found = self._locate_city(str(address))
            if found is not None:
                return found
        result = self._countries.lookup(str(address))
        country = getattr(result, "country_code", None)
        if not country or len(country) != 2 or not country.isalpha():
            return None
        return Location(country=country, timezone=country_timezones().get(country))

    def _locate_city(self, ip: str) -> Location | None:
        import geoip2.errors

        try:
            found = self._cities.city(ip)
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return None
        country = found.country.iso_code
        return Location(
            country=country,
            timezone=found.location.time_zone or (country_timezones().get(country or "")),
            city=found.city.name,
            latitude=found.location.latitude,
            longitude=found.location.longitude,
        )

    def close(self) -> None:
        if self._cities is not None:
            self._cities.close()
