"""Settings: every variable read is documented in --help, typed and checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import VARIABLES, ConfigError, Settings


class _RecordingEnv(dict[str, str]):
    def __init__(self, values: dict[str, str] | None = None) -> None:
        super().__init__(values or {})
        self.read: set[str] = set()

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        self.read.add(key)
        return super().get(key, default)


def test_every_variable_read_is_listed_for_help_and_every_listed_one_is_read() -> None:
    env = _RecordingEnv()
    Settings.from_env(env)
    assert env.read == {v.name for v in VARIABLES}


def test_an_empty_environment_gives_the_documented_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.data_dir == Path("data")
    assert settings.mongodb_timeout_seconds == 5


def test_values_are_read_with_their_types() -> None:
    settings = Settings.from_env(
        {
            "APP_ENV": " Production ",
            "PORT": "9000",
            "WORKERS": "4",
            "GRAPHIQL_ENABLED": "yes",
            "INTROSPECTION_ENABLED": "off",
            "API_KEY_CACHE_SECONDS": "0",
            "RATE_LIMIT_SDK": "0",
            "CORS_ORIGINS": "https://app.example.com, http://localhost:3000",
            "BOOTSTRAP_TENANT": "acme",
            "BOOTSTRAP_API_KEY": "k" * 32,
        }
    )
    assert settings.production
    assert (settings.port, settings.workers) == (9000, 4)
    assert (settings.graphiql_enabled, settings.introspection_enabled) == (True, False)
    assert settings.key_cache_seconds == 0
    assert dict(settings.rate_limits)["sdk"] == 0
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:3000")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"APP_ENV": "prod"}, "APP_ENV"),
        ({"PORT": "abc"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"WORKERS": "0"}, "WORKERS"),
        ({"MAX_BODY_BYTES": "-1"}, "MAX_BODY_BYTES"),
        ({"RATE_LIMIT_ADMIN": "1.5"}, "RATE_LIMIT_ADMIN"),
        ({"MERGE_RECOVERY_INTERVAL_SECONDS": "0"}, "MERGE_RECOVERY_INTERVAL_SECONDS"),
        ({"MONGODB_TIMEOUT_SECONDS": "inf"}, "MONGODB_TIMEOUT_SECONDS"),
        ({"INTROSPECTION_ENABLED": "maybe"}, "INTROSPECTION_ENABLED"),
        ({"MONGODB_URI": "localhost"}, "MONGODB_URI"),
        ({"MONGODB_DB": "a/b"}, "MONGODB_DB"),
        ({"GEOIP_DB": "/nonexistent/city.mmdb"}, "GEOIP_DB"),
        ({"CORS_ORIGINS": "app.example.com"}, "CORS_ORIGINS"),
        ({"BOOTSTRAP_TENANT": "Acme!", "BOOTSTRAP_API_KEY": "k" * 32}, "BOOTSTRAP_TENANT"),
        ({"BOOTSTRAP_TENANT": "acme"}, "BOOTSTRAP_API_KEY"),
        ({"BOOTSTRAP_API_KEY": "k" * 32}, "BOOTSTRAP_TENANT"),
        ({"BOOTSTRAP_TENANT": "acme", "BOOTSTRAP_API_KEY": "short"}, "BOOTSTRAP_API_KEY"),
    ],
)
def test_a_bad_value_names_its_variable_and_what_it_accepts(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env)
    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}=")
    assert "expected" in str(raised.value)


def test_a_secret_is_never_repeated_in_its_error() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"BOOTSTRAP_TENANT": "acme", "BOOTSTRAP_API_KEY": "hunter2"})
    assert "hunter2" not in str(raised.value)
