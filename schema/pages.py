"""Relay paging: the standard PageInfo every connection uses, and the page-size argument."""

from __future__ import annotations

from typing import Annotated

import strawberry

DEFAULT_PAGE = 20

First = Annotated[
    int | None,
    strawberry.argument(description="How many items to return, 0 to 100 (20 when omitted)"),
]
After = Annotated[
    str | None,
    strawberry.argument(
        description="Return the items after this cursor (the endCursor of the previous page)"
    ),
]


def page_size(first: int | None) -> int:
    """The page size a `first` argument asks for (null means the default)."""
    return DEFAULT_PAGE if first is None else first


@strawberry.type(description="Where a page stands in its list (the Relay PageInfo)")
class PageInfo:
    has_next_page: bool = strawberry.field(description="True when more items follow this page")
    has_previous_page: bool = strawberry.field(
        description="True when this page was asked for after a cursor (items come before it)"
    )
    start_cursor: str | None = strawberry.field(
        description="The cursor of the page's first item; null for an empty page"
    )
    end_cursor: str | None = strawberry.field(
        description="The cursor of the page's last item: pass it as `after` for the next page"
    )

    @classmethod
    def of(cls, cursors: list[str], has_next: bool, after: bool) -> PageInfo:
        return cls(
            has_next_page=has_next,
            has_previous_page=after,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        )
