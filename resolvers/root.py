"""The root schema."""

from __future__ import annotations

from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from resolvers.mutation import Mutation
from resolvers.query import Query
from schema.errors import ErrorFormatter


class _Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # ErrorFormatter logs unexpected errors with their correlation id; refused operations
        # are answers, not incidents, so nothing else is logged here.
        return


def build_schema(
    extensions: list[Any] | None = None, *, field_suggestions: bool = True
) -> strawberry.Schema:
    return _Schema(
        query=Query,
        mutation=Mutation,
        extensions=[
            *(extensions or []),
            partial(ErrorFormatter, hide_suggestions=not field_suggestions),
        ],
        config=StrawberryConfig(disable_field_suggestions=not field_suggestions),
    )
