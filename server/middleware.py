"""ASGI middleware around every HTTP request: its id and access line, what happens when it
fails or its client goes away, and the deadline for its body."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Any

from starlette.requests import ClientDisconnect

from server.logs import RequestInfo, bind_request, request_id_from, unbind_request
from server.refusals import RefusalCode

access_log = logging.getLogger("profile360.requests")
error_log = logging.getLogger("profile360.errors")

Scope = dict[str, Any]
Message = dict[str, Any]


async def refuse(
    send: Any,
    status: int,
    code: str,
    message: str,
    *,
    extensions: dict[str, Any] | None = None,
    close: bool = False,
) -> None:
    """Answer with a GraphQL-shaped error body, {"errors": [{message, extensions: {code}}]}, as
    server/refusals.py does (here with room for more extensions, such as a correlationId)."""
    body = json.dumps(
        {"errors": [{"message": message, "extensions": {"code": code, **(extensions or {})}}]}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class RequestContext:
    """The outermost layer of every HTTP request.

    - Gives the request an id (the client's `X-Request-Id` when well-formed, else a new one),
      stamps it on every log line written while serving it and returns it as `X-Request-Id`.
    - Writes one access line per request on `profile360.requests`: method, path (never the
      query string), status, duration, request id and what the GraphQL operation added
      (its name, type, tenant, key name, outcome and error codes), never variables or bodies.
    - A client that goes away before its body arrived is that one line, at INFO.
    - An unexpected failure is logged with a correlation id and the request id; before the
      response started the client gets INTERNAL with the correlation id, after it (a stream
      failing half-way) the connection is aborted, so the client never sees a clean end.
    """

    def __init__(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        info = RequestInfo(request_id_from(_header(scope, b"x-request-id")))
        token = bind_request(info)
        started = time.perf_counter()
        status: int | None = None
        completed = False
        request_id = info.request_id.encode()

        async def send_with_id(message: Message) -> None:
            nonlocal status, completed
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", ()) if k != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id)]}
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                completed = True
            await send(message)

        outcome: str | None = None
        try:
            await self._app(scope, receive, send_with_id)
        except ClientDisconnect:
            outcome = "client disconnected"
        except Exception as error:
            correlation = secrets.token_hex(8)
            if status is None:
                error_log.error(
                    "unexpected error (correlation id %s)",
                    correlation,
                    exc_info=error,
                    extra={"correlation_id": correlation},
                )
                await refuse(
                    send_with_id,
                    500,
                    "INTERNAL",
                    f"Internal error (correlation id {correlation})",
                    extensions={"correlationId": correlation},
                )
            else:
                # Returning without the last body message makes the server drop the connection:
                # the client sees a broken transfer, never a short file that looks complete.
                error_log.error(
                    "response aborted half-way (correlation id %s)",
                    correlation,
                    exc_info=error,
                    extra={"correlation_id": correlation},
                )
                outcome = "aborted"
        finally:
            if outcome is None and status is not None and not completed:
                outcome = "client disconnected"
            self._log(scope, info, status, time.perf_counter() - started, outcome)
            unbind_request(token)

    @staticmethod
    def _log(
        scope: Scope, info: RequestInfo, status: int | None, elapsed: float, outcome: str | None
    ) -> None:
        method, path = scope.get("method", "-"), scope.get("path", "-")
        fields: dict[str, Any] = {
            "method": method,
            "path": path,
            "status": status,
            "ms": round(elapsed * 1000, 2),
            **info.fields,
        }
        if outcome is not None:
            fields["outcome"] = outcome
        line = f"{method} {path} {status if status is not None else '-'}"
        if outcome is not None:
            line += f" ({outcome})"
        access_log.info(line, extra=fields)


_CLOSE = (b"connection", b"close")


class _BodyTimedOut(Exception):
    pass


class BodyDeadline:
    """A request body that has not fully arrived `seconds` after the request started is
    answered 408 and its connection closed, so slow or stalled clients are not held open; a
    response sent before its request's body was read closes the connection too."""

    def __init__(self, app: Any, seconds: float, idle_paths: tuple[str, ...] = ()) -> None:
        self._app = app
        self._seconds = seconds
        # On these paths (uploads of whole files) the deadline is for each part of the body:
        # a long upload that keeps arriving goes on, a stalled one is still cut off.
        self._idle_paths = idle_paths

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._seconds
        idle = scope.get("path") in self._idle_paths
        declared = _header(scope, b"content-length")
        arrived = _header(scope, b"transfer-encoding") is None and declared in (None, "0")
        started = False

        async def timed_receive() -> Message:
            nonlocal arrived, deadline
            if idle:
                deadline = loop.time() + self._seconds
            if arrived:  # the body is in: later receives wait for a disconnect, untimed
                message: Message = await receive()
                return message
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _BodyTimedOut from None
            if message["type"] != "http.request" or not message.get("more_body"):
                arrived = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not arrived:
                    # Answered before its body was read (a refusal): the rest of the body would
                    # keep the connection busy for as long as the client cares to send it.
                    message = {**message, "headers": [*message["headers"], _CLOSE]}
            await send(message)

        try:
            await self._app(scope, timed_receive, tracked_send)
        except _BodyTimedOut:
            if started:
                raise
            await refuse(
                send,
                408,
                RefusalCode.REQUEST_TIMEOUT,
                f"The request body did not arrive within {self._seconds:g} s",
                close=True,
            )
