"""Shared fixtures: one embedded engine per session (or MONGODB_URI), one database per test."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pymongo import monitoring

from domain.access import Role
from schema.ids import Kind, parse, to_global
from server.app import create_app
from server.config import Settings
from server.geo import GeoIP
from store.client import open_client
from store.embedded import EmbeddedMongo
from store.keys import KeyStore

TENANT = "acme"
OTHER_TENANT = "globex"


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    engine = EmbeddedMongo()
    yield engine.start()
    engine.stop()


@pytest.fixture(scope="session")
def geo() -> GeoIP:
    return GeoIP()


class CommandCounter(monitoring.CommandListener):
    """Counts the commands sent to one database."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.names: list[str] = []
        self.in_transaction: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.database:
            self.names.append(event.command_name)
        if {"startTransaction", "autocommit"} & set(event.command) or event.command_name in (
            "commitTransaction",
            "abortTransaction",
        ):
            self.in_transaction.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def reset(self) -> None:
        self.names.clear()

    @property
    def count(self) -> int:
        return len(self.names)


class GraphQLError(AssertionError):
    pass


# Variables that name a profile: with stored ids, a bare stored key is sent as its global id.
_PROFILE_ID_KEYS = frozenset({"id", "profileId", "targetId", "sourceId"})


def _to_global_ids(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _to_global_ids(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_global_ids(v, key) for v in value]
    if isinstance(value, str) and key in _PROFILE_ID_KEYS and parse(value) is None:
        return to_global(Kind.PROFILE, value)
    return value


def _to_stored_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_stored_ids(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_stored_ids(v) for v in value]
    if isinstance(value, str) and (parsed := parse(value)) and parsed[0] is Kind.PROFILE:
        return parsed[1]
    return value


class Api:
    """The real application over HTTP (ASGI transport), with keys for every role."""

    def __init__(self, app: Any, http: httpx.AsyncClient, keys: KeyStore, db: Any) -> None:
        self.app = app
        self.http = http
        self.keys_store = keys
        self.db = db
        self._keys: dict[tuple[str, Role], str] = {}
        self.stored_ids = False

    def speak_stored_ids(self) -> None:
        """From now on, profile ids in answers are the database's keys, and variables may name
        profiles by them: for tests about what is stored, which compare ids with documents."""
        self.stored_ids = True

    async def key(self, role: Role = Role.ADMIN, tenant: str = TENANT) -> str:
        if (tenant, role) not in self._keys:
            _, secret = await self.keys_store.create(
                tenant, role, f"{role.value}-key", datetime.now(UTC)
            )
            self._keys[(tenant, role)] = secret
        return self._keys[(tenant, role)]

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        role: Role = Role.ADMIN,
        tenant: str = TENANT,
        key: str | None = None,
    ) -> dict[str, Any]:
        headers = {}
        secret = key if key is not None else await self.key(role, tenant)
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        if self.stored_ids:
            variables = _to_global_ids(variables or {})
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if self.stored_ids:
            body = _to_stored_ids(body)
        return body

    async def ok(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        body = await self.post(query, variables, **kw)
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        return body["data"]

    async def snapshot(self) -> dict[str, list[Any]]:
        """Every document of every collection but the keys: to prove a refusal wrote nothing."""
        names = sorted(n for n in await self.db.list_collection_names() if n != "api_keys")
        return {n: await self.db[n].find().sort("_id", 1).to_list(None) for n in names}

    async def refused(
        self, code: str, query: str, variables: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:
        """Assert the operation fails with `code` and leaves every collection as it was."""
        before = await self.snapshot()
        error = await self.error(query, variables, **kw)
        assert error["extensions"]["code"] == code, error
        assert await self.snapshot() == before, "a refused operation wrote something"
        return error

    async def error(
        self, query: str, variables: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:
        body = await self.post(query, variables, **kw)
        assert body.get("errors"), f"expected an error, got {body}"
        error: dict[str, Any] = body["errors"][0]
        return error


@pytest.fixture
def db_name() -> str:
    return f"test_{secrets.token_hex(6)}"


@pytest.fixture
def commands(db_name: str) -> CommandCounter:
    return CommandCounter(db_name)


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return Settings(mongodb_uri=mongo_uri, mongodb_db=db_name, key_cache_seconds=60)


@contextlib.asynccontextmanager
async def running(settings: Settings, commands: CommandCounter, geo: GeoIP) -> AsyncIterator[Api]:
    """The real application, started with its lifespan, reached over ASGI."""
    app = create_app(settings, listeners=[commands], geo=geo)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime.get()
        db = runtime.client[settings.mongodb_db]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield Api(app, http, runtime.keys, db)
    cleanup = open_client(settings.mongodb_uri or "")
    await cleanup.drop_database(settings.mongodb_db)
    await cleanup.close()


@pytest.fixture
async def api(settings: Settings, commands: CommandCounter, geo: GeoIP) -> AsyncIterator[Api]:
    async with running(settings, commands, geo) as started:
        yield started
