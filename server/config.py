"""Configuration from the environment (SPEC §10)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


def _flag(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    return value.strip().lower() in ("1", "true", "yes", "on")


DEFAULT_RATE_LIMITS = (("sdk", 1200), ("viewer", 600), ("agent", 600), ("admin", 1200))


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service reads from its environment."""

    mongodb_uri: str | None = None
    mongodb_db: str = "profile360"
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8000
    bootstrap_tenant: str | None = None
    bootstrap_api_key: str | None = None
    geoip_db: Path | None = None
    app_env: str = "development"
    graphiql: bool | None = None
    introspection: bool | None = None
    key_cache_seconds: float = 10.0
    recovery_interval_seconds: float = 60.0
    max_identities: int = 100
    max_merges: int = 100
    max_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2000
    # The largest estimated cost of one operation (server/cost.py); 0 turns the limit off.
    max_cost: int = 25_000
    max_body_bytes: int = 256 * 1024
    cors_origins: tuple[str, ...] = ()
    # Requests per minute for each role's keys (a token bucket per key, per process).
    rate_limits: tuple[tuple[str, int], ...] = DEFAULT_RATE_LIMITS
    dev_tenant: str = "demo"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        geoip = e.get("GEOIP_DB")
        return cls(
            mongodb_uri=e.get("MONGODB_URI") or None,
            mongodb_db=e.get("MONGODB_DB") or "profile360",
            data_dir=Path(e.get("DATA_DIR") or "data"),
            host=e.get("HOST") or "127.0.0.1",
            port=int(e.get("PORT") or 8000),
            bootstrap_tenant=e.get("BOOTSTRAP_TENANT") or None,
            bootstrap_api_key=e.get("BOOTSTRAP_API_KEY") or None,
            geoip_db=Path(geoip) if geoip else None,
            app_env=(e.get("APP_ENV") or "development").strip().lower(),
            graphiql=_flag(e.get("GRAPHIQL_ENABLED")),
            introspection=_flag(e.get("INTROSPECTION_ENABLED")),
            key_cache_seconds=float(e.get("API_KEY_CACHE_SECONDS") or 10),
            recovery_interval_seconds=float(e.get("MERGE_RECOVERY_INTERVAL_SECONDS") or 60),
            max_identities=int(e.get("MAX_IDENTITIES_PER_PROFILE") or 100),
            max_merges=int(e.get("MAX_MERGES_PER_PROFILE") or 100),
            max_depth=int(e.get("GRAPHQL_MAX_DEPTH") or 10),
            max_aliases=int(e.get("GRAPHQL_MAX_ALIASES") or 15),
            max_tokens=int(e.get("GRAPHQL_MAX_TOKENS") or 2000),
            max_cost=int(e.get("GRAPHQL_MAX_COST") or 25_000),
            max_body_bytes=int(e.get("MAX_BODY_BYTES") or 256 * 1024),
            cors_origins=tuple(
                o.strip() for o in (e.get("CORS_ORIGINS") or "").split(",") if o.strip()
            ),
            rate_limits=tuple(
                (role, int(e.get(f"RATE_LIMIT_{role.upper()}") or default))
                for role, default in DEFAULT_RATE_LIMITS
            ),
        )

    @property
    def production(self) -> bool:
        return self.app_env == "production"

    @property
    def embedded(self) -> bool:
        return self.mongodb_uri is None

    @property
    def graphiql_enabled(self) -> bool:
        return self.graphiql if self.graphiql is not None else not self.production

    @property
    def introspection_enabled(self) -> bool:
        return self.introspection if self.introspection is not None else not self.production

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "profile360.sqlite"

    @property
    def dev_key_path(self) -> Path:
        return self.data_dir / "dev-api-key"

    @property
    def engine_uri_path(self) -> Path:
        return self.data_dir / "engine.uri"
