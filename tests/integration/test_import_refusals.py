"""Bulk import refusals: a refused row writes nothing, a bad line is one refused row (never a
stuck job, never a row cut in two), and an abandoned upload leaves nothing behind."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from domain.import_rows import MAX_COLUMNS, MAX_LINE_BYTES, MAX_REFUSALS_PER_ROW, ImportFormat
from domain.importing import ImportMode
from server.app import SystemClock
from server.config import Settings
from server.geo import GeoIP
from server.importer import new_job
from tests.conftest import TENANT, Api, CommandCounter, running
from tests.integration.interleave import interleave
from tests.integration.queries import CAPTURE, capture_input
from tests.integration.test_import import (
    define,
    finished,
    prepared_run,
    profiles_snapshot,
    run_import,
)

BY_SENDER = """query I($s: String!) { profileByIdentity(channel: API, senderId: $s) {
  id userId tags } }"""
BY_USER = """query U($u: String!) { profileByUserId(userId: $u) { id } }"""
ADD_TAGS = """mutation T($id: ID!, $t: [String!]!) {
  updateProfile(input: {id: $id, addTags: $t}) { profile { id } } }"""


def counts(job: dict[str, Any]) -> tuple[str, int, int, int, int]:
    return job["status"], job["rowsRead"], job["written"], job["unchanged"], job["refused"]


async def test_a_row_refused_for_the_list_cap_writes_nothing_not_even_its_user_id(
    api: Api,
) -> None:
    created = await api.ok(CAPTURE, capture_input("API", "crm-1"))
    profile_id = created["captureProperties"]["profile"]["id"]
    await api.ok(ADD_TAGS, {"id": profile_id, "t": [f"t{i}" for i in range(100)]})
    before = await profiles_snapshot(api)

    job = await run_import(api, b"userId,identity.API,tags\r\nnew@example.com,crm-1,extra\r\n")

    assert counts(job) == ("DONE", 1, 0, 1, 1), job
    assert [r["code"] for r in job["refusedRows"]] == ["LIMIT_EXCEEDED"]
    after = (await api.ok(BY_SENDER, {"s": "crm-1"}))["profileByIdentity"]
    assert after["userId"] is None
    assert await profiles_snapshot(api) == before


async def test_a_row_whose_merge_would_overflow_a_list_merges_nothing(api: Api) -> None:
    first = await api.ok(CAPTURE, capture_input("API", "bot-1"))
    second = await api.ok(CAPTURE, capture_input("API", "bot-2"))
    ids = [p["captureProperties"]["profile"]["id"] for p in (first, second)]
    await api.ok(ADD_TAGS, {"id": ids[0], "t": [f"a{i}" for i in range(60)]})
    await api.ok(ADD_TAGS, {"id": ids[1], "t": [f"b{i}" for i in range(60)]})
    before = await profiles_snapshot(api)

    job = await run_import(api, b"identity.API,userId\r\nbot-1;bot-2,who@example.com\r\n")

    assert counts(job) == ("DONE", 1, 0, 1, 1), job
    assert [r["code"] for r in job["refusedRows"]] == ["LIMIT_EXCEEDED"]
    assert await profiles_snapshot(api) == before


async def test_an_ndjson_line_nested_too_deeply_is_one_refused_row_and_the_import_goes_on(
    api: Api,
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    body = (
        json.dumps({"userId": "a@example.com"})
        + '\n{"userId": "b@example.com", "x": '
        + deep
        + "}\n"
        + json.dumps({"userId": "c@example.com"})
        + "\n"
    ).encode()

    job = await run_import(api, body, fmt="ndjson")

    assert counts(job) == ("DONE", 3, 2, 1, 1), job
    assert [(r["row"], r["code"]) for r in job["refusedRows"]] == [(2, "VALIDATION_FAILED")]


async def test_a_csv_list_cell_nested_too_deeply_is_one_refused_row(api: Api) -> None:
    await api.ok(
        'mutation { defineProperty(input: {name: "colours", type: LIST}) '
        "{ propertyDefinition { name } } }"
    )
    deep = "[" * 50_000 + "]" * 50_000  # within csv's field size limit
    body = f"userId,colours\r\na@example.com,red\r\nb@example.com,{deep}\r\n".encode()

    job = await run_import(api, body)

    assert counts(job) == ("DONE", 2, 1, 1, 1), job
    assert [(r["row"], r["field"]) for r in job["refusedRows"]] == [(2, "colours")]


async def test_a_csv_line_longer_than_the_limit_is_one_refused_row_even_cut_mid_character(
    api: Api,
) -> None:
    await define(api)
    cell = "x" + "é" * (MAX_LINE_BYTES // 2 + 100)  # a character straddles the limit
    body = f"userId,notes\r\na@example.com,\r\nb@example.com,{cell}\r\nc@example.com,\r\n"

    job = await run_import(api, body.encode())

    assert counts(job) == ("DONE", 3, 2, 1, 1), job
    assert [r["row"] for r in job["refusedRows"]] == [2]


async def test_the_tail_of_a_too_long_csv_line_is_never_imported_as_a_row(api: Api) -> None:
    await define(api)
    body = b"notes,userId\r\n" + b"x" * MAX_LINE_BYTES + b",smuggled@example.com\r\n"

    job = await run_import(api, body)

    assert counts(job) == ("DONE", 1, 0, 1, 1), job
    assert (await api.ok(BY_USER, {"u": "smuggled@example.com"}))["profileByUserId"] is None


async def test_a_quoted_csv_record_with_a_too_long_line_inside_is_one_refused_row(
    api: Api,
) -> None:
    await define(api)
    body = (
        b'userId,notes\r\na@example.com,"short\r\n'
        + b"x" * MAX_LINE_BYTES
        + b'\r\nend\r\nsmuggled@example.com,x"\r\nc@example.com,fine\r\n'
    )

    job = await run_import(api, body)

    assert counts(job) == ("DONE", 2, 1, 1, 1), job
    assert [r["row"] for r in job["refusedRows"]] == [1]
    assert (await api.ok(BY_USER, {"u": "smuggled@example.com"}))["profileByUserId"] is None
    assert (await api.ok(BY_USER, {"u": "c@example.com"}))["profileByUserId"] is not None


async def test_an_ndjson_line_longer_than_the_limit_is_one_row_and_later_rows_keep_their_numbers(
    api: Api,
) -> None:
    big = json.dumps({"userId": "b@example.com", "pad": "x" * (MAX_LINE_BYTES + 1000)})
    body = (
        json.dumps({"userId": "a@example.com"})
        + "\n"
        + big
        + "\n"
        + json.dumps({"userId": "c@example.com", "bad": 1})
        + "\n"
    ).encode()

    job = await run_import(api, body, fmt="ndjson")

    assert counts(job) == ("DONE", 3, 1, 2, 2), job
    assert sorted({r["row"] for r in job["refusedRows"]}) == [2, 3]


async def test_a_row_with_many_bad_cells_reports_its_first_ones_and_a_summary(api: Api) -> None:
    columns = 200
    header = "userId," + ",".join(f"c{i}" for i in range(columns))
    body = f"{header}\r\na@example.com{',1' * columns}\r\n".encode()

    job = await run_import(api, body)

    assert counts(job) == ("DONE", 1, 0, 1, 1), job
    refusals = job["refusedRows"]
    assert len(refusals) == MAX_REFUSALS_PER_ROW + 1
    assert {r["code"] for r in refusals[:-1]} == {"PROPERTY_NOT_DEFINED"}
    assert f"{columns - MAX_REFUSALS_PER_ROW} more cells" in refusals[-1]["message"]


async def test_a_file_with_too_many_columns_fails_with_a_clear_error(api: Api) -> None:
    header = "userId," + ",".join(f"c{i}" for i in range(MAX_COLUMNS))
    body = f"{header}\r\na@example.com{',1' * MAX_COLUMNS}\r\n".encode()

    job = await run_import(api, body)

    assert counts(job) == ("FAILED", 0, 0, 0, 0), job
    assert f"at most {MAX_COLUMNS}" in job["error"]


async def test_an_abandoned_upload_leaves_no_file_behind(
    settings: Settings, commands: CommandCounter, geo: GeoIP, tmp_path: Path
) -> None:
    async with running(replace(settings, data_dir=tmp_path), commands, geo) as api:
        key = await api.key()
        body = b"userId\r\n" + b"a@example.com\r\n" * 500
        messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": body, "more_body": True},
        ]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/import",
            "raw_path": b"/import",
            "query_string": b"format=csv",
            "root_path": "",
            "headers": [(b"authorization", f"Bearer {key}".encode()), (b"host", b"test")],
            "client": ("127.0.0.1", 1),
            "server": ("test", 80),
        }
        await api.app(scope, receive, send)

        assert sorted(p.name for p in (tmp_path / "imports").glob("*")) == []


class _BrokenDisk(io.BytesIO):
    def readline(self, size: int | None = -1, /) -> bytes:
        raise OSError("the disk went away")


async def test_a_job_stopped_by_an_unexpected_error_ends_failed_with_its_message(
    api: Api, tmp_path: Path
) -> None:
    imports = api.app.state.runtime.get().imports
    path = tmp_path / "customers.csv"
    path.write_bytes(b"userId\r\na@example.com\r\n")
    job = new_job(TENANT, ImportMode.FILL, ImportFormat.CSV, path, "admin-key", SystemClock(), "me")
    await imports.jobs.create_job(job)

    await imports.runner.run(job, _BrokenDisk())

    ended = await finished(api, job.id)
    assert ended["status"] == "FAILED"
    assert "the disk went away" in ended["error"]


async def test_a_row_refused_after_a_concurrent_change_says_its_user_id_stays(
    api: Api, tmp_path: Path
) -> None:
    created = await api.ok(CAPTURE, capture_input("API", "crm-1"))
    profile_id = created["captureProperties"]["profile"]["id"]
    await api.ok(ADD_TAGS, {"id": profile_id, "t": [f"t{i}" for i in range(99)]})
    body = b"userId,identity.API,tags\r\nnew@example.com,crm-1,extra\r\n"
    run = await prepared_run(api, tmp_path, body)

    # The row passes its checks (99 tags + 1); a tag added once its userId is given fills
    # the list before the row's own tag goes in.
    done, _ = await interleave(
        run, "set_user_id", lambda: api.ok(ADD_TAGS, {"id": profile_id, "t": ["late"]})
    )

    ended = await finished(api, done.id)
    # Refused part-way: it counts as refused and, since its userId was given, as written.
    assert counts(ended) == ("DONE", 1, 1, 0, 1), ended
    [refusal] = ended["refusedRows"]
    assert refusal["code"] == "LIMIT_EXCEEDED"
    assert "a change made meanwhile" in refusal["message"]
    after = (await api.ok(BY_SENDER, {"s": "crm-1"}))["profileByIdentity"]
    assert (after["userId"], len(after["tags"]), "extra" in after["tags"]) == (
        "new@example.com",
        100,
        False,
    )


async def test_a_job_whose_file_is_gone_ends_failed_instead_of_running(
    api: Api, tmp_path: Path
) -> None:
    imports = api.app.state.runtime.get().imports
    path = tmp_path / "customers.csv"
    path.write_bytes(b"userId\r\na@example.com\r\n")
    job = new_job(TENANT, ImportMode.FILL, ImportFormat.CSV, path, "admin", SystemClock(), "t")
    await imports.jobs.create_job(job)
    path.unlink()

    await imports._run(job)  # what a server does with a job it starts or takes over

    ended = await finished(api, job.id)
    assert ended["status"] == "FAILED"
    assert "cannot be read" in ended["error"]
