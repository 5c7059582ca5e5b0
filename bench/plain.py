"""The overhead baseline: the same service calls as the GraphQL API, served as plain JSON by a
minimal Starlette app (same runtime, same auth, same store), so the difference is GraphQL's."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from domain.activity import ActivityPage, EventPage
from domain.autocapture import CaptureContext
from domain.events import Event
from domain.identity import Channel, Identity
from domain.model import MergeRecord, Profile
from schema.cursors import encode_time_cursor
from schema.scalars import json_value, json_values
from server.app import Runtime, open_runtime
from server.auth import key_from_headers
from server.config import Settings
from server.observability import CommandMetrics, Metrics


def _profile(profile: Profile, identities: Sequence[Identity] | None = None) -> dict[str, Any]:
    values: Mapping[str, Any] = profile.properties
    first, last = values.get("firstName"), values.get("lastName")
    phone, email = values.get("phone"), values.get("email")
    body: dict[str, Any] = {
        "id": profile.id,
        "userId": profile.user_id,
        "firstName": first,
        "lastName": last,
        "country": values.get("country"),
        "tags": profile.tags,
        "properties": json_values(values),
        "events": [
            {
                "name": e.name,
                "count": e.count,
                "firstSeen": json_value(e.first_seen),
                "lastSeen": json_value(e.last_seen),
            }
            for e in profile.events
        ],
        "contactCard": {
            "displayName": " ".join(p for p in (first, last) if p) or profile.user_id,
            "phone": phone,
            "email": email,
            "complete": bool(first and (phone or email)),
        },
    }
    if identities is not None:
        body["identities"] = [
            {"type": i.key.type.value, "value": i.key.value, "channels": list(i.channels)}
            for i in identities
        ]
    return body


def _event(event: Event) -> dict[str, Any]:
    return {
        "name": event.name,
        "occurredAt": json_value(event.occurred_at),
        "eventId": event.event_id,
    }


def _merge(record: MergeRecord) -> dict[str, Any]:
    return {
        "sourceId": record.source_id,
        "at": json_value(record.at),
        "trigger": record.trigger.value,
        "actor": record.actor,
    }


def _timeline(page: ActivityPage) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for at, key, item in page.items:
        if isinstance(item, Event):
            node = {"__typename": "Event", "name": item.name, "occurredAt": json_value(at)}
        else:
            node = {
                "__typename": "Conversation",
                "id": item.id,
                "kind": item.kind.value,
                "status": item.status.value,
                "subject": item.subject,
                "startedAt": json_value(item.started_at),
            }
        items.append({"cursor": encode_time_cursor(at, key), "node": node})
    return {"edges": items, "hasNextPage": page.has_next}


def _events(page: EventPage) -> dict[str, Any]:
    edges = [
        {"cursor": encode_time_cursor(e.occurred_at, e.id), "node": _event(e)} for e in page.events
    ]
    return {"edges": edges, "hasNextPage": page.has_next}


def create_plain_app(settings: Settings) -> Starlette:
    metrics = Metrics()
    holder: dict[str, Runtime] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_runtime(settings, [CommandMetrics(metrics)], None, metrics) as runtime:
            holder["runtime"] = runtime
            yield

    async def tenant(request: Request) -> str | None:
        principal = await holder["runtime"].auth.principal(key_from_headers(request.headers))
        return principal.tenant if principal else None

    async def capture(request: Request) -> Response:
        if (t := await tenant(request)) is None:
            return JSONResponse({"error": "UNAUTHENTICATED"}, 401)
        body = await request.json()
        result = await holder["runtime"].services.capture(
            t,
            Channel(body["channel"]),
            body["senderId"],
            body.get("properties") or {},
            CaptureContext(),
            actor="plain",
        )
        return JSONResponse(
            {
                "created": result.created,
                "profile": {"id": result.profile.id, "userId": result.profile.user_id},
            }
        )

    async def identify(request: Request) -> Response:
        if (t := await tenant(request)) is None:
            return JSONResponse({"error": "UNAUTHENTICATED"}, 401)
        body = await request.json()
        result = await holder["runtime"].services.identify(
            t, Channel(body["channel"]), body["senderId"], body["userId"], {}, actor="plain"
        )
        return JSONResponse(
            {
                "outcome": result.outcome.value,
                "mergedProfileId": result.merged_profile_id,
                "profile": {
                    "id": result.profile.id,
                    "userId": result.profile.user_id,
                    "properties": json_values(result.profile.properties),
                },
            }
        )

    async def track(request: Request) -> Response:
        if (t := await tenant(request)) is None:
            return JSONResponse({"error": "UNAUTHENTICATED"}, 401)
        body = await request.json()
        result = await holder["runtime"].activity.track_event(
            t,
            name=body["name"],
            properties={},
            occurred_at=None,
            event_id=body.get("eventId"),
            channel=Channel(body["channel"]),
            sender_id=body["senderId"],
        )
        return JSONResponse({"counted": result.counted, "profile": {"id": result.profile.id}})

    async def profile(request: Request) -> Response:
        if (t := await tenant(request)) is None:
            return JSONResponse({"error": "UNAUTHENTICATED"}, 401)
        found = await holder["runtime"].services.profile(t, request.path_params["id"])
        return JSONResponse({"profile": _profile(found) if found else None})

    async def profiles(request: Request) -> Response:
        if (t := await tenant(request)) is None:
            return JSONResponse({"error": "UNAUTHENTICATED"}, 401)
        services = holder["runtime"].services
        page = await services.list_profiles(t, int(request.query_params.get("first", 50)), None)
        ids = [p.id for p in page.profiles]
        identities = await services.identities(t, ids)
        rendered = [_profile(p, identities.get(p.id, [])) for p in page.profiles]
        if request.query_params.get("nested") == "all":
            activity = holder["runtime"].activity
            timelines = await activity.activities(t, ids, 5, None)
            histories = await activity.event_histories(t, ids, None, 5, None)
            for body, p in zip(rendered, page.profiles, strict=True):
                body["mergeHistory"] = [_merge(r) for r in p.merge_history]
                body["activity"] = _timeline(timelines[p.id])
                body["eventHistory"] = _events(histories[p.id])
        return JSONResponse({"profiles": rendered, "hasNextPage": page.has_next})

    async def counters(request: Request) -> Response:
        total = sum(
            sample.value
            for metric in metrics.db_commands.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
        return JSONResponse({"commands": total})

    return Starlette(
        routes=[
            Route("/capture", capture, methods=["POST"]),
            Route("/identify", identify, methods=["POST"]),
            Route("/track", track, methods=["POST"]),
            Route("/profile/{id}", profile),
            Route("/profiles", profiles),
            Route("/counters", counters),
        ],
        lifespan=lifespan,
    )


if __name__ == "__main__":
    settings = Settings.from_env()
    uvicorn.run(
        create_plain_app(settings),
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        log_level="warning",
    )
