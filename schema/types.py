"""GraphQL output types, each built from a domain object with `from_domain`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

import strawberry

from domain import model
from domain.identity import Identity as DomainIdentity
from domain.properties import PropertyDefinition as DomainPropertyDefinition
from schema.activity import ActivityConnection, Event, EventConnection
from schema.context import ActivityKey, EventHistoryKey, Info
from schema.cursors import encode_profile_cursor, time_after
from schema.enums import Channel, IdentifyOutcome, IdentityType, MergeTrigger, PropertyType
from schema.scalars import JSON, json_value, json_values


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


def _text(values: Mapping[str, Any], name: str) -> str | None:
    value = values.get(name)
    return value if isinstance(value, str) else None


def _number(values: Mapping[str, Any], name: str) -> float | None:
    value = values.get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _flag(values: Mapping[str, Any], name: str) -> bool | None:
    value = values.get(name)
    return value if isinstance(value, bool) else None


def _contact_card(profile: model.Profile) -> ContactCard:
    values = profile.properties
    first, last = _text(values, "firstName"), _text(values, "lastName")
    phone, email = _text(values, "phone"), _text(values, "email")
    name = " ".join(p for p in (first, last) if p) or None
    return ContactCard(
        display_name=name or profile.user_id or phone or email,
        user_id=profile.user_id,
        phone=phone,
        email=email,
        complete=bool(first and (phone or email)),
    )


def _all_properties(profile: model.Profile) -> JSON:
    values = json_values(profile.properties)
    values["userId"] = profile.user_id
    values["createdAt"] = json_value(profile.created_at)
    values["updatedAt"] = json_value(profile.updated_at)
    return JSON({k: v for k, v in sorted(values.items()) if v is not None})


@strawberry.type(description="A customer profile")
class Profile:
    # Plain fields, filled once from the domain object: graphql-core resolves them by attribute,
    # far cheaper than a resolver call per field on every profile of a page.
    id: strawberry.ID
    user_id: str | None
    identified: bool = strawberry.field(description="True once the profile has a userId")
    properties: JSON = strawberry.field(
        description="Every property value, system and custom, as one object"
    )
    first_name: str | None
    last_name: str | None
    gender: str | None
    country: str | None
    city: str | None
    ip: str | None
    latitude: float | None
    longitude: float | None
    language: str | None
    timezone: str | None
    email: str | None
    phone: str | None
    last_channel: str | None
    dob: str | None = strawberry.field(description="Date of birth, YYYY-MM-DD")
    last_session: datetime | None
    email_optin: bool | None
    sms_optin: bool | None
    whats_app_optin: bool | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    events: list[EventSummary] = strawberry.field(
        description="Per-event first time, last time and count"
    )
    merge_history: list[MergeHistoryEntry] = strawberry.field(
        description="Merges this profile survived, oldest first"
    )
    merged_from: list[strawberry.ID] = strawberry.field(
        description="Ids of the profiles merged into this one"
    )
    merged_into: strawberry.ID | None = strawberry.field(
        description="When this profile was read through an id that was merged away: "
        "this profile's id (the survivor); otherwise null"
    )
    requested_id: strawberry.ID | None = strawberry.field(
        description="The merged-away id this profile was read through, if any"
    )
    contact_card: ContactCard
    _profile: strawberry.Private[model.Profile]

    @classmethod
    def from_domain(cls, profile: model.Profile) -> Self:
        values = profile.properties
        last_session = values.get("lastSession")
        redirected = profile.redirected_from
        return cls(
            id=strawberry.ID(profile.id),
            user_id=profile.user_id,
            identified=profile.identified,
            properties=_all_properties(profile),
            first_name=_text(values, "firstName"),
            last_name=_text(values, "lastName"),
            gender=_text(values, "gender"),
            country=_text(values, "country"),
            city=_text(values, "city"),
            ip=_text(values, "ip"),
            latitude=_number(values, "latitude"),
            longitude=_number(values, "longitude"),
            language=_text(values, "language"),
            timezone=_text(values, "timezone"),
            email=_text(values, "email"),
            phone=_text(values, "phone"),
            last_channel=_text(values, "lastChannel"),
            dob=_text(values, "dob"),
            last_session=last_session if isinstance(last_session, datetime) else None,
            email_optin=_flag(values, "emailOptin"),
            sms_optin=_flag(values, "smsOptin"),
            whats_app_optin=_flag(values, "whatsAppOptin"),
            tags=profile.tags,
            created_at=profile.created_at,
            updated_at=profile.updated_at,
            events=[EventSummary.from_domain(e) for e in profile.events],
            merge_history=[MergeHistoryEntry.from_domain(r) for r in profile.merge_history],
            merged_from=[strawberry.ID(r.source_id) for r in profile.merge_history],
            merged_into=strawberry.ID(profile.id) if redirected else None,
            requested_id=strawberry.ID(redirected) if redirected else None,
            contact_card=_contact_card(profile),
            _profile=profile,
        )

    @strawberry.field(description="Identity keys bound to this profile")
    async def identities(self, info: Info) -> list[Identity]:
        found = await info.context.loaders.identities.load(self._profile.id)
        return [Identity.from_domain(i) for i in found]

    @strawberry.field(description="This profile's events, newest first, optionally of one name")
    async def event_history(
        self, info: Info, name: str | None = None, first: int = 20, after: str | None = None
    ) -> EventConnection:
        key = EventHistoryKey(
            self._profile.tenant, self._profile.id, name, first, time_after(after)
        )
        page = await info.context.loaders.event_history.load(key)
        return EventConnection.from_page(page.events, page.has_next)

    @strawberry.field(description="Conversations and events in one timeline, newest first")
    async def activity(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> ActivityConnection:
        key = ActivityKey(self._profile.tenant, self._profile.id, first, time_after(after))
        page = await info.context.loaders.activity.load(key)
        return ActivityConnection.from_page(page.items, page.has_next)


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
