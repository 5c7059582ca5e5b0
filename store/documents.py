"""Conversions between MongoDB documents and domain objects. Raw documents stop here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from domain.identity import Channel, Identity, IdentityKey, IdentityType
from domain.model import (
    Birth,
    EventSummary,
    Kept,
    KeyBinding,
    MergeClaim,
    MergeRecord,
    MergeTrigger,
    Profile,
    ProfileState,
    SourceItem,
    Touch,
    Undone,
    UnmergeClaim,
    UnmergeRecord,
)
from domain.properties import PropertyDefinition, PropertyType

Document = Mapping[str, Any]


def utc(value: datetime) -> datetime:
    """Datetimes come back naive (UTC) unless the client is tz-aware; make them aware."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _props(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    # A value of null means absent: some engines write null where MongoDB leaves a gap.
    if not raw:
        return {}
    return {k: (utc(v) if isinstance(v, datetime) else v) for k, v in raw.items() if v is not None}


def claim_from_doc(raw: Mapping[str, Any] | None) -> MergeClaim | None:
    if not raw:
        return None
    return MergeClaim(
        merge_id=raw["mergeId"],
        target_id=raw["target"],
        at=utc(raw["at"]),
        trigger=MergeTrigger(raw["trigger"]),
        actor=raw["actor"],
        folded=bool(raw.get("folded")),
    )


def birth_to_doc(birth: Birth) -> dict[str, Any]:
    return {
        "at": birth.at,
        "keys": [
            {
                "type": b.key.type.value,
                "value": b.key.value,
                "channel": b.channel.value if b.channel else None,
                "from": b.from_profile,
                "conversations": b.take_conversations,
            }
            for b in birth.keys
        ],
    }


def birth_from_doc(raw: Mapping[str, Any] | None) -> Birth | None:
    if not raw:
        return None
    return Birth(
        at=utc(raw["at"]),
        keys=tuple(
            KeyBinding(
                key=IdentityKey(IdentityType(k["type"]), k["value"]),
                channel=Channel(k["channel"]) if k.get("channel") else None,
                from_profile=k.get("from"),
                take_conversations=bool(k.get("conversations")),
            )
            for k in raw.get("keys") or ()
        ),
    )


def claim_to_doc(claim: MergeClaim) -> dict[str, Any]:
    return {
        "mergeId": claim.merge_id,
        "target": claim.target_id,
        "at": claim.at,
        "trigger": claim.trigger.value,
        "actor": claim.actor,
    }


def record_to_doc(record: MergeRecord) -> dict[str, Any]:
    return {
        "mergeId": record.merge_id,
        "sourceId": record.source_id,
        "at": record.at,
        "trigger": record.trigger.value,
        "actor": record.actor,
        "sourceUserId": record.source_user_id,
        "sourceProperties": dict(record.source_properties),
        "sourceKeys": list(record.source_keys),
        "sourceMatchKeys": list(record.source_match_keys),
    }


def _touch(raw: Mapping[str, Any] | None) -> Touch | None:
    if not raw or not isinstance(raw.get("session"), datetime):
        return None
    return Touch(channel=raw.get("channel") or "", at=utc(raw["session"]))


def _record_from_doc(raw: Mapping[str, Any]) -> MergeRecord:
    contact = raw.get("contact") or {}
    undone = raw.get("undone")
    return MergeRecord(
        merge_id=raw["mergeId"],
        source_id=raw["sourceId"],
        at=utc(raw["at"]),
        trigger=MergeTrigger(raw["trigger"]),
        actor=raw.get("actor") or "",
        source_user_id=raw.get("sourceUserId"),
        source_properties=_props(raw.get("sourceProperties")),
        source_keys=tuple(raw.get("sourceKeys") or ()),
        source_match_keys=tuple(raw.get("sourceMatchKeys") or ()),
        filled=tuple(raw.get("filled") or ()),
        gave_user_id=bool(raw.get("gaveUserId")),
        contact_replaced=bool(contact.get("replaced")),
        prior_contact=_touch(contact),
        undone=Undone(at=utc(undone["at"]), actor=undone.get("actor") or "") if undone else None,
        recorded="filled" in raw,
    )


def unmerge_claim_to_doc(claim: UnmergeClaim) -> dict[str, Any]:
    return {
        "mergeId": claim.merge_id,
        "sourceId": claim.source_id,
        "at": claim.at,
        "actor": claim.actor,
        "keys": list(claim.keys),
    }


def _unmerge_claim(raw: Mapping[str, Any] | None) -> UnmergeClaim | None:
    if not raw:
        return None
    return UnmergeClaim(
        merge_id=raw["mergeId"],
        source_id=raw["sourceId"],
        at=utc(raw["at"]),
        actor=raw.get("actor") or "",
        keys=tuple(raw.get("keys") or ()),
    )


def kept_to_doc(kept: Kept) -> dict[str, Any]:
    return {"name": kept.name, "item": kept.item} if kept.is_item else {"name": kept.name}


def unmerge_record_to_doc(record: UnmergeRecord) -> dict[str, Any]:
    return {
        "mergeId": record.merge_id,
        "sourceId": record.source_id,
        "survivorId": record.survivor_id,
        "at": record.at,
        "actor": record.actor,
        "removed": [kept_to_doc(k) for k in record.removed],
        "kept": [kept_to_doc(k) for k in record.kept],
    }


def _unmerge_record(raw: Mapping[str, Any]) -> UnmergeRecord:
    return UnmergeRecord(
        merge_id=raw["mergeId"],
        source_id=raw["sourceId"],
        survivor_id=raw["survivorId"],
        at=utc(raw["at"]),
        actor=raw.get("actor") or "",
        removed=_kept(raw.get("removed")),
        kept=_kept(raw.get("kept")),
    )


def _kept(raw: Any) -> tuple[Kept, ...]:
    return tuple(Kept(name=k["name"], item=k.get("item"), is_item="item" in k) for k in raw or ())


def source_item_to_doc(item: SourceItem) -> dict[str, Any]:
    doc: dict[str, Any] = {"m": item.merge_id, "n": item.name, "i": item.item}
    if item.readded:
        doc["r"] = True
    return doc


def _source_items(raw: Any) -> tuple[SourceItem, ...]:
    return tuple(
        SourceItem(merge_id=e["m"], name=e["n"], item=e["i"], readded=bool(e.get("r")))
        for e in raw or ()
    )


def _events(raw: Mapping[str, Any] | None) -> tuple[EventSummary, ...]:
    if not raw:
        return ()
    return tuple(
        EventSummary(
            name=name,
            count=int(summary["count"]),
            first_seen=utc(summary["first"]),
            last_seen=utc(summary["last"]),
        )
        for name, summary in sorted(raw.items())
        if summary
    )


def profile_from_doc(doc: Document) -> Profile:
    return Profile(
        id=doc["_id"],
        tenant=doc["tenant"],
        user_id=doc.get("userId"),
        properties=_props(doc.get("props")),
        created_at=utc(doc.get("createdAt") or doc.get("updatedAt") or datetime.now(UTC)),
        updated_at=utc(doc.get("updatedAt") or doc.get("createdAt") or datetime.now(UTC)),
        events=_events(doc.get("events")),
        # A tombstone keeps only merge ids: those are not records to show.
        merge_history=tuple(
            _record_from_doc(r) for r in doc.get("mergeHistory") or () if "sourceId" in r
        ),
        merged_into=doc.get("mergedInto"),
        merged_by=doc.get("mergedBy"),
        merging=claim_from_doc(doc.get("merging")),
        state=ProfileState(doc.get("state") or ProfileState.ACTIVE),
        birth=birth_from_doc(doc.get("birth")),
        keys=tuple(doc.get("keys") or ()),
        user_id_claim=(doc.get("userIdClaim") or {}).get("value"),
        match_keys=tuple(doc.get("matchKeys") or ()),
        unmerging=_unmerge_claim(doc.get("unmerging")),
        unmerge_of=(doc.get("unmergeOf") or {}).get("mergeId"),
        unmerges=tuple(_unmerge_record(r) for r in doc.get("unmerges") or ()),
        source_only=_source_items(doc.get("sourceOnly")),
        returned_keys=tuple(doc.get("returnedKeys") or ()),
    )


def identity_from_doc(doc: Document) -> Identity:
    return Identity(
        key=IdentityKey(IdentityType(doc["type"]), doc["value"]),
        profile_id=doc["profileId"],
        channels=tuple(Channel(c) for c in doc.get("channels") or ()),
    )


def definition_from_doc(doc: Document) -> PropertyDefinition:
    created = doc.get("createdAt")
    return PropertyDefinition(
        name=doc["name"],
        type=PropertyType(doc["type"]),
        description=doc.get("description") or "",
        system=False,
        created_at=utc(created) if created else None,
    )
