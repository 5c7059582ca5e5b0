"""Who is calling: tenant, role and key name, and what each role may do."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from domain.errors import Forbidden, ValidationFailed

TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class Role(StrEnum):
    """The four roles an API key can have."""

    SDK = "sdk"
    VIEWER = "viewer"
    AGENT = "agent"
    ADMIN = "admin"


class Action(StrEnum):
    """Groups of operations that share a permission."""

    READ_PROFILE = "read a profile"
    LIST = "list and analyse profiles"
    WRITE = "capture, identify and track"
    EDIT = "edit, merge and detach profiles"
    ADMINISTER = "define properties, manage segments, export and delete"


ALLOWED: dict[Action, frozenset[Role]] = {
    Action.READ_PROFILE: frozenset(Role),
    Action.LIST: frozenset({Role.VIEWER, Role.AGENT, Role.ADMIN}),
    Action.WRITE: frozenset({Role.SDK, Role.ADMIN}),
    Action.EDIT: frozenset({Role.AGENT, Role.ADMIN}),
    Action.ADMINISTER: frozenset({Role.ADMIN}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The tenant, role and key name behind a request."""

    tenant: str
    role: Role
    key_name: str
    key_id: str = ""

    def require(self, action: Action) -> None:
        if self.role not in ALLOWED[action]:
            raise Forbidden(f"A key with role '{self.role.value}' may not {action.value}")


def check_tenant(tenant: str) -> str:
    if not TENANT_PATTERN.fullmatch(tenant):
        raise ValidationFailed(
            "A tenant is 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter "
            "or digit",
            field="tenant",
        )
    return tenant
