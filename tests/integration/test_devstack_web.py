"""The dev stack's web server (devstack/web.py) over real HTTP on 127.0.0.1: what it serves, and what it never does."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib import deps
from chalicelib.config import Settings
from devstack.web import CONTENT_TYPES, SECURITY_HEADERS, WebServer, resolve_static, serve_web, spa_config
from tests.conftest import PROJECT_DIR
from tests.support.web_limits import expected_limits

WEB_DIR = PROJECT_DIR / "web"

OUTPUTS = {
    "api_url": "http://127.0.0.1:8000",
    "aws_endpoint_url": "http://127.0.0.1:5000",
    "region": "us-east-1",
    "user_pool_id": "us-east-1_abc",
    "user_pool_client_id": "client123",
    "table_name": "ignored",
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "web"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>t</title>")
    (root / "app.js").write_text("export const x = 1;\n")
    (root / "styles.css").write_text("body{}")
    (root / "assets" / "logo.svg").write_text("<svg/>")
    (root / ".env").write_text("SECRET=1")
    (root / "notes.txt").write_text("not part of the SPA")
    (root / "leak.js").symlink_to(tmp_path / "outside.js")
    (tmp_path / "outside.js").write_text("secret outside web/")
    (tmp_path / "README.md").write_text("outside")
    return root


MAX_UPLOAD_BYTES = 5_000_000


@pytest.fixture
def server(site: Path, tmp_path: Path) -> Iterator[WebServer]:
    running = serve_web("127.0.0.1", 0, site, tmp_path / "openapi.yaml", spa_config(OUTPUTS, MAX_UPLOAD_BYTES))
    yield running
    running.shutdown()
    running.server_close()


@pytest.fixture
def real_site(tmp_path: Path) -> Iterator[WebServer]:
    running = serve_web("127.0.0.1", 0, WEB_DIR, tmp_path / "openapi.yaml", spa_config(OUTPUTS, MAX_UPLOAD_BYTES))
    yield running
    running.shutdown()
    running.server_close()


def get(server: WebServer, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)  # the path goes out exactly as written
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_index_and_assets_are_served_with_their_content_types(server: WebServer) -> None:
    status, headers, body = get(server, "/")
    assert (status, body) == (200, b"<!doctype html><title>t</title>")
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "connect-src 'self' http://127.0.0.1:5000 http://127.0.0.1:8000" in headers["content-security-policy"]
    for name, value in SECURITY_HEADERS.items():
        assert headers[name.lower()] == value, name
    expected = {
        "/app.js": "text/javascript; charset=utf-8",
        "/styles.css": "text/css; charset=utf-8",
        "/assets/logo.svg": "image/svg+xml",
        "/index.html?v=2": "text/html; charset=utf-8",
    }
    for path, content_type in expected.items():
        status, headers, _ = get(server, path)
        assert (status, headers["content-type"]) == (200, content_type), path


def test_head_sends_headers_only(server: WebServer) -> None:
    status, headers, body = get(server, "/app.js", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str(len("export const x = 1;\n"))


def test_config_json_comes_from_the_running_stack(server: WebServer) -> None:
    status, headers, body = get(server, "/config.json")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
    assert json.loads(body) == {
        "api_url": "http://127.0.0.1:8000",
        "region": "us-east-1",
        "user_pool_id": "us-east-1_abc",
        "user_pool_client_id": "client123",
        "cognito_endpoint": "http://127.0.0.1:5000",
        "environment": "local",
        # The limits the API enforces, from its own constants (the web client keeps no copies).
        "limits": expected_limits(MAX_UPLOAD_BYTES),
    }


def test_the_upload_limit_defaults_to_the_running_apis_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "TABLE_NAME": "t",
        "BUCKET_NAME": "b",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PHOTOSKY_CURSOR_SECRET": "0123456789abcdef",
        "PHOTOSKY_MAX_UPLOAD_BYTES": "1234567",
    }.items():
        monkeypatch.setenv(name, value)
    deps.reset()
    try:
        assert deps.settings().max_upload_bytes == 1234567
        assert spa_config(OUTPUTS)["limits"]["max_upload_bytes"] == 1234567
    finally:
        deps.reset()
    assert Settings.max_upload_bytes != 1234567  # so the value above cannot be the default by chance


def test_openapi_yaml_is_served_when_the_checkout_has_one(server: WebServer, tmp_path: Path) -> None:
    assert get(server, "/openapi.yaml")[0] == 404
    (tmp_path / "openapi.yaml").write_text("openapi: 3.0.3\n")
    status, headers, body = get(server, "/openapi.yaml")
    assert (status, headers["content-type"], body) == (200, "application/yaml", b"openapi: 3.0.3\n")


@pytest.mark.parametrize(
    "path",
    [
        "/../README.md",
        "/../outside.js",
        "/assets/../../README.md",
        "/%2e%2e/README.md",
        "/%2E%2E%2FREADME.md",
        "/..%2f..%2fREADME.md",
        "/assets%2f..%2f..%2fREADME.md",
        "/..\\README.md",
        "/%5c..%5cREADME.md",
        "//etc/passwd",
        "/%00index.html",
        "/index.html%00.js",
        "/%ff%fe",
    ],
)
def test_no_path_leaves_web_root(server: WebServer, path: str) -> None:
    status, _, body = get(server, path)
    assert status == 404, (path, body)
    assert b"outside" not in body


@pytest.mark.parametrize("path", ["/assets", "/assets/", "/.env", "/leak.js", "/notes.txt", "/missing.js"])
def test_directories_dotfiles_symlinks_out_and_other_files_are_not_served(server: WebServer, path: str) -> None:
    status, headers, body = get(server, path)
    assert status == 404, (path, body)
    assert headers["content-type"].startswith("text/plain")
    assert b"SECRET" not in body
    assert b"secret" not in body


def test_only_get_and_head(server: WebServer) -> None:
    assert get(server, "/index.html", method="POST")[0] == 501
    assert get(server, "/index.html", method="DELETE")[0] == 501


def test_resolve_static_maps_root_to_index(site: Path) -> None:
    assert resolve_static(site.resolve(), "/") == (site / "index.html").resolve()
    assert resolve_static(site.resolve(), "/assets/logo.svg#frag") == (site / "assets" / "logo.svg").resolve()
    assert resolve_static(site.resolve(), "/assets") is None


def test_every_file_of_the_web_client_is_served_with_its_type(real_site: WebServer) -> None:
    """The client is ES modules in web/ and its subfolders (views/): a file the server refused would break the app
    in the browser with nothing but a console error."""
    files = sorted(path for path in WEB_DIR.rglob("*") if path.is_file() and not path.name.startswith("."))
    assert any(path.parent.name == "views" for path in files)
    for path in files:
        url = "/" + path.relative_to(WEB_DIR).as_posix()
        status, headers, body = get(real_site, url)
        assert (status, headers["content-type"]) == (200, CONTENT_TYPES[path.suffix]), url
        assert body == path.read_bytes(), url
