"""Bulk import, from the command line (`python -m server import FILE --tenant T`) and over HTTP
(`POST /import` for admin keys: the file is streamed to disk, a job runs it in the server and
`importJob(id)` reports it). The rules are in domain/importing.py, the jobs in
domain/import_jobs.py, the column scheme in domain/import_rows.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from domain.access import Principal, Role, check_tenant
from domain.errors import DomainError, Forbidden, Unauthenticated, ValidationFailed
from domain.identify import Identify
from domain.import_jobs import (
    ImportJob,
    ImportRunner,
    JobStatus,
    JobStolen,
    Progress,
    fingerprint,
)
from domain.import_rows import ImportFormat
from domain.importing import Importer, ImportMode
from domain.ports import Clock
from domain.services import ProfileService
from store.importing import MongoBulkImportStore, MongoImportJobs
from store.mongo import MongoProfileStore

log = logging.getLogger("profile360.import")
# A runner that has not recorded progress for this long is taken to be dead: its job resumes.
STALE_SECONDS = 60.0
_CHUNK = 1 << 16


def build_runner(
    db: Any, services: ProfileService, clock: Clock
) -> tuple[ImportRunner, MongoImportJobs]:
    store = MongoProfileStore(db)
    jobs = MongoImportJobs(db)
    identify = Identify(store, clock, services.lifecycle, services.senders, services.definitions)
    importer = Importer(
        store, MongoBulkImportStore(db), clock, services.lifecycle, services.senders, identify
    )
    return ImportRunner(services.definitions, importer, jobs, clock), jobs


def new_job(
    tenant: str,
    mode: ImportMode,
    fmt: ImportFormat,
    path: Path,
    actor: str,
    clock: Clock,
    owner: str,
) -> ImportJob:
    now = clock.now()
    with path.open("rb") as stream:
        print_ = fingerprint(tenant, mode, fmt, stream)
    return ImportJob(
        id="imp_" + secrets.token_hex(8),
        tenant=tenant,
        mode=mode,
        format=fmt,
        source=str(path.resolve()),
        fingerprint=print_,
        actor=actor,
        created_at=now,
        updated_at=now,
        total_bytes=path.stat().st_size,
        owner=owner,
    )


def guess_format(path: Path) -> ImportFormat:
    return ImportFormat.NDJSON if path.suffix.lower() in (".ndjson", ".jsonl") else ImportFormat.CSV


# ----- command line ---------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "import",
        help="import profiles from a CSV or NDJSON file (resumes an interrupted run)",
        description="Import profiles from a CSV or NDJSON file into a tenant. Columns: userId; "
        "identity.<CHANNEL> (e.g. identity.WHATSAPP; several ids separated by ';') or "
        "channel+senderId pairs (channel2+senderId2, ...); tags (JSON array or ';'-separated); "
        "any other column is a defined property. Running the same file again resumes it if it "
        "was interrupted, and otherwise changes nothing.",
    )
    parser.add_argument("file", type=Path)
    parser.add_argument("--tenant", required=True)
    parser.add_argument(
        "--mode",
        choices=[m.value for m in ImportMode],
        default=ImportMode.FILL.value,
        help="fill (default): only fill values a profile lacks; overwrite: replace them",
    )
    parser.add_argument(
        "--format",
        choices=[f.value for f in ImportFormat],
        help="csv or ndjson (default: from the file name; .ndjson/.jsonl are NDJSON)",
    )
    parser.add_argument("--batch", type=int, default=200, help="rows per batch (default 200)")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


BAR = 20  # characters of the progress bar


def progress_line(progress: Progress) -> str:
    job = progress.job
    c = job.counts
    done = job.offset / job.total_bytes if job.total_bytes else 0.0
    filled = round(BAR * min(done, 1.0))
    bar = "[" + "#" * filled + "-" * (BAR - filled) + "]"
    share = f"{100 * done:5.1f}%" if job.total_bytes else "  ?  "
    return (
        f"{bar} {share} rows read {c.read}: written {c.written}, unchanged {c.unchanged}; "
        f"refused {c.refused} | {progress.rows_per_second:.0f} rows/s | "
        f"elapsed {_duration(progress.elapsed)}, left {_duration(progress.seconds_left)}"
    )


async def run_cli(db: Any, services: ProfileService, clock: Clock, args: argparse.Namespace) -> int:
    tenant = check_tenant(args.tenant)
    path: Path = args.file
    if not await asyncio.to_thread(path.is_file):
        print(f"error: no such file: {path}", file=sys.stderr)
        return 2
    if args.batch < 1:
        print("error: --batch must be at least 1", file=sys.stderr)
        return 2
    mode = ImportMode(args.mode)
    fmt = ImportFormat(args.format) if args.format else guess_format(path)
    runner, jobs = build_runner(db, services, clock)
    runner = ImportRunner(
        services.definitions, runner._importer, jobs, clock, batch_rows=args.batch
    )
    owner = f"cli-{secrets.token_hex(4)}"
    job = new_job(tenant, mode, fmt, path, "import", clock, owner)
    unfinished = await jobs.unfinished_job(tenant, job.fingerprint)
    if unfinished is not None:
        taken = await jobs.take_over(unfinished, owner, clock.now())
        if taken is None:
            print("error: another runner took the interrupted job first", file=sys.stderr)
            return 1
        # Births and merges the interrupted run left half-done are finished (or abandoned)
        # first, exactly as recovery does after any crash.
        await services.lifecycle.recover(tenant)
        job = replace(taken, source=str(await asyncio.to_thread(path.resolve)))
        print(
            f"resuming import job {job.id} after row {job.row} (byte {job.offset})",
            file=sys.stderr,
        )
    else:
        await jobs.create_job(job)
        print(f"import job {job.id}: {path} into tenant {tenant} ({mode.value})", file=sys.stderr)
    tty = sys.stderr.isatty()
    last = [0.0]

    shown = [""]

    def show(progress: Progress) -> None:
        now = time.monotonic()
        final = progress.job.status is not JobStatus.RUNNING
        if not final and now - last[0] < (0.2 if tty else 2.0):
            return
        line = progress_line(progress)
        if final and line == shown[0] and not tty:
            return  # the last batch's line said it already
        last[0], shown[0] = now, line
        end = "\n" if final or not tty else ""
        print(("\r" if tty else "") + line, end=end, file=sys.stderr)
        sys.stderr.flush()

    stream = await asyncio.to_thread(path.open, "rb")
    with stream:
        job = await runner.run(job, stream, show)
    return summary(job, await jobs.refusals(job.tenant, job.id, "", 20))


def summary(job: ImportJob, first_refusals: list[Any]) -> int:
    c = job.counts
    elapsed = (job.finished_at or job.updated_at) - job.created_at
    print(
        f"import job {job.id} {job.status.value}: rows read {c.read}: written {c.written}, "
        f"unchanged {c.unchanged}; refused {c.refused} (total time {elapsed.total_seconds():.1f} s)"
    )
    if job.error:
        print(f"error: {job.error}", file=sys.stderr)
        return 1
    for refusal in first_refusals:
        print(f"  row {refusal.row}: {refusal.field}: {refusal.code}: {refusal.message}")
    if c.refused > len(first_refusals):
        print(f'  ... {c.refused - len(first_refusals)} more: query importJob(id: "{job.id}")')
    return 0


# ----- HTTP -----------------------------------------------------------------------------


class ImportService:
    """Runs import jobs inside the server, one task each; resumes the ones a dead server left."""

    def __init__(
        self,
        db: Any,
        services: ProfileService,
        clock: Clock,
        directory: Path,
        max_bytes: int = 1 << 30,
    ) -> None:
        self.runner, self.jobs = build_runner(db, services, clock)
        self._services = services
        self._clock = clock
        self._directory = directory
        self._max_bytes = max_bytes  # the largest file POST /import takes (IMPORT_MAX_BYTES)
        self._owner = f"server-{secrets.token_hex(4)}"
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, job: ImportJob) -> None:
        task = asyncio.create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: ImportJob) -> None:
        try:
            stream = await asyncio.to_thread(Path(job.source).open, "rb")
        except OSError as error:
            # The runner never starts: the job ends here, FAILED with why (never RUNNING).
            now = self._clock.now()
            failed = replace(
                job,
                status=JobStatus.FAILED,
                error=f"the uploaded file cannot be read: {error}",
                finished_at=now,
                updated_at=now,
            )
            await self.jobs.save_progress(failed, [])
            return
        try:
            with stream:
                done = await self.runner.run(job, stream)
            log.info("import job %s %s: %s", job.id, done.status.value, done.counts)
        except JobStolen:
            log.info("import job %s was taken over by another runner", job.id)
        except Exception:
            log.exception("import job %s stopped; it resumes at the next start", job.id)

    async def start(
        self, tenant: str, mode: ImportMode, fmt: ImportFormat, path: Path, actor: str
    ) -> ImportJob:
        job = new_job(tenant, mode, fmt, path, actor, self._clock, self._owner)
        await self.jobs.create_job(job)
        self._spawn(job)
        return job

    async def watch(self, interval: float = 30.0) -> None:
        """Resume abandoned jobs now and every `interval` seconds (a job whose runner died
        just before this server started is abandoned only once its progress is stale)."""
        while True:
            try:
                await self.resume_all()
            except Exception:
                log.exception("resuming import jobs failed; will try again")
            await asyncio.sleep(interval)

    async def resume_all(self) -> None:
        """Resume running jobs whose runner stopped recording progress (a dead server)."""
        now = self._clock.now()
        for job in await self.jobs.running_jobs():
            if job.owner == self._owner:
                continue
            here = await asyncio.to_thread(Path(job.source).is_file)
            if not job.owner.startswith("server-") or not here:
                continue
            if (now - job.updated_at).total_seconds() < STALE_SECONDS:
                continue
            taken = await self.jobs.take_over(job, self._owner, now)
            if taken is not None:
                await self._services.lifecycle.recover(job.tenant)
                log.info("resuming import job %s after row %d", job.id, taken.row)
                self._spawn(taken)

    def start_watching(self) -> None:
        task = asyncio.create_task(self.watch())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def receive(self, request: Request, principal: Principal) -> ImportJob:
        """Stream the request body to a file, then start its job."""
        fmt_name = request.query_params.get("format", "csv").lower()
        mode_name = request.query_params.get("mode", "fill").lower()
        if fmt_name not in {f.value for f in ImportFormat}:
            raise ValidationFailed("format must be csv or ndjson", field="format")
        if mode_name not in {m.value for m in ImportMode}:
            raise ValidationFailed("mode must be fill or overwrite", field="mode")
        self._directory.mkdir(parents=True, exist_ok=True)
        name = f"{secrets.token_hex(8)}.{fmt_name}"
        partial = self._directory / (name + ".part")
        size = 0
        try:
            with partial.open("wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > self._max_bytes:
                        break
                    out.write(chunk)
        except BaseException:
            # The client went away (or the body timed out): nothing of its file stays.
            partial.unlink(missing_ok=True)
            raise
        if size > self._max_bytes:
            partial.unlink()
            raise ValidationFailed(
                f"the file is larger than {self._max_bytes} bytes (IMPORT_MAX_BYTES)", field="body"
            )
        if partial.stat().st_size == 0:
            partial.unlink()
            raise ValidationFailed(
                "the request body is empty: send the file as the body", field="body"
            )
        final = self._directory / name
        partial.rename(final)
        return await self.start(
            principal.tenant,
            ImportMode(mode_name),
            ImportFormat(fmt_name),
            final,
            principal.key_name,
        )


def import_endpoint(
    authenticate: Callable[[Request], Awaitable[Principal | None]],
    imports: Callable[[], ImportService],
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if request.method != "POST":  # pragma: no cover - the route takes POST only
            return JSONResponse(
                {"errors": [{"message": "use POST", "extensions": {"code": "METHOD_NOT_ALLOWED"}}]},
                405,
            )
        try:
            principal = await authenticate(request)
            if principal is None:
                raise Unauthenticated("An API key is required")
            if principal.role is not Role.ADMIN:
                raise Forbidden("Importing needs an admin key")
            job = await imports().receive(request, principal)
        except DomainError as error:
            status = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "RATE_LIMITED": 429}.get(
                error.code.value, 400
            )
            body = {
                "errors": [
                    {
                        "message": str(error),
                        "extensions": {"code": error.code.value, "field": error.field},
                    }
                ]
            }
            return JSONResponse(body, status)
        return JSONResponse({"jobId": job.id, "status": job.status.value}, 202)

    return endpoint
