"""Compiling the domain's filter model into MongoDB queries.

Event conditions without a time window read the per-profile summaries; with a window they
count the events collection (one aggregation per condition), so membership is always live.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from domain.filters import (
    And,
    EventCondition,
    Filter,
    FilterOp,
    Not,
    Or,
    PropertyCondition,
    TagCondition,
)
from domain.ports import ProfileQuery
from domain.properties import PropertyType
from store.lists import none_of, one_of

MAX_SEARCH_LENGTH = 100
_TOP_LEVEL = {"userId": "userId", "createdAt": "createdAt", "updatedAt": "updatedAt"}
_SEARCHED = ("props.firstName", "props.lastName", "props.email", "props.phone", "userId")
_COMPARISONS = {FilterOp.GT: "$gt", FilterOp.GTE: "$gte", FilterOp.LT: "$lt", FilterOp.LTE: "$lte"}
_MATCH_ALL: dict[str, Any] = {"_id": {"$exists": True}}


class FilterCompiler:
    """Turns a ProfileQuery into one MongoDB filter document for a tenant."""

    def __init__(self, events: Any, now: datetime) -> None:
        self._events = events
        self._now = now

    async def query(self, tenant: str, query: ProfileQuery) -> dict[str, Any]:
        clauses: list[dict[str, Any]] = [{"tenant": tenant, "state": None}]
        if query.where is not None:
            clauses.append(await self._compile(tenant, query.where))
        if query.search:
            clauses.append(search_clause(query.search))
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    async def _compile(self, tenant: str, node: Filter) -> dict[str, Any]:
        match node:
            case And(parts):
                return {"$and": [await self._compile(tenant, p) for p in parts]}
            case Or(parts):
                return {"$or": [await self._compile(tenant, p) for p in parts]}
            case Not(part):
                return {"$nor": [await self._compile(tenant, part)]}
            case TagCondition(tag):
                return {"props.tags": tag}
            case PropertyCondition():
                return self._property(node)
            case EventCondition():
                if node.within_last_days is None:
                    return _summary_condition(node)
                return await self._windowed_event(tenant, node)
        raise AssertionError(node)  # pragma: no cover

    def _property(self, node: PropertyCondition) -> dict[str, Any]:
        field = _TOP_LEVEL.get(node.name, f"props.{node.name}")
        value = node.value
        match node.op:
            case FilterOp.EQ:
                return {field: value}
            case FilterOp.NE:
                return {field: {"$ne": value}}
            case FilterOp.GT | FilterOp.GTE | FilterOp.LT | FilterOp.LTE:
                return {field: {_COMPARISONS[node.op]: value}}
            case FilterOp.IN:
                return {field: {"$in": list(value)}}
            case FilterOp.CONTAINS:
                if node.type is PropertyType.LIST:
                    return {field: value}
                return {field: {"$regex": re.escape(value), "$options": "i"}}
            case FilterOp.EXISTS:
                return {field: {"$ne": None}}
            case FilterOp.NOT_EXISTS:
                return {field: None}
            case FilterOp.BETWEEN:
                low, high = value
                return {field: {"$gte": low, "$lte": high}}
            case FilterOp.WITHIN_LAST_DAYS:
                since = self._now - timedelta(days=value)
                if node.type is PropertyType.DATE:
                    today = self._now.date().isoformat()
                    return {field: {"$gte": since.date().isoformat(), "$lte": today}}
                return {field: {"$gte": since, "$lte": self._now}}
        raise AssertionError(node.op)  # pragma: no cover

    async def _windowed_event(self, tenant: str, node: EventCondition) -> dict[str, Any]:
        since = self._now - timedelta(days=node.within_last_days or 0)
        pipeline = [
            {"$match": {"tenant": tenant, "name": node.name, "occurredAt": {"$gte": since}}},
            {"$group": {"_id": "$profileId", "count": {"$sum": 1}}},
        ]
        counts = {row["_id"]: row["count"] async for row in await self._events.aggregate(pipeline)}
        if not node.did:
            return none_of("_id", counts)
        low = 1 if node.min_count is None else node.min_count
        high = node.max_count
        if low >= 1:
            ids = [p for p, n in counts.items() if n >= low and (high is None or n <= high)]
            return one_of("_id", ids)
        if high is None:
            return _MATCH_ALL
        return none_of("_id", [p for p, n in counts.items() if n > high])


def _summary_condition(node: EventCondition) -> dict[str, Any]:
    path = f"events.{node.name}.count"
    if not node.did:
        return {"$nor": [{path: {"$gte": 1}}]}
    low = 1 if node.min_count is None else node.min_count
    high = node.max_count
    if low >= 1:
        bounds: dict[str, Any] = {"$gte": low}
        if high is not None:
            bounds["$lte"] = high
        return {path: bounds}
    if high is None:
        return _MATCH_ALL
    return {"$nor": [{path: {"$gt": high}}]}


def search_clause(text: str) -> dict[str, Any]:
    pattern = {"$regex": re.escape(text.strip()[:MAX_SEARCH_LENGTH]), "$options": "i"}
    return {"$or": [{field: pattern} for field in _SEARCHED]}
