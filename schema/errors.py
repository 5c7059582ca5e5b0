"""How errors reach clients: domain errors keep their message and code; anything unexpected
is masked as INTERNAL with a correlation id that is also logged."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from domain.errors import Contention, DomainError, ErrorCode

log = logging.getLogger("profile360.errors")


# graphql-core appends " Did you mean ...?" to the messages of several validation rules (unknown
# types, fields, arguments, input fields, missing sub-selections) and of variable and literal
# coercion (input fields, enum values): every suggestion names part of the schema. Names hold
# no '?', so a suggestion ends at the first one.
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def without_suggestions(message: str) -> str:
    """The message with every "Did you mean ...?" taken out."""
    return _SUGGESTION.sub("", message)


def format_error(error: GraphQLError, *, hide_suggestions: bool = False) -> GraphQLError:
    if hide_suggestions and "Did you mean" in error.message:
        error = GraphQLError(
            without_suggestions(error.message),
            error.nodes,
            error.source,
            error.positions,
            error.path,
            error.original_error,
            error.extensions,
        )
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    if original is None or isinstance(original, GraphQLError):
        # Parse and validation errors of the operation itself: their text is about the query.
        extensions = dict(error.extensions or {})
        extensions.setdefault("code", ErrorCode.VALIDATION_FAILED.value)
        return GraphQLError(
            error.message, error.nodes, error.source, error.positions, error.path, None, extensions
        )
    if isinstance(original, DomainError):
        extensions = {"code": original.code.value}
        if original.field:
            extensions["field"] = original.field
        return GraphQLError(
            original.message,
            error.nodes,
            error.source,
            error.positions,
            error.path,
            None,
            extensions,
        )
    if isinstance(original, Contention):
        correlation = secrets.token_hex(8)
        log.warning(
            "contention (correlation id %s): %s",
            correlation,
            original,
            extra={"correlation_id": correlation},
        )
        return GraphQLError(
            "The operation lost too many concurrent races; retry it",
            error.nodes,
            error.source,
            error.positions,
            error.path,
            None,
            {"code": ErrorCode.INTERNAL.value, "correlationId": correlation, "retryable": True},
        )
    correlation = secrets.token_hex(8)
    # The request id is stamped on the line by the log filter (server/logs.py): the two ids
    # together lead from a client's report to the request and its cause.
    log.error(
        "unexpected error (correlation id %s) at %s",
        correlation,
        error.path,
        exc_info=(type(original), original, original.__traceback__),
        extra={"correlation_id": correlation},
    )
    return GraphQLError(
        f"Internal error (correlation id {correlation})",
        error.nodes,
        error.source,
        error.positions,
        error.path,
        None,
        {"code": ErrorCode.INTERNAL.value, "correlationId": correlation},
    )


class ErrorFormatter(SchemaExtension):
    """Rewrites every error of a result into the public error contract: a message and a code,
    without suggestions that would reveal the schema when `hide_suggestions` is set."""

    def __init__(self, *, hide_suggestions: bool = False) -> None:
        self.hide_suggestions = hide_suggestions

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [
                format_error(e, hide_suggestions=self.hide_suggestions) for e in result.errors
            ]
