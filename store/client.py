"""Opening the MongoDB client: once per process, in the application's lifespan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient
from pymongo.monitoring import CommandListener


def open_client(uri: str, listeners: Sequence[CommandListener] = ()) -> Any:
    return AsyncIOMotorClient(
        uri,
        tz_aware=True,
        appname="profile360",
        serverSelectionTimeoutMS=5000,
        event_listeners=list(listeners),
    )


async def ping(client: Any) -> bool:
    try:
        await client.admin.command("ping")
    except Exception:
        return False
    return True
