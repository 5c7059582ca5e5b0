"""What must hold of a tenant's documents once every operation has finished or been recovered."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from domain.activity import ActivityService
from domain.merging import DEFAULT_MAX_IDENTITIES, DEFAULT_MAX_MERGES
from domain.ports import Location, MergeLimits
from domain.services import ProfileService
from server.app import SystemClock
from store.activity import MongoActivityStore
from store.mongo import MongoProfileStore

UNFINISHED = ("PENDING", "MERGING", "ERASING", "UNMERGING")
DEFAULT_LIMITS = MergeLimits(merges=DEFAULT_MAX_MERGES, identities=DEFAULT_MAX_IDENTITIES)


class _Nowhere:
    def locate(self, ip: str) -> Location | None:
        return None


async def assert_invariants(db: Any, tenant: str, *, limits: MergeLimits = DEFAULT_LIMITS) -> None:
    """Recover as a restarted process would (a fresh one, over the same database, with the
    given limits), then check, from the raw documents of `tenant`:

    - no profile is left PENDING, MERGING, ERASING or UNMERGING (nor marked as undoing a
      merge), and no event is left pending;
    - every identity key points at an active profile whose `keys` ledger holds the key;
    - every event and conversation points at an active profile;
    - every USER_ID key's profile has that userId, and every profile with a userId has its key;
    - every active profile's event summaries equal those computed from its stored events;
    - every active profile holds at least one identity key;
    - every redirect chain ends at an existing profile, without a loop;
    - no record points at an erased profile (implied by the above, said for the message).
    """
    store = MongoProfileStore(db)
    clock = SystemClock()
    services = ProfileService(
        store, clock, _Nowhere(), max_identities=limits.identities, max_merges=limits.merges
    )
    await services.lifecycle.recover()
    await ActivityService(services, store, MongoActivityStore(db), clock).recover()

    profiles = {d["_id"]: d async for d in db["profiles"].find({"tenant": tenant})}
    active = {pid: d for pid, d in profiles.items() if "state" not in d}
    errors: list[str] = []

    for pid, doc in profiles.items():
        if doc.get("state") in UNFINISHED:
            errors.append(f"profile {pid} is left {doc['state']}")
        if "state" in doc and doc["state"] is None:
            errors.append(f"profile {pid} has state null instead of no state")
        if doc.get("unmerging"):
            errors.append(f"profile {pid} is left undoing merge {doc['unmerging']['mergeId']}")
    pending = await db["events"].count_documents({"tenant": tenant, "pending": True})
    if pending:
        errors.append(f"{pending} events are left pending")

    bound: dict[str, list[str]] = defaultdict(list)
    async for identity in db["identities"].find({"tenant": tenant}):
        key, owner = identity["_id"], identity["profileId"]
        bound[owner].append(key)
        if owner not in active:
            errors.append(f"identity {key} points at {_describe(profiles, owner)}")
        elif key not in (active[owner].get("keys") or ()):
            errors.append(f"identity {key} is not in the keys ledger of its profile {owner}")
        if identity["type"] == "USER_ID" and owner in active:
            held = active[owner].get("userId")
            if held != identity["value"]:
                errors.append(f"userId key {key} points at {owner}, whose userId is {held!r}")

    for pid, doc in active.items():
        if not bound.get(pid):
            errors.append(f"active profile {pid} holds no identity key")
        user_id = doc.get("userId")
        if user_id is not None and f"{tenant}|USER_ID|{user_id}" not in bound.get(pid, ()):
            errors.append(f"profile {pid} has userId {user_id!r} but not its key")

    computed: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for kind in ("events", "conversations"):
        async for record in db[kind].find({"tenant": tenant}):
            owner = record["profileId"]
            if owner not in active:
                errors.append(f"{kind[:-1]} {record['_id']} points at {_describe(profiles, owner)}")
            if kind == "events":
                summary = computed[owner].setdefault(
                    record["name"],
                    {"count": 0, "first": record["occurredAt"], "last": record["occurredAt"]},
                )
                summary["count"] += 1
                summary["first"] = min(summary["first"], record["occurredAt"])
                summary["last"] = max(summary["last"], record["occurredAt"])
    for pid, doc in active.items():
        stored = {name: dict(s) for name, s in (doc.get("events") or {}).items() if s}
        if stored != computed.get(pid, {}):
            errors.append(
                f"profile {pid} summarises events {stored}, its events say {computed.get(pid, {})}"
            )

    for pid, doc in profiles.items():
        seen = [pid]
        current = doc
        while current.get("mergedInto"):
            nxt = current["mergedInto"]
            if nxt in seen:
                errors.append(f"redirect chain from {pid} loops: {[*seen, nxt]}")
                break
            seen.append(nxt)
            if nxt not in profiles:
                errors.append(f"redirect chain from {pid} ends at the missing id {nxt}")
                break
            current = profiles[nxt]

    assert not errors, "invariants broken:\n  " + "\n  ".join(errors)


def _describe(profiles: dict[str, Any], profile_id: str) -> str:
    doc = profiles.get(profile_id)
    if doc is None:
        return f"the missing profile {profile_id}"
    return f"profile {profile_id} in state {doc.get('state')}"
