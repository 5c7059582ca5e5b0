"""Import jobs: a file read in batches, each batch checkpointed, resumable after a crash.

The job document records the row number and byte offset just after the last batch whose
rows were all applied and whose refusals were recorded, with the counts so far. A run that
is stopped anywhere (kill -9 included) resumes from that checkpoint: the rows of the batch
it was in are applied again, which changes nothing more (every write of an import is
idempotent), so the data equal an uninterrupted run. Rows applied before the crash and
after the checkpoint count as unchanged when they are applied again.

Counts: every row read either changed something (written) or did not (unchanged), so
written + unchanged = read; refused counts the rows reported refused, which changed nothing
unless the rules refused them part-way (see domain.importing.RowOutcome). Run a file twice
and the second run reads every row as unchanged, its refused rows reported again.

Memory holds one batch of rows at a time, whatever the size of the file.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import IO, Protocol

from domain.definitions import Definitions
from domain.import_rows import (
    FileError,
    ImportFormat,
    ImportRow,
    RawRow,
    Refusal,
    RowValidator,
    read_header,
    read_rows,
)
from domain.importing import Importer, ImportMode
from domain.ports import Clock

DEFAULT_BATCH_ROWS = 200


class JobStatus(StrEnum):
    """Where an import job stands."""

    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """Rows read so far, and what became of them: written + unchanged = read; refused rows
    are among the unchanged ones (or the written ones, if refused part-way)."""

    read: int = 0
    written: int = 0
    unchanged: int = 0
    refused: int = 0


@dataclass(frozen=True, slots=True)
class ImportJob:
    """One import of one file into one tenant, and its checkpoint."""

    id: str
    tenant: str
    mode: ImportMode
    format: ImportFormat
    source: str  # the file's path, where the job's runner reads it
    fingerprint: str
    actor: str
    created_at: datetime
    updated_at: datetime
    status: JobStatus = JobStatus.RUNNING
    counts: ImportCounts = field(default_factory=ImportCounts)
    row: int = 0  # the last row of the checkpoint (rows are numbered from 1)
    offset: int = 0  # the byte offset just after that row (0: not started)
    header: tuple[str, ...] = ()
    total_bytes: int = 0
    finished_at: datetime | None = None
    error: str | None = None
    owner: str = ""  # the runner that holds the job (a resume takes it over)


class ImportJobStore(Protocol):
    async def create_job(self, job: ImportJob) -> None: ...

    async def get_job(self, tenant: str, job_id: str) -> ImportJob | None: ...

    async def unfinished_job(self, tenant: str, fingerprint: str) -> ImportJob | None:
        """The running job of this tenant and file, if there is one (to resume)."""
        ...

    async def running_jobs(self) -> list[ImportJob]: ...

    async def take_over(self, job: ImportJob, owner: str, now: datetime) -> ImportJob | None:
        """Become the job's runner, while it is still held as `job` says; None otherwise."""
        ...

    async def save_progress(self, job: ImportJob, refusals: Sequence[Refusal]) -> bool:
        """Record the refusals (idempotently: one document per row and field), then the job
        as given, while its owner still holds it; False if another runner took it over."""
        ...

    async def refusals(self, tenant: str, job_id: str, after: str, limit: int) -> list[Refusal]:
        """Refusals in row order after the key `after` (`row|field`, rows 12 digits wide;
        empty: from the start)."""
        ...


def fingerprint(tenant: str, mode: ImportMode, fmt: ImportFormat, stream: IO[bytes]) -> str:
    """What identifies one file's import for a resume: the tenant, the mode, the format and
    the file's bytes (hashed in full: a changed file is a new import)."""
    digest = hashlib.sha256(f"{tenant}|{mode.value}|{fmt.value}|".encode())
    stream.seek(0)
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Progress:
    """What a progress line shows."""

    job: ImportJob
    elapsed: float
    rows_per_second: float
    seconds_left: float | None


class JobStolen(Exception):
    """Another runner took the job over: this one stops."""


class ImportRunner:
    """Runs (or resumes) an import job over its file."""

    def __init__(
        self,
        definitions: Definitions,
        importer: Importer,
        jobs: ImportJobStore,
        clock: Clock,
        *,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        self._definitions = definitions
        self._importer = importer
        self._jobs = jobs
        self._clock = clock
        self._batch_rows = batch_rows

    async def run(
        self,
        job: ImportJob,
        stream: IO[bytes],
        on_progress: Callable[[Progress], None] | None = None,
    ) -> ImportJob:
        started = time.monotonic()
        start_offset, start_rows = job.offset, job.counts.read
        validator = RowValidator(self._definitions, job.tenant)

        def report(current: ImportJob) -> None:
            if on_progress is None:
                return
            elapsed = max(time.monotonic() - started, 1e-6)
            rate = (current.counts.read - start_rows) / elapsed
            done = current.offset - start_offset
            left = None
            if done > 0 and current.total_bytes:
                left = (current.total_bytes - current.offset) * elapsed / done
            on_progress(Progress(current, elapsed, rate, left))

        try:
            if job.format is ImportFormat.CSV and not job.header:
                header, offset = read_header(stream)
                job = replace(job, header=tuple(header), offset=offset)
                await self._save(job, [])
            batch: list[RawRow] = []
            for raw in read_rows(stream, job.format, job.header, job.offset, job.row + 1):
                batch.append(raw)
                if len(batch) >= self._batch_rows:
                    job = await self._batch(job, validator, batch)
                    batch = []
                    report(job)
            if batch:
                job = await self._batch(job, validator, batch)
            job = replace(
                job,
                status=JobStatus.DONE,
                finished_at=self._clock.now(),
                updated_at=self._clock.now(),
            )
        except JobStolen:
            raise
        except Exception as error:  # a job never stays RUNNING, whatever stopped it
            message = str(error) if isinstance(error, FileError) else _unexpected(error)
            job = replace(
                job,
                status=JobStatus.FAILED,
                error=message,
                finished_at=self._clock.now(),
                updated_at=self._clock.now(),
            )
        await self._save(job, [])
        report(job)
        return job

    async def _batch(
        self, job: ImportJob, validator: RowValidator, raws: Sequence[RawRow]
    ) -> ImportJob:
        validator.next_batch()
        rows: list[ImportRow] = []
        refusals: list[Refusal] = []
        refused_rows: set[int] = set()
        for raw in raws:
            checked = await validator.validate(raw)
            if isinstance(checked, ImportRow):
                rows.append(checked)
            else:
                refusals.extend(checked)
                refused_rows.add(raw.number)
        outcomes, refused = await self._importer.apply(job.tenant, rows, job.mode, job.actor)
        refusals.extend(refused)
        written = sum(1 for outcome in outcomes.values() if outcome.changed)
        counts = ImportCounts(
            read=job.counts.read + len(raws),
            written=job.counts.written + written,
            unchanged=job.counts.unchanged + len(raws) - written,
            refused=job.counts.refused
            + len(refused_rows)
            + sum(1 for outcome in outcomes.values() if outcome.refused),
        )
        last = raws[-1]
        job = replace(
            job,
            counts=counts,
            row=last.number,
            offset=last.end_offset,
            updated_at=self._clock.now(),
        )
        await self._save(job, refusals)
        return job

    async def _save(self, job: ImportJob, refusals: Sequence[Refusal]) -> None:
        if not await self._jobs.save_progress(job, refusals):
            raise JobStolen(f"import job {job.id} was taken over by another runner")


def _unexpected(error: Exception) -> str:
    return f"the import stopped on an unexpected error ({type(error).__name__}: {error})"[:500]
