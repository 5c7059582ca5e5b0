"""The merge rule is written twice: `apply_plan` in plain Python (domain.merge) and
`fold_pipeline`, the update the store sends (store.pipelines). For random survivors and sources,
the update run on a real document leaves exactly the properties `apply_plan` computes."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.merge import GROUPS, apply_plan, plan_merge
from domain.model import MergeRecord, MergeTrigger, Profile
from store.pipelines import fold_pipeline
from tests.conftest import Api

T0 = datetime(2024, 1, 1, tzinfo=UTC)
_ids = count()

_text = st.sampled_from(["a", "b", "Asha", "$x", "IN", "US"])
_number = st.one_of(st.integers(-3, 3), st.sampled_from([-0.5, 19.076, 72.8777]))
_items = st.lists(st.sampled_from(["vip", "web", "a", "$b"]), max_size=4)
# Every property of a tenant has one type; the names cover each group and every other kind.
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "country": _text,
    "timezone": _text,
    "firstName": _text,
    "lastName": _text,
    "city": _text,
    "latitude": _number,
    "longitude": _number,
    "email": _text,
    "score": _number,
    "emailOptin": st.booleans(),
    "tags": _items,
    "labels": _items,
}
_properties = st.fixed_dictionaries({}, optional=_VALUES)


def _profile(properties: dict[str, Any]) -> Profile:
    return Profile(
        id="source",
        tenant="acme",
        user_id=None,
        properties=properties,
        created_at=T0,
        updated_at=T0,
    )


def test_the_generated_properties_cover_every_group() -> None:
    assert {name for group in GROUPS for name in group} <= set(_VALUES)


async def _fold(
    api: Api, survivor: dict[str, Any], source: dict[str, Any], *, with_props: bool = True
) -> dict[str, Any]:
    """The survivor's properties after the fold update runs on a real document (one with no
    property map at all when it has no properties and `with_props` is false)."""
    record = MergeRecord("m", "source", T0, MergeTrigger.MANUAL, "agent")
    document: dict[str, Any] = {"_id": f"survivor-{next(_ids)}", "tenant": "acme"}
    if survivor or with_props:
        document["props"] = survivor
    collection = api.db["merge_rule_agreement"]
    await collection.insert_one(document)
    update = fold_pipeline(plan_merge(_profile(source)), record, T0)
    await collection.update_one({"_id": document["_id"]}, update)
    folded: dict[str, Any] = (await collection.find_one({"_id": document["_id"]})).get("props", {})
    return folded


async def test_the_last_contact_rule_agrees_too(api: Api) -> None:
    survivor = {"lastSession": T0.replace(minute=1)}
    source = {"lastSession": T0, "lastChannel": "SMS"}
    assert await _fold(api, survivor, source) == apply_plan(survivor, plan_merge(_profile(source)))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(survivor=_properties, source=_properties, with_props=st.booleans())
async def test_the_fold_update_and_apply_plan_agree(
    api: Api, survivor: dict[str, Any], source: dict[str, Any], with_props: bool
) -> None:
    folded = await _fold(api, survivor, source, with_props=with_props)
    assert folded == apply_plan(survivor, plan_merge(_profile(source)))
