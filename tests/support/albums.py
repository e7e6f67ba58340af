"""Albums through the API, for the suites that need one set up: create, fill, share, link. Each asserts the call
worked, so a test's set-up never fails silently."""

from __future__ import annotations

import json
from typing import Any

from chalice.test import Client

from tests.integration.conftest import User


def _body(response: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(response.body) if response.body else {}
    return parsed


def create_album(user: User, title: str = "Holiday", **fields: Any) -> dict[str, Any]:
    response = user.call("POST", "/albums", {"title": title, **fields})
    assert response.status_code == 201, response.body
    return _body(response)


def add_photos(user: User, album_id: str, *photo_ids: str) -> list[dict[str, Any]]:
    response = user.call("POST", f"/albums/{album_id}/photos", {"photo_ids": list(photo_ids)})
    assert response.status_code == 200, response.body
    results: list[dict[str, Any]] = _body(response)["results"]
    return results


def share(owner: User, album_id: str, member: User, role: str = "viewer") -> dict[str, Any]:
    response = owner.call("POST", f"/albums/{album_id}/members", {"username": member.username, "role": role})
    assert response.status_code == 201, response.body
    return _body(response)


def create_link(owner: User, album_id: str, **fields: Any) -> dict[str, Any]:
    """A share link, with its token (shown only in this response)."""
    response = owner.call("POST", f"/albums/{album_id}/links", fields)
    assert response.status_code == 201, response.body
    return _body(response)


def public(api: Client, method: str, path: str, body: Any = None, *, raw: bytes | None = None, **headers: str) -> Any:
    """A request with no Authorization header, as a visitor's browser sends it."""
    payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    sent = {"Content-Type": "application/json", **headers} if payload else dict(headers)
    return api.http.request(method, path, headers=sent, body=payload)


def unlock(api: Client, token: str, password: str) -> str:
    response = public(api, "POST", f"/public/albums/{token}/unlock", {"password": password})
    assert response.status_code == 200, response.body
    return str(_body(response)["access_token"])


def album_photo_ids(user: User, album_id: str) -> list[str]:
    response = user.call("GET", f"/albums/{album_id}/photos?limit=100")
    assert response.status_code == 200, response.body
    return [photo["photo_id"] for photo in _body(response)["items"]]
