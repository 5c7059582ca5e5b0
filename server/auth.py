"""Who a request is from: the API key in its headers, checked against the stored hashes."""

from __future__ import annotations

import time
from typing import Any

from domain.access import Principal
from store.keys import KeyStore, hash_key


def key_from_headers(headers: Any) -> str | None:
    authorization = headers.get("authorization") or ""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return str(token.strip())
    api_key = headers.get("x-api-key")
    return str(api_key).strip() if api_key else None


class Authenticator:
    """Checks keys, remembering recent answers briefly so most requests cost no query.
    A revoked key stops working within `cache_seconds`."""

    def __init__(self, keys: KeyStore, cache_seconds: float) -> None:
        self._keys = keys
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def principal(self, secret: str | None) -> Principal | None:
        if not secret or len(secret) > 200:
            return None
        digest = hash_key(secret)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        principal = await self._keys.principal(secret)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self._ttl, principal)
        return principal

    def forget(self) -> None:
        """Drop every remembered answer (what expiry does after `cache_seconds`)."""
        self._cache.clear()
