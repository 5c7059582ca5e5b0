"""The invariant checker: a paged scan of the stored documents against domain.invariants, and
the repairs that recovery's own rules allow.

Every collection is read in `_id` order, a page at a time, and each page costs a fixed number
of commands whatever it holds: the profiles a page of records points at, the identity keys
and event counts of a page of profiles, and each hop along a page's redirects are one `$in`
query each. The scan reads raw documents; the repairs go through the lifecycle (recovery,
`rehome`) or are conditional writes that lose to any concurrent change.

An operation under way can look like a problem for a moment (a userId key claimed just before
its profile records the userId, a record written just before its profile was merged, a key
reserved just before it is bound): run the checker on a quiet database, or run it twice.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.activity import ActivityService
from domain.identity import IdentityKey, IdentityType, user_id_key
from domain.invariants import RECOVERY_WINDOW_SECONDS, ProblemKind, Repaired, Report
from domain.lifecycle import MAX_REDIRECT_HOPS, ChainTooLong, Lifecycle, Recovered
from domain.model import ProfileState
from domain.ports import Clock, RecordKind
from store.documents import Document, utc
from store.lists import chunked, one_of
from store.mongo import MongoProfileStore

PAGE_SIZE = 500
_MERGED = ProfileState.MERGED.value
_ERASED = ProfileState.ERASED.value
_UNDER_WAY = {
    s.value
    for s in (
        ProfileState.PENDING,
        ProfileState.MERGING,
        ProfileState.ERASING,
        ProfileState.UNMERGING,
    )
}
_PROFILE_FIELDS = {
    "tenant": 1,
    "state": 1,
    "stateAt": 1,
    "userId": 1,
    "keys": 1,
    "events": 1,
    "mergedInto": 1,
    "unmerging.at": 1,
}
_RECORD_FIELDS: Mapping[RecordKind, dict[str, int]] = {
    RecordKind.IDENTITY: {"tenant": 1, "profileId": 1, "type": 1, "value": 1},
    RecordKind.EVENT: {"tenant": 1, "profileId": 1, "pending": 1, "receivedAt": 1},
    RecordKind.CONVERSATION: {"tenant": 1, "profileId": 1},
}
_COLLECTIONS: Mapping[RecordKind, str] = {
    RecordKind.IDENTITY: "identities",
    RecordKind.EVENT: "events",
    RecordKind.CONVERSATION: "conversations",
}
# Records that `Lifecycle.rehome` puts right: moved to their survivor, or deleted.
_REHOMED = {
    ProblemKind.KEY_WITHOUT_PROFILE,
    ProblemKind.RECORD_ON_MERGED,
    ProblemKind.RECORD_ON_ERASED,
    ProblemKind.RECORD_WITHOUT_PROFILE,
}
_LEDGER = {ProblemKind.KEY_NOT_IN_LEDGER, ProblemKind.LEAKED_RESERVATION}
_WITHOUT_PROFILE: Mapping[RecordKind, ProblemKind] = {
    RecordKind.IDENTITY: ProblemKind.KEY_WITHOUT_PROFILE,
    RecordKind.EVENT: ProblemKind.RECORD_WITHOUT_PROFILE,
    RecordKind.CONVERSATION: ProblemKind.RECORD_WITHOUT_PROFILE,
}


@dataclass(frozen=True, slots=True)
class _Finding:
    kind: ProblemKind
    example: str
    tenant: str
    profile_id: str
    record: RecordKind | None = None
    record_id: str = ""
    value: str = ""  # a userId key's value


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class InvariantChecker:
    """Scans profiles, identity keys, events and conversations for broken invariants."""

    def __init__(
        self,
        db: Any,
        *,
        page_size: int = PAGE_SIZE,
        window_seconds: float = RECOVERY_WINDOW_SECONDS,
        clock: Clock | None = None,
    ) -> None:
        self._db = db
        self._profiles = db["profiles"]
        self._identities = db["identities"]
        self._events = db["events"]
        self._page = page_size
        self._window = timedelta(seconds=window_seconds)
        self._clock = clock or _SystemClock()

    async def scan(self, tenant: str | None = None) -> Report:
        """Every problem found in one tenant (or in all of them)."""
        report = Report()
        async for finding in self._findings(tenant):
            report.add(finding.kind, finding.example)
        return report

    async def repair(
        self, tenant: str | None, lifecycle: Lifecycle, activity: ActivityService
    ) -> Repaired:
        """Finish what was left half-done (whatever its age), then put right what recovery's
        rules decide: records move to their survivor or are deleted with their erased profile,
        userId keys are settled as identify settles them, event summaries and key ledgers are
        recomputed from the records. What needs a person (redirect cycles, ghosts) stays."""
        # A redirect cycle stops a recovery pass (ChainTooLong); the scan reports the cycle.
        recovered: Recovered | None = None
        settled = 0
        with contextlib.suppress(ChainTooLong):
            recovered = await lifecycle.recover(tenant, older_than_seconds=0)
        with contextlib.suppress(ChainTooLong):
            settled = await activity.recover(older_than_seconds=0)
        store = MongoProfileStore(self._db)
        done: dict[str, int] = defaultdict(int)
        rebuilt: set[str] = set()
        # Records are put right first, so the profile pages read after them see where they
        # rest now (a lazy generator: each page is read after the fixes of the pages before).
        async for finding in self._findings(tenant):
            kind = finding.kind
            if kind in _REHOMED and finding.record is not None:
                done[await self._rehome(lifecycle, finding, finding.record)] += 1
            elif kind is ProblemKind.USER_ID_KEY_MISMATCH:
                limit = lifecycle.merger.limits.identities
                done["user_ids"] += await self._settle_user_id(store, finding, limit)
            elif kind is ProblemKind.SUMMARY_MISMATCH:
                done["summaries"] += await self._recompute_summaries(finding)
            elif kind in _LEDGER and finding.profile_id not in rebuilt:
                rebuilt.add(finding.profile_id)
                done["ledgers"] += await self._rebuild_ledger(finding)
        return Repaired(
            births=recovered.births if recovered else 0,
            merges=recovered.merges if recovered else 0,
            erasures=recovered.erasures if recovered else 0,
            unmerges=recovered.unmerges if recovered else 0,
            events_settled=settled,
            records_moved=done["moved"],
            records_deleted=done["deleted"],
            user_ids=done["user_ids"],
            summaries=done["summaries"],
            ledgers=done["ledgers"],
        )

    # ----- scanning ------------------------------------------------------------------

    async def _findings(self, tenant: str | None) -> AsyncIterator[_Finding]:
        cutoff = self._clock.now() - self._window
        for kind, name in _COLLECTIONS.items():
            collection = self._db[name]
            async for page in self._pages(collection, _record_query(tenant), _RECORD_FIELDS[kind]):
                profiles = await self._profiles_by_id({d.get("profileId") for d in page})
                for doc in page:
                    for finding in _check_record(kind, doc, profiles, cutoff):
                        yield finding
        async for page in self._pages(self._profiles, _profile_query(tenant), _PROFILE_FIELDS):
            active = [d for d in page if not d.get("state")]
            bound = await self._bound_identities(active)
            counted = await self._event_counts(active)
            for doc in page:
                for finding in _check_profile(doc, bound, counted, cutoff):
                    yield finding
            async for finding in self._redirects([d for d in page if d.get("state") == _MERGED]):
                yield finding

    async def _pages(
        self, collection: Any, query: dict[str, Any], fields: Mapping[str, int]
    ) -> AsyncIterator[list[Document]]:
        after: str | None = None
        while True:
            page_query = query
            if after is not None:
                page_query = {"$and": [query, {"_id": {"$gt": after}}]}
            cursor = collection.find(page_query, dict(fields)).sort("_id", 1)
            page: list[Document] = await cursor.limit(self._page).to_list(self._page)
            if not page:
                return
            yield page
            if len(page) < self._page:
                return
            after = page[-1]["_id"]

    async def _profiles_by_id(self, ids: set[Any]) -> dict[str, Document]:
        wanted = sorted(i for i in ids if isinstance(i, str))
        if not wanted:
            return {}
        fields = {"tenant": 1, "state": 1, "userId": 1}
        cursor = self._profiles.find(one_of("_id", wanted), fields)
        return {doc["_id"]: doc async for doc in cursor}

    async def _bound_identities(self, profiles: Sequence[Document]) -> dict[str, list[str]]:
        """The ids of the identity keys bound to each of these profiles."""
        query = _owned_by(profiles)
        if query is None:
            return {}
        bound: dict[str, list[str]] = defaultdict(list)
        async for doc in self._identities.find(query, {"profileId": 1}).sort("_id", 1):
            bound[doc["profileId"]].append(doc["_id"])
        return bound

    async def _event_counts(
        self, profiles: Sequence[Document]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """Per profile and event name: the count, first and last occurrence, and how many of
        those events are still pending."""
        query = _owned_by(profiles)
        if query is None:
            return {}
        counted: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        async for row in await self._events.aggregate([{"$match": query}, *_SUMMARY_GROUP]):
            counted[row["_id"]["p"]][row["_id"]["n"]] = row
        return counted

    async def _redirects(self, merged: Sequence[Document]) -> AsyncIterator[_Finding]:
        """Follow each redirect of a page, all of them one hop at a time (one query a hop)."""
        known: dict[str, Document] = {d["_id"]: d for d in merged}
        chains = [(d, [d["_id"]], _redirect_of(d)) for d in merged]
        for _ in range(MAX_REDIRECT_HOPS):
            if not chains:
                return
            unknown = sorted({n for _, _, n in chains if n and n not in known})
            if unknown:
                fields = {"tenant": 1, "state": 1, "mergedInto": 1}
                async for doc in self._profiles.find(one_of("_id", unknown), fields):
                    known[doc["_id"]] = doc
            going: list[tuple[Document, list[str], str]] = []
            for start, seen, next_id in chains:
                target = known.get(next_id)
                if target is None or target.get("tenant") != start.get("tenant"):
                    yield _profile_finding(ProblemKind.BROKEN_REDIRECT, start)
                elif target.get("state") == _ERASED:
                    yield _profile_finding(ProblemKind.REDIRECT_TO_ERASED, start)
                elif target.get("state") == _MERGED:
                    if next_id in seen:
                        yield _profile_finding(ProblemKind.REDIRECT_CYCLE, start)
                    else:
                        going.append((start, [*seen, next_id], _redirect_of(target)))
            chains = going
        for start, _, _ in chains:  # longer than the service ever follows
            yield _profile_finding(ProblemKind.REDIRECT_CYCLE, start)

    # ----- repairs -------------------------------------------------------------------

    async def _rehome(self, lifecycle: Lifecycle, finding: _Finding, record: RecordKind) -> str:
        """Move a record along its profile's redirects, or delete it if they end erased."""
        try:
            resting = await lifecycle.rehome(
                finding.tenant, record, finding.record_id, finding.profile_id
            )
        except ChainTooLong:
            return "unrepaired"
        if resting is None:
            return "deleted"
        return "moved" if resting.id != finding.profile_id else "unrepaired"

    async def _settle_user_id(self, store: MongoProfileStore, finding: _Finding, limit: int) -> int:
        """As identify settles a userId key: a profile without a userId gets the key's, and a
        key whose profile holds another userId lost a race and is released."""
        tenant, profile_id = finding.tenant, finding.profile_id
        profile = await store.get_profile(tenant, profile_id)
        if profile is None or not profile.active or profile.user_id == finding.value:
            return 0
        if profile.user_id is None:
            now = self._clock.now()
            settled = await store.set_user_id(tenant, profile_id, finding.value, {}, now)
            return int(settled is not None)
        key = IdentityKey(IdentityType.USER_ID, finding.value)
        await store.release_identity(tenant, key, profile_id)
        return 1

    async def _recompute_summaries(self, finding: _Finding) -> int:
        """Replace an active profile's event summaries with the exact values of its events,
        unless the profile changed since it was read (its own refresh then takes over)."""
        mine = {"_id": finding.profile_id, "tenant": finding.tenant, "state": None}
        doc = await self._profiles.find_one(mine, {"updatedAt": 1})
        if doc is None:
            return 0
        rows = await self._events.aggregate(
            [
                {"$match": {"tenant": finding.tenant, "profileId": finding.profile_id}},
                *_SUMMARY_GROUP,
            ]
        )
        events = {
            row["_id"]["n"]: {"count": row["count"], "first": row["first"], "last": row["last"]}
            async for row in rows
        }
        result = await self._profiles.update_one(
            {**mine, "updatedAt": doc.get("updatedAt")},
            {"$set": {"events": events, "updatedAt": self._clock.now()}},
        )
        return int(result.modified_count)

    async def _rebuild_ledger(self, finding: _Finding) -> int:
        """Set an active profile's key ledger to the keys bound to it, unless the ledger changed
        since it was read."""
        mine = {"_id": finding.profile_id, "tenant": finding.tenant, "state": None}
        doc = await self._profiles.find_one(mine, {"keys": 1})
        if doc is None:
            return 0
        owned = {"tenant": finding.tenant, "profileId": finding.profile_id}
        bound = [d["_id"] async for d in self._identities.find(owned, {"_id": 1}).sort("_id", 1)]
        old = doc.get("keys")
        if set(old or ()) == set(bound):
            return 0
        result = await self._profiles.update_one({**mine, "keys": old}, {"$set": {"keys": bound}})
        return int(result.modified_count)


_SUMMARY_GROUP: list[dict[str, Any]] = [
    {
        "$group": {
            "_id": {"p": "$profileId", "n": "$name"},
            "count": {"$sum": 1},
            "first": {"$min": "$occurredAt"},
            "last": {"$max": "$occurredAt"},
            "pending": {"$sum": {"$cond": [{"$eq": ["$pending", True]}, 1, 0]}},
        }
    }
]


def _record_query(tenant: str | None) -> dict[str, Any]:
    if tenant is None:
        return {}
    # Record ids start with "tenant|": a range of `_id`s, read in the `_id` index's order.
    return {"tenant": tenant, "_id": {"$gt": f"{tenant}|", "$lt": f"{tenant}}}"}}


def _profile_query(tenant: str | None) -> dict[str, Any]:
    return {} if tenant is None else {"tenant": tenant}


def _owned_by(profiles: Sequence[Document]) -> dict[str, Any] | None:
    """Records of these profiles, one `$in` per tenant (so the tenant-first indexes serve)."""
    by_tenant: dict[str, list[str]] = defaultdict(list)
    for doc in profiles:
        by_tenant[doc["tenant"]].append(doc["_id"])
    if not by_tenant:
        return None
    return {
        "$or": [
            {"tenant": tenant, **one_of("profileId", chunk)}
            for tenant, ids in by_tenant.items()
            for chunk in chunked(ids)
        ]
    }


def _redirect_of(doc: Document) -> str:
    target = doc.get("mergedInto")
    return target if isinstance(target, str) else ""


def _profile_finding(kind: ProblemKind, doc: Document, example: str | None = None) -> _Finding:
    return _Finding(kind, example or doc["_id"], doc.get("tenant", ""), doc["_id"])


def _check_record(
    kind: RecordKind, doc: Document, profiles: Mapping[str, Document], cutoff: datetime
) -> Iterator[_Finding]:
    tenant, profile_id = doc.get("tenant", ""), doc.get("profileId")
    profile = profiles.get(profile_id) if isinstance(profile_id, str) else None
    problem: ProblemKind | None = None
    if profile is None or profile.get("tenant") != tenant:
        problem = _WITHOUT_PROFILE[kind]
    elif profile.get("state") == _MERGED:
        problem = ProblemKind.RECORD_ON_MERGED
    elif profile.get("state") == _ERASED:
        problem = ProblemKind.RECORD_ON_ERASED
    elif (
        kind is RecordKind.IDENTITY
        and doc.get("type") == IdentityType.USER_ID.value
        and profile.get("userId") != doc.get("value")
    ):
        problem = ProblemKind.USER_ID_KEY_MISMATCH
    if problem is not None:
        yield _Finding(
            problem,
            doc["_id"],
            tenant,
            profile_id if isinstance(profile_id, str) else "",
            record=kind,
            record_id=doc["_id"],
            value=str(doc.get("value") or ""),
        )
    if kind is RecordKind.EVENT and doc.get("pending") and _before(doc.get("receivedAt"), cutoff):
        yield _Finding(ProblemKind.UNSETTLED_EVENT, doc["_id"], tenant, str(profile_id))


def _check_profile(
    doc: Document,
    bound: Mapping[str, list[str]],
    counted: Mapping[str, Mapping[str, Mapping[str, Any]]],
    cutoff: datetime,
) -> Iterator[_Finding]:
    state = doc.get("state")
    if state in _UNDER_WAY and _before(doc.get("stateAt"), cutoff):
        yield _profile_finding(ProblemKind.STALLED_OPERATION, doc)
    unmerging = doc.get("unmerging")
    if isinstance(unmerging, Mapping) and _before(unmerging.get("at"), cutoff):
        yield _profile_finding(ProblemKind.STALLED_OPERATION, doc)  # an unmerge half-done
    if state:
        return
    profile_id, tenant = doc["_id"], doc["tenant"]
    keys = bound.get(profile_id, [])
    if not keys:
        yield _profile_finding(ProblemKind.GHOST_PROFILE, doc)
    ledger = list(dict.fromkeys(doc.get("keys") or ()))
    held, reserved = set(keys), set(ledger)
    for key in keys:
        if key not in reserved:
            yield _profile_finding(ProblemKind.KEY_NOT_IN_LEDGER, doc, key)
    for entry in ledger:
        if entry not in held:
            yield _profile_finding(ProblemKind.LEAKED_RESERVATION, doc)
    user_id = doc.get("userId")
    if user_id is not None and user_id_key(user_id).storage_id(tenant) not in held:
        yield _profile_finding(ProblemKind.USER_ID_WITHOUT_KEY, doc)
    if _summaries_differ(doc.get("events") or {}, counted.get(profile_id, {})):
        yield _profile_finding(ProblemKind.SUMMARY_MISMATCH, doc)


def _summaries_differ(stored: Mapping[str, Any], counted: Mapping[str, Mapping[str, Any]]) -> bool:
    for name in set(stored) | set(counted):
        row, summary = counted.get(name), stored.get(name)
        if row is not None and row["pending"]:
            continue  # its settling refreshes the summary (or the event is reported unsettled)
        if row is None or not summary:
            if row is not None or summary:
                return True
            continue
        if (
            summary.get("count") != row["count"]
            or not _same_time(summary.get("first"), row["first"])
            or not _same_time(summary.get("last"), row["last"])
        ):
            return True
    return False


def _same_time(stored: Any, counted: Any) -> bool:
    if not isinstance(stored, datetime) or not isinstance(counted, datetime):
        return False
    return utc(stored) == utc(counted)


def _before(at: Any, cutoff: datetime) -> bool:
    """Whether a moment is at or before the cut-off; a missing one is as old as can be."""
    return not isinstance(at, datetime) or utc(at) <= cutoff
