"""Command line: serve the API, manage API keys, finish interrupted merges, check invariants."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import logging.config
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from domain.access import Role, check_tenant
from domain.activity import ActivityService
from domain.errors import DomainError
from domain.invariants import ProblemKind
from domain.services import ProfileService
from server import importer
from server.app import SystemClock
from server.config import ConfigError, Settings, check_port, check_workers, help_table
from server.datadir import DataDirInUse, DataDirLock
from server.logs import log_config
from server.serve import StartupError, serve
from store.activity import MongoActivityStore
from store.check import InvariantChecker
from store.client import open_client, ping
from store.embedded import EmbeddedMongo
from store.indexes import ensure_indexes
from store.keys import KeyStore
from store.mongo import MongoProfileStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="profile360: a customer-profile service with a GraphQL API",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=help_table(),
    )
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser(
        "serve",
        help="run the API (the default)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=help_table(),
    )
    serve.add_argument("--host", help="address to listen on (overrides HOST)")
    serve.add_argument("--port", type=_arg(check_port), help="port (overrides PORT)")
    serve.add_argument(
        "--workers", type=_arg(check_workers), help="worker processes (overrides WORKERS)"
    )
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command")
    create = keys.add_parser("create", help="create a key and print it once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", required=True, help="who or what uses the key")
    revoke = keys.add_parser("revoke", help="revoke a key by its id (see 'keys list')")
    revoke.add_argument("key_id")
    listing = keys.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--tenant")
    sub.add_parser("recover", help="finish merges left half-done by a crash")
    check = sub.add_parser(
        "check",
        help="scan for broken invariants (exit status 1 if any)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="kinds of problem:\n"
        + "\n".join(f"  {kind.value:<24} {kind.description}" for kind in ProblemKind)
        + "\n(leaked_reservation is a warning: it does not make the exit status 1)",
    )
    check.add_argument("--tenant", help="check one tenant only")
    check.add_argument(
        "--repair", action="store_true", help="repair what recovery can, then scan again"
    )
    importer.add_parser(sub)
    demo = sub.add_parser("demo", help="load a demo data set (idempotent) and print console keys")
    demo.add_argument("--tenant", help="the tenant to fill (default: DEV_TENANT, 'demo')")
    args = parser.parse_args(argv)

    if args.command == "keys" and args.keys_command is None:
        parser.parse_args(["keys", "--help"])
    try:
        settings = Settings.from_env()
        if args.command in (None, "serve"):
            return _serve(settings, args)
        return asyncio.run(_run(args, settings))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (StartupError, DataDirInUse) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except DomainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _arg(check: Callable[[str, str], int]) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            return check(value, "value")
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(f"{value!r}: expected {exc.accepted}") from None

    return parse


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    overrides = {
        name: value
        for name in ("host", "port", "workers")
        if (value := getattr(args, name, None)) is not None
    }
    logging.config.dictConfig(log_config(settings.log_format))
    logging.captureWarnings(True)  # warnings become log lines, in the same format
    return serve(replace(settings, **overrides))


@contextlib.asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Any]:
    """The configured database; with the embedded engine, the running server's if there is one,
    otherwise its SQLite file opened here (holding the DATA_DIR lock meanwhile)."""
    engine: EmbeddedMongo | None = None
    lock: DataDirLock | None = None
    uri = settings.mongodb_uri
    if uri is None and settings.engine_uri_path.exists():
        candidate = settings.engine_uri_path.read_text().strip()
        probe = open_client(candidate, timeout_seconds=2)
        if await ping(probe):
            uri = candidate
        await probe.close()
    if uri is None:
        lock = DataDirLock(settings.data_dir)
        lock.acquire()  # DataDirInUse: a server is starting or its engine does not answer
        os.umask(0o077)
        engine = EmbeddedMongo(settings.sqlite_path)
        uri = await asyncio.to_thread(engine.start)
    client = open_client(uri, timeout_seconds=settings.mongodb_timeout_seconds)
    try:
        db = client[settings.mongodb_db]
        await ensure_indexes(db)
        yield db
    finally:
        await client.close()
        if engine is not None:
            await asyncio.to_thread(engine.stop)
        if lock is not None:
            lock.release()


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    async with _database(settings) as db:
        keys = KeyStore(db)
        if args.command == "demo":
            from server.demo import run as run_demo

            return await run_demo(db, settings, args.tenant, settings.port)
        if args.command == "recover":
            return await _recover(db)
        if args.command == "import":
            return await _import(db, settings, args)
        if args.command == "check":
            tenant = check_tenant(args.tenant) if args.tenant is not None else None
            return await _check(db, settings, tenant, repair=args.repair)
        if args.keys_command == "create":
            key, secret = await keys.create(
                check_tenant(args.tenant), Role(args.role), args.name, now
            )
            print(f"created key {key.key_id} for tenant {key.tenant} (role {key.role.value})")
            print(secret)
            return 0
        if args.keys_command == "revoke":
            if await keys.revoke(args.key_id, now):
                print(f"revoked {args.key_id}")
                return 0
            print(f"error: no active key with id {args.key_id}", file=sys.stderr)
            return 1
        print(f"{'ID':<12}  {'TENANT':<16} {'ROLE':<7} {'STATE':<18} {'CREATED (UTC)':<16}  NAME")
        for key in await keys.list(args.tenant):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            print(
                f"{key.key_id:<12}  {key.tenant:<16} {key.role.value:<7} {state:<18} "
                f"{key.created_at:%Y-%m-%d %H:%M}  {key.name}"
            )
        return 0


class _NoGeo:
    def locate(self, ip: str) -> None:
        return None


async def _recover(db: Any) -> int:
    store = MongoProfileStore(db)
    clock = SystemClock()
    services = ProfileService(store, clock, _NoGeo())
    activity = ActivityService(services, store, MongoActivityStore(db), clock)
    merges = (await services.lifecycle.recover()).total
    events = await activity.recover()
    print(f"finished {merges} interrupted merge(s) and settled {events} pending event(s)")
    return 0


async def _import(db: Any, settings: Settings, args: argparse.Namespace) -> int:
    clock = SystemClock()
    services = ProfileService(
        MongoProfileStore(db),
        clock,
        _NoGeo(),
        max_identities=settings.max_identities,
        max_merges=settings.max_merges,
    )
    return await importer.run_cli(db, services, clock, args)


async def _check(db: Any, settings: Settings, tenant: str | None, *, repair: bool) -> int:
    checker = InvariantChecker(db)
    report = await checker.scan(tenant)
    print("\n".join(report.lines()))
    if repair:
        store = MongoProfileStore(db)
        clock = SystemClock()
        services = ProfileService(
            store,
            clock,
            _NoGeo(),
            max_identities=settings.max_identities,
            max_merges=settings.max_merges,
        )
        activity = ActivityService(services, store, MongoActivityStore(db), clock)
        repaired = await checker.repair(tenant, services.lifecycle, activity)
        print(f"\n{repaired.line()}\n\nafter repair:")
        report = await checker.scan(tenant)
        print("\n".join(report.lines()))
    return 0 if report.clean else 1
