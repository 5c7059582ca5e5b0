"""GraphQL types of bulk imports: a job's progress and its refused rows."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum

import strawberry

from domain.errors import ValidationFailed
from domain.import_jobs import ImportJob as DomainImportJob
from domain.import_jobs import JobStatus
from domain.import_rows import ImportFormat, Refusal
from domain.importing import ImportMode
from schema.enums import describe_enum
from schema.pages import DEFAULT_PAGE, After, First, PageInfo, page_size

MAX_PAGE = 100
# (the key after which to start, at most how many) -> refusals
RefusalLoader = Callable[[str, int], Awaitable[list[Refusal]]]


describe_enum(
    ImportMode,
    "How an import's values meet a profile's",
    {
        "FILL": "Only fill the values a profile lacks (lists are unioned), as a merge does",
        "OVERWRITE": "Replace the values the row gives",
    },
)
describe_enum(
    ImportFormat,
    "The format of an import's file",
    {"CSV": "CSV with a header row (UTF-8)", "NDJSON": "One JSON object a line"},
)


@strawberry.enum(description="Where an import job stands")
class ImportJobStatus(Enum):
    RUNNING = strawberry.enum_value(
        JobStatus.RUNNING.value, description="Rows are being read and applied"
    )
    DONE = strawberry.enum_value(JobStatus.DONE.value, description="Every row was read")
    FAILED = strawberry.enum_value(
        JobStatus.FAILED.value, description="The file could not be read on (see `error`)"
    )


@strawberry.type(
    description="A row (or one cell of it) the import refused. Nothing of it was written, "
    "unless its message says a change made meanwhile refused it part-way (then the steps "
    "already done stay, and the row counts as written)"
)
class ImportRefusal:
    row: int = strawberry.field(
        description="The row's number: 1 is the first data row (a CSV header is not a row)"
    )
    field: str = strawberry.field(description="The column (or `row` for the row as a whole)")
    code: str = strawberry.field(description="The error code, as the API's errors carry it")
    message: str = strawberry.field(description="What is wrong, readable")

    @classmethod
    def from_domain(cls, refusal: Refusal) -> ImportRefusal:
        return cls(row=refusal.row, field=refusal.field, code=refusal.code, message=refusal.message)


def refusal_key(refusal: Refusal) -> str:
    """Where a refusal stands in its job's list (row, then field)."""
    return f"{refusal.row:012d}|{refusal.field}"


def _cursor(refusal: Refusal) -> str:
    return base64.urlsafe_b64encode(refusal_key(refusal).encode()).decode()


@strawberry.type(description="A refused row in a page of them")
class ImportRefusalEdge:
    node: ImportRefusal = strawberry.field(description="The refusal")
    cursor: str = strawberry.field(description="Pass as `after` to continue after this one")


@strawberry.type(description="A page of an import job's refused rows, in row order")
class ImportRefusalConnection:
    edges: list[ImportRefusalEdge] = strawberry.field(description="The refusals of this page")
    page_info: PageInfo = strawberry.field(description="Where this page stands")


@strawberry.type(description="One import of a file (POST /import or `python -m server import`)")
class ImportJob:
    id: strawberry.ID = strawberry.field(description="The job's id, as POST /import answered it")
    status: ImportJobStatus = strawberry.field(description="Where the job stands")
    mode: ImportMode = strawberry.field(description="How the rows' values met the profiles'")
    format: ImportFormat = strawberry.field(description="The file's format")
    rows_read: int = strawberry.field(description="Rows read so far (checkpointed)")
    written: int = strawberry.field(description="Rows that changed profiles")
    unchanged: int = strawberry.field(
        description="Rows that changed nothing: their values were all there already, or they "
        "were refused (`written` + `unchanged` = `rowsRead`)"
    )
    refused: int = strawberry.field(
        description="Rows refused (see `refusedRows`); each is counted as unchanged too, or as "
        "written if a change made meanwhile refused it after part of it was written"
    )
    bytes_read: int = strawberry.field(description="Bytes of the file read so far")
    total_bytes: int = strawberry.field(description="The file's size in bytes")
    created_at: datetime = strawberry.field(description="When the job was created")
    updated_at: datetime = strawberry.field(description="When the job last recorded progress")
    finished_at: datetime | None = strawberry.field(description="When the job finished, if it has")
    error: str | None = strawberry.field(description="Why the file could not be read, if it failed")
    load_refusals: strawberry.Private[RefusalLoader]

    @strawberry.field(description="The refused rows, in row order (a Relay connection)")
    async def refused_rows(
        self, first: First = DEFAULT_PAGE, after: After = None
    ) -> ImportRefusalConnection:
        size = page_size(first)
        if not 0 <= size <= MAX_PAGE:
            raise ValidationFailed(f"first must be 0 to {MAX_PAGE}", field="first")
        key = ""
        if after is not None:
            try:
                key = base64.urlsafe_b64decode(after.encode()).decode()
            except (ValueError, UnicodeDecodeError):
                raise ValidationFailed(
                    "after is not a cursor of this list", field="after"
                ) from None
        found = await self.load_refusals(key, size + 1)
        edges = [
            ImportRefusalEdge(node=ImportRefusal.from_domain(r), cursor=_cursor(r))
            for r in found[:size]
        ]
        return ImportRefusalConnection(
            edges=edges,
            page_info=PageInfo.of([e.cursor for e in edges], len(found) > size, after is not None),
        )

    @classmethod
    def from_domain(cls, job: DomainImportJob, load_refusals: RefusalLoader) -> ImportJob:
        return cls(
            id=strawberry.ID(job.id),
            status=ImportJobStatus(job.status.value),
            mode=job.mode,
            format=job.format,
            rows_read=job.counts.read,
            written=job.counts.written,
            unchanged=job.counts.unchanged,
            refused=job.counts.refused,
            bytes_read=job.offset,
            total_bytes=job.total_bytes,
            created_at=job.created_at,
            updated_at=job.updated_at,
            finished_at=job.finished_at,
            error=job.error,
            load_refusals=load_refusals,
        )
