"""The profile routes end to end through Chalice's gateway (with real token checks) on in-process moto."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

from chalicelib import deps
from tests.integration.conftest import User

ISO_UTC = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


def body(response: Any) -> Any:
    return json.loads(response.body)


def test_health_is_public(api: Client) -> None:
    response = api.http.get("/health")
    assert (response.status_code, body(response)) == (200, {"status": "ok"})


def test_create_then_read_own_profile(alice: User) -> None:
    created = alice.call("POST", "/users", {"display_name": " Alice ", "bio": "Takes photos of cats."})
    assert created.status_code == 201
    profile = body(created)
    assert profile["user_id"] == alice.sub
    assert profile["display_name"] == "Alice"
    assert profile["bio"] == "Takes photos of cats."
    assert profile["usage"] == {"photos": 0, "bytes": 0, "pending": 0, "trash": {"photos": 0, "bytes": 0}}
    assert profile["quota"] == {"photos": 10_000, "bytes": 10 * 1024**3, "pending": 100}
    assert profile["created_at"] == profile["updated_at"]
    import re

    assert re.match(ISO_UTC, profile["created_at"])

    me = alice.call("GET", "/users/me")
    assert (me.status_code, body(me)) == (200, profile)


def test_creating_a_second_profile_is_409_and_keeps_the_first(alice: User) -> None:
    alice.call("POST", "/users", {"display_name": "Alice"})
    again = alice.call("POST", "/users", {"display_name": "Mallory"})
    assert again.status_code == 409
    assert body(again)["Code"] == "ConflictError"
    assert body(alice.call("GET", "/users/me"))["display_name"] == "Alice"


def test_own_profile_before_creating_it_is_404_with_a_hint(alice: User) -> None:
    response = alice.call("GET", "/users/me")
    assert response.status_code == 404
    assert "POST /users" in body(response)["Message"]


def test_patch_updates_only_the_sent_fields(alice: User) -> None:
    alice.call("POST", "/users", {"display_name": "Alice", "bio": "old"})
    patched = alice.call("PATCH", "/users/me", {"bio": "new"})
    assert patched.status_code == 200
    assert (body(patched)["display_name"], body(patched)["bio"]) == ("Alice", "new")
    assert body(patched)["updated_at"] >= body(patched)["created_at"]
    cleared = alice.call("PATCH", "/users/me", {"bio": None})
    assert body(cleared)["bio"] is None
    assert body(alice.call("GET", "/users/me"))["bio"] is None


def test_patch_without_a_profile_is_404(alice: User) -> None:
    assert alice.call("PATCH", "/users/me", {"display_name": "x"}).status_code == 404


def test_public_profile_shows_only_public_fields(alice: User, bob: User) -> None:
    alice.call("POST", "/users", {"display_name": "Alice", "bio": "hi"})
    response = bob.call("GET", f"/users/{alice.sub}")
    assert response.status_code == 200
    assert set(body(response)) == {"user_id", "display_name", "bio", "created_at"}
    assert body(response)["display_name"] == "Alice"


@pytest.mark.parametrize("user_id", ["nobody", "x" * 2000, "USER%23a11ce", "%F0%9F%90%88"])
def test_unknown_or_impossible_user_ids_are_404(bob: User, user_id: str) -> None:
    response = bob.call("GET", f"/users/{user_id}")
    assert response.status_code == 404
    assert body(response)["Code"] == "NotFoundError"


def test_users_me_is_not_mistaken_for_a_user_id(alice: User) -> None:
    alice.call("POST", "/users", {"display_name": "Alice"})
    assert "usage" in body(alice.call("GET", "/users/me"))


def test_nobody_can_act_for_another_user(alice: User, bob: User) -> None:
    alice.call("POST", "/users", {"display_name": "Alice"})
    bob.call("POST", "/users", {"display_name": "Bob"})
    smuggled = bob.call("PATCH", "/users/me", {"display_name": "Hacked", "user_id": alice.sub})
    assert smuggled.status_code == 400
    assert "user_id" in body(smuggled)["Message"]
    assert bob.call("PATCH", "/users/me", {"display_name": "Bob 2"}).status_code == 200
    assert body(alice.call("GET", "/users/me"))["display_name"] == "Alice"


@pytest.mark.parametrize(
    ("method", "path", "raw", "field"),
    [
        ("POST", "/users", b"", ""),
        ("POST", "/users", b"{", ""),
        ("POST", "/users", b"[]", ""),
        ("POST", "/users", b'"Alice"', ""),
        ("POST", "/users", b"\xff", ""),
        ("POST", "/users", b"[" * 50_000, ""),
        ("POST", "/users", b'{"display_name": 3}', "display_name"),
        ("POST", "/users", b'{"display_name": ""}', "display_name"),
        ("POST", "/users", json.dumps({"display_name": " " + "x" * 64}).encode(), "display_name"),
        ("POST", "/users", json.dumps({"display_name": "\u3164\u200b"}).encode(), "display_name"),
        ("POST", "/users", json.dumps({"display_name": "Ada\u202eecalevoL"}).encode(), "display_name"),
        ("POST", "/users", b'{"display_name": "A", "bio": "' + b"x" * 501 + b'"}', "bio"),
        ("POST", "/users", b'{"display_name": "A", "admin": true}', "admin"),
        ("PATCH", "/users/me", b"{}", ""),
        ("PATCH", "/users/me", b'{"display_name": null}', "display_name"),
    ],
    ids=[
        "empty",
        "truncated",
        "array",
        "string",
        "not-utf8",
        "deeply-nested",
        "name-not-string",
        "name-empty",
        "name-65-characters-with-a-leading-space",
        "name-only-invisible",
        "name-with-rlo",
        "bio-too-long",
        "unknown-field",
        "patch-nothing",
        "patch-null-name",
    ],
)
def test_bad_bodies_are_400_naming_the_field(alice: User, method: str, path: str, raw: bytes, field: str) -> None:
    alice.call("POST", "/users", {"display_name": "Alice"})
    response = alice.call(method, path, raw=raw)
    assert response.status_code == 400, response.body
    assert body(response)["Code"] == "BadRequestError"
    if field:
        assert body(response)["Message"].startswith(f"{field}: ")


def test_names_and_bios_are_stored_nfc(alice: User) -> None:
    created = alice.call("POST", "/users", {"display_name": "Rene\u0301e", "bio": "cafe\u0301"})
    assert (body(created)["display_name"], body(created)["bio"]) == ("Ren\u00e9e", "caf\u00e9")


def test_a_non_json_content_type_is_415(alice: User) -> None:
    response = alice.call("POST", "/users", raw=b"display_name=Alice", **{"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_dynamodb_throttling_is_503_with_retry_after(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    def throttled(**kwargs: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "PutItem"
        )

    monkeypatch.setattr(deps.dynamodb(), "put_item", throttled)
    response = alice.call("POST", "/users", {"display_name": "Alice"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert body(response)["Code"] == "ServiceUnavailableError"
    monkeypatch.undo()
    assert alice.call("POST", "/users", {"display_name": "Alice"}).status_code == 201
