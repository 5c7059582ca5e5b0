"""GraphQL output types, each built from a domain object with `from_domain`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

import strawberry

from domain import model
from domain.errors import ValidationFailed
from domain.identity import Identity as DomainIdentity
from domain.properties import PropertyDefinition as DomainPropertyDefinition
from schema.activity import ActivityConnection, Event, EventConnection
from schema.context import Info
from schema.cursors import decode_time_cursor, encode_profile_cursor
from schema.enums import Channel, IdentifyOutcome, IdentityType, MergeTrigger, PropertyType
from schema.scalars import JSON, json_values


@strawberry.type(description="One identifier of a person and the channels it was seen on")
class Identity:
    type: IdentityType
    value: str
    channels: list[Channel]

    @classmethod
    def from_domain(cls, identity: DomainIdentity) -> Self:
        return cls(
            type=identity.key.type, value=identity.key.value, channels=list(identity.channels)
        )


@strawberry.type(description="How often and when a profile did one kind of event")
class EventSummary:
    name: str
    count: int
    first_seen: datetime
    last_seen: datetime

    @classmethod
    def from_domain(cls, summary: model.EventSummary) -> Self:
        return cls(
            name=summary.name,
            count=summary.count,
            first_seen=summary.first_seen,
            last_seen=summary.last_seen,
        )


@strawberry.type(description="A merge the profile survived")
class MergeHistoryEntry:
    source_id: strawberry.ID
    at: datetime
    trigger: MergeTrigger
    actor: str

    @classmethod
    def from_domain(cls, record: model.MergeRecord) -> Self:
        return cls(
            source_id=strawberry.ID(record.source_id),
            at=record.at,
            trigger=record.trigger,
            actor=record.actor,
        )


@strawberry.type(description="What an agent needs to recognise and contact the person")
class ContactCard:
    display_name: str | None
    user_id: str | None
    phone: str | None
    email: str | None
    complete: bool = strawberry.field(description="firstName and a phone or an email are present")


def _time_cursor(after: str | None) -> tuple[datetime, str] | None:
    if after is None:
        return None
    decoded = decode_time_cursor(after)
    if decoded is None:
        raise ValidationFailed("after is not a cursor this API returned", field="after")
    return decoded


def _text(values: dict[str, Any], name: str) -> str | None:
    value = values.get(name)
    return value if isinstance(value, str) else None


@strawberry.type(description="A customer profile")
class Profile:
    _profile: strawberry.Private[model.Profile]

    @classmethod
    def from_domain(cls, profile: model.Profile) -> Self:
        return cls(_profile=profile)

    @property
    def _values(self) -> dict[str, Any]:
        return dict(self._profile.properties)

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self._profile.id)

    @strawberry.field
    def user_id(self) -> str | None:
        return self._profile.user_id

    @strawberry.field(description="True once the profile has a userId")
    def identified(self) -> bool:
        return self._profile.identified

    @strawberry.field(description="Every property value, system and custom, as one object")
    def properties(self) -> JSON:
        values = json_values(self._profile.properties)
        values["userId"] = self._profile.user_id
        values["createdAt"] = json_values({"t": self._profile.created_at})["t"]
        values["updatedAt"] = json_values({"t": self._profile.updated_at})["t"]
        return JSON({k: v for k, v in sorted(values.items()) if v is not None})

    @strawberry.field
    def first_name(self) -> str | None:
        return _text(self._values, "firstName")

    @strawberry.field
    def last_name(self) -> str | None:
        return _text(self._values, "lastName")

    @strawberry.field
    def gender(self) -> str | None:
        return _text(self._values, "gender")

    @strawberry.field
    def country(self) -> str | None:
        return _text(self._values, "country")

    @strawberry.field
    def city(self) -> str | None:
        return _text(self._values, "city")

    @strawberry.field
    def ip(self) -> str | None:
        return _text(self._values, "ip")

    @strawberry.field
    def latitude(self) -> float | None:
        value = self._values.get("latitude")
        return float(value) if isinstance(value, (int, float)) else None

    @strawberry.field
    def longitude(self) -> float | None:
        value = self._values.get("longitude")
        return float(value) if isinstance(value, (int, float)) else None

    @strawberry.field
    def language(self) -> str | None:
        return _text(self._values, "language")

    @strawberry.field
    def timezone(self) -> str | None:
        return _text(self._values, "timezone")

    @strawberry.field
    def email(self) -> str | None:
        return _text(self._values, "email")

    @strawberry.field
    def phone(self) -> str | None:
        return _text(self._values, "phone")

    @strawberry.field
    def last_channel(self) -> str | None:
        return _text(self._values, "lastChannel")

    @strawberry.field(description="Date of birth, YYYY-MM-DD")
    def dob(self) -> str | None:
        return _text(self._values, "dob")

    @strawberry.field
    def last_session(self) -> datetime | None:
        value = self._values.get("lastSession")
        return value if isinstance(value, datetime) else None

    @strawberry.field
    def email_optin(self) -> bool | None:
        value = self._values.get("emailOptin")
        return value if isinstance(value, bool) else None

    @strawberry.field
    def sms_optin(self) -> bool | None:
        value = self._values.get("smsOptin")
        return value if isinstance(value, bool) else None

    @strawberry.field
    def whats_app_optin(self) -> bool | None:
        value = self._values.get("whatsAppOptin")
        return value if isinstance(value, bool) else None

    @strawberry.field
    def tags(self) -> list[str]:
        return self._profile.tags

    @strawberry.field
    def created_at(self) -> datetime:
        return self._profile.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self._profile.updated_at

    @strawberry.field(description="Identity keys bound to this profile")
    async def identities(self, info: Info) -> list[Identity]:
        found = await info.context.loaders.identities.load(self._profile.id)
        return [Identity.from_domain(i) for i in found]

    @strawberry.field(description="This profile's events, newest first, optionally of one name")
    async def event_history(
        self, info: Info, name: str | None = None, first: int = 20, after: str | None = None
    ) -> EventConnection:
        page = await info.context.activity.event_history(
            self._profile.tenant, self._profile.id, name, first, _time_cursor(after)
        )
        return EventConnection.from_page(page.events, page.has_next)

    @strawberry.field(description="Conversations and events in one timeline, newest first")
    async def activity(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> ActivityConnection:
        page = await info.context.activity.activity(
            self._profile.tenant, self._profile.id, first, _time_cursor(after)
        )
        return ActivityConnection.from_page(page.items, page.has_next)

    @strawberry.field(description="Per-event first time, last time and count")
    def events(self) -> list[EventSummary]:
        return [EventSummary.from_domain(e) for e in self._profile.events]

    @strawberry.field(description="Merges this profile survived, oldest first")
    def merge_history(self) -> list[MergeHistoryEntry]:
        return [MergeHistoryEntry.from_domain(r) for r in self._profile.merge_history]

    @strawberry.field(description="Ids of the profiles merged into this one")
    def merged_from(self) -> list[strawberry.ID]:
        return [strawberry.ID(r.source_id) for r in self._profile.merge_history]

    @strawberry.field(
        description="When this profile was read through an id that was merged away: "
        "this profile's id (the survivor); otherwise null"
    )
    def merged_into(self) -> strawberry.ID | None:
        if self._profile.redirected_from is None:
            return None
        return strawberry.ID(self._profile.id)

    @strawberry.field(description="The merged-away id this profile was read through, if any")
    def requested_id(self) -> strawberry.ID | None:
        redirected = self._profile.redirected_from
        return strawberry.ID(redirected) if redirected else None

    @strawberry.field
    def contact_card(self) -> ContactCard:
        values = self._values
        first, last = _text(values, "firstName"), _text(values, "lastName")
        phone, email = _text(values, "phone"), _text(values, "email")
        name = " ".join(p for p in (first, last) if p) or None
        return ContactCard(
            display_name=name or self._profile.user_id or phone or email,
            user_id=self._profile.user_id,
            phone=phone,
            email=email,
            complete=bool(first and (phone or email)),
        )


@strawberry.type(description="A property's name and type")
class PropertyDefinition:
    name: str
    type: PropertyType
    description: str
    system: bool
    created_at: datetime | None

    @classmethod
    def from_domain(cls, definition: DomainPropertyDefinition) -> Self:
        return cls(
            name=definition.name,
            type=definition.type,
            description=definition.description,
            system=definition.system,
            created_at=definition.created_at,
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class ProfileEdge:
    node: Profile
    cursor: str


@strawberry.type
class ProfileConnection:
    edges: list[ProfileEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, profiles: list[model.Profile], has_next: bool, after: bool) -> Self:
        edges = [
            ProfileEdge(node=Profile.from_domain(p), cursor=encode_profile_cursor(p.id))
            for p in profiles
        ]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=has_next,
                has_previous_page=after,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )


@strawberry.type
class CapturePayload:
    profile: Profile
    created: bool = strawberry.field(description="True when this call created the profile")


@strawberry.type
class IdentifyPayload:
    profile: Profile
    outcome: IdentifyOutcome
    merged_profile_id: strawberry.ID | None = strawberry.field(
        description="The id that was merged into `profile` (outcome MERGED)"
    )


@strawberry.type
class TrackEventPayload:
    profile: Profile
    event: Event
    counted: bool = strawberry.field(
        description="False when the eventId had been tracked already (the retry counts once)"
    )


@strawberry.type(description="Another profile that looks like the same person; nothing merges")
class MergeSuggestion:
    profile: Profile
    matched_on: list[str] = strawberry.field(description="phone, email and/or externalId")
    score: float = strawberry.field(description="0 to 1: how strongly the matches suggest it")


@strawberry.type
class MergePayload:
    profile: Profile = strawberry.field(description="The survivor (the target)")
    merged_profile_id: strawberry.ID = strawberry.field(description="The source, now a redirect")


@strawberry.type
class DetachPayload:
    profile: Profile = strawberry.field(description="The profile the identity left")
    detached: Profile = strawberry.field(description="The new profile holding the identity")
