"""How a log record is written: text or one JSON object, an ISO 8601 UTC time, its fields."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from server.logs import JsonFormatter, RequestIdFilter, TextFormatter, request_id_from


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "profile360.test", logging.ERROR, __file__, 1, "failed %s", ("x",), None
    )
    record.created = datetime(2026, 11, 23, 17, 20, 1, 500_000, tzinfo=UTC).timestamp()
    for name, value in extra.items():
        setattr(record, name, value)
    RequestIdFilter().filter(record)
    return record


def test_a_text_line_starts_with_the_utc_time_and_ends_with_its_fields() -> None:
    line = TextFormatter().format(_record(correlation_id="abc", path=["a b"], status=None))
    assert line == (
        '2026-11-23T17:20:01.500Z ERROR profile360.test: failed x correlation_id=abc path=["a b"]'
    )


def test_a_json_line_is_one_object_with_the_traceback_inside() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record(request_id="r-1", codes=["INTERNAL"])
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["time"] == "2026-11-23T17:20:01.500Z"
    assert (parsed["level"], parsed["logger"], parsed["message"]) == (
        "ERROR",
        "profile360.test",
        "failed x",
    )
    assert (parsed["request_id"], parsed["codes"]) == ("r-1", ["INTERNAL"])
    assert parsed["exception"].startswith("Traceback")
    assert "ValueError: boom" in parsed["exception"]


def test_a_client_request_id_is_kept_only_when_well_formed() -> None:
    assert request_id_from("Abc-1.2_3") == "Abc-1.2_3"
    assert request_id_from("x" * 128) == "x" * 128
    for bad in (None, "", "x" * 129, "a b", "a/b", "ünï", "id\n"):
        replaced = request_id_from(bad)
        assert replaced != bad
        assert len(replaced) == 16
