"""Database commands per operation, counted with pymongo's command monitoring.

The API key and the tenant's property definitions are cached after first use (definitions
never change once made), so each test warms them up first and then counts what an operation
costs in steady state.
"""

from __future__ import annotations

from domain.access import Role
from tests.conftest import Api, CommandCounter
from tests.integration.queries import CAPTURE, DEFINE, IDENTIFY, capture_input, identify_input

# Lean selections: nested fields such as `identities` add one batched query of their own.
LEAN_CAPTURE = """
mutation C($input: CapturePropertiesInput!) {
  captureProperties(input: $input) { created profile { id } }
}
"""
LEAN_IDENTIFY = """
mutation I($input: IdentifyInput!) {
  identify(input: $input) { outcome mergedProfileId profile { id userId properties } }
}
"""


async def _count(
    api: Api, commands: CommandCounter, query: str, variables: dict[str, object]
) -> list[str]:
    commands.reset()
    await api.ok(query, variables, role=Role.SDK)
    return list(commands.names)


async def _grow(api: Api, profiles: int, props: int) -> None:
    for i in range(props):
        await api.ok(DEFINE, {"input": {"name": f"extra{i}", "type": "STRING"}})
    for i in range(profiles):
        values = {f"extra{j}": f"value {j}" for j in range(props)}
        await api.ok(CAPTURE, capture_input("WEB", f"filler-{i}", values), role=Role.SDK)


async def test_capture_for_a_known_sender_takes_at_most_three_commands_at_any_size(
    api: Api, commands: CommandCounter
) -> None:
    await api.ok(CAPTURE, capture_input("WHATSAPP", "919876543210", {"gender": "f"}), role=Role.SDK)
    small = await _count(
        api, commands, LEAN_CAPTURE, capture_input("WHATSAPP", "919876543210", {"gender": "m"})
    )
    await _grow(api, profiles=40, props=20)
    large = await _count(
        api, commands, LEAN_CAPTURE, capture_input("WHATSAPP", "919876543210", {"gender": "f"})
    )
    assert len(small) <= 3, small
    assert large == small


async def test_identify_identified_takes_at_most_seven_commands_at_any_size(
    api: Api, commands: CommandCounter
) -> None:
    await api.ok(CAPTURE, capture_input("WEB", "v-small", {"gender": "f"}), role=Role.SDK)
    small = await _count(
        api, commands, LEAN_IDENTIFY, identify_input("WEB", "v-small", "user-small")
    )
    await _grow(api, profiles=40, props=20)
    await api.ok(CAPTURE, capture_input("WEB", "v-large", {"gender": "f"}), role=Role.SDK)
    large = await _count(
        api, commands, LEAN_IDENTIFY, identify_input("WEB", "v-large", "user-large")
    )
    assert len(small) <= 7, small
    assert large == small


async def _merged_cost(
    api: Api, commands: CommandCounter, user: str, target_identities: int, source_props: int
) -> list[str]:
    """Cost of merging an anonymous record with `source_props` properties into an identified
    profile that already holds `target_identities` identities."""
    for i in range(target_identities):
        await api.ok(IDENTIFY, identify_input("WEB", f"{user}-old-{i}", user), role=Role.SDK)
    values = {f"extra{j}": f"value {j}" for j in range(source_props)}
    await api.ok(CAPTURE, capture_input("WEB", f"{user}-new", values), role=Role.SDK)
    return await _count(api, commands, LEAN_IDENTIFY, identify_input("WEB", f"{user}-new", user))


async def test_identify_merged_does_not_grow_with_identities_or_properties(
    api: Api, commands: CommandCounter
) -> None:
    for i in range(30):
        await api.ok(DEFINE, {"input": {"name": f"extra{i}", "type": "STRING"}})
    small = await _merged_cost(api, commands, "few", target_identities=1, source_props=1)
    large = await _merged_cost(api, commands, "many", target_identities=25, source_props=30)
    assert large == small, (small, large)
    assert len(small) <= 14, small
