"""GraphQL enums: the domain's own enums, registered with strawberry under their public names,
each value described in the product's words."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, StrEnum

import strawberry

from domain.events import ConversationKind, ConversationStatus
from domain.filters import FilterOp
from domain.identity import Channel, IdentityType
from domain.model import MergeTrigger
from domain.properties import PropertyType
from domain.services import IdentifyOutcome


def describe_enum[E: type[Enum]](cls: E, description: str, values: Mapping[str, str]) -> E:
    """Register `cls` as a GraphQL enum with a description on the type and on every value."""
    missing = {m.name for m in cls} ^ set(values)
    if missing:
        raise AssertionError(f"{cls.__name__}: describe exactly its values, not {missing}")
    registered = strawberry.enum(cls, description=description)
    for value in registered.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = values[value.name]
    return registered


class MatchedOn(StrEnum):
    """What two profiles were found to share."""

    PHONE = "phone"
    EMAIL = "email"
    EXTERNAL_ID = "externalId"


describe_enum(
    Channel,
    "Where a message came from: the channel a bot or inbox received it on",
    {
        "WEB": "A website chat; the sender is a visitor id",
        "WHATSAPP": "WhatsApp; the sender is a phone number",
        "SMS": "A text message; the sender is a phone number",
        "VOICE": "A phone call; the sender is a phone number",
        "EMAIL": "Email; the sender is an email address",
        "MESSENGER": "Facebook Messenger; the sender id is scoped to Messenger",
        "INSTAGRAM": "Instagram direct messages; the sender id is scoped to Instagram",
        "API": "Any other system calling the API; the sender id is scoped to it",
    },
)
describe_enum(
    IdentityType,
    "What an identity key's value is",
    {
        "PHONE": "A phone number in E.164 form (WhatsApp, SMS and voice senders)",
        "EMAIL": "An email address, lower-cased (email senders)",
        "VISITOR": "A web visitor id",
        "MESSENGER": "A Messenger sender id",
        "INSTAGRAM": "An Instagram sender id",
        "API": "A sender id of another system",
        "USER_ID": "The person's userId, unique in the tenant",
    },
)
describe_enum(
    IdentifyOutcome,
    "What identify did with the sender and the userId",
    {
        "IDENTIFIED": "The sender's profile had no userId and got this one",
        "MERGED": "The sender's anonymous profile merged into the profile holding the userId",
        "SWITCHED": "The sender now belongs to the profile holding the userId; nothing merged",
        "CREATED": "A new profile was made for the userId and the sender moved to it",
        "UNCHANGED": "The sender's profile already had this userId",
    },
)
describe_enum(
    PropertyType,
    "The type of a property's values; values are checked against it on every write",
    {
        "STRING": "Text",
        "NUMBER": "A number",
        "TIME": "A time of day, hh:mm:ss",
        "DATE": "A calendar date, YYYY-MM-DD",
        "DATETIME": "An instant: YYYY-MM-DD hh:mm:ss (UTC) or ISO 8601 with an offset",
        "LIST": "A list of texts, at most 100 items",
        "BOOLEAN": "true or false",
        "PHONE": "A phone number, stored in E.164 form",
        "URL": "A web address",
        "EMAIL": "An email address",
    },
)
describe_enum(
    MergeTrigger,
    "What started a merge",
    {
        "IDENTIFY": "An identify call found the userId on another profile",
        "MANUAL": "An agent merged two profiles with mergeProfiles",
    },
)
describe_enum(
    ConversationKind,
    "A live chat or a support ticket",
    {"CHAT": "A live conversation", "TICKET": "A support ticket"},
)
describe_enum(
    ConversationStatus,
    "Where a conversation stands",
    {
        "OPEN": "Waiting for the team",
        "PENDING": "Waiting for the customer",
        "RESOLVED": "Answered; may reopen",
        "CLOSED": "Finished",
    },
)
describe_enum(
    FilterOp,
    "How a property condition compares the property's value with the condition's value",
    {
        "EQ": "Equal to the value",
        "NE": "Not equal to the value (profiles without the property match)",
        "GT": "Greater than the value (numbers, dates, datetimes, times)",
        "GTE": "Greater than or equal to the value",
        "LT": "Less than the value",
        "LTE": "Less than or equal to the value",
        "IN": "Equal to one of the values of a list",
        "CONTAINS": "Text containing the value (case-insensitive), or a list holding it",
        "EXISTS": "The property has a value; give no value",
        "NOT_EXISTS": "The property has no value; give no value",
        "BETWEEN": "Between the two values of a list [low, high], both included",
        "WITHIN_LAST_DAYS": "A date or datetime within the last N days (the value is N)",
    },
)
describe_enum(
    MatchedOn,
    "What a merge suggestion found the two profiles to share",
    {
        "PHONE": "The same phone number (compared in E.164 form)",
        "EMAIL": "The same email address (case, Gmail dots and +tags ignored)",
        "EXTERNAL_ID": "The same external id: a userId or an API sender id",
    },
)

__all__ = [
    "Channel",
    "ConversationKind",
    "ConversationStatus",
    "FilterOp",
    "IdentifyOutcome",
    "IdentityType",
    "MatchedOn",
    "MergeTrigger",
    "PropertyType",
]
