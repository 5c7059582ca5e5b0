"""Merge suggestions: which identifiers two profiles share, and how strongly that suggests one
person. Suggestions never merge anything by themselves (SPEC §7).

Each profile carries `match keys` ("phone:+14155552671", "email:johnsmith@gmail.com",
"id:crm-42") as a lookup aid; candidates found through them are re-checked against their
current properties and identities, so a stale key can never produce a wrong suggestion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.identity import Identity, IdentityKey, IdentityType
from domain.model import Profile
from domain.properties import normalise_email

_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
WEIGHTS = {"externalId": 0.9, "phone": 0.6, "email": 0.6}


def match_email(address: str) -> str | None:
    """Case-insensitive, `+tag` removed, and Gmail's ignored dots removed."""
    normal = normalise_email(address)
    if normal is None:
        return None
    local, _, domain = normal.rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}" if local else None


def keys_of_values(values: Mapping[str, Any]) -> list[str]:
    """Match keys of property values being written."""
    keys: list[str] = []
    phone = values.get("phone")
    if isinstance(phone, str):
        keys.append(f"phone:{phone}")
    email = values.get("email")
    if isinstance(email, str) and (normal := match_email(email)):
        keys.append(f"email:{normal}")
    return keys


def keys_of_identity(key: IdentityKey) -> list[str]:
    match key.type:
        case IdentityType.PHONE:
            return [f"phone:{key.value}"]
        case IdentityType.EMAIL:
            normal = match_email(key.value)
            return [f"email:{normal}"] if normal else []
        case IdentityType.USER_ID | IdentityType.API:
            keys = [f"id:{key.value}"]
            if "@" in key.value and (normal := match_email(key.value)):
                keys.append(f"email:{normal}")
            return keys
    return []


def keys_of_profile(profile: Profile, identities: Iterable[Identity]) -> dict[str, str]:
    """Every current match key of a profile, with the kind of identifier it is."""
    keys = keys_of_values(profile.properties)
    if profile.user_id is not None:
        keys.extend(keys_of_identity(IdentityKey(IdentityType.USER_ID, profile.user_id)))
    for identity in identities:
        keys.extend(keys_of_identity(identity.key))
    return {key: _kind(key) for key in keys}


def _kind(key: str) -> str:
    prefix = key.split(":", 1)[0]
    return {"phone": "phone", "email": "email", "id": "externalId"}[prefix]


@dataclass(frozen=True, slots=True)
class Suggestion:
    """Another profile that looks like the same person."""

    profile: Profile
    matched_on: tuple[str, ...]
    score: float


def score(kinds: Iterable[str]) -> float:
    """Independent evidence combines: 1 - product of (1 - weight)."""
    missing = 1.0
    for kind in set(kinds):
        missing *= 1 - WEIGHTS[kind]
    return round(1 - missing, 3)


def suggest(
    profile: Profile,
    own: Mapping[str, str],
    candidates: Iterable[tuple[Profile, Mapping[str, str]]],
) -> list[Suggestion]:
    """Candidates that share a key with the profile and could legally merge with it."""
    found: list[Suggestion] = []
    for candidate, keys in candidates:
        if candidate.id == profile.id or not candidate.active:
            continue
        if profile.user_id and candidate.user_id and profile.user_id != candidate.user_id:
            continue  # two identified people: a merge would be refused
        shared = sorted({own[k] for k in own.keys() & keys.keys()})
        if shared:
            found.append(Suggestion(candidate, tuple(shared), score(shared)))
    found.sort(key=lambda s: (-s.score, s.profile.id))
    return found
