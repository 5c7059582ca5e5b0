"""GET /export: a tenant's profiles (or one segment's) as CSV or NDJSON, streamed.

Profiles are read from a cursor in batches and written out one at a time, so memory does not
grow with the number of profiles.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from domain.access import Action, Principal
from domain.errors import DomainError, ErrorCode, Unauthenticated, ValidationFailed
from domain.model import Profile
from domain.properties import NOT_IN_PROPERTY_MAP, check_property_name
from domain.segments import SegmentService
from domain.services import ProfileService
from schema.ids import Kind, profile_id, require
from schema.scalars import iso

_STATUS = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.RATE_LIMITED: 429,
}
_FIXED = ("id", "userId", "createdAt", "updatedAt")
MAX_COLUMNS = 200


# A spreadsheet reads a cell that begins with one of these as a formula (OWASP, CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A plain decimal number: a spreadsheet reads it as that number, never as a formula.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def neutralise(text: str) -> str:
    """The text of a CSV cell, safe to open in a spreadsheet (OWASP's CSV injection advice).

    A cell that begins with '=', '+', '-', '@', a tab or a carriage return gets a single quote
    in front, so the spreadsheet shows it as text instead of running it as a formula. The one
    exception is a cell that is a plain decimal number (an optional sign, digits, an optional
    fraction and exponent): a negative NUMBER such as -5 or -1.5e-07, or a phone number in
    E.164 such as +919876543210, is written as it is, since a spreadsheet can only read it as
    that number. NDJSON is never changed: it is data, not a sheet.
    """
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return neutralise(str(value))


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    return value


def _fixed(profile: Profile) -> dict[str, Any]:
    return {
        "id": profile_id(profile.id),
        "userId": profile.user_id,
        "createdAt": profile.created_at,
        "updatedAt": profile.updated_at,
    }


async def _csv(profiles: AsyncIterator[Profile], columns: Sequence[str]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(row: Sequence[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        return buffer.getvalue()

    yield line([*_FIXED, *columns])
    async for profile in profiles:
        fixed = _fixed(profile)
        yield line(
            [_cell(fixed[c]) for c in _FIXED] + [_cell(profile.properties.get(c)) for c in columns]
        )


async def _ndjson(profiles: AsyncIterator[Profile], columns: Sequence[str]) -> AsyncIterator[str]:
    async for profile in profiles:
        record = {k: _json(v) for k, v in _fixed(profile).items()}
        record["properties"] = {
            c: _json(profile.properties[c]) for c in columns if c in profile.properties
        }
        yield json.dumps(record, ensure_ascii=False) + "\n"


def _error(error: DomainError) -> Response:
    """A refusal in the same GraphQL-shaped body as every other refusal of the service."""
    extensions: dict[str, Any] = {"code": error.code.value}
    if error.field:
        extensions["field"] = error.field
    body = {"errors": [{"message": error.message, "extensions": extensions}]}
    return JSONResponse(body, status_code=_STATUS.get(error.code, 400))


def export_endpoint(
    authenticate: Callable[[Request], Any],
    services: Callable[[], tuple[ProfileService, SegmentService]],
) -> Callable[[Request], Any]:
    async def export(request: Request) -> Response:
        try:
            principal: Principal | None = await authenticate(request)
            if principal is None:
                raise Unauthenticated("Send an API key as 'Authorization: Bearer <key>'")
            principal.require(Action.ADMINISTER)
            profiles, segments = services()
            return await _export(request, principal, profiles, segments)
        except DomainError as error:
            return _error(error)

    return export


async def _export(
    request: Request, principal: Principal, profiles: ProfileService, segments: SegmentService
) -> Response:
    tenant = principal.tenant
    fmt = request.query_params.get("format", "csv")
    if fmt not in ("csv", "ndjson"):
        raise ValidationFailed("format is csv or ndjson", field="format")
    columns = await _columns(request.query_params.get("properties"), profiles, tenant)
    segment_id = request.query_params.get("segment")
    if segment_id:
        segment = await segments.get(tenant, require(Kind.SEGMENT, segment_id, field="segment"))
        query = await segments.query(tenant, segment)
    else:
        query = await profiles.query(tenant, None, None)
    rows = profiles.export(tenant, query)
    if fmt == "csv":
        return StreamingResponse(
            _csv(rows, columns),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="profiles.csv"'},
        )
    return StreamingResponse(_ndjson(rows, columns), media_type="application/x-ndjson")


async def _columns(raw: str | None, profiles: ProfileService, tenant: str) -> list[str]:
    if raw is None or not raw.strip():
        return [
            d.name
            for d in await profiles.definitions.all(tenant)
            if d.name not in NOT_IN_PROPERTY_MAP
        ]
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if len(names) > MAX_COLUMNS:
        raise ValidationFailed(f"properties names at most {MAX_COLUMNS}", field="properties")
    columns: list[str] = []
    for name in names:
        check_property_name(name, field="properties")
        if name in _FIXED:
            continue
        await profiles.definitions.get(tenant, name, field="properties")
        if name not in columns:
            columns.append(name)
    return columns
