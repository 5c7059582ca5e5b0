"""Reading import files: CSV records across lines, byte offsets a resume starts from."""

from __future__ import annotations

import io

from domain.import_rows import ImportFormat, read_header, read_rows

CSV = (
    "\ufeffuserId,notes,tags\r\n"
    'a,"two\r\nlines, ""quoted""",x;y\r\n'
    "\r\n"
    "b,ünïcode 😀,\r\n"
    'c,"tail\nLF only",["z"]\r\n'
).encode()


def test_a_csv_record_spans_lines_and_keeps_quotes_commas_and_unicode() -> None:
    stream = io.BytesIO(CSV)
    header, offset = read_header(stream)
    rows = list(read_rows(stream, ImportFormat.CSV, header, offset, 1))

    assert header == ["userId", "notes", "tags"]
    assert [r.number for r in rows] == [1, 2, 3]
    assert rows[0].cells == {"userId": "a", "notes": 'two\r\nlines, "quoted"', "tags": "x;y"}
    assert rows[1].cells["notes"] == "ünïcode 😀"
    assert rows[2].cells["notes"] == "tail\nLF only"
    assert rows[-1].end_offset == len(CSV)


def test_reading_from_a_rows_end_offset_gives_the_rows_after_it() -> None:
    stream = io.BytesIO(CSV)
    header, offset = read_header(stream)
    rows = list(read_rows(stream, ImportFormat.CSV, header, offset, 1))

    resumed = list(read_rows(stream, ImportFormat.CSV, header, rows[0].end_offset, 2))

    assert [(r.number, r.cells, r.end_offset) for r in resumed] == [
        (r.number, r.cells, r.end_offset) for r in rows[1:]
    ]


def test_an_ndjson_line_that_is_not_an_object_is_a_row_to_refuse() -> None:
    body = b'{"userId": "a"}\n\n[1]\n{"userId": "b"}\n'
    rows = list(read_rows(io.BytesIO(body), ImportFormat.NDJSON, [], 0, 1))

    assert [r.number for r in rows] == [1, 2, 3]
    assert "" in rows[1].cells
    assert rows[2].cells == {"userId": "b"}
