"""Bulk import over HTTP (POST /import) and importJob, against the real application."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.import_data import DEFINITIONS, awkward_csv
from domain.access import Role
from domain.identity import IdentityKey, IdentityType
from domain.import_jobs import ImportJob
from domain.import_rows import ImportFormat
from domain.importing import ImportMode
from server.app import SystemClock
from server.importer import new_job
from store.importing import MongoBulkImportStore
from tests.conftest import TENANT, Api, CommandCounter
from tests.integration.interleave import interleave
from tests.integration.invariants import assert_invariants
from tests.integration.queries import CAPTURE, IDENTIFY, capture_input, identify_input

JOB = """query J($id: ID!, $after: String) { importJob(id: $id) {
  id status mode format rowsRead written unchanged refused bytesRead totalBytes error
  refusedRows(first: 100, after: $after) {
    edges { node { row field code message } } pageInfo { hasNextPage endCursor } } } }"""
BY_USER = """query U($u: String!) { profileByUserId(userId: $u) {
  id userId firstName lastName phone country tags properties
  identities { type value } mergeHistory { sourceId trigger } } }"""
BY_IDENTITY = """query I($c: Channel!, $s: String!) { profileByIdentity(channel: $c, senderId: $s) {
  id userId } }"""


async def define(api: Api) -> None:
    for name, type_ in DEFINITIONS:
        await api.ok(
            "mutation D($n: String!, $t: PropertyType!) {"
            " defineProperty(input: {name: $n, type: $t}) { propertyDefinition { name } } }",
            {"n": name, "t": type_},
        )


async def run_import(
    api: Api, body: bytes, fmt: str = "csv", mode: str = "fill", role: Role = Role.ADMIN
) -> dict[str, Any]:
    """POST the file, then poll importJob until it is over; the job with every refusal."""
    key = await api.key(role)
    response = await api.http.post(
        f"/import?format={fmt}&mode={mode}",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["jobId"]
    return await finished(api, job_id)


async def finished(api: Api, job_id: str) -> dict[str, Any]:
    """Poll importJob until the job is over; the job with every refusal (all pages)."""
    for _ in range(6000):
        job = (await api.ok(JOB, {"id": job_id}))["importJob"]
        if job["status"] != "RUNNING":
            break
        await asyncio.sleep(0.02)
    page = job["refusedRows"]
    refusals = [edge["node"] for edge in page["edges"]]
    while page["pageInfo"]["hasNextPage"]:
        after = page["pageInfo"]["endCursor"]
        page = (await api.ok(JOB, {"id": job_id, "after": after}))["importJob"]["refusedRows"]
        refusals.extend(edge["node"] for edge in page["edges"])
    job["refusedRows"] = refusals
    return dict(job)


async def profiles_snapshot(api: Api) -> dict[str, list[Any]]:
    snap = await api.snapshot()
    return {k: v for k, v in snap.items() if not k.startswith("import_")}


async def test_an_awkward_csv_imports_valid_rows_reports_refused_ones_and_a_rerun_writes_nothing(
    api: Api,
) -> None:
    await define(api)
    body, expected = awkward_csv(240)
    job = await run_import(api, body)

    assert job["status"] == "DONE", job
    assert job["rowsRead"] == expected.rows
    assert {r["row"]: r["code"] for r in job["refusedRows"]} == expected.refused
    assert job["refused"] == len(expected.refused)
    assert job["written"] + job["unchanged"] == job["rowsRead"]  # refused rows changed nothing
    assert job["bytesRead"] == job["totalBytes"] == len(body)
    undefined = next(r for r in job["refusedRows"] if r["code"] == "PROPERTY_NOT_DEFINED")
    assert undefined["field"] == "favouriteColour"
    for user, values in expected.accepted.items():
        profile = (await api.ok(BY_USER, {"u": user}))["profileByUserId"]
        assert profile is not None, user
        props = profile["properties"]
        for name, value in values.items():
            assert props.get(name) == value, (user, name, props.get(name), value)

    await assert_invariants(api.db, TENANT)
    before = await profiles_snapshot(api)
    again = await run_import(api, body)
    assert again["status"] == "DONE"
    assert again["written"] == 0
    assert again["unchanged"] == expected.rows
    assert again["refused"] == len(expected.refused)
    assert await profiles_snapshot(api) == before


async def test_a_row_joins_a_bot_captured_phone_and_an_identified_profile_by_the_merge_rules(
    api: Api,
) -> None:
    await define(api)
    bot = await api.ok(
        CAPTURE,
        capture_input(
            "WHATSAPP", "919876543210", {"plan": "silver", "tags": ["bot"]}, displayName="Asha Rao"
        ),
    )
    anonymous_id = bot["captureProperties"]["profile"]["id"]
    crm = await api.ok(
        IDENTIFY, identify_input("API", "crm-7", "asha@example.com", {"score": 7, "tags": ["crm"]})
    )
    identified_id = crm["identify"]["profile"]["id"]
    csv_body = (
        b"userId,identity.WHATSAPP,plan,score,vip,tags,firstName,lastName\r\n"
        b'asha@example.com,+91 98765 43210,gold,9,true,"[""import"",""bot""]",Ann,Other\r\n'
    )

    job = await run_import(api, csv_body)

    assert (job["written"], job["refused"]) == (1, 0), job
    one = (await api.ok(BY_USER, {"u": "asha@example.com"}))["profileByUserId"]
    assert one["id"] == identified_id
    props = one["properties"]
    assert props["plan"] == "silver"  # the merge filled it from the bot's record; fill keeps it
    assert props["score"] == 7  # the identified profile's own value stays
    assert props["vip"] is True  # only the row had it
    assert (one["firstName"], one["lastName"]) == ("Asha", "Rao")  # the pair moved whole
    assert one["phone"] == "+919876543210"
    assert one["country"] == "IN"
    assert one["tags"] == ["crm", "bot", "import"]
    assert sorted((i["type"], i["value"]) for i in one["identities"]) == [
        ("API", "crm-7"),
        ("PHONE", "+919876543210"),
        ("USER_ID", "asha@example.com"),
    ]
    assert [(m["sourceId"], m["trigger"]) for m in one["mergeHistory"]] == [
        (anonymous_id, "IDENTIFY")
    ]
    by_phone = await api.ok(BY_IDENTITY, {"c": "SMS", "s": "+919876543210"})
    assert by_phone["profileByIdentity"]["id"] == identified_id
    await assert_invariants(api.db, TENANT)


async def test_a_row_naming_two_identified_people_is_refused_and_writes_nothing(api: Api) -> None:
    await define(api)
    await api.ok(IDENTIFY, identify_input("API", "crm-1", "kim@example.com"))
    before = await profiles_snapshot(api)
    body = b"userId,identity.API,plan\r\nlee@example.com,crm-1,gold\r\n"

    job = await run_import(api, body)

    assert job["refusedRows"] == [
        {
            "row": 1,
            "field": "userId",
            "code": "MERGE_CONFLICT",
            "message": job["refusedRows"][0]["message"],
        }
    ]
    assert await profiles_snapshot(api) == before


async def test_a_row_with_one_bad_cell_writes_nothing_and_every_bad_cell_is_reported(
    api: Api,
) -> None:
    await define(api)
    before = await profiles_snapshot(api)
    body = b"userId,score,vip,dob\r\nkim@example.com,lots,maybe,1990-02-31\r\n"

    job = await run_import(api, body)

    assert sorted(r["field"] for r in job["refusedRows"]) == ["dob", "score", "vip"]
    assert {r["row"] for r in job["refusedRows"]} == {1}
    assert job["refused"] == 1
    assert await profiles_snapshot(api) == before


async def test_fill_keeps_values_and_overwrite_replaces_the_ones_the_row_gives(api: Api) -> None:
    await define(api)
    await api.ok(IDENTIFY, identify_input("API", "crm-1", "kim@example.com", {"plan": "silver"}))
    body = b"userId,plan,score\r\nkim@example.com,gold,3\r\n"

    await run_import(api, body)
    filled = (await api.ok(BY_USER, {"u": "kim@example.com"}))["profileByUserId"]
    assert (filled["properties"]["plan"], filled["properties"]["score"]) == ("silver", 3)

    job = await run_import(api, body, mode="overwrite")
    assert job["written"] == 1
    replaced = (await api.ok(BY_USER, {"u": "kim@example.com"}))["profileByUserId"]
    assert (replaced["properties"]["plan"], replaced["properties"]["score"]) == ("gold", 3)
    again = await run_import(api, body, mode="overwrite")
    assert (again["written"], again["unchanged"]) == (0, 1)


async def test_ndjson_rows_name_identities_and_carry_typed_values(api: Api) -> None:
    await define(api)
    body = (
        b'{"identities": [{"channel": "WEB", "senderId": "v-1"}, {"channel": "SMS",'
        b' "senderId": "+14155552671"}], "score": 4.5, "vip": false, "tags": ["x"]}\n'
        b'{"channel": "WEB", "senderId": "v-2", "identity.EMAIL": "a@b.co;c@d.co"}\n'
        b'["not an object"]\n'
    )

    job = await run_import(api, body, fmt="ndjson")

    assert (job["written"], job["refused"]) == (2, 1), job
    assert job["refusedRows"][0]["row"] == 3
    first = await api.ok(BY_IDENTITY, {"c": "WEB", "s": "v-1"})
    same = await api.ok(BY_IDENTITY, {"c": "VOICE", "s": "+14155552671"})
    assert first["profileByIdentity"]["id"] == same["profileByIdentity"]["id"]
    second = await api.ok(BY_IDENTITY, {"c": "EMAIL", "s": "c@d.co"})
    assert second["profileByIdentity"]["id"] != first["profileByIdentity"]["id"]


async def test_rows_of_one_file_that_share_a_key_end_on_one_profile(api: Api) -> None:
    await define(api)
    body = b"identity.WEB,identity.API,plan\r\nv-1,,gold\r\n,api-1,\r\nv-1,api-1,\r\n"

    job = await run_import(api, body)

    assert job["written"] == 3, job
    a = await api.ok(BY_IDENTITY, {"c": "WEB", "s": "v-1"})
    b = await api.ok(BY_IDENTITY, {"c": "API", "s": "api-1"})
    assert a["profileByIdentity"]["id"] == b["profileByIdentity"]["id"]


async def test_only_admin_keys_may_import(api: Api) -> None:
    for role in (Role.SDK, Role.VIEWER, Role.AGENT):
        key = await api.key(role)
        response = await api.http.post(
            "/import", content=b"userId\r\nx\r\n", headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 403
        assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    error = await api.error(JOB, {"id": "imp_x"}, role=Role.VIEWER)
    assert error["extensions"]["code"] == "FORBIDDEN"


async def test_a_server_resumes_a_job_whose_runner_died_from_its_checkpoint(
    api: Api, tmp_path: Path
) -> None:
    await define(api)
    body, expected = awkward_csv(60)
    path = tmp_path / "customers.csv"
    path.write_bytes(body)
    imports = api.app.state.runtime.get().imports
    clock = SystemClock()
    dead = new_job(
        TENANT, ImportMode.FILL, ImportFormat.CSV, path, "admin-key", clock, "server-dead"
    )
    stale = clock.now() - timedelta(minutes=5)
    await imports.jobs.create_job(replace(dead, created_at=stale, updated_at=stale))

    await imports.resume_all()
    job = await finished(api, dead.id)

    assert job["status"] == "DONE"
    assert job["rowsRead"] == 60
    assert {r["row"]: r["code"] for r in job["refusedRows"]} == expected.refused


async def test_an_import_costs_well_under_one_database_command_per_row(
    api: Api, commands: CommandCounter, tmp_path: Path
) -> None:
    await define(api)
    body, _ = awkward_csv(400)
    path = tmp_path / "customers.csv"
    path.write_bytes(body)
    imports = api.app.state.runtime.get().imports
    clock = SystemClock()
    per_row = []
    for _ in range(2):
        job = new_job(TENANT, ImportMode.FILL, ImportFormat.CSV, path, "admin", clock, "test")
        await imports.jobs.create_job(job)
        commands.reset()
        with path.open("rb") as stream:
            done = await imports.runner.run(job, stream)
        assert done.counts.read == 400
        per_row.append(commands.count / 400)

    print(f"commands per row: {per_row}")
    assert per_row[0] < 0.2, per_row  # new people: bulk births, duplicates and refusals
    assert per_row[1] < 0.1, per_row  # every row unchanged: reads and checkpoints only


async def test_births_recovery_abandoned_mid_batch_are_given_back_and_their_rows_born_again(
    api: Api, tmp_path: Path
) -> None:
    await define(api)
    body = b"userId,identity.WEB,plan\r\nkim@example.com,v-1,gold\r\nlee@example.com,,silver\r\n"
    runtime = api.app.state.runtime.get()
    run = await prepared_run(api, tmp_path, body)

    # Recovery meets the pending births before their first keys are claimed: it gives them up.
    done, _ = await interleave(
        run, "import_insert_births", lambda: runtime.services.lifecycle.recover()
    )

    assert (done.counts.written, done.counts.refused) == (2, 0)
    kim = (await api.ok(BY_USER, {"u": "kim@example.com"}))["profileByUserId"]
    assert kim["properties"]["plan"] == "gold"
    assert sorted(i["type"] for i in kim["identities"]) == ["USER_ID", "VISITOR"]
    lee = (await api.ok(BY_USER, {"u": "lee@example.com"}))["profileByUserId"]
    assert lee["properties"]["plan"] == "silver"
    await assert_invariants(api.db, TENANT)


async def test_import_job_reports_its_mode_and_format_as_enums(api: Api) -> None:
    await define(api)
    job = await run_import(api, b'{"userId": "kim@example.com"}\n', fmt="ndjson", mode="overwrite")

    assert (job["mode"], job["format"], job["written"]) == ("OVERWRITE", "NDJSON", 1)


KIM_ROW = b"userId,identity.WEB,plan\r\nkim@example.com,v-1,gold\r\n"


async def prepared_run(api: Api, tmp_path: Path, body: bytes) -> Callable[[], Awaitable[ImportJob]]:
    """A job created for the file (not started), and how to run it in this process (so a test
    can interleave it at one of its steps)."""
    path = tmp_path / "customers.csv"
    path.write_bytes(body)
    imports = api.app.state.runtime.get().imports
    job = new_job(TENANT, ImportMode.FILL, ImportFormat.CSV, path, "admin", SystemClock(), "t")
    await imports.jobs.create_job(job)

    async def run() -> ImportJob:
        with path.open("rb") as stream:
            done: ImportJob = await imports.runner.run(job, stream)
        return done

    return run


async def test_a_sender_a_bot_captures_while_the_birth_claims_its_keys_ends_on_the_one_profile(
    api: Api, tmp_path: Path
) -> None:
    await define(api)
    run = await prepared_run(api, tmp_path, KIM_ROW)

    # The births are inserted; before their keys are claimed a bot captures v-1: the birth
    # wins the userId key and loses v-1, so the row joins the bot's profile to Kim's.
    done, _ = await interleave(
        run,
        "import_insert_births",
        lambda: api.ok(CAPTURE, capture_input("WEB", "v-1", {"firstName": "Kim"})),
    )

    assert (done.counts.written, done.counts.unchanged, done.counts.refused) == (1, 0, 0)
    kim = (await api.ok(BY_USER, {"u": "kim@example.com"}))["profileByUserId"]
    assert (kim["properties"]["plan"], kim["firstName"]) == ("gold", "Kim")
    assert sorted((i["type"], i["value"]) for i in kim["identities"]) == [
        ("USER_ID", "kim@example.com"),
        ("VISITOR", "v-1"),
    ]
    assert [m["trigger"] for m in kim["mergeHistory"]] == ["IDENTIFY"]
    await assert_invariants(api.db, TENANT)


async def test_a_user_id_an_identify_takes_while_the_birth_claims_it_joins_the_row_to_its_owner(
    api: Api, tmp_path: Path
) -> None:
    await define(api)
    run = await prepared_run(api, tmp_path, KIM_ROW)

    # Another sender is identified as kim@example.com before the birth claims that key: the
    # birth is discarded and the row goes to the profile that holds the userId.
    done, _ = await interleave(
        run,
        "import_insert_births",
        lambda: api.ok(IDENTIFY, identify_input("WEB", "v-2", "kim@example.com")),
    )

    assert (done.counts.written, done.counts.refused) == (1, 0)
    kim = (await api.ok(BY_USER, {"u": "kim@example.com"}))["profileByUserId"]
    assert kim["properties"]["plan"] == "gold"
    assert sorted((i["type"], i["value"]) for i in kim["identities"]) == [
        ("USER_ID", "kim@example.com"),
        ("VISITOR", "v-1"),
        ("VISITOR", "v-2"),
    ]
    count = await api.db["profiles"].count_documents({"tenant": TENANT})
    assert count == 1  # the discarded birth left no document behind
    await assert_invariants(api.db, TENANT)


async def test_a_claim_of_a_held_key_is_lost_and_leaves_the_key_as_it_was(api: Api) -> None:
    """claim_keys reports the claims that lost; a held key keeps its owner and its document."""
    await define(api)
    await run_import(api, b"userId,identity.WEB\r\nkim@example.com,v-1\r\n")
    identities = api.db["identities"]
    before = await identities.find({"tenant": TENANT}).sort("_id", 1).to_list()
    held, free = IdentityKey(IdentityType.VISITOR, "v-1"), IdentityKey(IdentityType.VISITOR, "v-9")

    lost = await MongoBulkImportStore(api.db).claim_keys(
        TENANT, [(held, None, "p-other"), (free, None, "p-other")], SystemClock().now()
    )

    assert lost == {(held, "p-other")}
    query = {"tenant": TENANT, "_id": {"$ne": free.storage_id(TENANT)}}
    assert await identities.find(query).sort("_id", 1).to_list() == before
    claimed = await identities.find_one({"_id": free.storage_id(TENANT)})
    assert claimed is not None
    assert claimed["profileId"] == "p-other"


FIVE = b"userId,identity.WEB,plan\r\n" + b"".join(
    f"p{i}@example.com,v-{i};w-{i},gold\r\n".encode() for i in range(5)
)


@pytest.mark.parametrize(
    ("step", "skip"),
    [
        ("import_insert_births", 0),
        ("import_claim_keys", 0),
        ("import_claim_keys", 1),
        ("import_activate_births", 0),
    ],
)
async def test_recovery_cutting_into_bulk_births_leaves_every_row_whole_and_counted(
    api: Api, tmp_path: Path, step: str, skip: int
) -> None:
    await define(api)
    run = await prepared_run(api, tmp_path, FIVE)
    lifecycle = api.app.state.runtime.get().services.lifecycle

    done, _ = await interleave(
        run, step, lambda: lifecycle.recover(TENANT, older_than_seconds=0), skip=skip
    )

    counts = done.counts
    assert (counts.read, counts.written, counts.unchanged, counts.refused) == (5, 5, 0, 0)
    for i in range(5):
        person = (await api.ok(BY_USER, {"u": f"p{i}@example.com"}))["profileByUserId"]
        assert person["properties"]["plan"] == "gold"
        assert sorted(x["value"] for x in person["identities"]) == [
            f"p{i}@example.com",
            f"v-{i}",
            f"w-{i}",
        ]
    await assert_invariants(api.db, TENANT)
    before = await profiles_snapshot(api)
    again = await run_import(api, FIVE)
    assert (again["written"], again["unchanged"], again["refused"]) == (0, 5, 0), again
    assert await profiles_snapshot(api) == before


async def test_a_row_refused_after_its_bulk_birth_counts_as_written_and_says_so(
    api: Api, tmp_path: Path
) -> None:
    await define(api)
    run = await prepared_run(api, tmp_path, b"userId,identity.WEB\r\nkim@example.com,v-1\r\n")

    # The birth holds kim's userId key; before it claims v-1, v-1 is identified as someone
    # else: the row cannot end on one profile, and its birth stays.
    done, _ = await interleave(
        run,
        "import_claim_keys",
        lambda: api.ok(IDENTIFY, identify_input("WEB", "v-1", "other@example.com")),
    )

    counts = done.counts
    assert (counts.read, counts.written, counts.unchanged, counts.refused) == (1, 1, 0, 1)
    kim = (await api.ok(BY_USER, {"u": "kim@example.com"}))["profileByUserId"]
    assert kim is not None
    [refusal] = (await finished(api, done.id))["refusedRows"]
    assert refusal["code"] == "MERGE_CONFLICT"
    assert "a change made meanwhile" in refusal["message"]
    await assert_invariants(api.db, TENANT)
