"""The dev stack's web client side over real HTTP: the web server, its runtime config, and CORS as a browser meets it
(the API, the emulated Cognito and S3 all answer the web client's origin). The browser itself: tests/browser/."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from infra.publish_web import api_max_upload_bytes
from tests.e2e.conftest import HOST, Spawn, free_port
from tests.support.web_limits import expected_limits

pytestmark = pytest.mark.e2e

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def request(url: str, method: str = "GET", headers: dict[str, str] | None = None, data: bytes | None = None) -> Any:
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with _opener.open(req, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_outputs_name_the_web_client_and_its_api_description(devstack: dict[str, Any]) -> None:
    web_url = devstack["web_url"]
    assert web_url.startswith(f"http://{HOST}:")
    assert devstack["openapi_url"] == f"{web_url}/openapi.yaml"
    status, headers, body = request(web_url + "/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert b'<script type="module" src="app.js">' in body
    for module in ("/app.js", "/dom.js", "/views/gallery.js"):
        status, headers, _ = request(web_url + module)
        assert (status, headers["content-type"]) == (200, "text/javascript; charset=utf-8"), module


def test_config_json_points_the_spa_at_this_stack(devstack: dict[str, Any]) -> None:
    status, _, body = request(devstack["web_url"] + "/config.json")
    assert status == 200
    assert json.loads(body) == {
        "api_url": devstack["api_url"],
        "region": devstack["region"],
        "user_pool_id": devstack["user_pool_id"],
        "user_pool_client_id": devstack["user_pool_client_id"],
        "cognito_endpoint": devstack["aws_endpoint_url"],
        "environment": "local",
        # Live status: the stack's WebSocket endpoint (the SPA polls without it).
        "ws_url": devstack["ws_url"],
        # What this stack's API enforces: the local stage's upload limit, and the API's own constants.
        "limits": expected_limits(api_max_upload_bytes("local")),
    }


def test_openapi_yaml_is_the_checkouts_or_404(devstack: dict[str, Any]) -> None:
    status, headers, body = request(devstack["openapi_url"])
    spec = Path(__file__).resolve().parents[2] / "openapi.yaml"
    if spec.exists():
        assert (status, headers["content-type"], body) == (200, "application/yaml", spec.read_bytes())
    else:
        assert status == 404


def test_the_api_answers_the_web_clients_origin_only(devstack: dict[str, Any]) -> None:
    api, origin = devstack["api_url"], devstack["web_url"]
    preflight = {
        "Origin": origin,
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization",
    }
    status, headers, body = request(api + "/photos/abc", method="OPTIONS", headers=preflight)
    assert (status, body) == (204, b"")
    assert headers["access-control-allow-origin"] == origin
    assert "PATCH" in headers["access-control-allow-methods"]
    assert "Authorization" in headers["access-control-allow-headers"]

    # A 401 from the verifying gateway must reach the SPA's code (to send the user back to sign-in).
    status, headers, body = request(api + "/users/me", headers={"Origin": origin})
    assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    assert headers["access-control-allow-origin"] == origin

    stranger = f"http://{HOST}:1"
    status, headers, _ = request(api + "/users/me", method="OPTIONS", headers={**preflight, "Origin": stranger})
    assert status == 403
    assert "access-control-allow-origin" not in headers
    status, headers, _ = request(api + "/users/me", headers={"Origin": stranger})
    assert status == 401
    assert "access-control-allow-origin" not in headers


def test_emulated_cognito_and_s3_answer_the_web_clients_origin(devstack: dict[str, Any]) -> None:
    """The SPA calls Cognito and POSTs to S3 straight from the browser: moto must allow it (checked for real in
    tests/browser; here the headers the browser relies on)."""
    aws, origin = devstack["aws_endpoint_url"], devstack["web_url"]
    status, headers, _ = request(
        aws + "/",
        method="OPTIONS",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-amz-target",
        },
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == origin
    assert "x-amz-target" in headers["access-control-allow-headers"].lower()

    body = {"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": devstack["user_pool_client_id"]}
    body["AuthParameters"] = {"USERNAME": "demo", "PASSWORD": devstack["demo_user"]["password"]}
    status, headers, reply = request(
        aws + "/",
        method="POST",
        headers={
            "Origin": origin,
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
        },
        data=json.dumps(body).encode(),
    )
    assert status == 200, reply
    assert headers["access-control-allow-origin"] == origin
    assert json.loads(reply)["AuthenticationResult"]["IdToken"]

    status, headers, _ = request(
        f"{aws}/{devstack['bucket_name']}",
        method="OPTIONS",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == origin
    assert "POST" in headers["access-control-allow-methods"]


def _second_stack(spawn: Spawn, tmp_path: Path, **ports: int) -> tuple[int, str]:
    outputs = tmp_path / "second-outputs.json"
    stack = spawn(outputs=outputs, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **ports)
    try:
        _, stderr = stack.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        stack.kill()
        stack.communicate()
        pytest.fail(f"a dev stack with ports {ports} did not exit within 15 s")
    assert not outputs.exists()
    return stack.returncode, stderr.decode(errors="replace")


def test_a_busy_web_port_is_a_clear_startup_error(spawn: Spawn, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((HOST, 0))
        holder.listen()
        busy = holder.getsockname()[1]
        code, message = _second_stack(spawn, tmp_path, api_port=free_port(), aws_port=free_port(), web_port=busy)
    assert code == 2, message
    assert f"port {busy}" in message
    assert "PHOTOSKY_WEB_PORT" in message
    assert "Traceback" not in message


def test_the_web_port_must_differ_from_the_others(spawn: Spawn, tmp_path: Path) -> None:
    port = free_port()
    code, message = _second_stack(spawn, tmp_path, api_port=port, aws_port=free_port(), web_port=port)
    assert code == 2, message
    assert "must all differ" in message
