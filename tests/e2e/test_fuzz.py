"""Property-based fuzzing of the live schema: generated operations (hypothesis-graphql) never
get an HTTP 500 or an error that is not in the public contract."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import UTC

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import from_schema, nodes

from domain.errors import ErrorCode
from resolvers.root import build_schema
from tests.e2e.conftest import ServerProcess

pytestmark = pytest.mark.e2e

CODES = {code.value for code in ErrorCode}
EXAMPLES = 500

_text = st.text(max_size=20)
JSON_VALUES = st.one_of(
    _text.map(nodes.String),
    st.integers(-1000, 1000).map(nodes.Int),
    st.booleans().map(nodes.Boolean),
    st.lists(_text.map(nodes.String), max_size=3).map(lambda items: nodes.List(list(items))),
)
SCALARS = {
    "JSON": JSON_VALUES,
    "DateTime": st.datetimes(timezones=st.just(UTC)).map(lambda d: nodes.String(d.isoformat())),
}
seen: Counter[str] = Counter()


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, mongo_uri: str
) -> Iterator[tuple[httpx.Client, str]]:
    key = f"p360_{secrets.token_urlsafe(24)}"
    server = ServerProcess(
        {
            "MONGODB_URI": mongo_uri,
            "MONGODB_DB": f"fuzz_{secrets.token_hex(4)}",
            "BOOTSTRAP_TENANT": "acme",
            "BOOTSTRAP_API_KEY": key,
        },
        tmp_path_factory.mktemp("fuzz") / "server.log",
    )
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        yield client, key
    server.stop()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(operation=from_schema(build_schema().as_str(), custom_scalars=SCALARS))
def test_generated_operations_never_crash_or_leak(
    live: tuple[httpx.Client, str], operation: str
) -> None:
    client, key = live
    response = client.post(
        "/graphql", json={"query": operation}, headers={"Authorization": f"Bearer {key}"}
    )
    seen["operations"] += 1
    assert response.status_code != 500, operation
    body = response.json()
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code in CODES, (operation, error)
        assert code != "INTERNAL", (operation, error)  # an unexpected failure is a bug
        assert "Traceback" not in error["message"]
        seen[code] += 1


def test_the_fuzzer_sent_at_least_500_operations() -> None:
    assert seen["operations"] >= EXAMPLES, seen
