"""What each mutation returns: a `VerbNounPayload` per mutation (the Relay convention), so a
mutation can grow new results without breaking its clients."""

from __future__ import annotations

import strawberry

from schema.activity import Conversation, Event
from schema.enums import IdentifyOutcome
from schema.segments import Segment
from schema.types import Profile, PropertyDefinition


@strawberry.type(description="What captureProperties did")
class CapturePropertiesPayload:
    profile: Profile = strawberry.field(description="The sender's profile after the capture")
    created: bool = strawberry.field(description="True when this call created the profile")


@strawberry.type(description="What identify did")
class IdentifyPayload:
    profile: Profile = strawberry.field(description="The profile the sender belongs to now")
    outcome: IdentifyOutcome = strawberry.field(description="Which of the five cases applied")
    merged_profile_id: strawberry.ID | None = strawberry.field(
        description="The id that was merged into `profile` (outcome MERGED)"
    )


@strawberry.type(description="What updateProfile did")
class UpdateProfilePayload:
    profile: Profile = strawberry.field(description="The profile after the update")


@strawberry.type(description="What defineProperty did")
class DefinePropertyPayload:
    property_definition: PropertyDefinition = strawberry.field(description="The new definition")


@strawberry.type(description="What trackEvent did")
class TrackEventPayload:
    profile: Profile = strawberry.field(description="The profile the event was counted on")
    event: Event = strawberry.field(description="The stored event")
    counted: bool = strawberry.field(
        description="False when the eventId had been tracked already (the retry counts once)"
    )


@strawberry.type(description="What recordConversation did")
class RecordConversationPayload:
    conversation: Conversation = strawberry.field(description="The conversation as stored")


@strawberry.type(description="What mergeProfiles did")
class MergeProfilesPayload:
    profile: Profile = strawberry.field(description="The survivor (the target)")
    merged_profile_id: strawberry.ID = strawberry.field(
        description="The source, now a redirect to the survivor"
    )


@strawberry.type(description="What detachIdentity did")
class DetachIdentityPayload:
    profile: Profile = strawberry.field(description="The profile the identity left")
    detached: Profile = strawberry.field(description="The new profile holding the identity")


@strawberry.type(description="What createSegment did")
class CreateSegmentPayload:
    segment: Segment = strawberry.field(description="The new segment")


@strawberry.type(description="What updateSegment did")
class UpdateSegmentPayload:
    segment: Segment = strawberry.field(description="The segment after the update")


@strawberry.type(description="What deleteSegment did")
class DeleteSegmentPayload:
    deleted_segment_id: strawberry.ID = strawberry.field(
        description="The id of the deleted segment"
    )


@strawberry.type(description="What deleteProfile did")
class DeleteProfilePayload:
    deleted_profile_id: strawberry.ID = strawberry.field(
        description="The id of the erased profile (it stays a tombstone and never comes back)"
    )
