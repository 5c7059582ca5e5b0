"""`python -m server demo`: a realistic data set loaded through the service's own use cases
(capture, identify, track, record, edit, define, segments), so it obeys every rule the API
does. Run twice, it changes nothing: senders, userIds, event ids and conversation ids are
fixed, and each use case is idempotent on them."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.access import Role, check_tenant
from domain.activity import ActivityService, ConversationInput
from domain.autocapture import CaptureContext
from domain.errors import DomainError
from domain.events import ConversationKind, ConversationStatus
from domain.identity import Channel
from domain.properties import PropertyType
from domain.segments import SegmentService
from domain.services import ProfileService
from server.app import SystemClock
from server.config import Settings
from store.activity import MongoActivityStore
from store.keys import KeyStore
from store.mongo import MongoProfileStore
from store.segments import MongoSegmentStore

ACTOR = "demo"
PEOPLE = 150
CONCURRENCY = 8

FIRST = [
    "Aarav",
    "Priya",
    "Rohan",
    "Ananya",
    "Vikram",
    "Meera",
    "Arjun",
    "Kavya",
    "Sanjay",
    "Divya",
    "Rahul",
    "Neha",
    "Karan",
    "Isha",
    "Amit",
    "Pooja",
    "Ravi",
    "Sneha",
    "Nikhil",
    "Lakshmi",
    "Maria",
    "James",
    "Sofia",
    "Lucas",
    "Emma",
    "Noah",
    "Fatima",
    "Omar",
    "Yuki",
    "Chen",
]
LAST = [
    "Sharma",
    "Rao",
    "Iyer",
    "Patel",
    "Nair",
    "Gupta",
    "Reddy",
    "Menon",
    "Das",
    "Singh",
    "Kumar",
    "Joshi",
    "Pillai",
    "Bose",
    "Shah",
    "Garcia",
    "Smith",
    "Rossi",
    "Müller",
    "Silva",
    "Tanaka",
    "Wang",
    "Haddad",
    "Okafor",
]
PLACES = (
    ("IN", "Bengaluru", "Asia/Kolkata"),
    ("IN", "Mumbai", "Asia/Kolkata"),
    ("IN", "Chennai", "Asia/Kolkata"),
    ("IN", "Delhi", "Asia/Kolkata"),
    ("AE", "Dubai", "Asia/Dubai"),
    ("GB", "London", "Europe/London"),
    ("US", "Austin", "America/Chicago"),
    ("SG", "Singapore", "Asia/Singapore"),
)
CHANNELS = (
    Channel.WHATSAPP,
    Channel.WEB,
    Channel.SMS,
    Channel.EMAIL,
    Channel.MESSENGER,
    Channel.INSTAGRAM,
    Channel.VOICE,
    Channel.API,
)
PLANS = ("free", "starter", "pro", "enterprise")
INTERESTS = ("shoes", "electronics", "travel", "books", "fitness", "home")
EVENTS = ("page_view", "page_view", "page_view", "add_to_cart", "purchase", "support_request")
SUBJECTS = ("Order status", "Refund", "Delivery delay", "Change address", "Product question")
CUSTOM = (
    ("plan", PropertyType.STRING, "Subscription plan"),
    ("lifetimeValue", PropertyType.NUMBER, "Total spent, in the tenant's currency"),
    ("interests", PropertyType.LIST, "What the person asked about"),
    ("signupDate", PropertyType.DATE, "When the person signed up"),
)
SEGMENTS = (
    (
        "Repeat buyers",
        "Two purchases or more in the last 90 days",
        {"event": {"name": "purchase", "minCount": 2, "withinLastDays": 90}},
    ),
    (
        "VIPs in India",
        "Tagged vip, in India",
        {
            "and": [
                {"tag": "vip"},
                {"property": {"name": "country", "op": "EQ", "value": "IN"}},
            ]
        },
    ),
    (
        "Pro and enterprise",
        "On a paid plan above starter",
        {"property": {"name": "plan", "op": "IN", "value": ["pro", "enterprise"]}},
    ),
)


@dataclass
class DemoReport:
    """What a run loaded (counting what an earlier run already had)."""

    profiles: int = 0  # in the tenant at the end
    identified: int = 0
    merges: int = 0
    suggestions: int = 0
    events: int = 0
    conversations: int = 0
    segments: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Person:
    index: int
    channel: Channel
    sender: str
    properties: dict[str, Any]
    user_id: str | None
    tags: tuple[str, ...]


def _phone(i: int) -> str:
    return f"+9198{45000000 + i * 7919 % 10_000_000:08d}"


def _sender(channel: Channel, i: int, email: str) -> str:
    match channel:
        case Channel.WHATSAPP | Channel.SMS | Channel.VOICE:
            return _phone(i).lstrip("+")
        case Channel.EMAIL:
            return email
        case Channel.WEB:
            return f"visitor-{i:04d}"
        case _:
            return f"{channel.value.lower()}-{100000 + i}"


def _crowd(rng: random.Random, now: datetime, size: int) -> list[_Person]:
    """The demo's people: the same list for the same seed."""
    result = []
    for i in range(size):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        country, city, timezone = rng.choice(PLACES)
        email = f"{first}.{last}{i}@example.com".lower().replace("ü", "u")
        channel = CHANNELS[i % len(CHANNELS)]
        identified = i % 5 != 0 and i % 7 != 3  # about two in three
        properties: dict[str, Any] = {"country": country, "city": city, "timezone": timezone}
        if identified or rng.random() < 0.4:
            properties |= {"firstName": first, "lastName": last}
        if identified:
            properties |= {
                "email": email,
                "phone": _phone(i),
                "plan": rng.choice(PLANS),
                "lifetimeValue": rng.randrange(0, 40_000),
                "interests": rng.sample(INTERESTS, rng.randrange(1, 3)),
                "signupDate": (now - timedelta(days=rng.randrange(30, 900))).date().isoformat(),
                "emailOptin": rng.random() < 0.6,
            }
        tags = tuple(
            t
            for t, p in (("vip", 0.12), ("newsletter", 0.3), ("churned", 0.08))
            if rng.random() < p
        )
        result.append(
            _Person(
                i,
                channel,
                _sender(channel, i, email),
                properties,
                # An email sender is identified by its address already.
                f"cust-{i:04d}" if identified and channel is not Channel.EMAIL else None,
                tags,
            )
        )
    return result


async def load_demo(
    tenant: str,
    services: ProfileService,
    activity: ActivityService,
    segments: SegmentService,
    now: datetime,
    *,
    size: int = PEOPLE,
) -> DemoReport:
    """Load the data set into `tenant` (idempotently) and say what it holds."""
    started = time.perf_counter()
    tenant = check_tenant(tenant)
    report = DemoReport()
    rng = random.Random(f"profile360-demo-{tenant}")
    existing = {d.name for d in await services.definitions.all(tenant)}
    for name, type_, description in CUSTOM:
        if name not in existing:
            await services.define_property(tenant, name, type_, description)
    crowd = _crowd(rng, now, size)
    plans = {p.index: random.Random(f"{tenant}-{p.index}") for p in crowd}
    limit = asyncio.Semaphore(CONCURRENCY)

    async def guarded(p: _Person) -> None:
        async with limit:
            try:
                await person(p)
            except DomainError as exc:
                report.errors.append(f"person {p.index}: {exc}")

    async def person(p: _Person) -> None:
        r = plans[p.index]
        result = await services.capture(
            tenant, p.channel, p.sender, p.properties, CaptureContext(), actor=ACTOR
        )
        profile_id = result.profile.id
        if p.user_id is not None:
            identified = await services.identify(
                tenant, p.channel, p.sender, p.user_id, {}, actor=ACTOR
            )
            profile_id = identified.profile.id
            report.identified += 1
            if p.index % 4 == 1:
                # The same person browsed the website anonymously first, then logged in there:
                # identify merges the visitor into the customer.
                visitor = f"web-before-login-{p.index:04d}"
                await services.capture(
                    tenant, Channel.WEB, visitor, {"language": "en"}, CaptureContext(), actor=ACTOR
                )
                await services.identify(tenant, Channel.WEB, visitor, p.user_id, {}, actor=ACTOR)
                report.merges += 1
            if p.index % 4 == 2 or p.index % 8 == 1:
                # A look-alike never identified: an anonymous chat that gave the same email.
                await services.capture(
                    tenant,
                    Channel.MESSENGER,
                    f"messenger-lookalike-{p.index:04d}",
                    {"email": p.properties["email"], "firstName": p.properties["firstName"]},
                    CaptureContext(),
                    actor=ACTOR,
                )
                report.suggestions += 1
        if p.tags:
            await services.update_profile(tenant, profile_id, {}, [], list(p.tags), [])
        for k in range(r.randrange(0, 6)):
            name = r.choice(EVENTS)
            at = now - timedelta(days=r.uniform(0, 90))
            properties = {"amount": r.randrange(199, 9999)} if name == "purchase" else {}
            await activity.track_event(
                tenant,
                name=name,
                properties=properties,
                occurred_at=at,
                event_id=f"demo-{p.index}-{k}",
                profile_id=profile_id,
            )
            report.events += 1
        if r.random() < 0.45:
            started_at = now - timedelta(days=r.uniform(0, 60))
            open_ = r.random() < 0.4
            await activity.record_conversation(
                tenant,
                ConversationInput(
                    id=f"demo-conversation-{p.index}",
                    channel=p.channel,
                    kind=r.choice((ConversationKind.CHAT, ConversationKind.TICKET)),
                    status=ConversationStatus.OPEN if open_ else ConversationStatus.CLOSED,
                    subject=r.choice(SUBJECTS),
                    started_at=started_at,
                    updated_at=min(now, started_at + timedelta(minutes=r.randrange(5, 600))),
                    closed_at=None
                    if open_
                    else min(now, started_at + timedelta(hours=r.randrange(1, 48))),
                ),
                channel=None,
                sender_id=None,
                profile_id=profile_id,
            )
            report.conversations += 1

    await asyncio.gather(*(guarded(p) for p in crowd))
    named = {s.name for s in await segments.list(tenant)}
    for name, description, where in SEGMENTS:
        if name not in named:
            await segments.create(tenant, name, description, where)
        report.segments += 1
    report.profiles = await services.count(tenant, await services.query(tenant, None, None))
    report.seconds = time.perf_counter() - started
    return report


def summary(report: DemoReport, tenant: str) -> str:
    return (
        f"demo data in tenant '{tenant}' ({report.seconds:.1f} s): {report.profiles} profiles "
        f"from {len(CHANNELS)} channels, {report.identified} identified, "
        f"{report.merges} merged on login, {report.suggestions} pending merge suggestions, "
        f"{report.events} events over 90 days, {report.conversations} conversations, "
        f"{report.segments} segments"
    )


async def run(db: Any, settings: Settings, tenant: str | None, port: int) -> int:
    """The `demo` command: load the data set, then print a key per console role."""
    tenant = check_tenant(tenant or settings.dev_tenant)
    store = MongoProfileStore(db)
    clock = SystemClock()
    services = ProfileService(
        store,
        clock,
        _NoGeo(),
        max_identities=settings.max_identities,
        max_merges=settings.max_merges,
    )
    activity = ActivityService(services, store, MongoActivityStore(db), clock)
    segments = SegmentService(MongoSegmentStore(db), services, clock)
    report = await load_demo(tenant, services, activity, segments, clock.now())
    print(summary(report, tenant))
    for line in report.errors[:10]:
        print(f"  skipped {line}", file=sys.stderr)
    keys = KeyStore(db)
    print(f"\nOpen http://{settings.host}:{port}/console and sign in with a key:")
    for role in (Role.ADMIN, Role.AGENT, Role.VIEWER):
        _, secret = await keys.create(tenant, role, f"demo {role.value}", clock.now())
        print(f"  {role.value:<6} {secret}")
    return 1 if report.errors else 0


class _NoGeo:
    def locate(self, ip: str) -> None:
        return None
