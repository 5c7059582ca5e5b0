"""Named pause points between the steps of the store's multi-step operations (test-only).

Every state-machine write in the store ends with `await checkpoint("step")`. Unless a test has
armed a gate in the current task's context, that is one context-variable read and nothing
else. A test arms a gate for one task: the task runs until it completes the named step, then
waits there while the test runs another operation to completion, then resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class Gate:
    """Stop the task that carries this gate right after its `skip`+1-th pass through `step`."""

    step: str
    skip: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    resume: asyncio.Event = field(default_factory=asyncio.Event)
    passes: int = 0


_gate: ContextVar[Gate | None] = ContextVar("profile360_pause_gate", default=None)


async def checkpoint(step: str) -> None:
    gate = _gate.get()
    if gate is None or gate.step != step or gate.resume.is_set():
        return
    gate.passes += 1
    if gate.passes <= gate.skip:
        return
    gate.reached.set()
    await gate.resume.wait()


@contextlib.contextmanager
def armed(gate: Gate) -> Iterator[Gate]:
    """Arm `gate` for the code run in this context (and the tasks it creates)."""
    token = _gate.set(gate)
    try:
        yield gate
    finally:
        _gate.reset(token)
