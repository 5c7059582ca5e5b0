"""The unmerge rules on plain profiles (domain.unmerge): what leaves the survivor, what stays
and is said to, and which later merge blocks an undo."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.model import (
    Kept,
    MergeRecord,
    MergeTrigger,
    Profile,
    SourceItem,
    Touch,
    Undone,
)
from domain.unmerge import apply_undo, blocking_merge, undo_on_survivor

AT = datetime(2024, 1, 1, tzinfo=UTC)
LATER = datetime(2024, 6, 1, tzinfo=UTC)


def _record(merge_id: str = "m1", **kw: Any) -> MergeRecord:
    return MergeRecord(
        merge_id=merge_id,
        source_id=f"s-{merge_id}",
        at=AT,
        trigger=MergeTrigger.MANUAL,
        actor="a",
        **kw,
    )


def _survivor(props: dict[str, Any], *records: MergeRecord, **kw: Any) -> Profile:
    return Profile(
        id="t",
        tenant="acme",
        user_id=kw.pop("user_id", None),
        properties=props,
        created_at=AT,
        updated_at=AT,
        merge_history=records,
        **kw,
    )


def test_a_filled_value_unchanged_since_is_removed_and_a_changed_one_is_kept() -> None:
    record = _record(
        source_properties={"gender": "m", "dob": "1990-01-01"}, filled=("gender", "dob")
    )
    survivor = _survivor({"gender": "x", "dob": "1990-01-01", "language": "en"}, record)

    undo = undo_on_survivor(survivor, record)

    assert apply_undo(survivor.properties, undo) == {"gender": "x", "language": "en"}
    assert undo.removed == (Kept("dob"),)
    assert undo.kept == (Kept("gender"),)


def test_a_group_goes_whole_only_while_none_of_it_changed() -> None:
    source = {"country": "IN", "timezone": "Asia/Kolkata", "firstName": "Sam", "lastName": "Lee"}
    record = _record(source_properties=source, filled=tuple(source))
    survivor = _survivor({**source, "firstName": "Samuel"}, record)

    undo = undo_on_survivor(survivor, record)

    assert apply_undo(survivor.properties, undo) == {"firstName": "Samuel", "lastName": "Lee"}
    assert set(undo.kept) == {Kept("firstName"), Kept("lastName")}


def test_a_source_only_item_goes_unless_it_was_added_again() -> None:
    record = _record(source_properties={"tags": ["a", "s", "r"]})
    items = (SourceItem("m1", "tags", "s"), SourceItem("m1", "tags", "r", readded=True))
    survivor = _survivor({"tags": ["a", "s", "r"]}, record, source_only=items)

    undo = undo_on_survivor(survivor, record)

    assert apply_undo(survivor.properties, undo) == {"tags": ["a", "r"]}
    assert undo.removed == (Kept("tags", "s", is_item=True),)
    assert undo.kept == (Kept("tags", "r", is_item=True),)
    assert undo.source_only == ()


def test_a_list_the_merge_created_goes_when_it_empties() -> None:
    record = _record(source_properties={"tags": ["s"]}, filled=("tags",))
    survivor = _survivor({"tags": ["s"]}, record, source_only=(SourceItem("m1", "tags", "s"),))

    assert apply_undo(survivor.properties, undo_on_survivor(survivor, record)) == {}


def test_the_last_contact_the_merge_replaced_comes_back_unless_there_was_a_later_one() -> None:
    record = _record(
        source_properties={"lastSession": LATER, "lastChannel": "WEB"},
        contact_replaced=True,
        prior_contact=Touch("API", AT),
    )
    unchanged = _survivor({"lastSession": LATER, "lastChannel": "WEB"}, record)
    moved_on = _survivor({"lastSession": datetime(2025, 1, 1, tzinfo=UTC), "lastChannel": "SMS"})

    assert apply_undo(unchanged.properties, undo_on_survivor(unchanged, record)) == {
        "lastSession": AT,
        "lastChannel": "API",
    }
    assert undo_on_survivor(moved_on, record).kept == (Kept("lastSession"),)


def test_a_userid_the_source_gave_goes_back() -> None:
    record = _record(source_user_id="u-s", gave_user_id=True)
    undo = undo_on_survivor(_survivor({}, record, user_id="u-s"), record)
    assert undo.remove_user_id
    assert Kept("userId") in undo.removed


def test_a_later_merge_that_met_a_filled_value_blocks_the_undo_until_it_is_undone() -> None:
    first = _record("m1", source_properties={"gender": "m"}, filled=("gender",))
    later = _record("m2", source_properties={"gender": "f"})
    independent = _record("m3", source_properties={"dob": "1990-01-01"}, filled=("dob",))

    assert blocking_merge(_survivor({}, first, independent, later), first) == later
    assert blocking_merge(_survivor({}, first, independent), first) is None
    undone = _record("m2", source_properties={"gender": "f"}, undone=Undone(AT, "a"))
    assert blocking_merge(_survivor({}, first, undone), first) is None


def test_a_merge_that_gave_the_userid_is_blocked_by_any_later_merge() -> None:
    first = _record("m1", source_user_id="u", gave_user_id=True)
    later = _record("m2", source_properties={"dob": "1990-01-01"})
    assert blocking_merge(_survivor({}, first, later), first) == later


def test_a_later_merge_whose_item_this_merge_had_brought_blocks_the_undo() -> None:
    first = _record("m1", source_properties={"tags": ["s"]})
    later = _record("m2", source_properties={"tags": ["s", "z"]})
    survivor = _survivor({}, first, later, source_only=(SourceItem("m1", "tags", "s"),))
    assert blocking_merge(survivor, first) == later


def test_a_later_merge_that_replaced_this_sources_contact_inherits_this_merges_prior_one() -> None:
    brought = {"lastSession": LATER, "lastChannel": "WEB"}
    first = _record(
        "m1", source_properties=brought, contact_replaced=True, prior_contact=Touch("API", AT)
    )
    latest = datetime(2025, 1, 1, tzinfo=UTC)
    later = _record(
        "m2",
        source_properties={"lastSession": latest, "lastChannel": "SMS"},
        contact_replaced=True,
        prior_contact=Touch("WEB", LATER),
    )
    survivor = _survivor({"lastSession": latest, "lastChannel": "SMS"}, first, later)

    undo = undo_on_survivor(survivor, first)

    assert (undo.contact_heir, undo.heir_contact) == ("m2", Touch("API", AT))
    assert blocking_merge(survivor, first) is None


def test_a_later_merge_that_replaced_another_contact_inherits_nothing() -> None:
    first = _record(
        "m1",
        source_properties={"lastSession": LATER, "lastChannel": "WEB"},
        contact_replaced=True,
        prior_contact=Touch("API", AT),
    )
    between = Touch("API", datetime(2024, 9, 1, tzinfo=UTC))
    later = _record("m2", contact_replaced=True, prior_contact=between)

    assert undo_on_survivor(_survivor({}, first, later), first).contact_heir is None


def test_a_list_this_merge_made_that_a_later_merges_items_keep_counts_as_made_by_that_one() -> None:
    first = _record("m1", source_properties={"tags": ["a"]}, filled=("tags",))
    later = _record("m2", source_properties={"tags": ["b"]})
    items = (SourceItem("m1", "tags", "a"), SourceItem("m2", "tags", "b"))
    survivor = _survivor({"tags": ["a", "b"]}, first, later, source_only=items)

    undo = undo_on_survivor(survivor, first)

    assert apply_undo(survivor.properties, undo) == {"tags": ["b"]}
    assert undo.lists_made == {"m2": ("tags",)}
    after = _survivor(
        {"tags": ["b"]},
        first,
        _record("m2", source_properties={"tags": ["b"]}, filled=("tags",)),
        source_only=undo.source_only,
    )
    assert apply_undo(after.properties, undo_on_survivor(after, after.merge_history[1])) == {}
