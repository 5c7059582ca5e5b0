"""Query fields for clients such as the console: who is calling, and how many profiles a
filter matches."""

from __future__ import annotations

import strawberry

from domain.errors import Unauthenticated
from resolvers.permissions import CanList, CanReadProfile
from schema.context import Info
from schema.filters import Search, Where
from schema.viewer import Viewer


@strawberry.type(description="The caller, and counts for dashboards")
class ViewerQuery:
    @strawberry.field(
        permission_classes=[CanReadProfile],
        description="The API key making this request: its tenant, role and what it may do",
    )
    def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        if principal is None:  # CanReadProfile refuses such requests first
            raise Unauthenticated("An API key is required")
        return Viewer.from_domain(principal)

    @strawberry.field(
        permission_classes=[CanList],
        description="How many profiles match `where` and `search` (the same arguments as "
        "`profiles`); one count command",
    )
    async def profile_count(
        self,
        info: Info,
        where: Where = None,
        search: Search = None,
    ) -> int:
        principal = info.context.principal
        if principal is None:
            raise Unauthenticated("An API key is required")
        services = info.context.services
        query = await services.query(principal.tenant, where.to_raw() if where else None, search)
        return await services.count(principal.tenant, query)
