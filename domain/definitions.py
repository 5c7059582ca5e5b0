"""Property definitions of a tenant, and validation of property maps against them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.errors import (
    LimitExceeded,
    PropertyNotDefined,
    PropertyTypeImmutable,
    UserIdImmutable,
    ValidationFailed,
)
from domain.filters import Filter, parse_filter
from domain.identity import lookup_user_id
from domain.ports import Clock, ProfileStore
from domain.properties import (
    READ_ONLY,
    SYSTEM_PROPERTIES,
    PropertyDefinition,
    PropertyType,
    check_property_name,
    validate_value,
)
from domain.values import check_key_text, check_text

MAX_PROPERTIES_PER_CALL = 100
MAX_DEFINITIONS_PER_TENANT = 500
MAX_DESCRIPTION_LENGTH = 500


class Definitions:
    """A tenant's definitions, cached: a definition never changes once made, so a cached one
    stays true; only a name the cache does not know sends a reload."""

    def __init__(self, store: ProfileStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._cache: dict[str, dict[str, PropertyDefinition]] = {}

    async def all(self, tenant: str) -> list[PropertyDefinition]:
        custom = await self._reload(tenant)
        return [*SYSTEM_PROPERTIES.values(), *sorted(custom.values(), key=lambda d: d.name)]

    async def get(self, tenant: str, name: str, *, field: str) -> PropertyDefinition:
        system = SYSTEM_PROPERTIES.get(name)
        if system is not None:
            return system
        known = self._cache.get(tenant, {}).get(name)
        if known is None:
            known = (await self._reload(tenant)).get(name)
        if known is None:
            raise PropertyNotDefined(
                f"Property '{name}' is not defined; define it with defineProperty first",
                field=field,
            )
        return known

    async def parse_filter(
        self, tenant: str, where: Mapping[str, Any], *, field: str = "where"
    ) -> Filter:
        """A typed filter checked against the definitions; the database is read only when the
        cache has not seen the tenant or the filter names a property it does not know."""
        if tenant not in self._cache:
            await self._reload(tenant)
        try:
            return parse_filter(where, {**SYSTEM_PROPERTIES, **self._cache[tenant]}, field=field)
        except PropertyNotDefined:
            custom = await self._reload(tenant)
            return parse_filter(where, {**SYSTEM_PROPERTIES, **custom}, field=field)

    async def _reload(self, tenant: str) -> dict[str, PropertyDefinition]:
        loaded = {d.name: d for d in await self._store.definitions(tenant)}
        self._cache[tenant] = loaded
        return loaded

    async def define(
        self, tenant: str, name: str, type_: PropertyType, description: str
    ) -> PropertyDefinition:
        check_property_name(name, field="name")
        if len(description) > MAX_DESCRIPTION_LENGTH:
            raise ValidationFailed(
                f"description is longer than {MAX_DESCRIPTION_LENGTH} characters",
                field="description",
            )
        check_text(description, field="description")
        if name in SYSTEM_PROPERTIES:
            raise PropertyTypeImmutable(
                f"'{name}' is a system property; its type cannot be changed", field="name"
            )
        existing = await self._reload(tenant)
        if name not in existing and len(existing) >= MAX_DEFINITIONS_PER_TENANT:
            raise LimitExceeded(
                f"A tenant can define at most {MAX_DEFINITIONS_PER_TENANT} properties",
                field="name",
            )
        wanted = PropertyDefinition(
            name=name, type=type_, description=description, created_at=self._clock.now()
        )
        stored = existing.get(name) or await self._store.insert_definition(tenant, wanted)
        if stored.type is not type_:
            raise PropertyTypeImmutable(
                f"Property '{name}' is already defined as {stored.type.value}; a definition "
                "cannot be changed",
                field="type",
            )
        self._cache.setdefault(tenant, {})[name] = stored
        return stored

    async def validate(
        self, tenant: str, values: object, *, field: str, current_user_id: str | None = None
    ) -> dict[str, Any]:
        """Normalised values, or the first error naming the offending property."""
        if not isinstance(values, Mapping):
            raise ValidationFailed(f"{field} must be a JSON object", field=field)
        if len(values) > MAX_PROPERTIES_PER_CALL:
            raise ValidationFailed(
                f"{field} holds at most {MAX_PROPERTIES_PER_CALL} properties", field=field
            )
        result: dict[str, Any] = {}
        for name, value in values.items():
            # A name that is not text cannot be part of a field path.
            path = f"{field}.{check_key_text(str(name), field=field)}"
            check_property_name(str(name), field=path)
            if name == "userId":
                same = isinstance(value, str) and lookup_user_id(value) == current_user_id
                if current_user_id is None or not same:
                    raise UserIdImmutable(
                        "userId cannot be written as a property: it is set once by identify "
                        "and never changes",
                        field=path,
                    )
                continue
            if name in READ_ONLY:
                raise ValidationFailed(f"Property '{name}' is read-only", field=path)
            definition = await self.get(tenant, name, field=path)
            result[name] = validate_value(definition, value, field=path)
        return result
