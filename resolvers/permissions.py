"""Role checks, one permission class per group of operations (see domain.access.ALLOWED)."""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry.permission import BasePermission

from domain.access import Action
from domain.errors import Unauthenticated
from schema.context import Info


class _RolePermission(BasePermission):
    action: ClassVar[Action]

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        if principal is None:
            raise Unauthenticated(
                info.context.refusal
                or "Send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            )
        principal.require(self.action)  # raises Forbidden with the role and the action
        return True


class CanReadProfile(_RolePermission):
    """Any valid key may read a single profile (bots personalise conversations with it)."""

    action = Action.READ_PROFILE
    message = "Not allowed to read profiles"


class CanList(_RolePermission):
    """Dashboards: viewer, agent and admin keys."""

    action = Action.LIST
    message = "Not allowed to list profiles"


class CanWrite(_RolePermission):
    """Bots: sdk and admin keys."""

    action = Action.WRITE
    message = "Not allowed to capture or identify"


class CanEdit(_RolePermission):
    """Support agents: agent and admin keys."""

    action = Action.EDIT
    message = "Not allowed to edit profiles"


class IsAdmin(_RolePermission):
    """Admin keys only."""

    action = Action.ADMINISTER
    message = "Only admin keys may do this"
