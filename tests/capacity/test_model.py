"""The access model: it covers every route and handler, understands every partition the app touches, and refuses
what it does not understand."""

from __future__ import annotations

import dataclasses
import inspect
import types
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from chalicelib import keys
from devstack import resources
from ops.capacity import workload
from ops.capacity.model import AccessModel, EachShard, ModelError, ShardOf, Symbol, build_model, sk_grows
from ops.capacity.simulate import simulated_ops
from ops.capacity.trace import Access, Recorder, Traces

REGION = "us-east-1"


def _routes_and_handlers() -> set[workload.Route | str]:
    from app import app

    found: set[workload.Route | str] = {
        workload.Route(method, path) for path, methods in app.routes.items() for method in methods
    }
    found |= {config.name for config in app.websocket_handlers.values()}
    found |= {source.name for source in app.event_sources}
    return found


def test_every_route_and_handler_is_in_the_workload_or_excluded_with_a_reason() -> None:
    everything = _routes_and_handlers()
    covered = {exercised for exercises in workload.COVERS.values() for exercised in exercises}
    assert everything - covered - set(workload.EXCLUDED) == set()
    assert set(workload.EXCLUDED) - everything == set(), "an exclusion names a route or handler app.py no longer has"
    assert covered - everything == set(), "the workload names a route or handler app.py does not have"
    assert all(reason for reason in workload.EXCLUDED.values())


def test_every_covering_operation_is_traced_and_every_simulated_one_modelled(access_model: AccessModel) -> None:
    assert set(workload.COVERS) <= set(access_model.ops)
    assert set(workload.rates()) <= set(simulated_ops(access_model))
    assert workload.API_MIX["photos.list"] > 0
    assert sum(workload.API_MIX.values()) == pytest.approx(1)


def test_an_unknown_partition_key_fails_model_building(traces: Traces) -> None:
    trace = traces.traces["photos.get"]
    mystery = dataclasses.replace(
        trace, accesses=[*trace.accesses, Access("write", "table", "MYSTERY#1", 1, "PutItem")]
    )
    with pytest.raises(ModelError, match="MYSTERY#1"):
        build_model(dataclasses.replace(traces, traces={**traces.traces, "photos.get": mystery}))


def test_a_user_the_operation_never_mentioned_fails_model_building(traces: Traces) -> None:
    """A partition of an id the operation did not involve cannot be explained by its ids: it is not guessed at."""
    trace = traces.traces["photos.get"]
    stranger = keys.user_pk("5742a9e7-0000-4000-8000-00000000dead")
    odd = dataclasses.replace(trace, accesses=[*trace.accesses, Access("read", "table", stranger, 1, "GetItem")])
    with pytest.raises(ModelError, match="5742a9e7"):
        build_model(dataclasses.replace(traces, traces={**traces.traces, "photos.get": odd}))


def test_a_new_sharded_key_in_keys_py_is_recognised_without_changing_the_model(traces: Traces) -> None:
    fake = types.ModuleType("fake_keys")
    extra = (
        "\nWIDGET_SHARDS = 8\n"
        "def widget_shard(photo_id: str) -> int:\n    return zlib.crc32(photo_id.encode()) % WIDGET_SHARDS\n"
        "def widget_index_pk(shard: int) -> str:\n    return f'WIDGET#{shard:02d}'\n"
    )
    exec(inspect.getsource(keys) + extra, fake.__dict__)  # noqa: S102 - keys.py's own source plus one sharded key
    trace = traces.traces["upload.start"]
    photo = next(value for value, role in trace.involved(traces.known).items() if role == "photo")
    widget = fake.widget_index_pk(fake.widget_shard(photo))
    with_widget = dataclasses.replace(trace, accesses=[*trace.accesses, Access("write", "GSI1", widget, 1, "PutItem")])
    model = build_model(dataclasses.replace(traces, traces={"upload.start": with_widget}), keys=fake)
    added = [t for t in model.ops["upload.start"].accesses if t.pk.builder == "widget_index_pk"]
    assert [t.pk.args for t in added] == [(ShardOf("widget", Symbol("photo", 0)),)]
    assert added[0].pattern == "WIDGET#<widget_shard>"


def test_the_sweep_queries_every_shard_of_each_swept_index(access_model: AccessModel) -> None:
    swept = {t.pk.args for t in access_model.ops["jobs.sweep"].accesses}
    assert {(EachShard("pending"),), (EachShard("purge"),), (EachShard("cleanup"),)} <= swept


def test_an_upload_enters_the_pending_index_and_the_worker_takes_it_out(access_model: AccessModel) -> None:
    def pending_writes(op: str) -> list[str]:
        return [t.pattern for t in access_model.ops[op].accesses if t.kind == "write" and t.target == "GSI1"]

    assert "PENDING#<pending_shard>" in pending_writes("upload.start")
    assert "PENDING#<pending_shard>" in pending_writes("upload.worker")


def test_time_ordered_sort_keys_are_flagged_and_old_ids_are_not() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert sk_grows("2026-12-02T12:15:00.000Z#user#01J", now)  # an upload deadline
    assert not sk_grows("PHOTO#01HZZZZZZZZZZZZZZZZZZZZZZZ", now)  # an old photo made a favourite
    assert not sk_grows("2019-07-01T10:00:00.000Z#01J", now)  # taken_at, years ago
    assert not sk_grows("PROFILE", now)
    assert sk_grows(f"RATE#{int((now - timedelta(seconds=30)).timestamp())}", now)


# --- the recorder's arithmetic, on a bare table ---------------------------------------------------------------------


class _Nothing:
    class meta:
        class events:
            @staticmethod
            def register(*_: object) -> None:
                return None


@pytest.fixture
def recorded() -> tuple[object, Recorder]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        resources.create_table(client, "t")
        recorder = Recorder("t", boto3.client("dynamodb", region_name=REGION), lambda: datetime.now(UTC))
        recorder.attach(client, _Nothing())
        yield client, recorder


def _item(pk: str, gsi1: str | None) -> dict[str, dict[str, str]]:
    item = {"PK": {"S": pk}, "SK": {"S": "X"}}
    if gsi1:
        item |= {"GSI1PK": {"S": gsi1}, "GSI1SK": {"S": "1"}}
    return item


def test_a_key_change_in_an_index_is_a_delete_in_the_old_partition_and_a_put_in_the_new(recorded: tuple) -> None:
    client, recorder = recorded
    with recorder.recording("put", "u") as put:
        client.put_item(TableName="t", Item=_item("P", "OLD"))
    with recorder.recording("move", "u") as move:
        client.put_item(TableName="t", Item=_item("P", "NEW"))
    with recorder.recording("leave", "u") as leave:
        client.put_item(TableName="t", Item=_item("P", None))
    assert [(a.target, a.pk) for a in put.accesses] == [("table", "P"), ("GSI1", "OLD")]
    assert [(a.target, a.pk) for a in move.accesses] == [("table", "P"), ("GSI1", "OLD"), ("GSI1", "NEW")]
    assert [(a.target, a.pk) for a in leave.accesses] == [("table", "P"), ("GSI1", "NEW")]


def test_a_refused_conditional_write_costs_its_units_but_writes_no_index(recorded: tuple) -> None:
    client, recorder = recorded
    client.put_item(TableName="t", Item=_item("P", "OLD"))
    with (
        recorder.recording("refused", "u") as refused,
        pytest.raises(client.exceptions.ConditionalCheckFailedException),
    ):
        client.put_item(TableName="t", Item=_item("P", "NEW"), ConditionExpression="attribute_not_exists(PK)")
    assert [(a.kind, a.target, a.pk, a.units) for a in refused.accesses] == [("write", "table", "P", 1)]


def test_a_filtered_query_is_charged_for_what_it_scanned(recorded: tuple) -> None:
    client, recorder = recorded
    for n in range(30):
        client.put_item(TableName="t", Item={"PK": {"S": "Q"}, "SK": {"S": f"{n:03d}"}, "blob": {"S": "x" * 1000}})
    with recorder.recording("query", "u") as query:
        client.query(
            TableName="t",
            KeyConditionExpression="PK = :pk",
            FilterExpression="SK = :one",
            ExpressionAttributeValues={":pk": {"S": "Q"}, ":one": {"S": "007"}},
        )
    (access,) = query.accesses
    assert (access.pk, access.query_items) == ("Q", 30)
    assert access.units == 4.0  # 30 items of ~1 KB, eventually consistent: ceil(30 KB / 4 KB) / 2


def test_every_traced_operation_made_requests(traces: Traces) -> None:
    assert [op for op, trace in traces.traces.items() if not trace.accesses] == []
