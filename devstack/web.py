"""The dev stack's web server: the SPA in web/ as static files, its runtime `/config.json`, and `/openapi.yaml`.

In AWS the same files sit in the SPA bucket behind CloudFront with a `config.json` written at publish time
(`python -m infra.publish_web`); here `/config.json` is generated from the running stack. Only files inside web/
(its subfolders included, e.g. web/views/) are served: no directory listings, no dotfiles, nothing reached through
`..`, symlinks or encoded separators.

This module is also the one definition of what the deployed SPA gets: `client_limits` (config.json's `limits`,
written by infra.publish_web too) and `content_security_policy` / `SECURITY_HEADERS` (which the CloudFront
response headers policy in infra/resources.yaml must match; tests/infra/test_resources_template.py checks it).
"""

from __future__ import annotations

import json
import logging
import posixpath
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from chalicelib.albums import models as albums
from chalicelib.config import Settings
from chalicelib.photos.models import (
    ALLOWED_CONTENT_TYPES,
    BATCH_PHOTOS_MAX,
    DESCRIPTION_MAX,
    FILENAME_MAX,
    TAG_MAX,
    TAGS_MAX,
    TITLE_MAX,
)
from chalicelib.users.models import BIO_MAX, DISPLAY_NAME_MAX

log = logging.getLogger(__name__)

# Anything else is not part of the SPA and is not served (a stray editor backup, a README, ...).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
}
OPENAPI_CONTENT_TYPE = "application/yaml"
# Sent with every response here; CloudFront's response headers policy sends the same (plus HSTS, over https).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def client_limits(max_upload_bytes: int, trash_days: int = Settings.trash_days) -> dict[str, Any]:
    """The limits the API enforces, read from its own constants, so the SPA checks before sending, never a copy;
    `max_upload_bytes` and `trash_days` are the stage's settings (PHOTOSKY_MAX_UPLOAD_BYTES, PHOTOSKY_TRASH_DAYS)."""
    return {
        "max_upload_bytes": max_upload_bytes,
        "content_types": sorted(ALLOWED_CONTENT_TYPES),
        "filename_max": FILENAME_MAX,
        "title_max": TITLE_MAX,
        "description_max": DESCRIPTION_MAX,
        "tag_max": TAG_MAX,
        "tags_max": TAGS_MAX,
        "display_name_max": DISPLAY_NAME_MAX,
        "bio_max": BIO_MAX,
        "album_title_max": albums.TITLE_MAX,
        "album_description_max": albums.DESCRIPTION_MAX,
        "album_photos_per_call": albums.PHOTOS_PER_CALL,
        "album_members_max": albums.MEMBERS_MAX,
        "link_password_min": albums.PASSWORD_MIN,
        "link_password_max": albums.PASSWORD_MAX,
        "batch_photos": BATCH_PHOTOS_MAX,
        "trash_days": trash_days,
    }


def spa_config(
    outputs: Mapping[str, Any], max_upload_bytes: int | None = None, trash_days: int | None = None
) -> dict[str, Any]:
    """What the SPA needs to find the API and Cognito, and the API's limits; the keys `infra.publish_web` writes.

    Without `max_upload_bytes`, both settings are the running API's (the stack has put the stage's variables in the
    environment before it serves the web client); `trash_days` otherwise defaults to the API's default.
    """
    if max_upload_bytes is None:
        from chalicelib import deps

        settings = deps.settings()
        max_upload_bytes = settings.max_upload_bytes
        if trash_days is None:
            trash_days = settings.trash_days
    if trash_days is None:
        trash_days = Settings.trash_days
    config = {
        "api_url": outputs["api_url"],
        "region": outputs["region"],
        "user_pool_id": outputs["user_pool_id"],
        "user_pool_client_id": outputs["user_pool_client_id"],
        "cognito_endpoint": outputs["aws_endpoint_url"],
        # The emulated Cognito sends no email and accepts any confirmation code; the SPA says so on this stack.
        "environment": "local",
        "limits": client_limits(max_upload_bytes, trash_days),
    }
    if outputs.get("ws_url"):
        # Live status: the SPA connects to `<ws_url>?token=<ID token>`; without it, it polls.
        config["ws_url"] = outputs["ws_url"]
    return config


def content_security_policy(
    *, api: str, cognito: str, storage: Iterable[str], media: Iterable[str] = (), realtime: Iterable[str] = ()
) -> str:
    """The SPA's policy, here and in AWS: code and styles from its own origin only; it calls the API and Cognito
    and POSTs uploads to S3 (`storage`: the presigned URLs' origins), opens the live status WebSocket (`realtime`:
    its ws:// or wss:// origin, which 'self' never covers), and shows images from S3, from the media
    endpoint (`media`: in AWS the SPA's own distribution, so 'self' covers it) and from its own blob:/data: URLs.
    The SPA only ever puts media URLs in <img src> and <a href>, never fetches them, so they need no connect-src.
    No plugins, no <base>, no framing, no form posts (every form is handled in script)."""
    storage = set(storage)
    connect = " ".join(["'self'", *sorted({api, cognito, *storage, *realtime})])
    images = " ".join(["'self'", "blob:", "data:", *sorted(storage | (set(media) - {"'self'"}))])
    return (
        f"default-src 'self'; script-src 'self'; style-src 'self'; connect-src {connect}; img-src {images}; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    )


def origin_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def dev_content_security_policy(config: Mapping[str, Any], media_url: str | None = None) -> str:
    # The emulated AWS serves Cognito and S3 (presigned URLs included) on one endpoint. The media endpoint is an
    # origin of its own here (in AWS it is the SPA's distribution, 'self').
    endpoint = config["cognito_endpoint"]
    media = [origin_of(media_url)] if media_url else []
    realtime = [origin_of(config["ws_url"])] if config.get("ws_url") else []
    return content_security_policy(
        api=config["api_url"], cognito=endpoint, storage=[endpoint], media=media, realtime=realtime
    )


class WebServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        web_root: Path,
        openapi: Path,
        config: Mapping[str, Any],
        *,
        media_url: str | None = None,
    ) -> None:
        self.web_root = web_root.resolve()
        self.openapi = openapi
        self.config_body = json.dumps(dict(config), indent=2).encode()
        self.csp = dev_content_security_policy(config, media_url)
        super().__init__(address, _Handler)


def resolve_static(web_root: Path, url_path: str) -> Path | None:
    """The file under `web_root` a URL path names, or None if it names nothing servable there."""
    path = urllib.parse.unquote(url_path.split("?", 1)[0].split("#", 1)[0], errors="strict")
    if "\x00" in path or "\\" in path:
        return None
    normalised = posixpath.normpath(path)
    if normalised in ("/", "."):
        normalised = "/index.html"
    parts = [part for part in normalised.split("/") if part]
    if any(part.startswith(".") for part in parts):
        return None  # dotfiles, and any `..` that survived normalisation
    candidate = web_root.joinpath(*parts)
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not resolved.is_relative_to(web_root) or not resolved.is_file():
        return None  # a symlink leading out of web/, or a directory (never listed)
    if resolved.suffix.lower() not in CONTENT_TYPES:
        return None
    return resolved


class _Handler(BaseHTTPRequestHandler):
    server: WebServer
    protocol_version = "HTTP/1.1"
    server_version = "PhotoSkyDevWeb"
    sys_version = ""

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _serve(self, *, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/config.json":
            self._reply(HTTPStatus.OK, "application/json", self.server.config_body, send_body, cache="no-store")
            return
        if path == "/openapi.yaml":
            try:
                spec = self.server.openapi.read_bytes()
            except OSError:
                self._not_found(send_body, "no openapi.yaml in this checkout")
                return
            self._reply(HTTPStatus.OK, OPENAPI_CONTENT_TYPE, spec, send_body)
            return
        try:
            file = resolve_static(self.server.web_root, path)
        except UnicodeDecodeError:
            file = None
        if file is None:
            self._not_found(send_body, "not found")
            return
        self._reply(HTTPStatus.OK, CONTENT_TYPES[file.suffix.lower()], file.read_bytes(), send_body)

    def _not_found(self, send_body: bool, message: str) -> None:
        self._reply(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", message.encode() + b"\n", send_body)

    def _reply(
        self, status: HTTPStatus, content_type: str, body: bytes, send_body: bool, cache: str = "no-cache"
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # Developers edit web/ while the stack runs: always revalidate, never serve stale code.
        self.send_header("Cache-Control", cache)
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        if content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy", self.server.csp)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def serve_web(
    host: str, port: int, web_root: Path, openapi: Path, config: Mapping[str, Any], *, media_url: str | None = None
) -> WebServer:
    """Start the web server on a daemon thread; stop it with `shutdown()` then `server_close()`. `media_url` is the
    media endpoint's, whose images the SPA's policy must allow."""
    server = WebServer((host, port), web_root, openapi, config, media_url=media_url)
    # A short poll interval: shutdown() waits for the loop to notice, and Ctrl-C should feel instant.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="web-server", daemon=True).start()
    return server
