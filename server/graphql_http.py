"""/graphql over HTTP: our own GraphiQL page for browsers, and every refusal strawberry makes
before execution (method, content type, JSON, batching) in GraphQL's JSON shape with a code."""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError

from schema.context import Context
from server.graphiql import graphiql_page, wants_html
from server.refusals import RefusalCode, Refused, code_for_status

_JSON = "application/json"


class GraphQLHTTP(GraphQL[Context, None]):
    """Strawberry's ASGI view with GraphQL-shaped refusals and the vendored GraphiQL."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        try:
            _check_content_type(request)
            _normalize_content_type(request)
            response = await self.run(request)
        except Refused as refusal:
            response = refusal.response()
        except HTTPException as error:
            response = _refusal_for(request, error).response()
        await response(scope, receive, send)

    def should_render_graphql_ide(self, request: Any) -> bool:
        return (
            self.graphql_ide is not None
            and request.method == "GET"
            and request.query_params.get("query") is None
            and wants_html(request)
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_page()

    def parse_json(self, data: str | bytes) -> Any:
        try:
            decoded = self.decode_json(data)
        except ValueError as error:  # not JSON, or not UTF-8
            raise Refused(400, RefusalCode.BAD_REQUEST, f"Malformed JSON: {error}") from error
        except RecursionError as error:  # arrays or objects nested thousands deep
            raise Refused(
                400, RefusalCode.BAD_REQUEST, "Malformed JSON: nested too deeply"
            ) from error
        if not isinstance(decoded, dict | list):
            raise Refused(
                400,
                RefusalCode.BAD_REQUEST,
                'Expected a JSON object such as {"query": "...", "variables": {...}}',
            )
        return decoded

    def _validate_batch_request(
        self, request_data: list[GraphQLRequestData], protocol: Any
    ) -> None:
        raise Refused(
            400,
            RefusalCode.BATCHING_NOT_SUPPORTED,
            "Batched requests (a JSON array of operations) are not supported; "
            "send one operation per request",
        )


def _check_content_type(request: Request) -> None:
    if request.method != "POST":
        return
    media_type = (request.headers.get("content-type") or "").partition(";")[0].strip().lower()
    if media_type != _JSON:
        raise Refused(
            415,
            RefusalCode.UNSUPPORTED_MEDIA_TYPE,
            f"POST a JSON body with Content-Type: {_JSON} (got {media_type[:100] or 'none'})",
            {"Accept-Post": _JSON},
        )


def _normalize_content_type(request: Request) -> None:
    """Lower-cases the media type (RFC 9110: case-insensitive), which strawberry compares as
    sent: `Application/JSON` is JSON too. Changed in the scope's own header list, which the
    request's cached headers share."""
    headers: list[tuple[bytes, bytes]] = request.scope["headers"]
    for i, (name, value) in enumerate(headers):
        if name.lower() == b"content-type":
            media_type, sep, rest = value.partition(b";")
            headers[i] = (name, media_type.strip().lower() + sep + rest)


def _refusal_for(request: Request, error: HTTPException) -> Refused:
    cause = error.__cause__
    if isinstance(cause, InvalidOperationTypeError):
        if request.method == "GET":  # a mutation: GET must never change anything
            return Refused(
                405,
                RefusalCode.METHOD_NOT_ALLOWED,
                f"{cause.as_http_error_reason('GET').capitalize()}; send them with POST",
                {"Allow": "POST"},
            )
        return Refused(400, RefusalCode.BAD_REQUEST, cause.as_http_error_reason(request.method))
    if error.status_code == 405:
        return Refused(405, RefusalCode.METHOD_NOT_ALLOWED, error.reason, {"Allow": "GET, POST"})
    return Refused(error.status_code, code_for_status(error.status_code), error.reason)
