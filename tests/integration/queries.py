"""GraphQL operations the tests send, written as a client would."""

from __future__ import annotations

from typing import Any

PROFILE_FIELDS = """
    id userId identified properties tags firstName lastName country timezone phone email
    emailOptin lastChannel lastSession createdAt updatedAt mergedFrom mergedInto requestedId
    identities { type value channels }
    mergeHistory { sourceId at trigger actor }
    contactCard { displayName userId phone email complete }
"""

CAPTURE = f"""
mutation Capture($input: CaptureInput!) {{
  captureProperties(input: $input) {{ created profile {{ {PROFILE_FIELDS} }} }}
}}
"""

IDENTIFY = f"""
mutation Identify($input: IdentifyInput!) {{
  identify(input: $input) {{ outcome mergedProfileId profile {{ {PROFILE_FIELDS} }} }}
}}
"""

UPDATE = f"""
mutation Update($input: UpdateProfileInput!) {{
  updateProfile(input: $input) {{ {PROFILE_FIELDS} }}
}}
"""

DEFINE = """
mutation Define($input: DefinePropertyInput!) {
  defineProperty(input: $input) { name type description system }
}
"""

PROFILE = f"""
query Profile($id: ID!) {{ profile(id: $id) {{ {PROFILE_FIELDS} }} }}
"""

BY_USER_ID = f"""
query ByUserId($userId: String!) {{ profileByUserId(userId: $userId) {{ {PROFILE_FIELDS} }} }}
"""

BY_IDENTITY = f"""
query ByIdentity($channel: Channel!, $senderId: String!) {{
  profileByIdentity(channel: $channel, senderId: $senderId) {{ {PROFILE_FIELDS} }}
}}
"""

PROFILES = f"""
query Profiles($first: Int, $after: String) {{
  profiles(first: $first, after: $after) {{
    edges {{ cursor node {{ {PROFILE_FIELDS} }} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
  }}
}}
"""


def capture_input(
    channel: str, sender: str, properties: dict[str, Any] | None = None, **context: Any
) -> dict[str, Any]:
    value: dict[str, Any] = {"channel": channel, "senderId": sender}
    if properties is not None:
        value["properties"] = properties
    if context:
        value["context"] = context
    return {"input": value}


def identify_input(
    channel: str, sender: str, user_id: str, properties: dict[str, Any] | None = None
) -> dict[str, Any]:
    value: dict[str, Any] = {"channel": channel, "senderId": sender, "userId": user_id}
    if properties is not None:
        value["properties"] = properties
    return {"input": value}
