"""`python -m server serve`: start-up in a fixed order, each step failing with one clear line.

1. settings (read and checked by the caller), 2. the DATA_DIR lock and the embedded engine in
its own process (embedded only), 3. the database answers, 4. the port is bound, 5. the workers
serve, and only then the banner and the development key.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import uvicorn
from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError
from starlette.applications import Starlette
from uvicorn.supervisors.multiprocess import Multiprocess

from domain.access import Role
from server.app import SystemClock, create_app
from server.config import Settings
from server.datadir import DataDirInUse, DataDirLock, make_private, write_private
from server.logs import log_config
from store.client import open_client
from store.embedded import EngineProcess
from store.keys import KeyStore, generate_key

log = logging.getLogger("profile360")


class StartupError(Exception):
    """Start-up cannot go on; the message is the one line the operator sees."""


def serve(settings: Settings) -> int:
    """Run the API until a signal; returns the exit status."""
    with contextlib.ExitStack() as cleanup:
        if settings.embedded:
            settings = _start_engine(settings, cleanup)
        asyncio.run(_check_database(settings))
        sock = _bind(settings)
        cleanup.callback(sock.close)
        if settings.embedded:
            log.warning(
                "Using the embedded engine (mongoeco, SQLite at %s, in its own process): fine "
                "for development, slow past a few thousand profiles. Set MONGODB_URI to use a "
                "real MongoDB.",
                settings.sqlite_path,
            )
        dev_key = asyncio.run(_dev_key(settings))
        return _run_workers(settings, sock, partial(_announce, settings, dev_key))
    return 1  # pragma: no cover - ExitStack never swallows


def _start_engine(settings: Settings, cleanup: contextlib.ExitStack) -> Settings:
    if settings.production and not settings.embedded_in_production:
        raise StartupError(
            "APP_ENV=production needs MONGODB_URI: the embedded engine is for development. "
            "Set EMBEDDED_ENGINE_IN_PRODUCTION=1 to run on it anyway (one machine, one "
            "process's SQLite file, no replication or backups)"
        )
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except DataDirInUse as exc:
        raise StartupError(str(exc)) from None
    cleanup.callback(lock.release)
    for path in (settings.dev_key_path, settings.engine_uri_path):
        make_private(path)
    engine = EngineProcess(settings.sqlite_path)
    try:
        uri = engine.start()
    except RuntimeError as exc:
        raise StartupError(f"{exc} (DATA_DIR {settings.data_dir})") from None
    cleanup.callback(engine.stop)
    write_private(settings.engine_uri_path, uri + "\n")
    cleanup.callback(settings.engine_uri_path.unlink, missing_ok=True)
    return replace(settings, engine_uri=uri)


async def _check_database(settings: Settings) -> None:
    uri = settings.database_uri
    assert uri is not None
    where = (
        f"the database at {_hosts(uri)} (MONGODB_URI)"
        if settings.mongodb_uri
        else f"the embedded engine at {_hosts(uri)} (DATA_DIR {settings.data_dir})"
    )
    timeout = settings.mongodb_timeout_seconds
    try:
        client = open_client(uri, timeout_seconds=timeout)
    except ConfigurationError as exc:
        raise StartupError(f"MONGODB_URI is not a usable MongoDB address: {exc}") from None
    try:
        await client.admin.command("ping")
    except OperationFailure as exc:
        raise StartupError(f"{where} refused the connection: {exc.details or exc.code}") from None
    except PyMongoError:
        raise StartupError(
            f"{where} did not answer within {timeout:g} s (MONGODB_TIMEOUT_SECONDS); "
            "check that it runs and that MONGODB_URI is right"
        ) from None
    finally:
        await client.close()


def _hosts(uri: str) -> str:
    """The hosts of a MongoDB address, never its credentials or options."""
    authority = uri.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    return authority.rsplit("@", 1)[-1]


def _bind(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        where = f"{settings.host}:{settings.port}"
        if exc.errno == errno.EADDRINUSE:
            reason = "the port is already in use by another process"
        elif isinstance(exc, socket.gaierror):
            reason = "HOST is not an address of this machine"
        else:
            reason = exc.strerror or str(exc)
        raise StartupError(f"cannot listen on {where} (HOST, PORT): {reason}") from None
    sock.set_inheritable(True)
    return sock


async def _dev_key(settings: Settings) -> str | None:
    """The development admin key (embedded engine, not production): made once, kept 0600."""
    if not settings.embedded or settings.production:
        return None
    path = settings.dev_key_path
    secret = path.read_text().strip() if path.exists() else None
    if not secret:
        secret = generate_key()
        write_private(path, secret + "\n")
    uri = settings.database_uri
    assert uri is not None
    client = open_client(uri, timeout_seconds=settings.mongodb_timeout_seconds)
    try:
        keys = KeyStore(client[settings.mongodb_db])
        await keys.ensure(secret, settings.dev_tenant, Role.ADMIN, "development", _now())
    finally:
        await client.close()
    return secret


def _now() -> Any:
    return SystemClock().now()


def _announce(settings: Settings, dev_key: str | None) -> None:
    url = f"http://{settings.host}:{settings.port}/graphql"
    workers = f" ({settings.workers} workers)" if settings.workers > 1 else ""
    what = "GraphiQL" if settings.graphiql_enabled else "GraphQL"
    if settings.log_format == "json":  # every line of the output is JSON, this one too
        fields: dict[str, Any] = {"url": url, "workers": settings.workers}
        if dev_key is not None:
            fields.update(dev_tenant=settings.dev_tenant, dev_key=dev_key)
        log.info("profile360 is up%s: %s at %s", workers, what, url, extra=fields)
        return
    lines = [f"\nprofile360 is up{workers}: {what} at {url}"]
    if dev_key is not None:
        lines += [
            f"Development API key (tenant '{settings.dev_tenant}', role admin, kept in "
            f"{settings.dev_key_path}):",
            f"  {dev_key}",
            'Add it in GraphiQL\'s headers as {"Authorization": "Bearer <key>"}.',
        ]
    print("\n".join(lines) + "\n", flush=True)


class _Server(uvicorn.Server):
    """One worker in this process: announces once it serves, exits quietly on a signal."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_ready()

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        # uvicorn raises the signal again once it has stopped; `serve` still has the engine
        # to stop and DATA_DIR to release, and a stop on request is a clean exit.
        self._captured_signals.clear()


class _Workers(Multiprocess):
    """Several workers on one socket: announces once every one of them serves."""

    def __init__(
        self, config: uvicorn.Config, sock: socket.socket, on_ready: Callable[[], None]
    ) -> None:
        super().__init__(config, [sock])
        self._on_ready = on_ready
        self.failed = False

    def init_processes(self) -> None:
        super().init_processes()
        timeout = 60.0
        if all(p.wait_until_ready(timeout, self.should_exit) for p in self.processes):
            self._on_ready()
        elif not self.should_exit.is_set():
            log.error("a worker did not start; stopping")
            self.failed = True
            self.should_exit.set()


def _worker_app(settings: Settings, supervisor: int) -> Starlette:
    """A worker's application (in a process of its own); the worker ends with its supervisor."""
    threading.Thread(target=_exit_with, args=(supervisor,), name="supervisor", daemon=True).start()
    return create_app(settings)


def _exit_with(supervisor: int) -> None:
    while os.getppid() == supervisor:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)  # the supervisor died (SIGKILL): stop gracefully


def _run_workers(settings: Settings, sock: socket.socket, on_ready: Callable[[], None]) -> int:
    factory = (
        partial(create_app, settings)
        if settings.workers == 1
        else partial(_worker_app, settings, os.getpid())
    )
    # Every worker applies the same logging (uvicorn does, from log_config); uvicorn's access
    # log is off: ours (profile360.requests) never writes query strings.
    config = uvicorn.Config(
        factory,
        factory=True,
        workers=settings.workers,
        log_level="info",
        log_config=log_config(settings.log_format),
        access_log=False,
    )
    if settings.workers == 1:
        try:
            _Server(config, on_ready).run(sockets=[sock])
        except KeyboardInterrupt:  # a second Ctrl-C: stop now, still cleaning up
            return 0
        return 0
    workers = _Workers(config, sock, on_ready)
    workers.run()
    return 1 if workers.failed else 0
