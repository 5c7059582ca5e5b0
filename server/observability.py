"""What the service tells its operators: one log line per operation, Prometheus metrics, and
the guards that run around every GraphQL operation (rate limit)."""

from __future__ import annotations

import json
import logging
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
from server.refusals import RefusalCode, refusal_body

request_log = logging.getLogger("profile360.requests")


class Metrics:
    """The service's metrics, in a registry of their own (one per application)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "profile360_requests",
            "GraphQL operations",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "profile360_errors", "Errors returned, by code", ["code"], registry=self.registry
        )
        self.latency = Histogram(
            "profile360_request_duration_seconds",
            "GraphQL operation duration",
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


def request_logger(metrics: Metrics) -> type[SchemaExtension]:
    class RequestLog(SchemaExtension):
        """One line per operation: name, type, tenant, key, duration and outcome; never
        variables or property values."""

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
            outcome = "error" if codes else "ok"
            metrics.requests.labels(kind, outcome).inc()
            metrics.latency.labels(kind).observe(elapsed)
            for code in codes:
                metrics.errors.labels(code).inc()
            request_log.info(
                json.dumps(
                    {
                        "operation": self.execution_context.operation_name or "anonymous",
                        "type": kind,
                        "tenant": principal.tenant if principal else None,
                        "key": principal.key_name if principal else None,
                        "ms": round(elapsed * 1000, 2),
                        "outcome": outcome,
                        "codes": codes,
                    }
                )
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

    def __init__(self, app: Any, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
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
