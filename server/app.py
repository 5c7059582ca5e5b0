"""The Starlette application: lifespan (database, engine, keys), /graphql and health routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from graphql import ASTValidationRule
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.monitoring import CommandListener
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_limit_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_limit_rule
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from domain.access import Principal, Role, check_tenant
from domain.activity import ActivityService
from domain.errors import RateLimited, Unauthenticated
from domain.identity_management import IdentityManagement
from domain.ports import GeoLookup
from domain.segments import SegmentService
from domain.services import ProfileService
from resolvers.context import build_context
from resolvers.root import build_schema
from schema.context import Context
from schema.errors import format_error
from server.auth import Authenticator, key_from_headers
from server.config import Settings
from server.console import console_routes
from server.cost import cost_limit
from server.export import export_endpoint
from server.geo import GeoIP
from server.graphiql import SecurityHeaders, graphiql_assets, home
from server.graphql_http import GraphQLHTTP
from server.importer import ImportService, import_endpoint
from server.logs import stamp_request_ids
from server.middleware import BodyDeadline, RequestContext
from server.observability import (
    BodySizeLimit,
    CommandMetrics,
    Metrics,
    RateLimitGuard,
    request_logger,
)
from server.ratelimit import RateLimiter
from server.refusals import JSONCORSMiddleware, http_refusal
from store.activity import MongoActivityStore
from store.client import open_client, ping
from store.indexes import ensure_indexes
from store.keys import KeyStore
from store.mongo import MongoProfileStore
from store.segments import MongoSegmentStore

log = logging.getLogger("profile360")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Runtime:
    """What the lifespan opens and the routes use."""

    client: Any
    metrics: Metrics
    services: ProfileService
    activity: ActivityService
    segments: SegmentService
    identity: IdentityManagement
    auth: Authenticator
    keys: KeyStore
    limiter: RateLimiter
    imports: ImportService


class _GraphQL(GraphQLHTTP):
    def __init__(self, runtime: _RuntimeHolder, *, hide_suggestions: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._runtime = runtime
        self._hide_suggestions = hide_suggestions

    async def get_context(self, request: Any, response: Any) -> Context:
        runtime = self._runtime.get()
        caller = await runtime.auth.caller(key_from_headers(request.headers))
        principal = caller.principal
        context = build_context(
            principal,
            runtime.services,
            runtime.activity,
            runtime.segments,
            runtime.identity,
            request,
            response,
        )
        context.refusal = caller.refusal
        if principal is not None:
            context.retry_after = runtime.limiter.retry_after(principal)
            context.charge_cost = partial(runtime.limiter.charge_cost, principal)
            if context.retry_after is not None:
                response.status_code = 429
                response.headers["Retry-After"] = str(context.retry_after)
        return context

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        # The last line of defence: errors raised outside the operation hooks (an extension
        # failing, say) are formatted and masked here too. Formatting is idempotent.
        if result.errors:
            result.errors = [
                format_error(e, hide_suggestions=self._hide_suggestions) for e in result.errors
            ]
        return await super().process_result(request, result)


class _RuntimeHolder:
    def __init__(self) -> None:
        self.value: Runtime | None = None

    def get(self) -> Runtime:
        if self.value is None:
            raise RuntimeError("the application has not started")
        return self.value


def create_app(
    settings: Settings | None = None,
    *,
    listeners: Sequence[CommandListener] = (),
    geo: GeoLookup | None = None,
) -> Starlette:
    settings = settings or Settings.from_env()
    stamp_request_ids()
    holder = _RuntimeHolder()
    metrics = Metrics()
    # Factories: strawberry builds the extensions per request. The parser and validation
    # caches are shared all the same (strawberry keeps one bounded LRU per size). The depth and
    # alias rules are built once here: built per request, each would be a new class and the
    # validation cache, keyed by the rules, would never hit.
    limits: list[type[ASTValidationRule]] = [
        depth_limit_rule(settings.max_depth, None),
        alias_limit_rule(settings.max_aliases),
    ]
    extensions: list[Any] = [
        request_logger(metrics),
        RateLimitGuard,
        partial(ParserCache, maxsize=256),
        partial(ValidationCache, maxsize=256),
        cost_limit(settings.max_cost),  # after the cache: a refused operation is not validated
        partial(AddValidationRules, limits),
        partial(MaxTokensLimiter, max_token_count=settings.max_tokens),
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    graphql = _GraphQL(
        holder,
        hide_suggestions=settings.production,
        schema=build_schema(extensions, field_suggestions=not settings.production),
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_runtime(
            settings, [CommandMetrics(metrics), *listeners], geo, metrics
        ) as runtime:
            holder.value = runtime
            yield
            holder.value = None

    async def healthz(request: Request) -> Response:
        # The worker's process id: with WORKERS > 1, which process answered.
        return JSONResponse({"status": "ok", "pid": os.getpid()})

    async def authenticate(request: Request) -> Principal | None:
        runtime = holder.get()
        caller = await runtime.auth.caller(key_from_headers(request.headers))
        principal = caller.principal
        if principal is None:
            raise Unauthenticated(caller.refusal or "Send an API key")
        if wait := runtime.limiter.retry_after(principal):
            raise RateLimited(f"Too many requests for this API key; retry in {wait} s")
        return principal

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def export_services() -> tuple[ProfileService, SegmentService]:
        runtime = holder.get()
        return runtime.services, runtime.segments

    async def readyz(request: Request) -> Response:
        ready = await ping(holder.get().client)
        return JSONResponse({"database": "ok" if ready else "unreachable"}, 200 if ready else 503)

    middleware = [
        Middleware(RequestContext),
        Middleware(SecurityHeaders),
        Middleware(BodyDeadline, seconds=settings.body_timeout_seconds, idle_paths=("/import",)),
        # An import's body is a whole file, streamed to disk: it has a limit of its own.
        Middleware(BodySizeLimit, limit=settings.max_body_bytes, exempt=("/import",)),
    ]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                JSONCORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-Id"],
                expose_headers=["X-Request-Id"],
            )
        )
    routes: list[BaseRoute] = [
        Route("/", home(settings.graphiql_enabled)),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", prometheus),
        Route("/graphql", graphql),
        Route("/export", export_endpoint(authenticate, export_services)),
        Route(
            "/import", import_endpoint(authenticate, lambda: holder.get().imports), methods=["POST"]
        ),
        *console_routes(),
    ]
    if settings.graphiql_enabled:
        routes.append(graphiql_assets())
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: http_refusal},
        lifespan=lifespan,
    )
    app.state.runtime = holder
    return app


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    listeners: Sequence[CommandListener],
    geo: GeoLookup | None,
    metrics: Metrics,
) -> AsyncIterator[Runtime]:
    uri = settings.database_uri
    if uri is None:
        raise RuntimeError(
            "no database: set MONGODB_URI, or start with `python -m server serve`, which runs "
            "the embedded engine"
        )
    client = open_client(uri, listeners, settings.mongodb_timeout_seconds)
    geo_lookup: GeoLookup
    if geo is None:
        geo_lookup = await asyncio.to_thread(GeoIP, settings.geoip_db)
    else:
        geo_lookup = geo
    recovery: asyncio.Task[None] | None = None
    imports: ImportService | None = None
    try:
        db = client[settings.mongodb_db]
        await ensure_indexes(db)
        store = MongoProfileStore(db)
        keys = KeyStore(db)
        clock = SystemClock()
        services = ProfileService(
            store,
            clock,
            geo_lookup,
            max_identities=settings.max_identities,
            max_merges=settings.max_merges,
            on_merge=metrics.merge_completed,
        )
        activity = ActivityService(services, store, MongoActivityStore(db), clock)
        segments = SegmentService(MongoSegmentStore(db), services, clock)
        await _seed_keys(settings, keys, clock.now())
        await services.lifecycle.recover()
        await activity.recover()
        imports = ImportService(
            db, services, clock, settings.data_dir / "imports", settings.import_max_bytes
        )
        imports.start_watching()
        recovery = asyncio.create_task(_recover_periodically(services, activity, settings))
        yield Runtime(
            client=client,
            metrics=metrics,
            limiter=RateLimiter({Role(r): n for r, n in settings.rate_limits}),
            services=services,
            activity=activity,
            segments=segments,
            identity=IdentityManagement(services, store, clock),
            auth=Authenticator(keys, settings.key_cache_seconds),
            keys=keys,
            imports=imports,
        )
    finally:
        if imports is not None:
            await imports.stop()
        if recovery is not None:
            recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recovery
        await client.close()
        if isinstance(geo_lookup, GeoIP):
            geo_lookup.close()


async def _recover_periodically(
    services: ProfileService, activity: ActivityService, settings: Settings
) -> None:
    while True:
        await asyncio.sleep(settings.recovery_interval_seconds)
        try:
            # Only work idle for a while: a live merge or event is finished by its own caller.
            await services.lifecycle.recover(older_than_seconds=30)
            await activity.recover(older_than_seconds=30)
        except Exception:
            log.exception("recovery failed; will try again")


async def _seed_keys(settings: Settings, keys: KeyStore, now: datetime) -> None:
    if settings.bootstrap_tenant and settings.bootstrap_api_key:
        # from_env has checked it already; Settings built in code are checked here too.
        tenant = check_tenant(settings.bootstrap_tenant)
        await keys.ensure(settings.bootstrap_api_key, tenant, Role.ADMIN, "bootstrap", now)
