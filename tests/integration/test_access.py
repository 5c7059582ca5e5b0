"""API keys, the four roles, and tenant isolation (SPEC §3)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.access import Role
from tests.conftest import OTHER_TENANT, Api
from tests.integration.queries import (
    BY_IDENTITY,
    BY_USER_ID,
    CAPTURE,
    DEFINE,
    IDENTIFY,
    PROFILE,
    PROFILES,
    UPDATE,
    capture_input,
    identify_input,
)


async def _profile_id(api: Api) -> str:
    data = await api.ok(IDENTIFY, identify_input("WEB", "v1", "user-1", {"firstName": "Asha"}))
    profile_id: str = data["identify"]["profile"]["id"]
    return profile_id


async def test_a_request_without_a_key_is_unauthenticated(api: Api) -> None:
    error = await api.refused("UNAUTHENTICATED", CAPTURE, capture_input("WEB", "v1"), key="")
    assert "API key" in error["message"]


async def test_an_unknown_key_is_unauthenticated(api: Api) -> None:
    error = await api.refused(
        "UNAUTHENTICATED", CAPTURE, capture_input("WEB", "v1"), key="p360_nope"
    )
    assert error["message"] == "this API key is not valid"


async def test_the_x_api_key_header_works_too(api: Api) -> None:
    secret = await api.key(Role.SDK)
    response = await api.http.post(
        "/graphql",
        json={"query": CAPTURE, "variables": capture_input("WEB", "v1")},
        headers={"X-API-Key": secret},
    )
    assert response.json()["data"]["captureProperties"]["created"] is True


async def test_a_revoked_key_stops_working_once_the_key_cache_expires(api: Api) -> None:
    key, secret = await api.keys_store.create("acme", Role.SDK, "temp", datetime.now(UTC))
    await api.ok(CAPTURE, capture_input("WEB", "v1"), key=secret)
    assert await api.keys_store.revoke(key.key_id, datetime.now(UTC))
    api.app.state.runtime.get().auth.forget()  # what the cache expiry does after its TTL
    error = await api.refused("UNAUTHENTICATED", CAPTURE, capture_input("WEB", "v2"), key=secret)
    assert error["message"] == "this API key was revoked"


async def test_an_export_with_a_revoked_key_is_told_the_key_was_revoked(api: Api) -> None:
    key, secret = await api.keys_store.create("acme", Role.ADMIN, "temp", datetime.now(UTC))
    assert (await api.http.get("/export", headers={"X-API-Key": secret})).status_code == 200
    assert await api.keys_store.revoke(key.key_id, datetime.now(UTC))
    api.app.state.runtime.get().auth.forget()
    response = await api.http.get("/export", headers={"X-API-Key": secret})
    assert response.status_code == 401
    assert "UNAUTHENTICATED" in response.text
    assert "this API key was revoked" in response.text


async def test_a_viewer_key_can_read_but_cannot_mutate(api: Api) -> None:
    profile_id = await _profile_id(api)
    data = await api.ok(PROFILE, {"id": profile_id}, role=Role.VIEWER)
    assert data["profile"]["firstName"] == "Asha"
    await api.ok(PROFILES, {"first": 10}, role=Role.VIEWER)
    for query, variables in [
        (CAPTURE, capture_input("WEB", "v2")),
        (IDENTIFY, identify_input("WEB", "v2", "user-2")),
        (UPDATE, {"input": {"id": profile_id, "set": {"gender": "f"}}}),
        (DEFINE, {"input": {"name": "plan", "type": "STRING"}}),
    ]:
        error = await api.refused("FORBIDDEN", query, variables, role=Role.VIEWER)
        assert "viewer" in error["message"]


async def test_an_sdk_key_writes_and_reads_one_profile_but_cannot_list_or_edit(api: Api) -> None:
    profile_id = await _profile_id(api)
    await api.ok(CAPTURE, capture_input("WEB", "v1"), role=Role.SDK)
    await api.ok(BY_IDENTITY, {"channel": "WEB", "senderId": "v1"}, role=Role.SDK)
    await api.refused("FORBIDDEN", PROFILES, {"first": 10}, role=Role.SDK)
    await api.refused(
        "FORBIDDEN", UPDATE, {"input": {"id": profile_id, "set": {"gender": "f"}}}, role=Role.SDK
    )
    await api.refused(
        "FORBIDDEN", DEFINE, {"input": {"name": "plan", "type": "STRING"}}, role=Role.SDK
    )


async def test_an_agent_key_edits_but_does_not_capture_or_define(api: Api) -> None:
    profile_id = await _profile_id(api)
    data = await api.ok(UPDATE, {"input": {"id": profile_id, "addTags": ["vip"]}}, role=Role.AGENT)
    assert data["updateProfile"]["profile"]["tags"] == ["vip"]
    await api.refused("FORBIDDEN", CAPTURE, capture_input("WEB", "v2"), role=Role.AGENT)
    await api.refused(
        "FORBIDDEN", DEFINE, {"input": {"name": "plan", "type": "STRING"}}, role=Role.AGENT
    )


@pytest.mark.parametrize("role", list(Role))
async def test_every_role_is_checked_on_define_property(api: Api, role: Role) -> None:
    variables = {"input": {"name": "plan", "type": "STRING"}}
    if role is Role.ADMIN:
        await api.ok(DEFINE, variables, role=role)
    else:
        await api.refused("FORBIDDEN", DEFINE, variables, role=role)


async def test_another_tenant_cannot_read_a_profile_by_id_user_id_or_identity(api: Api) -> None:
    profile_id = await _profile_id(api)
    other = {"tenant": OTHER_TENANT}
    assert (await api.ok(PROFILE, {"id": profile_id}, **other))["profile"] is None
    assert (await api.ok(BY_USER_ID, {"userId": "user-1"}, **other))["profileByUserId"] is None
    found = await api.ok(BY_IDENTITY, {"channel": "WEB", "senderId": "v1"}, **other)
    assert found["profileByIdentity"] is None
    assert (await api.ok(PROFILES, {"first": 10}, **other))["profiles"]["edges"] == []


async def test_another_tenant_cannot_edit_a_profile(api: Api) -> None:
    profile_id = await _profile_id(api)
    await api.refused(
        "NOT_FOUND",
        UPDATE,
        {"input": {"id": profile_id, "set": {"gender": "f"}}},
        tenant=OTHER_TENANT,
    )


async def test_the_same_sender_and_user_id_in_two_tenants_are_two_profiles(api: Api) -> None:
    mine = await api.ok(IDENTIFY, identify_input("WEB", "v1", "user-1"))
    theirs = await api.ok(IDENTIFY, identify_input("WEB", "v1", "user-1"), tenant=OTHER_TENANT)
    assert mine["identify"]["outcome"] == theirs["identify"]["outcome"] == "IDENTIFIED"
    assert mine["identify"]["profile"]["id"] != theirs["identify"]["profile"]["id"]


async def test_definitions_are_per_tenant(api: Api) -> None:
    await api.ok(DEFINE, {"input": {"name": "plan", "type": "STRING"}})
    await api.refused(
        "PROPERTY_NOT_DEFINED",
        CAPTURE,
        capture_input("WEB", "v1", {"plan": "x"}),
        tenant=OTHER_TENANT,
    )
