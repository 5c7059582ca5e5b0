"""An import holds one batch at a time: reading, checking and applying a file ten times longer
peaks at about the same memory (the writes are a fake; reading and validation are the real
domain code)."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from bench.import_data import DEFINITIONS, awkward_csv
from domain.definitions import Definitions
from domain.import_jobs import ImportJob, ImportRunner
from domain.import_rows import ImportFormat, ImportRow, Refusal
from domain.importing import Importer, ImportMode, RowOutcome
from domain.properties import PropertyDefinition, PropertyType

NOW = datetime(2026, 11, 23, tzinfo=UTC)


class _Clock:
    def now(self) -> datetime:
        return NOW


class _DefinitionStore:
    async def definitions(self, tenant: str) -> list[PropertyDefinition]:
        return [
            PropertyDefinition(name=name, type=PropertyType(type_), description="", created_at=NOW)
            for name, type_ in DEFINITIONS
        ]


class _Importer:
    """Every valid row is written; nothing is kept."""

    async def apply(
        self, tenant: str, rows: Sequence[ImportRow], mode: ImportMode, actor: str
    ) -> tuple[dict[int, RowOutcome], list[Refusal]]:
        return {row.number: RowOutcome.WRITTEN for row in rows}, []


class _Jobs:
    async def save_progress(self, job: ImportJob, refusals: Sequence[Refusal]) -> bool:
        return True


def _peak(path: Path) -> tuple[int, ImportJob]:
    definitions = Definitions(cast(Any, _DefinitionStore()), _Clock())
    runner = ImportRunner(
        definitions, cast(Importer, _Importer()), cast(Any, _Jobs()), _Clock(), batch_rows=200
    )
    job = ImportJob(
        id="imp_memory",
        tenant="acme",
        mode=ImportMode.FILL,
        format=ImportFormat.CSV,
        source=str(path),
        fingerprint="f",
        actor="test",
        created_at=NOW,
        updated_at=NOW,
        total_bytes=path.stat().st_size,
        owner="test",
    )

    async def run() -> ImportJob:
        with path.open("rb") as stream:
            return await runner.run(job, stream)

    tracemalloc.start()
    try:
        done = asyncio.run(run())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, done


def test_a_file_ten_times_longer_peaks_at_about_the_same_memory(tmp_path: Path) -> None:
    peaks = []
    for rows in (500, 5_000):
        path = tmp_path / f"{rows}.csv"
        path.write_bytes(awkward_csv(rows)[0])
        peak, done = _peak(path)
        assert done.counts.read == rows
        assert done.counts.written + done.counts.unchanged == rows
        peaks.append(peak)

    small, large = peaks
    print(f"peak memory: {small} bytes for 500 rows, {large} for 5,000")
    assert large < small * 1.5 + 256 * 1024, peaks  # the file grew 10x (to about 1 MB)
