"""Configuration from the environment (SPEC §10): every variable typed and checked at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from domain.access import check_tenant
from domain.errors import DomainError

DEFAULT_RATE_LIMITS = (("sdk", 1200), ("viewer", 600), ("agent", 600), ("admin", 1200))
APP_ENVS = ("development", "production")
LOG_FORMATS = ("text", "json")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable the service reads: its default and what it means."""

    name: str
    default: str
    meaning: str


VARIABLES: tuple[Variable, ...] = (
    Variable("APP_ENV", "development", "development or production (no GraphiQL, dev key, ...)"),
    Variable("MONGODB_URI", "unset", "a MongoDB 6+ deployment; unset starts the embedded engine"),
    Variable("MONGODB_DB", "profile360", "database name"),
    Variable("MONGODB_TIMEOUT_SECONDS", "5", "how long to wait for the database to answer"),
    Variable("DATA_DIR", "./data", "the embedded engine's files and the development key"),
    Variable(
        "EMBEDDED_ENGINE_IN_PRODUCTION", "0", "1 lets APP_ENV=production use the embedded engine"
    ),
    Variable("HOST", "127.0.0.1", "address the API listens on"),
    Variable("PORT", "8000", "port the API listens on"),
    Variable("WORKERS", "1", "API worker processes sharing the port"),
    Variable("BOOTSTRAP_TENANT", "unset", "tenant of an admin key seeded at start-up"),
    Variable("BOOTSTRAP_API_KEY", "unset", "that admin key (at least 20 characters)"),
    Variable("GEOIP_DB", "unset", "a MaxMind GeoIP2/GeoLite2 City file: city and coordinates"),
    Variable("GRAPHIQL_ENABLED", "by APP_ENV", "1/0: serve GraphiQL at /graphql"),
    Variable("INTROSPECTION_ENABLED", "by APP_ENV", "1/0: answer introspection queries"),
    Variable("API_KEY_CACHE_SECONDS", "10", "how long a checked key is remembered"),
    Variable("MERGE_RECOVERY_INTERVAL_SECONDS", "60", "how often half-done merges are looked for"),
    Variable("MAX_IDENTITIES_PER_PROFILE", "100", "identities past which a merge is refused"),
    Variable("MAX_MERGES_PER_PROFILE", "100", "merges past which a merge is refused"),
    Variable("GRAPHQL_MAX_DEPTH", "10", "deepest operation accepted"),
    Variable("GRAPHQL_MAX_ALIASES", "15", "most aliases in one operation"),
    Variable("GRAPHQL_MAX_TOKENS", "2000", "most tokens in one operation"),
    Variable("GRAPHQL_MAX_COST", "25000", "largest estimated cost of one operation (0: off)"),
    Variable("MAX_BODY_BYTES", "262144", "larger request bodies get 413"),
    Variable("BODY_TIMEOUT_SECONDS", "10", "a body not in after this long gets 408"),
    Variable("IMPORT_MAX_BYTES", "1073741824", "largest file POST /import takes"),
    Variable("LOG_FORMAT", "text", "text or json (every log line one JSON object)"),
    Variable("CORS_ORIGINS", "unset", "comma-separated browser origins allowed to call the API"),
    *(
        Variable(f"RATE_LIMIT_{role.upper()}", str(n), f"requests a minute per {role} key (0: off)")
        for role, n in DEFAULT_RATE_LIMITS
    ),
)
# Values that are secrets are never echoed back in an error.
_SECRET = frozenset({"MONGODB_URI", "BOOTSTRAP_API_KEY"})
_DB_NAME = re.compile(r'[^/\\. "$*<>:|?\x00]{1,63}')
_ORIGIN = re.compile(r"\*|https?://[A-Za-z0-9.\-\[\]:]+")


class ConfigError(Exception):
    """A variable the service cannot use; names it and what it accepts."""

    def __init__(self, variable: str, value: str, accepted: str) -> None:
        super().__init__(variable, value, accepted)
        self.variable = variable
        self.value = value
        self.accepted = accepted

    def __str__(self) -> str:
        shown = "(hidden)" if self.variable in _SECRET else repr(self.value)
        return f"{self.variable}={shown} is not valid: expected {self.accepted}"


def help_table() -> str:
    """The variables with their defaults, for `--help`."""
    width = max(len(v.name) for v in VARIABLES)
    default_width = max(len(v.default) for v in VARIABLES)
    lines = [f"  {v.name:<{width}}  {v.default:<{default_width}}  {v.meaning}" for v in VARIABLES]
    return "environment variables (default, meaning):\n" + "\n".join(lines)


class _Env:
    """Typed readers over the environment; each raises ConfigError naming its variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def raw(self, name: str) -> str | None:
        value = self._env.get(name)
        return value if value is not None and value.strip() != "" else None

    def text(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value.strip()

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in choices:
            raise ConfigError(name, self._env.get(name, ""), "one of " + ", ".join(choices))
        return value

    def integer(self, name: str, default: int, low: int, high: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        accepted = f"a whole number from {low}" + (f" to {high}" if high is not None else " up")
        try:
            number = int(value.strip())
        except ValueError:
            raise ConfigError(name, value, accepted) from None
        if number < low or (high is not None and number > high):
            raise ConfigError(name, value, accepted)
        return number

    def seconds(self, name: str, default: float, *, zero: bool = False) -> float:
        value = self.raw(name)
        if value is None:
            return default
        accepted = "a number of seconds" + (", 0 or more" if zero else " above 0")
        try:
            number = float(value.strip())
        except ValueError:
            raise ConfigError(name, value, accepted) from None
        if not number < float("inf") or number < 0 or (number == 0 and not zero):
            raise ConfigError(name, value, accepted)
        return number

    def flag(self, name: str) -> bool | None:
        value = self.raw(name)
        if value is None:
            return None
        word = value.strip().lower()
        if word not in _TRUE + _FALSE:
            raise ConfigError(name, value, "one of 1, 0, true, false, yes, no, on, off")
        return word in _TRUE


def check_port(value: str, name: str = "PORT") -> int:
    return _Env({name: value}).integer(name, 8000, 1, 65535)


def check_workers(value: str, name: str = "WORKERS") -> int:
    return _Env({name: value}).integer(name, 1, 1, 64)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service reads from its environment."""

    mongodb_uri: str | None = None
    mongodb_db: str = "profile360"
    mongodb_timeout_seconds: float = 5.0
    data_dir: Path = Path("data")
    embedded_in_production: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
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
    # The running embedded engine's address, set by `serve` for its workers (never read from
    # the environment: it holds the engine's per-start secret).
    engine_uri: str | None = None
    log_format: str = "text"
    body_timeout_seconds: float = 10.0
    import_max_bytes: int = 1 << 30

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and check every variable; raises ConfigError for the first one that is wrong."""
        e = _Env(os.environ if env is None else env)
        uri = e.raw("MONGODB_URI")
        if uri is not None and not uri.strip().startswith(("mongodb://", "mongodb+srv://")):
            raise ConfigError("MONGODB_URI", uri, "a mongodb:// or mongodb+srv:// address")
        db = e.text("MONGODB_DB", "profile360")
        if not _DB_NAME.fullmatch(db):
            raise ConfigError("MONGODB_DB", db, 'a database name (1-63 characters, no /\\. "$)')
        geoip = e.raw("GEOIP_DB")
        if geoip is not None and not Path(geoip).is_file():
            raise ConfigError("GEOIP_DB", geoip, "the path of a GeoIP2/GeoLite2 City file")
        origins = tuple(o.strip() for o in e.text("CORS_ORIGINS", "").split(",") if o.strip())
        for origin in origins:
            if not _ORIGIN.fullmatch(origin):
                raise ConfigError("CORS_ORIGINS", origin, "origins like https://app.example.com")
        tenant, key = e.raw("BOOTSTRAP_TENANT"), e.raw("BOOTSTRAP_API_KEY")
        if tenant is not None:
            tenant = _tenant(tenant)
        if (tenant is None) != (key is None):
            missing = "BOOTSTRAP_API_KEY" if key is None else "BOOTSTRAP_TENANT"
            raise ConfigError(missing, "", "to be set too (the two go together)")
        if key is not None and len(key.strip()) < 20:
            raise ConfigError("BOOTSTRAP_API_KEY", key, "a secret of at least 20 characters")
        return cls(
            app_env=e.choice("APP_ENV", "development", APP_ENVS),
            mongodb_uri=uri.strip() if uri is not None else None,
            mongodb_db=db,
            mongodb_timeout_seconds=e.seconds("MONGODB_TIMEOUT_SECONDS", 5.0),
            data_dir=Path(e.text("DATA_DIR", "data")),
            embedded_in_production=bool(e.flag("EMBEDDED_ENGINE_IN_PRODUCTION")),
            host=e.text("HOST", "127.0.0.1"),
            port=e.integer("PORT", 8000, 1, 65535),
            workers=e.integer("WORKERS", 1, 1, 64),
            bootstrap_tenant=tenant,
            bootstrap_api_key=key.strip() if key is not None else None,
            geoip_db=Path(geoip) if geoip is not None else None,
            graphiql=e.flag("GRAPHIQL_ENABLED"),
            introspection=e.flag("INTROSPECTION_ENABLED"),
            key_cache_seconds=e.seconds("API_KEY_CACHE_SECONDS", 10.0, zero=True),
            recovery_interval_seconds=e.seconds("MERGE_RECOVERY_INTERVAL_SECONDS", 60.0),
            max_identities=e.integer("MAX_IDENTITIES_PER_PROFILE", 100, 1),
            max_merges=e.integer("MAX_MERGES_PER_PROFILE", 100, 1),
            max_depth=e.integer("GRAPHQL_MAX_DEPTH", 10, 1),
            max_aliases=e.integer("GRAPHQL_MAX_ALIASES", 15, 1),
            max_tokens=e.integer("GRAPHQL_MAX_TOKENS", 2000, 1),
            max_cost=e.integer("GRAPHQL_MAX_COST", 25_000, 0),
            max_body_bytes=e.integer("MAX_BODY_BYTES", 256 * 1024, 1),
            cors_origins=origins,
            log_format=e.choice("LOG_FORMAT", "text", LOG_FORMATS),
            body_timeout_seconds=e.seconds("BODY_TIMEOUT_SECONDS", 10.0),
            import_max_bytes=e.integer("IMPORT_MAX_BYTES", 1 << 30, 1),
            rate_limits=tuple(
                (role, e.integer(f"RATE_LIMIT_{role.upper()}", default, 0))
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
    def database_uri(self) -> str | None:
        """Where the database answers: MONGODB_URI, or the running embedded engine."""
        return self.mongodb_uri or self.engine_uri

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


def _tenant(value: str) -> str:
    try:
        return check_tenant(value.strip())
    except DomainError:
        accepted = "1 to 63 lower-case letters, digits, '-' or '_', starting with a letter or digit"
        raise ConfigError("BOOTSTRAP_TENANT", value, accepted) from None
