"""What the service tells its operators: Prometheus metrics, what each GraphQL operation adds
to its request's access line, and the guards that run around every operation (rate limit)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from prometheus_client import CollectorRegistry, Counter, Histogram
from pymongo import monitoring
from strawberry.extensions import SchemaExtension

from domain.errors import RateLimited
from domain.model import MergeTrigger
from server.logs import current_request
from server.refusals import RefusalCode, refusal_body

MAX_OPERATION_NAMES = 200


class Metrics:
    """The service's metrics, in a registry of their own (one per application)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._names: set[str] = set()
        self.requests = Counter(
            "profile360_requests",
            "GraphQL operations, by operation name (past the first "
            f"{MAX_OPERATION_NAMES} names, 'other'), type and outcome",
            ["operation", "type", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "profile360_errors", "Errors returned, by code", ["code"], registry=self.registry
        )
        self.latency = Histogram(
            "profile360_request_duration_seconds",
            "GraphQL operation duration, by operation name",
            ["operation"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.merges = Counter(
            "profile360_merges", "Merges completed, by trigger", ["trigger"], registry=self.registry
        )
        self.db_commands = Counter(
            "profile360_db_commands",
            "Database commands sent, by command",
            ["command"],
            registry=self.registry,
        )

    def operation_label(self, name: str) -> str:
        """The operation's name as a label: a client can invent any number of names, so
        names after the first MAX_OPERATION_NAMES distinct ones are counted as 'other'."""
        if name in self._names:
            return name
        if len(self._names) >= MAX_OPERATION_NAMES:
            return "other"
        self._names.add(name)
        return name

    def merge_completed(self, trigger: MergeTrigger) -> None:
        self.merges.labels(trigger.value).inc()


class CommandMetrics(monitoring.CommandListener):
    """Counts every database command the process sends."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self._metrics.db_commands.labels(event.command_name).inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _operation_type(extension: SchemaExtension) -> str:
    try:
        kind = extension.execution_context.operation_type
    except RuntimeError:  # the document did not parse
        return "invalid"
    return str(getattr(kind, "value", kind))


# A GraphQL name; a client's operationName that is not one is never written anywhere.
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")


def _operation_name(extension: SchemaExtension) -> str:
    name = extension.execution_context.operation_name
    if name is None:
        return "anonymous"
    return name if _NAME.fullmatch(name) else "invalid"


def request_logger(metrics: Metrics) -> type[SchemaExtension]:
    class RequestLog(SchemaExtension):
        """Counts the operation in the metrics, and adds its name, type, tenant, key name,
        outcome and error codes to the request's access line; never variables or values."""

        def on_operation(self) -> Iterator[None]:
            started = time.perf_counter()
            yield
            elapsed = time.perf_counter() - started
            context: Any = self.execution_context.context
            principal = getattr(context, "principal", None)
            result = self.execution_context.result
            codes = sorted(
                {
                    str((e.extensions or {}).get("code", "UNKNOWN"))
                    for e in (result.errors if result and result.errors else [])
                }
            )
            kind = _operation_type(self)
            name = _operation_name(self)
            outcome = "error" if codes else "ok"
            label = metrics.operation_label(name)
            metrics.requests.labels(label, kind, outcome).inc()
            metrics.latency.labels(label).observe(elapsed)
            for code in codes:
                metrics.errors.labels(code).inc()
            request = current_request()
            if request is not None:
                request.fields.update(
                    operation=name,
                    type=kind,
                    tenant=principal.tenant if principal else None,
                    key=principal.key_name if principal else None,
                    outcome=outcome,
                    codes=codes,
                )

    return RequestLog


class RateLimitGuard(SchemaExtension):
    """Refuses the operation when get_context found the key over its rate: a result set here
    makes strawberry skip execution, so no resolver runs."""

    def on_execute(self) -> Iterator[None]:
        retry_after = getattr(self.execution_context.context, "retry_after", None)
        if retry_after is not None:
            refusal = RateLimited(f"Too many requests for this API key; retry in {retry_after} s")
            self.execution_context.result = GraphQLExecutionResult(
                data=None, errors=[GraphQLError(refusal.message, original_error=refusal)]
            )
        yield


class BodySizeLimit:
    """Refuses request bodies over `limit` bytes with 413, whether or not they declare it."""

    def __init__(self, app: Any, limit: int, exempt: tuple[str, ...] = ()) -> None:
        self._app = app
        self._limit = limit
        self._exempt = exempt

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in self._exempt:
            await self._app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._limit:
            await _too_large(send, self._limit)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self._limit:
                raise _BodyTooLarge
            return message

        try:
            await self._app(scope, counted, send)
        except _BodyTooLarge:
            await _too_large(send, self._limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Any, limit: int) -> None:
    body = refusal_body(f"Request body is larger than {limit} bytes", RefusalCode.PAYLOAD_TOO_LARGE)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
