"""Import files: reading rows of a CSV or NDJSON file, and validating each row whole.

The column scheme (the same names are the keys of an NDJSON object):

- `userId`: the person's userId (optional when the row has an identity).
- `identity.<CHANNEL>` (e.g. `identity.WHATSAPP`, `identity.EMAIL`, `identity.WEB`): the
  person's senderId on that channel; several ids of one channel in one cell are separated by
  `;`. Or pairs of columns `channel` + `senderId`, `channel2` + `senderId2`, ... (any suffix
  after `channel` that the `senderId` column repeats). In NDJSON also `identities`: a list of
  `{"channel": ..., "senderId": ...}` objects.
- `tags`: a JSON array (`["vip","beta"]`) or `;`-separated (`vip;beta`).
- every other column is a property name, typed by its definition: numbers as `12` or `4.5`,
  booleans as `true`/`false` (or `1`/`0`, `yes`/`no`), lists as a JSON array or `;`-separated,
  dates `YYYY-MM-DD`, datetimes ISO 8601.

An empty cell (or a JSON null) means "nothing for this property": it never removes a value.
Rows are numbered from 1, the first data row (a CSV's header is not a row). A row must name a
person (a userId or at least one identity) and is checked whole: every refusal of a row is
reported, and a refused row writes nothing.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import IO, Any

from domain.definitions import MAX_PROPERTIES_PER_CALL, Definitions
from domain.errors import DomainError, ErrorCode, PropertyNotDefined, ValidationFailed
from domain.identity import Channel, IdentityKey, check_user_id, identity_key
from domain.properties import READ_ONLY, PropertyType, check_property_name, validate_value

USER_ID = "userId"
TAGS = "tags"
IDENTITY_PREFIX = "identity."
IDENTITIES = "identities"
MAX_IDENTITIES_PER_ROW = 20
MAX_LINE_BYTES = 1 << 20
MAX_COLUMNS = 1_000
MAX_REFUSALS_PER_ROW = 20
_INTEGER = re.compile(r"[+-]?\d+")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class ImportFormat(StrEnum):
    """The file formats an import reads."""

    CSV = "csv"
    NDJSON = "ndjson"


@dataclass(frozen=True, slots=True)
class RawRow:
    """One row as read: its number, its cells (CSV text or JSON values) and the byte offset
    just after it in the file (where a resume starts)."""

    number: int
    cells: Mapping[str, Any]
    end_offset: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why (part of) a row was refused."""

    row: int
    field: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ImportRow:
    """A valid row: who (userId and identity keys) and the values (normalised)."""

    number: int
    user_id: str | None
    identities: tuple[tuple[IdentityKey, Channel], ...]
    values: Mapping[str, Any] = field(default_factory=dict)


class FileError(Exception):
    """The file cannot be read as the format says (not one row: the whole import stops)."""


class _Reading:
    """Where `_lines` is: the offset after the last line handed out, and whether a line was
    too long (it was skipped to its real end, not cut: the record holding it is refused)."""

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.too_long = False
        self.in_quotes = False  # CSV: a quoted field is open at the end of the last line


def _lines(stream: IO[bytes], offset: int, reading: _Reading, *, csv_quotes: bool) -> Iterator[str]:
    """The stream's lines from `offset`, decoded (csv.reader never reads ahead of the record
    it returns). A line longer than MAX_LINE_BYTES is never cut: it is skipped to its real
    end (for CSV, the end of its record, quotes considered) and stands as one empty line
    (a quote first when a quoted field was open), with `reading.too_long` set."""
    stream.seek(offset)
    reading.offset = offset
    while line := stream.readline(MAX_LINE_BYTES):
        reading.offset += len(line)
        if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
            was_open = reading.in_quotes
            inside = reading.in_quotes != (line.count(b'"') % 2 == 1)
            while line := stream.readline(MAX_LINE_BYTES):
                reading.offset += len(line)
                inside = inside != (line.count(b'"') % 2 == 1)
                if line.endswith(b"\n") and not (csv_quotes and inside):
                    break
            reading.in_quotes = False
            reading.too_long = True
            yield '"\n' if csv_quotes and was_open else "\n"
            continue
        if csv_quotes:
            reading.in_quotes = reading.in_quotes != (line.count(b'"') % 2 == 1)
        try:
            text = line.decode("utf-8-sig" if reading.offset == len(line) else "utf-8")
        except UnicodeDecodeError as exc:
            raise FileError(f"the file is not UTF-8 near byte {reading.offset}: {exc}") from None
        yield text


_TOO_LONG = f"a line is longer than {MAX_LINE_BYTES} bytes: the row is not read"


def read_header(stream: IO[bytes]) -> tuple[list[str], int]:
    """A CSV file's column names and the offset of its first data row."""
    reading = _Reading(0)
    reader = csv.reader(_lines(stream, 0, reading, csv_quotes=True), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise FileError("the file is empty: a CSV import needs a header row") from None
    except csv.Error as exc:
        raise FileError(f"the header row is not valid CSV: {exc}") from None
    if reading.too_long:
        raise FileError(f"the header row is longer than {MAX_LINE_BYTES} bytes")
    names = [name.strip() for name in header]
    if len(names) > MAX_COLUMNS:
        raise FileError(
            f"the header row has {len(names)} columns; a file has at most {MAX_COLUMNS}"
        )
    if len(set(names)) != len(names):
        raise FileError("the header row names a column twice")
    return names, reading.offset


def read_rows(
    stream: IO[bytes], fmt: ImportFormat, header: Sequence[str], offset: int, first_row: int
) -> Iterator[RawRow]:
    """The rows from `offset` on, numbered from `first_row`; memory holds one row at a time."""
    reading = _Reading(offset)
    number = first_row
    if fmt is ImportFormat.CSV:
        reader = csv.reader(_lines(stream, offset, reading, csv_quotes=True), strict=True)
        while True:
            try:
                cells = next(reader)
                reading.in_quotes = False  # a record ends outside quotes
            except StopIteration:
                return
            except csv.Error as exc:
                reading.in_quotes = False  # the reader starts afresh on the next line
                reading.too_long = False
                yield RawRow(number, {"": _Unreadable(str(exc))}, reading.offset)
                number += 1
                continue
            if reading.too_long:
                reading.too_long = False
                yield RawRow(number, {"": _Unreadable(_TOO_LONG)}, reading.offset)
                number += 1
                continue
            if not any(cells):
                continue  # a blank line is not a row
            row: dict[str, Any] = dict(zip(header, cells, strict=False))
            if len(cells) != len(header):
                row[""] = _Unreadable(f"the row has {len(cells)} cells, the header {len(header)}")
            yield RawRow(number, row, reading.offset)
            number += 1
    for line in _lines(stream, offset, reading, csv_quotes=False):
        if reading.too_long:
            reading.too_long = False
            yield RawRow(number, {"": _Unreadable(_TOO_LONG)}, reading.offset)
            number += 1
            continue
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            value = {"": _Unreadable(f"the line is not JSON: {exc}")}
        except RecursionError:
            value = {"": _Unreadable("the line nests too deeply to be read")}
        if not isinstance(value, dict):
            value = {"": _Unreadable("each line must be a JSON object")}
        elif len(value) > MAX_COLUMNS:
            value = {"": _Unreadable(f"the object has {len(value)} keys; at most {MAX_COLUMNS}")}
        yield RawRow(number, value, reading.offset)
        number += 1


@dataclass(frozen=True, slots=True)
class _Unreadable:
    reason: str


class RowValidator:
    """Turns raw rows into valid rows or refusals, with the tenant's definitions."""

    def __init__(self, definitions: Definitions, tenant: str) -> None:
        self._definitions = definitions
        self._tenant = tenant
        # Names found undefined in this batch: the definitions are read again for the next
        # batch only (each read of an unknown name is a query).
        self._undefined: dict[str, PropertyNotDefined] = {}

    def next_batch(self) -> None:
        self._undefined.clear()

    async def validate(self, raw: RawRow) -> ImportRow | list[Refusal]:
        refusals: list[Refusal] = []
        user_id: str | None = None
        identities: dict[IdentityKey, Channel] = {}
        values: dict[str, Any] = {}

        def refuse(error: DomainError, name: str) -> None:
            refusals.append(Refusal(raw.number, error.field or name, error.code.value, str(error)))

        pairs: dict[str, dict[str, Any]] = {}
        unchecked = 0
        for name, cell in raw.cells.items():
            if len(refusals) >= MAX_REFUSALS_PER_ROW:
                unchecked += not _empty(cell)
                continue
            if isinstance(cell, _Unreadable):
                refusals.append(
                    Refusal(raw.number, "row", ErrorCode.VALIDATION_FAILED.value, cell.reason)
                )
                continue
            if _empty(cell):
                continue
            try:
                if name == USER_ID:
                    user_id = check_user_id(_text(cell, name))
                elif name.startswith(IDENTITY_PREFIX):
                    channel = _channel(name[len(IDENTITY_PREFIX) :], name)
                    for sender in _split(cell, name):
                        identities.setdefault(identity_key(channel, sender), channel)
                elif name.startswith("channel"):
                    pairs.setdefault(name[len("channel") :], {})["channel"] = cell
                elif name.startswith("senderId"):
                    pairs.setdefault(name[len("senderId") :], {})["senderId"] = cell
                elif name == IDENTITIES and isinstance(cell, list):
                    for index, item in enumerate(cell):
                        pairs[f"#{index}"] = item if isinstance(item, dict) else {}
                else:
                    values[name] = await self._value(name, cell)
            except DomainError as error:
                refuse(error, name)
            except RecursionError:
                refuse(ValidationFailed(f"{name} nests too deeply", field=name), name)
        for suffix, pair in pairs.items():
            where = f"identities[{suffix[1:]}]" if suffix.startswith("#") else f"senderId{suffix}"
            try:
                if _empty(pair.get("channel")) or _empty(pair.get("senderId")):
                    raise ValidationFailed(
                        "an identity needs both a channel and a senderId", field=where
                    )
                channel = _channel(_text(pair["channel"], where), where)
                key = identity_key(channel, _text(pair["senderId"], where))
                identities.setdefault(key, channel)
            except DomainError as error:
                refuse(error, where)
        if user_id is None and not identities and not refusals:
            refusals.append(
                Refusal(
                    raw.number,
                    USER_ID,
                    ErrorCode.VALIDATION_FAILED.value,
                    "a row must name a person: a userId or an identity (see the column scheme)",
                )
            )
        if len(identities) > MAX_IDENTITIES_PER_ROW:
            refusals.append(
                Refusal(
                    raw.number,
                    "identities",
                    ErrorCode.LIMIT_EXCEEDED.value,
                    f"a row names at most {MAX_IDENTITIES_PER_ROW} identities",
                )
            )
        if len(values) > MAX_PROPERTIES_PER_CALL:
            refusals.append(
                Refusal(
                    raw.number,
                    "properties",
                    ErrorCode.VALIDATION_FAILED.value,
                    f"a row holds at most {MAX_PROPERTIES_PER_CALL} properties",
                )
            )
        more = unchecked + max(len(refusals) - MAX_REFUSALS_PER_ROW, 0)
        if more:
            refusals = refusals[:MAX_REFUSALS_PER_ROW]
            refusals.append(
                Refusal(
                    raw.number,
                    "row",
                    ErrorCode.VALIDATION_FAILED.value,
                    f"and {more} more cells refused or not checked: a row reports its first "
                    f"{MAX_REFUSALS_PER_ROW} refusals",
                )
            )
        if refusals:
            return refusals
        return ImportRow(raw.number, user_id, tuple(identities.items()), values)

    async def _value(self, name: str, cell: Any) -> Any:
        check_property_name(name, field=name)
        if name in READ_ONLY:
            raise ValidationFailed(f"Property '{name}' is read-only", field=name)
        if name in self._undefined:
            raise self._undefined[name]
        try:
            definition = await self._definitions.get(self._tenant, name, field=name)
        except PropertyNotDefined as error:
            self._undefined[name] = error
            raise
        value = validate_value(definition, _typed(definition.type, cell, name), field=name)
        if isinstance(value, datetime):
            # Stored with millisecond precision: keep exactly what a re-run will read back.
            value = value.replace(microsecond=value.microsecond // 1000 * 1000)
        return value


def _empty(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _text(cell: Any, name: str) -> str:
    if isinstance(cell, str):
        return cell.strip()
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return str(cell)
    raise ValidationFailed(f"{name} must be text", field=name)


def _channel(text: str, name: str) -> Channel:
    try:
        return Channel(text.strip().upper())
    except ValueError:
        known = ", ".join(c.value for c in Channel)
        raise ValidationFailed(
            f"{text[:40]!r} is not a channel (one of {known})", field=name
        ) from None


def _split(cell: Any, name: str) -> list[str]:
    if isinstance(cell, list):
        return [_text(item, name) for item in cell if not _empty(item)]
    return [part.strip() for part in _text(cell, name).split(";") if part.strip()]


def _typed(type_: PropertyType, cell: Any, name: str) -> Any:
    """A CSV cell (text) as the value its property's type expects; JSON values pass as they
    are unless they are text for a number, boolean or list."""
    if not isinstance(cell, str):
        return cell
    text = cell.strip()
    match type_:
        case PropertyType.NUMBER:
            try:
                return int(text) if _INTEGER.fullmatch(text) else float(text)
            except ValueError:
                raise ValidationFailed(
                    f"Property '{name}' expects a number, got {text[:40]!r}", field=name
                ) from None
        case PropertyType.BOOLEAN:
            folded = text.lower()
            if folded in _TRUE:
                return True
            if folded in _FALSE:
                return False
            raise ValidationFailed(
                f"Property '{name}' expects true or false, got {text[:40]!r}", field=name
            )
        case PropertyType.LIST:
            if text.startswith("["):
                try:
                    return json.loads(text)
                except (ValueError, RecursionError):
                    raise ValidationFailed(
                        f"Property '{name}' holds a list that is not a JSON array", field=name
                    ) from None
            return [part.strip() for part in text.split(";") if part.strip()]
    return cell
