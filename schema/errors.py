"""How errors reach clients: domain errors keep their message and code; anything unexpected
is masked as INTERNAL with a correlation id that is also logged."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from domain.errors import Contention, DomainError, ErrorCode

log = logging.getLogger("profile360.errors")


def format_error(error: GraphQLError) -> GraphQLError:
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
    """Rewrites every error of a result into the public error contract (SPEC §9)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [format_error(e) for e in result.errors]
