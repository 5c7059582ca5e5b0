"""The embedded MongoDB-wire-compatible engine (mongoeco), for development and tests.

It runs in its own thread with its own event loop, so the API (or a test, or another process)
talks to it over loopback TCP through the same driver code path as a real MongoDB. `serve`
runs it as its own process (`EngineProcess`), so API and engine never share an interpreter
lock. With a secret, the engine requires SCRAM authentication: another local user who can
reach 127.0.0.1 but cannot read the 0600 files under DATA_DIR is refused.
Run it alone with `python -m store.embedded [--path FILE] [--port N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

ENGINE_USER = "profile360"


class EmbeddedMongo:
    """A mongoeco server on 127.0.0.1: SQLite-backed when given a path, in memory otherwise."""

    def __init__(
        self, sqlite_path: Path | None = None, port: int = 0, secret: str | None = None
    ) -> None:
        self.sqlite_path = sqlite_path
        self._port = port
        self._secret = secret
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.uri = ""

    def start(self, timeout: float = 30) -> str:
        if self.sqlite_path is not None:
            self.sqlite_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm", "-journal"):  # made before files were private
                existing = Path(f"{self.sqlite_path}{suffix}")
                if existing.exists():
                    existing.chmod(0o600)
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
        from mongoeco.wire import AsyncMongoEcoProxyServer, WireAuthUser

        if self.sqlite_path is not None:
            engine: Any = SQLiteEngine(str(self.sqlite_path))
        else:
            engine = MemoryEngine()
        users = (WireAuthUser(ENGINE_USER, self._secret),) if self._secret else ()
        server = AsyncMongoEcoProxyServer(
            engine=engine, host="127.0.0.1", port=self._port, auth_users=users
        )
        address = await server.start()
        self.uri = engine_uri(address.host, address.port, self._secret)
        return server


def engine_uri(host: str, port: int, secret: str | None) -> str:
    if secret is None:
        return f"mongodb://{host}:{port}/?directConnection=true"
    return (
        f"mongodb://{ENGINE_USER}:{secret}@{host}:{port}/"
        "?directConnection=true&authSource=admin&authMechanism=SCRAM-SHA-256"
    )


class EngineProcess:
    """The engine in a process of its own (SQLite file, a fresh secret at each start).

    It stops when asked, and by itself when this process dies (its stdin closes)."""

    def __init__(self, sqlite_path: Path) -> None:
        self.sqlite_path = sqlite_path
        self._process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> str:
        process = subprocess.Popen(
            [sys.executable, "-m", "store.embedded", "--path", str(self.sqlite_path)]
            + ["--secret", "--exit-with-stdin"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._process = process
        stdout: IO[str] | None = process.stdout
        line = stdout.readline().strip() if stdout is not None else ""
        if not line.startswith("mongodb://"):
            self.stop()
            raise RuntimeError(f"the embedded engine did not start (exit status {process.poll()})")
        return line

    def stop(self, timeout: float = 30) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the embedded engine on 127.0.0.1.")
    parser.add_argument("--path", type=Path, help="SQLite file (default: in memory)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--secret", action="store_true", help="require a fresh secret (printed in the address)"
    )
    parser.add_argument("--exit-with-stdin", action="store_true", help="stop when stdin closes")
    args = parser.parse_args()
    os.umask(0o077)  # the SQLite file and its journals: this OS user's only
    secret = secrets.token_urlsafe(32) if args.secret else None
    engine = EmbeddedMongo(args.path, args.port, secret)
    print(engine.start(), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.exit_with_stdin:

        def watch_parent() -> None:
            sys.stdin.read()  # returns when the parent's end closes, however it ended
            stop.set()

        threading.Thread(target=watch_parent, daemon=True).start()
    stop.wait()
    engine.stop()


if __name__ == "__main__":
    main()
