"""Who a request is from: the API key in its headers, checked against the stored hashes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from domain.access import Principal
from store.keys import KeyStore, hash_key

NO_KEY = "Send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
UNKNOWN_KEY = "this API key is not valid"
REVOKED_KEY = "this API key was revoked"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: a principal, or why there is none (no key, unknown, revoked)."""

    principal: Principal | None
    refusal: str | None = None


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
        self._cache: dict[str, tuple[float, Caller]] = {}

    async def principal(self, secret: str | None) -> Principal | None:
        return (await self.caller(secret)).principal

    async def caller(self, secret: str | None) -> Caller:
        if not secret:
            return Caller(None, NO_KEY)
        if len(secret) > 200:
            return Caller(None, UNKNOWN_KEY)
        digest = hash_key(secret)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self._keys.holder(secret)
        if found is None:
            caller = Caller(None, UNKNOWN_KEY)
        elif found[1]:
            caller = Caller(None, REVOKED_KEY)
        else:
            caller = Caller(found[0])
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self._ttl, caller)
        return caller

    def forget(self) -> None:
        """Drop every remembered answer (what expiry does after `cache_seconds`)."""
        self._cache.clear()
