"""Opening the MongoDB client: once per process, in the application's lifespan.

PyMongo's own async API (`pymongo.AsyncMongoClient`) runs on the event loop itself; a client
belongs to the loop that first uses it and is closed with `await client.close()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener

Client = AsyncMongoClient[dict[str, Any]]


def open_client(
    uri: str, listeners: Sequence[CommandListener] = (), timeout_seconds: float = 5
) -> Client:
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        appname="profile360",
        serverSelectionTimeoutMS=int(timeout_seconds * 1000),
        event_listeners=list(listeners),
    )


async def ping(client: Client) -> bool:
    try:
        await client.admin.command("ping")
    except Exception:
        return False
    return True
