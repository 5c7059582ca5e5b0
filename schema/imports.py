"""GraphQL types of bulk imports: a job's progress and its refused rows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from domain.errors import ValidationFailed
from domain.import_jobs import ImportJob as DomainImportJob
from domain.import_jobs import JobStatus
from domain.import_rows import Refusal

MAX_REFUSALS_PAGE = 1000
RefusalLoader = Callable[[int, int], Awaitable[list[Refusal]]]


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
    description="A row (or one cell of it) the import refused; nothing of it was written"
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


@strawberry.type(description="One import of a file (POST /import or `python -m server import`)")
class ImportJob:
    id: strawberry.ID = strawberry.field(description="The job's id, as POST /import answered it")
    status: ImportJobStatus = strawberry.field(description="Where the job stands")
    mode: str = strawberry.field(description="`fill` (only missing values) or `overwrite`")
    format: str = strawberry.field(description="`csv` or `ndjson`")
    rows_read: int = strawberry.field(description="Rows read so far (checkpointed)")
    written: int = strawberry.field(description="Rows that changed profiles")
    unchanged: int = strawberry.field(description="Rows whose values were all there already")
    refused: int = strawberry.field(description="Rows refused (see `refusedRows`)")
    bytes_read: int = strawberry.field(description="Bytes of the file read so far")
    total_bytes: int = strawberry.field(description="The file's size in bytes")
    created_at: datetime = strawberry.field(description="When the job was created")
    updated_at: datetime = strawberry.field(description="When the job last recorded progress")
    finished_at: datetime | None = strawberry.field(description="When the job finished, if it has")
    error: str | None = strawberry.field(description="Why the file could not be read, if it failed")
    load_refusals: strawberry.Private[RefusalLoader]

    @strawberry.field(
        description="Refused rows in row order: at most `first` (1 to 1000) after row `afterRow`"
    )
    async def refused_rows(
        self,
        first: Annotated[int, strawberry.argument(description="How many (1 to 1000)")] = 100,
        after_row: Annotated[
            int, strawberry.argument(description="Only rows after this row number")
        ] = 0,
    ) -> list[ImportRefusal]:
        if not 1 <= first <= MAX_REFUSALS_PAGE:
            raise ValidationFailed(f"first must be 1 to {MAX_REFUSALS_PAGE}", field="first")
        found = await self.load_refusals(after_row, first)
        return [ImportRefusal.from_domain(r) for r in found]

    @classmethod
    def from_domain(cls, job: DomainImportJob, load_refusals: RefusalLoader) -> ImportJob:
        return cls(
            id=strawberry.ID(job.id),
            status=ImportJobStatus(job.status.value),
            mode=job.mode.value,
            format=job.format.value,
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
