"""GraphQL output types, each built from a domain object with `from_domain`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Self

import strawberry

from domain import model
from domain.identity import Identity as DomainIdentity
from domain.matching import Suggestion as DomainSuggestion
from domain.properties import PropertyDefinition as DomainPropertyDefinition
from schema.activity import ActivityConnection, EventConnection
from schema.context import ActivityKey, EventHistoryKey, Info
from schema.cursors import encode_profile_cursor, time_after
from schema.enums import Channel, IdentityType, MatchedOn, MergeTrigger, PropertyType
from schema.ids import profile_id
from schema.node import Node
from schema.pages import DEFAULT_PAGE, After, First, PageInfo, page_size
from schema.scalars import JSON, json_value, json_values
from schema.unmerge_history import UnmergeHistoryEntry


def _field(description: str) -> Any:
    return strawberry.field(description=description)


@strawberry.type(description="One identifier of a person and the channels it was seen on")
class Identity:
    type: IdentityType = _field("What kind of identifier it is")
    value: str = _field("The identifier in its normal form (E.164 phone, lower-case email, ...)")
    channels: list[Channel] = _field("The channels this identifier has written from")

    @classmethod
    def from_domain(cls, identity: DomainIdentity) -> Self:
        return cls(
            type=identity.key.type, value=identity.key.value, channels=list(identity.channels)
        )


@strawberry.type(description="How often and when a profile did one kind of event")
class EventSummary:
    name: str = _field("The event's name")
    count: int = _field("How many times it happened (a retried eventId counts once)")
    first_seen: datetime = _field("When it first happened")
    last_seen: datetime = _field("When it last happened")

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
    merge_id: strawberry.ID = _field("The merge's id: what unmergeProfiles and unmergePreview take")
    source_id: strawberry.ID = _field("The profile that merged in (now a redirect to this one)")
    at: datetime = _field("When the merge happened")
    trigger: MergeTrigger = _field("What started it")
    actor: str = _field("The name of the API key that caused it")
    undone_at: datetime | None = _field(
        "When the merge was undone (unmergeProfiles); null while it stands"
    )
    undone_by: str | None = _field("The name of the API key that undid the merge, if it was undone")

    @classmethod
    def from_domain(cls, record: model.MergeRecord) -> Self:
        undone = record.undone
        return cls(
            merge_id=strawberry.ID(record.merge_id),
            source_id=strawberry.ID(profile_id(record.source_id)),
            at=record.at,
            trigger=record.trigger,
            actor=record.actor,
            undone_at=undone.at if undone else None,
            undone_by=undone.actor if undone else None,
        )


@strawberry.type(description="What an agent needs to recognise and contact the person")
class ContactCard:
    display_name: str | None = _field(
        "First and last name, else the userId, phone or email: whatever is known first"
    )
    user_id: str | None = _field("The person's userId, if identified")
    phone: str | None = _field("Phone number in E.164 form")
    email: str | None = _field("Email address")
    complete: bool = _field("True when firstName and a phone or an email are present")


def _text(values: Mapping[str, Any], name: str) -> str | None:
    value = values.get(name)
    return value if isinstance(value, str) else None


def _number(values: Mapping[str, Any], name: str) -> float | None:
    value = values.get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _flag(values: Mapping[str, Any], name: str) -> bool | None:
    value = values.get(name)
    return value if isinstance(value, bool) else None


def _channel(values: Mapping[str, Any]) -> Channel | None:
    value = values.get("lastChannel")
    return Channel(value) if isinstance(value, str) and value in Channel.__members__ else None


def _date(values: Mapping[str, Any], name: str) -> date | None:
    value = values.get(name)
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


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


@strawberry.type(description="Everything profile360 knows about one person")
class Profile(Node):
    # Plain fields, filled once from the domain object: graphql-core resolves them by attribute,
    # far cheaper than a resolver call per field on every profile of a page.
    user_id: str | None = _field("The person's userId, unique in the tenant; null until identified")
    identified: bool = _field("True once the profile has a userId")
    properties: JSON = _field("Every property value, system and custom, as one object")
    first_name: str | None = _field("First name")
    last_name: str | None = _field("Last name")
    gender: str | None = _field("Gender, as given")
    country: str | None = _field("ISO 3166-1 alpha-2 country code, e.g. IN")
    city: str | None = _field("City (from a GeoIP City database, when one is configured)")
    ip: str | None = _field("Last known IP address")
    latitude: float | None = _field("Latitude in degrees, with city")
    longitude: float | None = _field("Longitude in degrees, with city")
    language: str | None = _field("Preferred language, e.g. en or en-IN")
    timezone: str | None = _field("IANA time zone, e.g. Asia/Kolkata")
    email: str | None = _field("Email address")
    phone: str | None = _field("Phone number in E.164 form")
    last_channel: Channel | None = _field("The channel of the most recent contact")
    dob: date | None = _field("Date of birth")
    last_session: datetime | None = _field("When the most recent contact happened")
    email_optin: bool | None = _field("Agreed to receive email")
    sms_optin: bool | None = _field("Agreed to receive text messages")
    whats_app_optin: bool | None = _field("Agreed to receive WhatsApp messages")
    tags: list[str] = _field("The profile's tags, in the order they were added")
    created_at: datetime = _field("When the profile was created")
    updated_at: datetime = _field("When the profile last changed")
    events: list[EventSummary] = _field("Per-event first time, last time and count")
    merge_history: list[MergeHistoryEntry] = _field("Merges this profile survived, oldest first")
    merged_from: list[strawberry.ID] = _field("Ids of the profiles merged into this one")
    unmerge_history: list[UnmergeHistoryEntry] = _field(
        "Merges undone that this profile took part in, oldest first"
    )
    merged_into: strawberry.ID | None = _field(
        "When this profile was read through an id that was merged away: this profile's id "
        "(the survivor); otherwise null"
    )
    requested_id: strawberry.ID | None = _field(
        "The merged-away id this profile was read through, if any"
    )
    contact_card: ContactCard = _field("Name and contact details for an agent, in one place")
    _profile: strawberry.Private[model.Profile]

    @classmethod
    def from_domain(cls, profile: model.Profile) -> Self:
        values = profile.properties
        last_session = values.get("lastSession")
        redirected = profile.redirected_from
        own_id = strawberry.ID(profile_id(profile.id))
        return cls(
            id=own_id,
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
            last_channel=_channel(values),
            dob=_date(values, "dob"),
            last_session=last_session if isinstance(last_session, datetime) else None,
            email_optin=_flag(values, "emailOptin"),
            sms_optin=_flag(values, "smsOptin"),
            whats_app_optin=_flag(values, "whatsAppOptin"),
            tags=profile.tags,
            created_at=profile.created_at,
            updated_at=profile.updated_at,
            events=[EventSummary.from_domain(e) for e in profile.events],
            merge_history=[MergeHistoryEntry.from_domain(r) for r in profile.merge_history],
            merged_from=[
                strawberry.ID(profile_id(r.source_id))
                for r in profile.merge_history
                if r.undone is None
            ],
            unmerge_history=[UnmergeHistoryEntry.from_domain(u) for u in profile.unmerges],
            merged_into=own_id if redirected else None,
            requested_id=strawberry.ID(profile_id(redirected)) if redirected else None,
            contact_card=_contact_card(profile),
            _profile=profile,
        )

    @strawberry.field(description="Identity keys bound to this profile")
    async def identities(self, info: Info) -> list[Identity]:
        found = await info.context.loaders.identities.load(self._profile.id)
        return [Identity.from_domain(i) for i in found]

    @strawberry.field(description="This profile's events, newest first, optionally of one name")
    async def event_history(
        self,
        info: Info,
        name: Annotated[
            str | None, strawberry.argument(description="Only events of this name")
        ] = None,
        first: First = DEFAULT_PAGE,
        after: After = None,
    ) -> EventConnection:
        position = time_after(after)
        key = EventHistoryKey(
            self._profile.tenant, self._profile.id, name, page_size(first), position
        )
        page = await info.context.loaders.event_history.load(key)
        return EventConnection.from_page(page.events, page.has_next, position is not None)

    @strawberry.field(description="Conversations and events in one timeline, newest first")
    async def activity(
        self, info: Info, first: First = DEFAULT_PAGE, after: After = None
    ) -> ActivityConnection:
        position = time_after(after)
        key = ActivityKey(self._profile.tenant, self._profile.id, page_size(first), position)
        page = await info.context.loaders.activity.load(key)
        return ActivityConnection.from_page(page.items, page.has_next, position is not None)


@strawberry.type(description="A property profiles can hold: its name and the type of its values")
class PropertyDefinition:
    name: str = _field("The property's name, as used in properties, filters and exports")
    type: PropertyType = _field("The type every value is checked against")
    description: str = _field("What the property means, in the definer's words")
    system: bool = _field("True for the built-in properties (they cannot be defined again)")
    created_at: datetime | None = _field("When it was defined; null for system properties")

    @classmethod
    def from_domain(cls, definition: DomainPropertyDefinition) -> Self:
        return cls(
            name=definition.name,
            type=definition.type,
            description=definition.description,
            system=definition.system,
            created_at=definition.created_at,
        )


@strawberry.type(description="One profile of a page, with its cursor")
class ProfileEdge:
    node: Profile = _field("The profile")
    cursor: str = _field("Pass as `after` to continue after this profile")


@strawberry.type(description="A page of profiles, oldest first")
class ProfileConnection:
    edges: list[ProfileEdge] = _field("The profiles of this page")
    page_info: PageInfo = _field("Where this page stands")

    @classmethod
    def from_page(cls, profiles: list[model.Profile], has_next: bool, after: bool) -> Self:
        edges = [
            ProfileEdge(node=Profile.from_domain(p), cursor=encode_profile_cursor(p.id))
            for p in profiles
        ]
        return cls(edges=edges, page_info=PageInfo.of([e.cursor for e in edges], has_next, after))


@strawberry.type(description="Another profile that looks like the same person; nothing merges")
class MergeSuggestion:
    profile: Profile = _field("The other profile")
    matched_on: list[MatchedOn] = _field("What the two profiles share")
    score: float = _field("0 to 1: how strongly the matches suggest it")

    @classmethod
    def from_domain(cls, suggestion: DomainSuggestion) -> Self:
        return cls(
            profile=Profile.from_domain(suggestion.profile),
            matched_on=[MatchedOn(m) for m in suggestion.matched_on],
            score=suggestion.score,
        )
