"""Shard safety: uniqueness is carried by _id alone and no command opens a transaction."""

from __future__ import annotations

from tests.conftest import Api, CommandCounter
from tests.integration.queries import (
    CAPTURE,
    DETACH,
    IDENTIFY,
    MERGE,
    RECORD,
    TRACK,
    capture_input,
    identify_input,
    merge_input,
    track_input,
)


async def test_no_secondary_index_is_unique(api: Api) -> None:
    await api.ok(CAPTURE, capture_input("WEB", "v1"))
    for name in await api.db.list_collection_names():
        async for index in await api.db[name].list_indexes():
            if index["name"] != "_id_":
                assert not index.get("unique"), (name, index)


async def test_a_full_workload_never_opens_a_transaction(
    api: Api, commands: CommandCounter
) -> None:
    commands.reset()

    await api.ok(IDENTIFY, identify_input("API", "crm-1", "u1"))
    anon = (await api.ok(CAPTURE, capture_input("WEB", "v1", {"tags": ["a"]})))[
        "captureProperties"
    ]["profile"]["id"]
    await api.ok(TRACK, track_input("purchase", sender="v1", event_id="o-1"))
    await api.ok(RECORD, {"input": {"conversationId": "c1", "channel": "WEB", "senderId": "v1"}})
    merged = await api.ok(IDENTIFY, identify_input("WEB", "v1", "u1"))
    survivor = merged["identify"]["profile"]["id"]
    other = (await api.ok(CAPTURE, capture_input("WEB", "v2")))["captureProperties"]["profile"][
        "id"
    ]
    await api.ok(MERGE, merge_input(survivor, other))
    await api.ok(DETACH, {"input": {"profileId": survivor, "channel": "WEB", "senderId": "v2"}})
    await api.ok(
        "mutation($id: ID!) { deleteProfile(input: {id: $id}) { deletedProfileId } }",
        {"id": survivor},
    )
    del anon

    assert len(commands.names) > 30  # every kind of write the service makes was seen
    assert commands.in_transaction == []
