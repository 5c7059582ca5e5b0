"""An independent client meets the API: the `gql` library, with its own HTTP transport, against
a real server process. It fetches the schema (and checks every request against it), refetches
a profile by its global id, pages with Relay's PageInfo, and sees a partial result."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from graphql import GraphQLSchema, print_schema

from store.client import open_client
from tests.e2e.conftest import StartServer

pytestmark = pytest.mark.e2e

CAPTURE = """
mutation Capture($input: CapturePropertiesInput!) {
  captureProperties(input: $input) { created profile { id firstName } }
}
"""
TRACK = """
mutation Track($input: TrackEventInput!) {
  trackEvent(input: $input) { counted event { id name } }
}
"""
NODE = """
query Node($id: ID!) {
  node(id: $id) { __typename id ... on Profile { firstName } }
}
"""
PROFILES = """
query Profiles($after: String) {
  profiles(first: 2, after: $after) {
    edges { cursor node { id firstName } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
ACTIVITY = """
query Activity($id: ID!, $after: String) {
  profile(id: $id) {
    activity(first: 2, after: $after) {
      edges { node { __typename ... on Event { id name } } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""
TWO_CAPTURES = """
mutation Two($ok: CapturePropertiesInput!, $bad: CapturePropertiesInput!) {
  first: captureProperties(input: $ok) { created profile { id } }
  second: captureProperties(input: $bad) { created profile { id } }
}
"""


@pytest.fixture
async def client(start_server: StartServer, mongo_uri: str) -> AsyncIterator[Client]:
    db_name = f"e2e_gql_{secrets.token_hex(4)}"
    key = f"p360_{secrets.token_urlsafe(24)}"
    server = start_server(
        {
            "MONGODB_URI": mongo_uri,
            "MONGODB_DB": db_name,
            "BOOTSTRAP_TENANT": "acme",
            "BOOTSTRAP_API_KEY": key,
        }
    )
    transport = HTTPXAsyncTransport(
        url=f"{server.base_url}/graphql",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    yield Client(transport=transport, fetch_schema_from_transport=True)
    mongo = open_client(mongo_uri)
    await mongo.drop_database(db_name)
    await mongo.close()


async def _pages(session: Any, query: str, variables: dict[str, Any], path: list[str]) -> Any:
    """Every page of a connection, following pageInfo.endCursor."""
    pages: list[dict[str, Any]] = []
    after = None
    while True:
        data = await session.execute(
            GraphQLRequest(query, variable_values={**variables, "after": after})
        )
        for name in path:
            data = data[name]
        pages.append(data)
        if not data["pageInfo"]["hasNextPage"]:
            return pages
        after = data["pageInfo"]["endCursor"]


async def test_an_independent_client_fetches_the_schema_refetches_pages_and_sees_partial_results(
    client: Client,
) -> None:
    async with client as session:
        schema = client.schema
        assert isinstance(schema, GraphQLSchema)
        printed = print_schema(schema)
        assert "interface Node" in printed
        assert "type Profile implements Node" in printed
        assert schema.mutation_type is not None
        capture = schema.mutation_type.fields["captureProperties"]
        assert str(capture.type) == "CapturePropertiesPayload"  # nullable
        assert str(capture.args["input"].type) == "CapturePropertiesInput!"

        ids = []
        for name in ("Asha", "Ravi", "Mira"):
            data = await session.execute(
                GraphQLRequest(
                    CAPTURE,
                    variable_values={
                        "input": {
                            "channel": "WEB",
                            "senderId": f"visitor-{name}",
                            "properties": {"firstName": name},
                        }
                    },
                )
            )
            ids.append(data["captureProperties"]["profile"]["id"])

        # Refetch by global id alone, as Relay and Apollo caches do.
        node = await session.execute(GraphQLRequest(NODE, variable_values={"id": ids[1]}))
        assert node["node"] == {"__typename": "Profile", "id": ids[1], "firstName": "Ravi"}

        pages = await _pages(session, PROFILES, {}, ["profiles"])
        assert [[e["node"]["id"] for e in p["edges"]] for p in pages] == [ids[:2], ids[2:]]
        first, last = pages
        assert first["pageInfo"]["hasPreviousPage"] is False
        assert first["pageInfo"]["startCursor"] == first["edges"][0]["cursor"]
        assert last["pageInfo"]["hasPreviousPage"] is True
        assert last["pageInfo"]["endCursor"] == last["edges"][-1]["cursor"]

        for name in ("signup", "visit", "purchase"):
            await session.execute(
                GraphQLRequest(
                    TRACK,
                    variable_values={"input": {"name": name, "profileId": ids[0]}},
                )
            )
        timeline = await _pages(session, ACTIVITY, {"id": ids[0]}, ["profile", "activity"])
        names = [[e["node"]["name"] for e in p["edges"]] for p in timeline]
        assert sorted(n for page in names for n in page) == ["purchase", "signup", "visit"]
        assert [len(page) for page in names] == [2, 1]

        # One of two aliased mutations fails: the other's committed result is still there.
        with pytest.raises(TransportQueryError) as refused:
            await session.execute(
                GraphQLRequest(
                    TWO_CAPTURES,
                    variable_values={
                        "ok": {"channel": "WEB", "senderId": "visitor-new"},
                        "bad": {"channel": "WEB", "senderId": "undefined"},
                    },
                )
            )
        assert refused.value.data is not None
        assert refused.value.data["first"]["created"] is True
        assert refused.value.data["second"] is None
        [error] = refused.value.errors or []
        assert error["path"] == ["second"]
        assert error["extensions"]["code"] == "BLOCKED_IDENTIFIER"
        written = refused.value.data["first"]["profile"]["id"]
        again = await session.execute(GraphQLRequest(NODE, variable_values={"id": written}))
        assert again["node"]["id"] == written
