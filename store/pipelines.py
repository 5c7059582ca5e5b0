"""Update pipelines that apply a rule atomically inside one document write.

Every client value is wrapped in `$literal`, so a string such as "$x" is never read as a field
path. Absent and null are treated alike: a null read back means absent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from domain.merge import MergePlan
from domain.model import CaptureWrite, MergeRecord, ProfileChange, Touch
from store.documents import record_to_doc

Stage = dict[str, Any]


def lit(value: Any) -> dict[str, Any]:
    return {"$literal": value}


def _field(name: str) -> str:
    return f"$props.{name}"


def _present(name: str) -> dict[str, Any]:
    return {"$ne": [{"$ifNull": [_field(name), None]}, None]}


def _fill(name: str, value: Any) -> dict[str, Any]:
    return {"$ifNull": [_field(name), lit(value)]}


def _fill_group(stage: Stage, group: Mapping[str, Any]) -> None:
    """The group's values, each written only if the profile has none of the group's members
    (a member without a value counts in that test and is not written: see merge.fill_group)."""
    has_any = {"$or": [_present(name) for name in group]}
    for name, value in group.items():
        if value is not None:
            # A member the profile lacks stays absent (not null) when the group is not filled.
            absent = {"$cond": [has_any, "$$REMOVE", lit(value)]}
            stage[f"props.{name}"] = {"$cond": [_present(name), _field(name), absent]}


def _list(name: str) -> dict[str, Any]:
    return _array(_field(name))


def _array(path: str) -> dict[str, Any]:
    return {"$ifNull": [path, []]}


def _append_new(path: str, values: Sequence[Any]) -> dict[str, Any]:
    """Current items in their order, then the new ones that are not there yet."""
    return {
        "$concatArrays": [
            _array(path),
            {
                "$filter": {
                    "input": lit(list(dict.fromkeys(values))),
                    "as": "item",
                    "cond": {"$eq": [{"$in": ["$$item", _array(path)]}, False]},
                }
            },
        ]
    }


def _union(name: str, values: Sequence[Any]) -> dict[str, Any]:
    return _append_new(_field(name), values)


def _touch(stage: Stage, touch: Touch | None) -> None:
    """The last contact moves only forwards: channel and time together (see merge.touched)."""
    if touch is None:
        return
    current = {"$ifNull": ["$props.lastSession", None]}
    newer = {"$or": [{"$eq": [current, None]}, {"$lte": [current, lit(touch.at)]}]}
    channel = lit(touch.channel) if touch.channel else "$$REMOVE"
    kept = {"$cond": [_present("lastChannel"), "$props.lastChannel", "$$REMOVE"]}
    stage["props.lastSession"] = {"$cond": [newer, lit(touch.at), "$props.lastSession"]}
    stage["props.lastChannel"] = {"$cond": [newer, channel, kept]}


def _mark_readded(stage: Stage, additions: Mapping[str, Sequence[Any]]) -> None:
    """A write that adds list items marks those a merge's source alone had brought as added
    again, so an unmerge leaves them (see domain.unmerge)."""
    if not additions:
        return
    again = {
        "$or": [
            {"$and": [{"$eq": ["$$e.n", lit(name)]}, {"$in": ["$$e.i", lit(list(values))]}]}
            for name, values in additions.items()
        ]
    }
    marked = {
        "$map": {
            "input": "$sourceOnly",
            "as": "e",
            "in": {"$cond": [again, {"$mergeObjects": ["$$e", {"r": True}]}, "$$e"]},
        }
    }
    stage["sourceOnly"] = {"$cond": [{"$isArray": "$sourceOnly"}, marked, "$$REMOVE"]}


def _lists(values: Mapping[str, Any]) -> dict[str, Sequence[Any]]:
    return {k: v for k, v in values.items() if isinstance(v, list)}


def _match_keys(stage: Stage, keys: Sequence[str]) -> None:
    if keys:
        stage["matchKeys"] = _append_new("$matchKeys", keys)


def capture_pipeline(tenant: str, write: CaptureWrite, now: datetime) -> list[Stage]:
    stage: Stage = {f"props.{k}": lit(v) for k, v in write.set.items()}
    stage.update({f"props.{k}": _fill(k, v) for k, v in write.fill.items()})
    for group in write.fill_groups:
        _fill_group(stage, group)
    stage.update(
        {
            "tenant": lit(tenant),
            "createdAt": {"$ifNull": ["$createdAt", lit(now)]},
            "updatedAt": lit(now),
        }
    )
    _match_keys(stage, write.match_keys)
    _touch(stage, write.touch)
    _mark_readded(stage, _lists(write.set))
    # A first write to a profile being born is its activation.
    return [{"$set": stage}, {"$unset": ["state", "stateAt", "birth"]}]


def change_pipeline(change: ProfileChange, now: datetime) -> list[Stage]:
    stage: Stage = {f"props.{k}": lit(v) for k, v in change.set.items()}
    if change.add_tags or change.remove_tags:
        tags: Any = _union("tags", change.add_tags) if change.add_tags else _list("tags")
        if change.remove_tags:
            tags = {
                "$filter": {
                    "input": tags,
                    "as": "tag",
                    "cond": {"$eq": [{"$in": ["$$tag", lit(list(change.remove_tags))]}, False]},
                }
            }
        stage["props.tags"] = tags
    stage["updatedAt"] = lit(now)
    _match_keys(stage, change.match_keys)
    additions = dict(_lists(change.set))
    if change.add_tags:
        additions["tags"] = [*additions.get("tags", ()), *change.add_tags]
    _mark_readded(stage, additions)
    stages: list[Stage] = [{"$set": stage}]
    if change.unset:
        stages.append({"$unset": [f"props.{name}" for name in change.unset]})
    return stages


def fold_pipeline(plan: MergePlan, record: MergeRecord | None, now: datetime) -> list[Stage]:
    """The merge rule as one update: fill, union, the pairs; with a record, the merge is
    appended to the history (without one, it is an identify's values filling a profile)."""
    stage: Stage = {f"props.{k}": _fill(k, v) for k, v in plan.fill.items()}
    stage.update({f"props.{k}": _union(k, v) for k, v in plan.union.items()})
    for group in plan.groups:
        _fill_group(stage, group)
    if plan.user_id is not None:
        stage["userId"] = {"$ifNull": ["$userId", lit(plan.user_id)]}
    _match_keys(stage, plan.match_keys)
    _touch(stage, plan.touch)
    if plan.keys:
        stage["keys"] = _append_new("$keys", plan.keys)
    if record is not None:
        entry = {"$mergeObjects": [lit(record_to_doc(record)), _undo_facts(plan)]}
        stage["mergeHistory"] = {"$concatArrays": [{"$ifNull": ["$mergeHistory", []]}, [entry]]}
        if plan.union:
            stage["sourceOnly"] = _source_only(plan, record.merge_id)
    else:
        _mark_readded(stage, plan.union)  # an identify's values: a write like a capture
    stage["updatedAt"] = lit(now)
    return [{"$set": stage}]


def _undo_facts(plan: MergePlan) -> dict[str, Any]:
    """What the fold does to the target, read from the target as the fold finds it (the same
    stage, so the same moment): the names it fills, whether it gives the userId, and the last
    contact it replaces. An unmerge undoes exactly these (domain.unmerge)."""
    filled: list[Any] = [
        {"$cond": [_present(name), lit([]), lit([name])]} for name in (*plan.fill, *plan.union)
    ]
    for group in plan.groups:
        has_any = {"$or": [_present(name) for name in group]}
        members = [name for name, value in group.items() if value is not None]
        filled.append({"$cond": [has_any, lit([]), lit(members)]})
    facts: dict[str, Any] = {"filled": {"$concatArrays": filled} if filled else lit([])}
    if plan.user_id is not None:
        facts["gaveUserId"] = {"$eq": [{"$ifNull": ["$userId", None]}, None]}
    if plan.touch is not None:
        current = {"$ifNull": ["$props.lastSession", None]}
        facts["contact"] = {
            "replaced": {
                "$or": [{"$eq": [current, None]}, {"$lte": [current, lit(plan.touch.at)]}]
            },
            "session": current,
            "channel": {"$ifNull": ["$props.lastChannel", None]},
        }
    return facts


def _source_only(plan: MergePlan, merge_id: str) -> dict[str, Any]:
    """The target's record of list items only this merge's source brought."""
    brought = [
        {
            "$map": {
                "input": {
                    "$filter": {
                        "input": lit(list(dict.fromkeys(values))),
                        "as": "item",
                        "cond": {"$eq": [{"$in": ["$$item", _list(name)]}, False]},
                    }
                },
                "as": "item",
                "in": {"m": lit(merge_id), "n": lit(name), "i": "$$item"},
            }
        }
        for name, values in plan.union.items()
    ]
    return {"$concatArrays": [_array("$sourceOnly"), *brought]}


def values_update(values: Mapping[str, Any]) -> dict[str, Any]:
    return {f"props.{k}": v for k, v in values.items()}


def list_caps(additions: Mapping[str, Sequence[Any]], cap: int) -> dict[str, Any]:
    """A condition (for `$expr`) that each list, with the additions unioned in, stays within
    `cap` items: lists are capped in the deciding write, never truncated."""
    sizes = [
        {"$lte": [{"$size": {"$setUnion": [_list(name), lit(list(values))]}}, cap]}
        for name, values in additions.items()
    ]
    return sizes[0] if len(sizes) == 1 else {"$and": sizes}


def summaries_pipeline(
    rows: Sequence[Mapping[str, Any]], touch: Touch | None, now: datetime
) -> list[Stage]:
    """Event summaries recomputed from the stored events, merged in monotonically (the larger
    count and last time, the earlier first time), so concurrent refreshes converge; and the
    contact the event was, if it came from a channel."""
    stage: Stage = {"updatedAt": lit(now)}
    for row in rows:
        path = f"events.{row['_id']}"
        stage[f"{path}.count"] = {"$max": [f"${path}.count", lit(row["count"])]}
        stage[f"{path}.last"] = {"$max": [f"${path}.last", lit(row["last"])]}
        stage[f"{path}.first"] = {"$min": [f"${path}.first", lit(row["first"])]}
    _touch(stage, touch)
    return [{"$set": stage}]
