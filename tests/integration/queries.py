"""GraphQL operations the tests send, written as a client would."""

from __future__ import annotations

from typing import Any

from schema.ids import Kind, parse, to_global

PROFILE_FIELDS = """
    id userId identified properties tags firstName lastName country timezone phone email
    emailOptin lastChannel lastSession createdAt updatedAt mergedFrom mergedInto requestedId
    identities { type value channels }
    mergeHistory { sourceId at trigger actor }
    contactCard { displayName userId phone email complete }
"""

CAPTURE = f"""
mutation Capture($input: CapturePropertiesInput!) {{
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
  updateProfile(input: $input) {{ profile {{ {PROFILE_FIELDS} }} }}
}}
"""

DEFINE = """
mutation Define($input: DefinePropertyInput!) {
  defineProperty(input: $input) { propertyDefinition { name type description system } }
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


def _filter_fields(depth: int) -> str:
    leaves = "tag property { name op value } event { name did minCount maxCount withinLastDays }"
    if depth == 0:
        return leaves
    inner = _filter_fields(depth - 1)
    return f"{leaves} and {{ {inner} }} or {{ {inner} }} not {{ {inner} }}"


# A saved filter read back, four levels deep (a client selects the depth it uses).
FILTER_FIELDS = _filter_fields(3)


def saved_filter(typed: dict[str, Any]) -> dict[str, Any]:
    """A segment's typed filter in the client form it was given in (unset fields dropped)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    result: dict[str, Any] = strip(typed)
    return result


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


TRACK = """
mutation Track($input: TrackEventInput!) {
  trackEvent(input: $input) {
    counted
    event { id name eventId occurredAt properties }
    profile { id events { name count firstSeen lastSeen } }
  }
}
"""

HISTORY = """
query History($id: ID!, $name: String, $first: Int, $after: String) {
  profile(id: $id) {
    eventHistory(name: $name, first: $first, after: $after) {
      edges { cursor node { name occurredAt eventId } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

RECORD = """
mutation Record($input: RecordConversationInput!) {
  recordConversation(input: $input) {
    conversation {
      id conversationId profileId channel kind status subject startedAt updatedAt closedAt
    }
  }
}
"""

ACTIVITY = """
query Activity($id: ID!, $first: Int, $after: String) {
  profile(id: $id) {
    activity(first: $first, after: $after) {
      edges {
        cursor
        node {
          __typename
          ... on Event { name occurredAt }
          ... on Conversation { id conversationId kind status startedAt }
        }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

FILTERED = """
query Filtered($where: ProfileFilter, $search: String, $first: Int, $after: String) {
  profiles(where: $where, search: $search, first: $first, after: $after) {
    edges { cursor node { id userId firstName } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

CREATE_SEGMENT = f"""
mutation CreateSegment($input: CreateSegmentInput!) {{
  createSegment(input: $input) {{
    segment {{ id name description filter {{ {FILTER_FIELDS} }} count }}
  }}
}}
"""

SEGMENT = f"""
query Segment($id: ID!, $first: Int, $after: String) {{
  segment(id: $id) {{
    id name count filter {{ {FILTER_FIELDS} }}
    members(first: $first, after: $after) {{
      edges {{ node {{ id userId }} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""


def track_input(
    name: str,
    *,
    sender: str | None = None,
    channel: str = "WEB",
    profile_id: str | None = None,
    at: str | None = None,
    event_id: str | None = None,
    properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    value: dict[str, Any] = {"name": name}
    if sender is not None:
        value["channel"] = channel
        value["senderId"] = sender
    if profile_id is not None:
        value["profileId"] = profile_id
    if at is not None:
        value["occurredAt"] = at
    if event_id is not None:
        value["eventId"] = event_id
    if properties is not None:
        value["properties"] = properties
    return {"input": value}


SUGGESTIONS = """
query Suggestions($id: ID!) {
  mergeSuggestions(profileId: $id) { matchedOn score profile { id userId } }
}
"""

MERGE = f"""
mutation Merge($input: MergeProfilesInput!) {{
  mergeProfiles(input: $input) {{
    mergedProfileId profile {{ {PROFILE_FIELDS} events {{ name count }} }}
  }}
}}
"""

DETACH = f"""
mutation Detach($input: DetachIdentityInput!) {{
  detachIdentity(input: $input) {{
    profile {{ {PROFILE_FIELDS} }}
    detached {{ {PROFILE_FIELDS} activity(first: 10) {{ edges {{ node {{ __typename }} }} }} }}
  }}
}}
"""


def merge_input(target: str, source: str) -> dict[str, Any]:
    return {"input": {"targetId": target, "sourceId": source}}


def raw_id(global_id: str) -> str:
    """The stored key behind a global id (what the database's `_id` holds)."""
    parsed = parse(global_id)
    assert parsed is not None, global_id
    return parsed[1]


def profile_gid(key: str) -> str:
    """The global id the API shows for the profile stored under `key`."""
    return to_global(Kind.PROFILE, key)
