"""The Relay Node interface: every object with a global id can be fetched again by it."""

from __future__ import annotations

import strawberry


@strawberry.interface(
    description="An object with a global id: `node(id:)` fetches it again from the id alone"
)
class Node:
    id: strawberry.ID = strawberry.field(
        description="The object's global id: opaque, stable, the same in every field and input"
    )
