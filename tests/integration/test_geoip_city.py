"""GEOIP_DB: with a MaxMind city database, web captures also get city and coordinates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from domain.access import Role
from server.app import create_app
from server.config import Settings
from store.client import open_client
from tests.integration.queries import CAPTURE, capture_input


def _city_database(path: Path) -> Path:
    writer = MMDBWriter(
        ip_version=6, database_type="GeoLite2-City", languages=["en"], ipv4_compatible=True
    )
    writer.insert_network(
        IPSet(["81.2.69.0/24"]),
        {
            "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
            "city": {"names": {"en": "London"}},
            "location": {"latitude": 51.5142, "longitude": -0.0931, "time_zone": "Europe/London"},
        },
    )
    writer.to_db_file(str(path))
    return path


@pytest.fixture
async def city_api(
    settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    app = create_app(replace(settings, geoip_db=_city_database(tmp_path / "city.mmdb")))
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime.get()
        _, key = await runtime.keys.create("acme", Role.SDK, "bot", datetime.now(UTC))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http, key
    cleanup = open_client(settings.mongodb_uri or "")
    await cleanup.drop_database(settings.mongodb_db)
    await cleanup.close()


async def _capture(city_api: tuple[httpx.AsyncClient, str], sender: str, ip: str) -> Any:
    http, key = city_api
    response = await http.post(
        "/graphql",
        json={"query": CAPTURE, "variables": capture_input("WEB", sender, {}, ip=ip)},
        headers={"Authorization": f"Bearer {key}"},
    )
    return response.json()["data"]["captureProperties"]["profile"]


async def test_a_city_database_adds_city_and_coordinates(
    city_api: tuple[httpx.AsyncClient, str],
) -> None:
    profile = await _capture(city_api, "v1", "81.2.69.160")
    values = profile["properties"]
    assert values["city"] == "London"
    assert values["latitude"] == pytest.approx(51.5142)
    assert values["longitude"] == pytest.approx(-0.0931)
    assert (profile["country"], profile["timezone"]) == ("GB", "Europe/London")


async def test_an_address_missing_from_the_city_database_falls_back_to_the_country(
    city_api: tuple[httpx.AsyncClient, str],
) -> None:
    profile = await _capture(city_api, "v2", "49.36.0.1")
    assert profile["country"] == "IN"
    assert "city" not in profile["properties"]
