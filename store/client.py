"""Opening the MongoDB client: once per process, in the application's lifespan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient
from pymongo.monitoring import CommandListener


def open_client(
    uri: str, listeners: Sequence[CommandListener] = (), timeout_seconds: float = 5
) -> Any:
    return AsyncIOMotorClient(
        uri,
        tz_aware=True,
        appname="profile360",
        serverSelectionTimeoutMS=int(timeout_seconds * 1000),
        event_listeners=list(listeners),
    )


async def ping(client: Any) -> bool:
    try:
        await client.admin.command("ping")
    except Exception:
        return False
    return True
