"""GraphQL enums: the domain's own enums, registered with strawberry under their public names."""

from __future__ import annotations

import strawberry

from domain.identity import Channel, IdentityType
from domain.model import MergeTrigger
from domain.properties import PropertyType
from domain.services import IdentifyOutcome

strawberry.enum(Channel, description="Where a message came from")
strawberry.enum(IdentityType, description="What an identity key's value is")
strawberry.enum(IdentifyOutcome, description="What identify did")
strawberry.enum(PropertyType, description="The value type of a property")
strawberry.enum(MergeTrigger, description="Why a merge happened")

__all__ = ["Channel", "IdentifyOutcome", "IdentityType", "MergeTrigger", "PropertyType"]
