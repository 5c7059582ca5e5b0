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


TRACK = """
mutation Track($input: TrackEventInput!) {
  trackEvent(input: $input) {
    counted
    event { name eventId occurredAt properties }
    profile { id events { name count firstSeen lastSeen } }
  }
}
"""

HISTORY = """
query History($id: ID!, $name: String, $first: Int!, $after: String) {
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
    id profileId channel kind status subject startedAt updatedAt closedAt
  }
}
"""

ACTIVITY = """
query Activity($id: ID!, $first: Int!, $after: String) {
  profile(id: $id) {
    activity(first: $first, after: $after) {
      edges {
        cursor
        node {
          __typename
          ... on Event { name occurredAt }
          ... on Conversation { id kind status startedAt }
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

CREATE_SEGMENT = """
mutation CreateSegment($input: CreateSegmentInput!) {
  createSegment(input: $input) { id name description filter count }
}
"""

SEGMENT = """
query Segment($id: ID!, $first: Int, $after: String) {
  segment(id: $id) {
    id name count filter
    members(first: $first, after: $after) {
      edges { node { id userId } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
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
