"""GraphQL enums, taken from the domain's own enums."""

from __future__ import annotations

import strawberry

from domain.identity import Channel as DomainChannel
from domain.identity import IdentityType as DomainIdentityType
from domain.model import MergeTrigger as DomainMergeTrigger
from domain.properties import PropertyType as DomainPropertyType
from domain.services import IdentifyOutcome as DomainIdentifyOutcome

Channel = strawberry.enum(DomainChannel, name="Channel", description="Where a message came from")
IdentityType = strawberry.enum(
    DomainIdentityType, name="IdentityType", description="What an identity key's value is"
)
IdentifyOutcome = strawberry.enum(
    DomainIdentifyOutcome, name="IdentifyOutcome", description="What identify did"
)
PropertyType = strawberry.enum(
    DomainPropertyType, name="PropertyType", description="The value type of a property"
)
MergeTrigger = strawberry.enum(
    DomainMergeTrigger, name="MergeTrigger", description="Why a merge happened"
)
