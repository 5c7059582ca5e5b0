"""Playing one interleaving of two operations with the store's pause points (store.pauses).

Operation A runs in a task of its own with a gate armed at one of its steps; once it has
paused there, operation B runs to completion (it must not wait for A: whoever meets an
operation half-done finishes it), then A resumes and finishes. A test names the step, and so
the exact moment, at which B cuts in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from store.pauses import Gate, armed, checkpoint

PATIENCE = 10.0  # seconds


async def interleave[A, B](
    first: Callable[[], Awaitable[A]],
    step: str,
    then: Callable[[], Awaitable[B]],
    *,
    skip: int = 0,
    patience: float = PATIENCE,
) -> tuple[A, B]:
    """Run `first` until it completes `step` (its `skip`+1-th pass), run `then` to completion
    while it waits there, resume it; return both results. Fails the test if `first` never
    reaches the step or if either operation hangs (takes longer than `patience` seconds)."""
    gate = Gate(step, skip=skip)
    with armed(gate):
        task: asyncio.Task[A] = asyncio.create_task(_call(first))
    try:
        await _paused(task, gate, patience)
        try:
            second = await asyncio.wait_for(_call(then), patience)
        except TimeoutError:
            pytest.fail(f"B hung while A was paused after {step!r}: it waited for A")
        gate.resume.set()
        try:
            result = await asyncio.wait_for(asyncio.shield(task), patience)
        except TimeoutError:
            pytest.fail(f"A hung after it resumed from {step!r}")
        return result, second
    finally:
        gate.resume.set()
        if not task.done():
            task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def _paused(task: asyncio.Task[Any], gate: Gate, patience: float) -> None:
    reached = asyncio.create_task(gate.reached.wait())
    try:
        done, _ = await asyncio.wait(
            {task, reached}, timeout=patience, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        reached.cancel()
    if reached in done or gate.reached.is_set():
        return
    if task in done:
        outcome = task.exception() or task.result()
        pytest.fail(
            f"A finished without reaching step {gate.step!r} (pass {gate.skip + 1}): {outcome!r}"
        )
    pytest.fail(f"A did not reach step {gate.step!r} within {patience} s")


async def _call[T](operation: Callable[[], Awaitable[T]]) -> T:
    return await operation()


@contextlib.contextmanager
def pause_before(monkeypatch: pytest.MonkeyPatch, obj: object, method: str) -> Iterator[str]:
    """Give `obj.method` a pause point of its own, named "before <method>", passed right before
    the method runs: for the writes that end no state-machine step (a capture's write, an
    event's insert, a conversation's upsert). Yields the step's name."""
    original = getattr(obj, method)
    step = f"before {method}"

    async def paused(*args: Any, **kwargs: Any) -> Any:
        await checkpoint(step)
        return await original(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(obj, method, paused)
        yield step
