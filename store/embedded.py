"""The embedded MongoDB-wire-compatible engine (mongoeco), for development and tests.

It runs in its own thread with its own event loop, so the API (or a test, or another process)
talks to it over loopback TCP through the same driver code path as a real MongoDB.
Run it alone with `python -m store.embedded [--path FILE] [--port N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
from pathlib import Path
from typing import Any


class EmbeddedMongo:
    """A mongoeco server on 127.0.0.1: SQLite-backed when given a path, in memory otherwise."""

    def __init__(self, sqlite_path: Path | None = None, port: int = 0) -> None:
        self.sqlite_path = sqlite_path
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.uri = ""

    def start(self, timeout: float = 30) -> str:
        self._thread = threading.Thread(target=self._run, name="mongoeco", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the embedded engine did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the embedded engine failed to start: {self._error}")
        return self.uri

    def stop(self, timeout: float = 30) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        server: Any = None
        try:
            server = loop.run_until_complete(self._start_server())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(server.close())
            loop.close()

    async def _start_server(self) -> Any:
        from mongoeco.engines.memory import MemoryEngine
        from mongoeco.engines.sqlite import SQLiteEngine
        from mongoeco.wire import AsyncMongoEcoProxyServer

        if self.sqlite_path is not None:
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            engine: Any = SQLiteEngine(str(self.sqlite_path))
        else:
            engine = MemoryEngine()
        server = AsyncMongoEcoProxyServer(engine=engine, host="127.0.0.1", port=self._port)
        address = await server.start()
        self.uri = str(address.uri)
        return server


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the embedded engine on 127.0.0.1.")
    parser.add_argument("--path", type=Path, help="SQLite file (default: in memory)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    engine = EmbeddedMongo(args.path, args.port)
    print(engine.start(), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    engine.stop()


if __name__ == "__main__":
    main()
