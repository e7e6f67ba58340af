"""One JSON line per request and per worker message, with what operators need and nothing they must not see."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from chalice.test import Client
from PIL import Image

from chalicelib import deps, keys
from tests.integration.conftest import BUCKET, User
from tests.support.imaging_samples import exif


def log_lines(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


def test_each_request_is_one_line_with_who_what_status_and_latency(
    alice: User, capsys: pytest.CaptureFixture[str]
) -> None:
    alice.call("POST", "/users", {"display_name": "Alice"})
    alice.call("GET", "/photos/01JD0000000000000000000000")
    alice.call("POST", "/photos", raw=b"{not json")
    lines = [line for line in log_lines(capsys.readouterr().out) if line["type"] == "request"]

    assert [(line["method"], line["route"], line["status"]) for line in lines] == [
        ("POST", "/users", 201),
        ("GET", "/photos/{photo_id}", 404),
        ("POST", "/photos", 400),
    ]
    for line in lines:
        assert line["user_id"] == alice.sub
        assert line["request_id"]
        assert line["latency_ms"] >= 0
        assert line["time"].endswith("Z")


def test_logs_never_carry_tokens_or_presigned_urls(alice: User, capsys: pytest.CaptureFixture[str]) -> None:
    created = alice.call("POST", "/photos", {"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": 10})
    upload_fields = json.loads(created.body)["upload"]["fields"]
    alice.call("GET", "/photos")
    out = capsys.readouterr().out
    assert alice.token not in out
    assert alice.token.split(".")[1] not in out  # not even the claims segment
    for secret in ("x-amz-signature", "X-Amz-Signature", "policy", "Authorization", upload_fields["x-amz-signature"]):
        assert secret not in out


def test_each_worker_message_is_one_line_and_no_exif_reaches_the_logs(
    api: Client, alice: User, capsys: pytest.CaptureFixture[str], aws: Any
) -> None:
    buffer = io.BytesIO()
    gps = exif(gps=True, taken="2024:05:01 12:30:00")
    Image.new("RGB", (64, 48), (1, 2, 3)).save(buffer, "JPEG", exif=gps)
    data = buffer.getvalue()
    created = json.loads(
        alice.call("POST", "/photos", {"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": len(data)}).body
    )
    key = keys.upload_object(alice.sub, created["photo"]["photo_id"])
    aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body=data)
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Post",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}},
    }
    api.lambda_.invoke(
        "process_uploads",
        api.events.generate_sqs_event(message_bodies=[json.dumps({"Records": [record]})], queue_name="q"),
    )
    out = capsys.readouterr().out
    uploads = [line for line in log_lines(out) if line["type"] == "upload"]
    assert [(line["object_key"], line["outcome"]) for line in uploads] == [(key, "ready")]
    assert uploads[0]["latency_ms"] > 0
    assert set(uploads[0]) == {"time", "type", "object_key", "outcome", "latency_ms"}
    assert "GPS" not in out
    assert "2024" not in out  # the photo's EXIF date stays in the photo item, out of the logs


def test_a_failing_message_is_logged_and_still_fails_for_redelivery(
    api: Client, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Exploding:
        def ingest(self, key: str) -> str:
            raise RuntimeError("S3 went away")

    monkeypatch.setattr(deps, "upload_processor", Exploding)
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Post",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": "uploads/u/p"}},
    }
    with pytest.raises(RuntimeError):
        api.lambda_.invoke(
            "process_uploads",
            api.events.generate_sqs_event(message_bodies=[json.dumps({"Records": [record]})], queue_name="q"),
        )
    uploads = [line for line in log_lines(capsys.readouterr().out) if line["type"] == "upload"]
    assert [(line["object_key"], line["outcome"]) for line in uploads] == [("uploads/u/p", "failed: RuntimeError")]


def test_worker_warnings_reach_the_runtimes_log_although_chalice_quiets_its_app_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Chalice gives its app's logger ("photosky") level ERROR and no propagation; modules logging under that name
    # were silenced in Lambda, so a dropped SQS message left no trace. They log under their module names now.
    import logging

    from app import app
    from chalicelib.photos.events import uploaded_object_keys

    assert app.log.name == "photosky"
    with caplog.at_level(logging.WARNING):
        assert uploaded_object_keys("not json", bucket=BUCKET) == []
    assert [record.getMessage() for record in caplog.records] == ["dropping an SQS message that is not JSON"]
