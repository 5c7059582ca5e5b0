"""Unexpected failures are masked: INTERNAL with a correlation id, no driver text or hosts."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from tests.conftest import Api
from tests.integration.queries import CAPTURE, PROFILE, capture_input, profile_gid


async def test_a_driver_failure_is_masked_as_internal_with_a_correlation_id(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = api.app.state.runtime.get().services._store

    async def unreachable(*args: Any, **kwargs: Any) -> None:
        raise ServerSelectionTimeoutError("db-7.internal:27017: [Errno 111] Connection refused")

    monkeypatch.setattr(store, "get_profile", unreachable)
    with caplog.at_level(logging.ERROR, logger="profile360.errors"):
        response = await api.http.post(
            "/graphql",
            json={"query": PROFILE, "variables": {"id": profile_gid("0" * 32)}},
            headers={"X-API-Key": await api.key(), "X-Request-Id": "ticket-42"},
        )
    body = response.json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INTERNAL"
    correlation = error["extensions"]["correlationId"]
    assert correlation in error["message"]
    text = str(body)
    for leak in ("27017", "db-7", "Errno", "ServerSelection", "Traceback", "store/"):
        assert leak not in text
    assert correlation in caplog.text  # the operator can find the real cause
    [record] = caplog.records
    assert (record.correlation_id, record.request_id) == (correlation, "ticket-42")  # type: ignore[attr-defined]
    assert response.headers["X-Request-Id"] == "ticket-42"


async def test_a_refused_operation_keeps_its_message_and_code(api: Api) -> None:
    error = await api.error(CAPTURE, capture_input("WEB", "null"))
    assert error["extensions"] == {"code": "BLOCKED_IDENTIFIER", "field": "senderId"}
    assert "placeholder" in error["message"]


async def test_a_malformed_query_is_a_validation_error(api: Api) -> None:
    error = await api.error("{ profile(id: ) { id } }")
    assert error["extensions"]["code"] == "VALIDATION_FAILED"
    error = await api.error('{ profile(id: "x") { noSuchField } }')
    assert error["extensions"]["code"] == "VALIDATION_FAILED"


async def test_a_failure_outside_graphql_is_internal_with_a_correlation_id_and_both_ids_logged(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(client: Any) -> bool:
        raise RuntimeError("db-7.internal:27017 is on fire")

    monkeypatch.setattr("server.app.ping", broken)
    with caplog.at_level(logging.ERROR, logger="profile360.errors"):
        response = await api.http.get("/readyz", headers={"X-Request-Id": "probe-9"})
    assert response.status_code == 500
    assert response.headers["X-Request-Id"] == "probe-9"
    [error] = response.json()["errors"]
    correlation = error["extensions"]["correlationId"]
    assert error["extensions"]["code"] == "INTERNAL"
    assert "db-7" not in response.text
    [record] = caplog.records
    assert (record.correlation_id, record.request_id) == (correlation, "probe-9")  # type: ignore[attr-defined]
    assert "on fire" in caplog.text  # the cause is in the log, not in the response
