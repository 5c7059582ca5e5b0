"""Refusals outside GraphQL execution (HTTP method, content type, body, route, size, rate), each
answered in GraphQL's shape, `{"errors": [{"message", "extensions": {"code"}}]}`, as
`application/json` with a fitting HTTP status, so a client has one error format to read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response


class RefusalCode(StrEnum):
    """Codes of the refusals made before an operation runs (GraphQL errors carry the domain's)."""

    BAD_REQUEST = "BAD_REQUEST"
    BATCHING_NOT_SUPPORTED = "BATCHING_NOT_SUPPORTED"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_FOUND = "NOT_FOUND"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    RATE_LIMITED = "RATE_LIMITED"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"


_CODE_BY_STATUS = {
    404: RefusalCode.NOT_FOUND,
    408: RefusalCode.REQUEST_TIMEOUT,
    405: RefusalCode.METHOD_NOT_ALLOWED,
    413: RefusalCode.PAYLOAD_TOO_LARGE,
    415: RefusalCode.UNSUPPORTED_MEDIA_TYPE,
    429: RefusalCode.RATE_LIMITED,
}


def code_for_status(status: int) -> RefusalCode:
    return _CODE_BY_STATUS.get(status, RefusalCode.BAD_REQUEST)


def refusal_body(message: str, code: str) -> bytes:
    """The GraphQL-shaped JSON body of a refusal."""
    return json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()


class Refused(Exception):
    """A request refused before any operation runs; `response()` is what the client gets."""

    def __init__(
        self,
        status: int,
        code: RefusalCode,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return Response(
            refusal_body(self.message, self.code),
            status_code=self.status,
            headers=self.headers,
            media_type="application/json",
        )


async def http_refusal(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (an unknown route, a wrong method on a route, a missing static
    file) in the same shape."""
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for HTTPException
        raise exc
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = f"Nothing at {request.url.path}; the GraphQL API is at /graphql"
    elif exc.status_code == 405:
        allowed = headers.get("Allow") or headers.get("allow")
        message = f"{request.method} is not allowed here" + (f"; use {allowed}" if allowed else "")
    else:
        message = exc.detail
    return Refused(exc.status_code, code_for_status(exc.status_code), message, headers).response()


class JSONCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, with its refused preflight (an origin, method or header not
    allowed) in the same shape instead of text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in ("content-type", "content-length")
        }
        message = bytes(response.body).decode()
        return Refused(response.status_code, RefusalCode.BAD_REQUEST, message, headers).response()
