"""Conditions on long lists of values, in a shape every engine accepts.

A `$in` of a few hundred values is routine for MongoDB, but the embedded engine refuses one of
500 or more ("Expression tree is too large"). Long lists are therefore split into chunks of
at most IN_CHUNK values joined by `$or` (or `$nor` for "none of"): the same documents match
on either engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

IN_CHUNK = 200


def chunked[T](values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """The values in consecutive slices of at most `size`."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def one_of(field: str, values: Iterable[Any]) -> dict[str, Any]:
    """`field` equals one of the values."""
    listed = list(values)
    if len(listed) <= IN_CHUNK:
        return {field: {"$in": listed}}
    return {"$or": [{field: {"$in": list(chunk)}} for chunk in chunked(listed)]}


def none_of(field: str, values: Iterable[Any]) -> dict[str, Any]:
    """`field` equals none of the values."""
    listed = list(values)
    if len(listed) <= IN_CHUNK:
        return {field: {"$nin": listed}}
    return {"$nor": [{field: {"$in": list(chunk)}} for chunk in chunked(listed)]}
