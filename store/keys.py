"""API keys: stored as SHA-256 hashes, each mapping to a tenant and a role."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from domain.access import Principal, Role
from store.documents import utc

KEY_PREFIX = "p360_"


def hash_key(secret: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is enough: there is nothing to guess.
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as listed: never the secret itself."""

    key_id: str
    tenant: str
    role: Role
    name: str
    created_at: datetime
    revoked_at: datetime | None


def _from_doc(doc: dict[str, Any]) -> ApiKey:
    revoked = doc.get("revokedAt")
    return ApiKey(
        key_id=doc["keyId"],
        tenant=doc["tenant"],
        role=Role(doc["role"]),
        name=doc["name"],
        created_at=utc(doc["createdAt"]),
        revoked_at=utc(revoked) if revoked else None,
    )


class KeyStore:
    """Creates, revokes, lists and checks API keys."""

    def __init__(self, db: Any) -> None:
        self._keys = db["api_keys"]

    async def create(
        self, tenant: str, role: Role, name: str, now: datetime, secret: str | None = None
    ) -> tuple[ApiKey, str]:
        secret = secret or generate_key()
        doc = {
            "_id": hash_key(secret),
            "keyId": secrets.token_hex(6),
            "tenant": tenant,
            "role": role.value,
            "name": name,
            "createdAt": now,
            "revokedAt": None,
        }
        await self._keys.insert_one(doc)
        return _from_doc(doc), secret

    async def ensure(self, secret: str, tenant: str, role: Role, name: str, now: datetime) -> None:
        """Make a known secret valid (bootstrap and development keys); idempotent."""
        try:
            await self.create(tenant, role, name, now, secret=secret)
        except DuplicateKeyError:
            await self._keys.update_one(
                {"_id": hash_key(secret)},
                {"$set": {"tenant": tenant, "role": role.value, "revokedAt": None}},
            )

    async def revoke(self, key_id: str, now: datetime) -> bool:
        result = await self._keys.update_one(
            {"keyId": key_id, "revokedAt": None}, {"$set": {"revokedAt": now}}
        )
        return bool(result.modified_count)

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        query = {"tenant": tenant} if tenant else {}
        return [_from_doc(doc) async for doc in self._keys.find(query).sort("createdAt", 1)]

    async def principal(self, secret: str) -> Principal | None:
        found = await self.holder(secret)
        return found[0] if found is not None and not found[1] else None

    async def holder(self, secret: str) -> tuple[Principal, bool] | None:
        """Whose key this is and whether it was revoked; None for a key never issued."""
        doc = await self._keys.find_one({"_id": hash_key(secret)})
        if doc is None:
            return None
        principal = Principal(
            tenant=doc["tenant"], role=Role(doc["role"]), key_name=doc["name"], key_id=doc["keyId"]
        )
        return principal, doc.get("revokedAt") is not None
