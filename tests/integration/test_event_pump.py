"""The dev stack's event pump delivers SQS messages to the app's own handler with Lambda's semantics:
success deletes, failure redelivers, and a message that keeps failing ends in the dead-letter queue."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from chalicelib import deps
from devstack import resources
from devstack.events import EventPump
from tests.conftest import stage_environment
from tests.integration.conftest import BUCKET
from tests.support.cognito import REGION


def s3_event(key: str) -> str:
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Post",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}},
    }
    return json.dumps({"Records": [record]})


class RecordingWorker:
    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}

    def ingest(self, key: str) -> str:
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if "poison" in key:
            raise RuntimeError("this upload always fails")
        return "ready"


def wait_until(condition: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_failures_are_redelivered_then_dead_lettered_and_successes_deleted(
    aws: boto3.session.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import app

    sqs = aws.client("sqs")
    queue_name = stage_environment()["UPLOADS_QUEUE_NAME"]
    queue_url, dlq_url = resources.create_queues(sqs, queue_name, f"{queue_name}-dlq", max_receive_count=2)
    worker = RecordingWorker()
    monkeypatch.setattr(deps, "upload_processor", lambda: worker)
    for key in ("uploads/u/good", "uploads/u/poison"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=s3_event(key))

    pump = EventPump(app, sqs, region=REGION, schedule_interval_seconds=3600, retry_delay_seconds=0)
    pump.start()
    try:
        dead: list[dict[str, Any]] = []

        def poison_dead_lettered() -> bool:
            dead.extend(sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", []))
            return bool(dead)

        wait_until(poison_dead_lettered)
    finally:
        pump.stop()

    assert worker.attempts == {"uploads/u/good": 1, "uploads/u/poison": 2}
    assert [json.loads(message["Body"])["Records"][0]["s3"]["object"]["key"] for message in dead] == [
        "uploads/u/poison"
    ]
    remaining = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert remaining == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
