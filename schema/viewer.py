"""Who is calling: the key's tenant and role, and what that role may do (the console reads it
to show the tenant and hide the controls a role may not use)."""

from __future__ import annotations

import strawberry

from domain.access import ALLOWED, Action, Principal, Role
from schema.enums import describe_enum

describe_enum(
    Role,
    "What an API key may do",
    {
        "SDK": "Bots and SDKs: capture, identify, track, record; read one profile",
        "VIEWER": "Dashboards: read and list profiles, definitions and segments",
        "AGENT": "Agents: a viewer who also edits, merges and detaches profiles",
        "ADMIN": "Everything: also defines properties, manages segments, exports and deletes",
    },
)


@strawberry.type(description="The API key making this request: its tenant, role and permissions")
class Viewer:
    tenant: str = strawberry.field(description="The tenant every answer is limited to")
    role: Role = strawberry.field(description="The key's role")
    key_name: str = strawberry.field(description="The name the key was created with")
    can_list: bool = strawberry.field(description="May list profiles, segments and counts")
    can_write: bool = strawberry.field(description="May capture, identify, track and record")
    can_edit: bool = strawberry.field(description="May edit, merge and detach profiles")
    can_administer: bool = strawberry.field(
        description="May define properties, manage segments, export and delete profiles"
    )

    @classmethod
    def from_domain(cls, principal: Principal) -> Viewer:
        role = principal.role
        return cls(
            tenant=principal.tenant,
            role=role,
            key_name=principal.key_name,
            can_list=role in ALLOWED[Action.LIST],
            can_write=role in ALLOWED[Action.WRITE],
            can_edit=role in ALLOWED[Action.EDIT],
            can_administer=role in ALLOWED[Action.ADMINISTER],
        )
