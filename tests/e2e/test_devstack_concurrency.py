"""Concurrent uploads on the dev stack keep the usage counters exact, as DynamoDB would.

Found by the web client's browser test (it uploads several files at once): moto's DynamoDB lost writes under
concurrent requests until the dev stack serialised them (devstack/__main__.py, `_SerializedDynamoDB`). Without
that, several of these rounds end with a usage count that disagrees with the photos.
"""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from PIL import Image

from devstack.clients import presigned_post_body
from devstack.token import id_token, new_confirmed_user

pytestmark = pytest.mark.e2e

ROUNDS = 6
SETTLE_SECONDS = 20.0
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _send(url: str, method: str, headers: dict[str, str], data: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _opener.open(request, timeout=10) as response:
            status, content = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, content = e.code, e.read()
    try:
        return status, json.loads(content) if content else None
    except ValueError:
        return status, None


def _image(image_format: str, size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 160, 90)).save(buffer, format=image_format)
    return buffer.getvalue()


FILES = [
    ("large.jpg", "image/jpeg", _image("JPEG", (1600, 1200))),
    ("fake.jpg", "image/jpeg", b"<!doctype html><p>not an image</p>"),
    ("small.png", "image/png", _image("PNG", (900, 600))),
]


def test_concurrent_uploads_keep_usage_exact(devstack: dict[str, Any]) -> None:
    mismatches = []
    for _ in range(ROUNDS):
        token = id_token(devstack, *new_confirmed_user(devstack, "race"))

        def api(method: str, path: str, body: Any = None, token: str = token) -> tuple[int, Any]:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Authorization": token, "Content-Type": "application/json"}
            return _send(devstack["api_url"] + path, method, headers, data)

        def upload(file: tuple[str, str, bytes], api: Any = api) -> dict[str, Any]:
            name, content_type, payload = file
            status, started = api(
                "POST", "/photos", {"filename": name, "content_type": content_type, "size_bytes": len(payload)}
            )
            assert status == 201, started
            body, form_type = presigned_post_body(started["upload"]["fields"], payload, content_type, filename=name)
            status, _ = _send(started["upload"]["url"], "POST", {"Content-Type": form_type}, body)
            assert status in (200, 201, 204), status
            deadline = time.monotonic() + SETTLE_SECONDS
            while True:
                status, photo = api("GET", f"/photos/{started['photo']['photo_id']}")
                assert status == 200, photo
                if photo["status"] != "PENDING" or time.monotonic() > deadline:
                    return dict(photo)
                time.sleep(0.1)

        assert api("POST", "/users", {"display_name": "Racer"})[0] == 201
        with ThreadPoolExecutor(len(FILES)) as pool:
            photos = list(pool.map(upload, FILES))
        assert [p["status"] for p in photos] == ["READY", "REJECTED", "READY"]
        ready = [p for p in photos if p["status"] == "READY"]
        expected = {
            "photos": len(ready),
            "bytes": sum(p["size_bytes"] for p in ready),
            "pending": 0,
            "trash": {"photos": 0, "bytes": 0},
        }
        usage = api("GET", "/users/me")[1]["usage"]
        if usage != expected:
            mismatches.append((usage, expected))
    assert mismatches == []
