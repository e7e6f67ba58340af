"""openapi.yaml cannot drift from the API: same operations, same guards, same limits, and real responses fit it.

The spec is hand-written (it carries prose, links and patterns no generator would), so this test is what keeps it
true: every route in `app.py` against every operation in the spec, the request schemas against the parsers'
field lists and limits, and the body of every status a realistic session produces against the documented schema.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import boto3
import pytest
import yaml
from chalice.test import Client
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from openapi_spec_validator import validate as validate_spec
from PIL import Image
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import app as app_module
from app import app
from chalicelib import deps, errors, ids, keys, web
from chalicelib.albums import links as album_links
from chalicelib.albums import models as album_models
from chalicelib.albums import schemas as album_schemas
from chalicelib.albums.directory import USERNAME_MAX
from chalicelib.clock import iso_utc
from chalicelib.config import Settings
from chalicelib.photos import models as photo_models
from chalicelib.photos import schemas as photo_schemas
from chalicelib.users import models as user_models
from chalicelib.users import schemas as user_schemas
from chalicelib.users import service as user_service
from tests.conftest import PROJECT_DIR
from tests.integration.conftest import BUCKET, User
from tests.support import albums

SPEC_PATH = PROJECT_DIR / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head"}
SPEC_URI = "urn:photosky:openapi"


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return loaded


def schema(name: str) -> dict[str, Any]:
    found: dict[str, Any] = spec()["components"]["schemas"][name]
    return found


def parameter(node: dict[str, Any]) -> dict[str, Any]:
    """A parameter object, through its `$ref` to components/parameters if it has one."""
    if "$ref" in node:
        found: dict[str, Any] = spec()["components"]["parameters"][node["$ref"].rsplit("/", 1)[-1]]
        return found
    return node


def parameters_of(path: str, method: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(location, name) -> parameter, the path item's and the operation's together, refs resolved."""
    item = spec()["paths"][path]
    found = [parameter(p) for p in [*item.get("parameters", []), *item[method.lower()].get("parameters", [])]]
    return {(p["in"], p["name"]): p for p in found}


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec()["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method.upper(), operation


def app_routes() -> dict[tuple[str, str], Any]:
    # Preflight (OPTIONS) routes answer browsers, not API clients: they are not part of the documented API.
    return {
        (path, method): entry
        for path, methods in app.routes.items()
        for method, entry in methods.items()
        if method != "OPTIONS"
    }


# --- the document itself ------------------------------------------------------------------------------------------


def test_the_spec_is_a_valid_openapi_3_1_document() -> None:
    assert spec()["openapi"].startswith("3.1")
    validate_spec(spec())


def test_every_route_is_documented_and_every_documented_operation_exists() -> None:
    documented = {(path, method) for path, method, _ in operations()}
    assert documented == set(app_routes())


def test_path_parameters_match_the_route_templates() -> None:
    for path, item in spec()["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method in item:
            if method in HTTP_METHODS:
                declared = {name for where, name in parameters_of(path, method) if where == "path"}
                assert declared == names, f"{method.upper()} {path}"
    for (path, method), entry in app_routes().items():
        assert set(entry.view_args) == set(re.findall(r"{(\w+)}", path)), f"{method} {path}"


def test_security_matches_the_authorizers() -> None:
    default = spec()["security"]
    for (path, method), entry in app_routes().items():
        operation = spec()["paths"][path][method.lower()]
        security = operation.get("security", default)
        if entry.authorizer is None:
            assert security == [], f"{method} {path} is public in app.py but the spec asks for a token"
        else:
            assert security == [{"CognitoIdToken": []}], f"{method} {path} needs a token but the spec says not"
            assert "401" in operation["responses"], f"{method} {path} does not document 401"


# The 401s of the public operations: no ID token is involved, so they are errors of the usual shape.
PUBLIC_401 = {
    ("GET", "/public/albums/{token}"): ("PasswordRequired", "PasswordRequiredError"),
    ("POST", "/public/albums/{token}/unlock"): ("WrongPassword", "WrongPasswordError"),
}


# The 409s that may name the caller's copy of the same file: a DuplicatePhoto error (with `photo_id`), or a plain
# conflict.
DUPLICATE_409 = {("POST", "/photos"), ("POST", "/photos/{photo_id}/restore")}
DUPLICATE_OR_CONFLICT = {
    "oneOf": [{"$ref": "#/components/schemas/DuplicatePhotoError"}, {"$ref": "#/components/schemas/Error"}]
}


def test_every_error_response_uses_the_contract_shapes() -> None:
    for path, method, operation in operations():
        for status, declared in operation["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            if status == "409" and (method, path) in DUPLICATE_409:
                assert declared["content"]["application/json"]["schema"] == DUPLICATE_OR_CONFLICT, f"{method} {path}"
                continue
            public_401 = PUBLIC_401.get((method, path)) if status == "401" else None
            response = declared
            if "$ref" in declared:
                ref = declared["$ref"].rsplit("/", 1)[-1]
                expected = "Unauthorized" if status == "401" else {"503": "Unavailable"}.get(status)
                if expected:
                    assert ref == (public_401[0] if public_401 else expected), f"{method} {path} {status}"
                response = spec()["components"]["responses"][ref]
            else:  # an operation's own wording of a 404 or 409; never the statuses every operation shares
                assert status not in ("401", "503"), f"{method} {path} {status}"
            body = response["content"]["application/json"]["schema"]["$ref"]
            wanted = f"/{public_401[1]}" if public_401 else "/Unauthorized" if status == "401" else "/Error"
            assert body.endswith(wanted), f"{method} {path} {status}"


def test_the_public_operations_need_no_token_and_document_their_own_401_and_429() -> None:
    public = {(method, path) for (path, method), entry in app_routes().items() if entry.authorizer is None}
    assert public == {("GET", "/health"), *PUBLIC_401}
    for method, path in PUBLIC_401:
        operation = spec()["paths"][path][method.lower()]
        assert operation["security"] == [], f"{method} {path}"
        code = schema(PUBLIC_401[(method, path)][1])["properties"]["Code"]["const"]
        assert (401, code) in web.ERROR_STATUS.values()
    get_public = parameters_of("/public/albums/{token}", "GET")
    assert set(get_public) == {("path", "token"), ("query", "limit"), ("query", "cursor"), ("header", "X-Link-Access")}
    assert get_public[("header", "X-Link-Access")]["required"] is False
    assert "X-Link-Access" in web.ALLOWED_REQUEST_HEADERS
    # The access token unlocking hands out is what the header's pattern describes.
    access = schema("LinkAccess")["properties"]["access_token"]["pattern"]
    assert get_public[("header", "X-Link-Access")]["schema"]["pattern"] == access
    issued = album_links.AccessTokens(lambda: b"s" * 32).issue("01JD0000000000000000000000", 1_900_000_000)
    assert _ecma(access).search(issued)
    # Too many wrong passwords: 429 and when to come back, as every other 429 of a write.
    too_many = documented_response("/public/albums/{token}/unlock", "POST", 429)
    assert too_many["headers"]["Retry-After"]["required"] is True


def test_the_error_codes_are_the_ones_the_api_sends() -> None:
    assert set(schema("Error")["properties"]["Code"]["enum"]) == {code for _, code in web.ERROR_STATUS.values()}


def test_the_duplicate_photo_error_is_the_one_the_api_sends() -> None:
    duplicate = schema("DuplicatePhotoError")
    error = errors.DuplicatePhoto("01JD0000000000000000000000")
    body = json.loads(web.error_response(error).to_dict()["body"])
    assert web.error_response(error).status_code == 409
    assert set(body) == set(duplicate["properties"]) == set(duplicate["required"])
    assert duplicate["additionalProperties"] is False
    assert _validator_for(duplicate).is_valid(body), body
    # An operation that may send it says so; no other operation does.
    sending = {
        (method, path)
        for path, method, operation in operations()
        if "DuplicatePhotoError" in json.dumps(operation["responses"].get("409", {}))
    }
    assert sending == DUPLICATE_409


# --- request schemas against the parsers ------------------------------------------------------------------------


def _max_length(prop: dict[str, Any]) -> int:
    for option in prop.get("oneOf", [prop]):
        if "maxLength" in option:
            return int(option["maxLength"])
    raise AssertionError(f"no maxLength in {prop}")


def test_photo_request_fields_and_limits_match_the_parser() -> None:
    new, changes = schema("NewPhoto"), schema("PhotoChanges")
    assert tuple(new["properties"]) == photo_schemas._NEW_PHOTO_FIELDS
    assert set(changes["properties"]) == {*photo_schemas._EDITABLE_FIELDS, "version"}
    assert new["additionalProperties"] is False
    assert changes["additionalProperties"] is False
    assert _max_length(new["properties"]["filename"]) == photo_models.FILENAME_MAX
    for document in (new, changes):
        assert _max_length(document["properties"]["title"]) == photo_models.TITLE_MAX
        assert _max_length(document["properties"]["description"]) == photo_models.DESCRIPTION_MAX
    assert schema("Tags")["maxItems"] == photo_models.TAGS_MAX
    assert schema("Tag")["maxLength"] == photo_models.TAG_MAX
    allowed = photo_models.ALLOWED_CONTENT_TYPES | set(photo_models.CONTENT_TYPE_ALIASES)
    assert set(schema("ContentType")["enum"]) == allowed
    assert set(schema("Photo")["properties"]["content_type"]["enum"]) == photo_models.ALLOWED_CONTENT_TYPES
    assert new["properties"]["size_bytes"]["maximum"] == Settings.max_upload_bytes
    assert set(schema("Photo")["properties"]["status"]["enum"]) == {s.value for s in photo_models.PhotoStatus}
    assert [branch["required"] for branch in changes["anyOf"]] == [[field] for field in photo_schemas._EDITABLE_FIELDS]
    assert changes["properties"]["favorite"] == {**changes["properties"]["favorite"], "type": "boolean"}
    assert schema("Sha256")["pattern"] == photo_schemas._SHA256.pattern.replace("\\Z", "$")


@pytest.mark.parametrize(
    "value",
    ["0" * 64, "0123456789abcdef" * 4, "A" * 64, "0" * 63, "0" * 65, "g" * 64, "0" * 64 + "\n", "", None, 5],
)
def test_the_sha256_schema_agrees_with_the_api(value: Any) -> None:
    body = {**_NEW_PHOTO, "sha256": value}
    spec_accepts = _validator_for(schema("NewPhoto")).is_valid(body)
    assert spec_accepts is _api_accepts(lambda b: photo_schemas.parse_new_photo(b, max_upload_bytes=100), body)


@pytest.mark.parametrize("value", [True, False, None, "true", 1, 0])
def test_the_favorite_schema_agrees_with_the_api(value: Any) -> None:
    body = {"favorite": value, "version": 1}
    assert _validator_for(schema("PhotoChanges")).is_valid(body) is _api_accepts(
        photo_schemas.parse_photo_changes, body
    )


def test_list_parameters_match_the_parser() -> None:
    parameters = {p["name"]: p["schema"] for p in spec()["paths"]["/photos"]["get"]["parameters"]}
    assert set(parameters) == {"limit", "cursor", "tag", "favorite", "sort", "from", "to"}
    assert parameters["limit"]["maximum"] == photo_schemas.LIST_LIMIT_MAX
    assert parameters["limit"]["default"] == photo_schemas.LIST_LIMIT_DEFAULT
    assert parameters["sort"]["default"] == photo_models.ListQuery().sort
    assert schema("Day")["pattern"] == photo_schemas._DAY.pattern.replace("\\Z", "$")
    with pytest.raises(errors.Invalid):
        photo_schemas.parse_list_query({"starred": "true"})  # any parameter but these is a 400


def _query_accepted_by_the_spec(path: str, method: str, params: dict[str, str]) -> bool:
    """Whether each query parameter, as sent on the wire, fits its schema (and none is unknown)."""
    declared = {name: p["schema"] for (where, name), p in parameters_of(path, method).items() if where == "query"}
    if set(params) - set(declared):
        return False
    for name, raw in params.items():
        typed: Any = raw
        kind = declared[name].get("type")
        if kind == "boolean":
            typed = {"true": True, "false": False}.get(raw, raw)
        elif kind == "integer" and re.fullmatch(r"[0-9]+", raw):
            typed = int(raw)
        if not _validator_for(declared[name]).is_valid(typed):
            return False
    return True


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"favorite": "true"},
        {"favorite": "false"},
        {"favorite": "1"},
        {"favorite": ""},
        {"sort": "uploaded"},
        {"sort": "taken"},
        {"sort": "TAKEN"},
        {"sort": ""},
        {"sort": "taken", "favorite": "true", "limit": "5"},
        {"tag": "sky", "sort": "uploaded", "favorite": "true"},
        {"from": "2024-02-29"},
        {"from": "2023-02-29"},
        {"to": "2024-13-01"},
        {"from": "2024-2-1"},
        {"from": "2024-02-01T00:00:00Z"},
        {"from": "0001-01-01", "to": "9999-12-31"},
        {"from": "0000-01-01"},
        {"to": "2024-01-01\n"},
        {"to": "\u0662\u0660\u0662\u0664-01-01"},
        {"from": "2024-01-31", "to": "2024-01-31"},
        {"from": "2024-01-31", "to": "2024-02-01", "sort": "taken"},
        {"from": ""},
    ],
)
def test_list_query_schemas_agree_with_the_api(params: dict[str, str]) -> None:
    spec_accepts = _query_accepted_by_the_spec("/photos", "GET", params)
    assert spec_accepts is _api_accepts(photo_schemas.parse_list_query, params), params


@pytest.mark.parametrize(
    "params",
    [{"tag": "sky", "sort": "taken"}, {"from": "2024-02-01", "to": "2024-01-31"}],
    ids=["tag-taken", "from>to"],
)
def test_the_list_rules_the_spec_states_in_words_are_refused(params: dict[str, str]) -> None:
    # Each parameter fits its schema; the combination is what the descriptions rule out.
    assert _query_accepted_by_the_spec("/photos", "GET", params)
    assert not _api_accepts(photo_schemas.parse_list_query, params)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"permanent": "true"},
        {"permanent": "false"},
        {"permanent": "True"},
        {"permanent": "1"},
        {"permanent": ""},
        {"purge": "true"},
    ],
)
def test_the_permanent_parameter_agrees_with_the_api(params: dict[str, str]) -> None:
    spec_accepts = _query_accepted_by_the_spec("/photos/{photo_id}", "DELETE", params)
    assert spec_accepts is _api_accepts(photo_schemas.parse_permanent, params), params


def test_the_timeline_takes_no_query_parameters() -> None:
    assert not [key for key in parameters_of("/photos/timeline", "GET") if key[0] == "query"]
    assert _api_accepts(photo_schemas.parse_no_query, {})
    assert not _api_accepts(photo_schemas.parse_no_query, {"limit": "5"})


@pytest.mark.parametrize("path", ["/albums", "/albums/{album_id}/photos", "/public/albums/{token}", "/trash"])
def test_album_list_parameters_match_the_parser(path: str) -> None:
    query = {name: p["schema"] for (where, name), p in parameters_of(path, "GET").items() if where == "query"}
    assert set(query) == {"limit", "cursor"}  # parse_page_query refuses any other
    assert query["limit"]["minimum"] == 1
    assert query["limit"]["maximum"] == photo_schemas.LIST_LIMIT_MAX
    assert query["limit"]["default"] == photo_schemas.LIST_LIMIT_DEFAULT
    with pytest.raises(errors.Invalid):
        album_schemas.parse_page_query({"tag": "x"})
    with pytest.raises(errors.Invalid):
        photo_schemas.parse_page({"tag": "x"})  # what GET /trash parses its query with


# --- the batch -----------------------------------------------------------------------------------------------------


def _batch_branches() -> list[dict[str, Any]]:
    branches: list[dict[str, Any]] = schema("PhotoBatch")["oneOf"]
    return branches


def test_batch_request_fields_and_limits_match_the_parser() -> None:
    branches = _batch_branches()
    actions = [action for branch in branches for action in branch["properties"]["action"]["enum"]]
    assert sorted(actions) == sorted(action.value for action in photo_models.BatchAction)
    tagging = next(branch for branch in branches if "tags" in branch["properties"])
    assert set(tagging["properties"]["action"]["enum"]) == {action.value for action in photo_schemas._TAGGING_ACTIONS}
    for branch in branches:
        assert branch["additionalProperties"] is False
        assert set(branch["properties"]) <= set(photo_schemas._BATCH_FIELDS)
        assert set(branch["required"]) == set(branch["properties"])  # tags: required where allowed, else refused
    photo_ids = schema("BatchPhotoIds")
    assert (photo_ids["minItems"], photo_ids["maxItems"]) == (1, photo_models.BATCH_PHOTOS_MAX)
    assert photo_ids["uniqueItems"] is True
    assert schema("BatchResults")["properties"]["results"]["maxItems"] == photo_models.BATCH_PHOTOS_MAX


_ULID = "01JD0000000000000000000000"


@pytest.mark.parametrize(
    "body",
    [
        {"action": "trash", "photo_ids": [_ULID]},
        {"action": "delete", "photo_ids": [_ULID, "01JD0000000000000000000001"]},
        {"action": "favorite", "photo_ids": ["not-a-ulid"]},  # answered not_found, not refused
        {"action": "trash", "photo_ids": [_ULID], "tags": ["sky"]},
        {"action": "trash", "photo_ids": [_ULID], "tags": None},
        {"action": "add_tags", "photo_ids": [_ULID]},
        {"action": "add_tags", "photo_ids": [_ULID], "tags": []},
        {"action": "add_tags", "photo_ids": [_ULID], "tags": None},
        {"action": "add_tags", "photo_ids": [_ULID], "tags": ["sky", "Sky"]},
        {"action": "remove_tags", "photo_ids": [_ULID], "tags": ["sky"]},
        {"action": "add_tags", "photo_ids": [_ULID], "tags": [f"t{i}" for i in range(21)]},
        {"action": "add_tags", "photo_ids": [_ULID], "tags": ["#sky"]},
        {"action": "explode", "photo_ids": [_ULID]},
        {"action": None, "photo_ids": [_ULID]},
        {"photo_ids": [_ULID]},
        {"action": "trash"},
        {"action": "trash", "photo_ids": []},
        {"action": "trash", "photo_ids": [ids.new_ulid() for _ in range(50)]},
        {"action": "trash", "photo_ids": [ids.new_ulid() for _ in range(51)]},
        {"action": "trash", "photo_ids": [_ULID, _ULID]},
        {"action": "trash", "photo_ids": [""]},
        {"action": "trash", "photo_ids": ["x" * 64]},
        {"action": "trash", "photo_ids": ["x" * 65]},
        {"action": "trash", "photo_ids": [5]},
        {"action": "trash", "photo_ids": _ULID},
        {"action": "trash", "photo_ids": [_ULID], "owner_id": "x"},
        [],
    ],
)
def test_the_batch_schema_agrees_with_the_api(body: Any) -> None:
    assert _validator_for(schema("PhotoBatch")).is_valid(body) is _api_accepts(photo_schemas.parse_batch, body), body


def test_every_batch_status_the_service_writes_is_documented() -> None:
    source = (PROJECT_DIR / "chalicelib" / "photos" / "service.py").read_text()
    written = set(re.findall(r'BatchResult\(\s*photo_id,\s*"(\w+)"', source))
    assert {"not_found", "invalid", "conflict"} <= written  # the scan still finds them
    documented = schema("BatchResults")["properties"]["results"]["items"]["properties"]["status"]["enum"]
    assert written | {"done"} == set(documented)
    shown = photo_schemas.batch_out(
        [photo_models.BatchResult(_ULID, "done"), photo_models.BatchResult(_ULID, "conflict", "in the trash")]
    )
    assert _validator_for(schema("BatchResults")).is_valid(shown), shown


def test_photo_and_account_response_fields_are_the_ones_the_api_sends() -> None:
    now = "2030-01-01T00:00:00.000Z"
    photo = photo_models.Photo(
        photo_id=_ULID,
        owner_id="owner",
        status=photo_models.PhotoStatus.READY,
        filename="a.jpg",
        content_type="image/jpeg",
        size_bytes=1,
        created_at=now,
        updated_at=now,
        upload_expires_at=now,
        sha256="0" * 64,
    )
    shown = photo_schemas.photo_out(photo, photo_models.DownloadUrls(original="o", large="l", small="s"))
    documented = schema("Photo")
    assert set(shown) == set(documented["properties"]) == set(documented["required"])
    assert _validator_for(documented).is_valid(shown), shown
    trashed = photo_schemas.photo_out(
        dataclasses.replace(photo, trashed_at=now, purge_at=now), photo_models.DownloadUrls(None, None, None)
    )
    assert _validator_for(schema("TrashedPhoto")).is_valid(trashed), trashed
    assert not _validator_for(schema("TrashedPhoto")).is_valid(shown)  # not in the trash
    account = user_models.Account(
        profile=user_models.Profile("u", "Name", None, now, now),
        usage=user_models.Usage(photos=2, bytes=3, pending=0, trash_photos=1, trash_bytes=1),
        quota=user_models.Quota(photos=10, bytes=10, pending=10),
    )
    shown_account = user_schemas.account_out(account)
    assert set(shown_account) == set(schema("Account")["properties"])
    usage = schema("Usage")
    assert set(shown_account["usage"]) == set(usage["properties"]) == set(usage["required"])
    assert set(shown_account["usage"]["trash"]) == set(usage["properties"]["trash"]["required"])
    assert set(shown_account["quota"]) == set(schema("Quota")["properties"]) == set(schema("Quota")["required"])
    assert _validator_for(schema("Account")).is_valid(shown_account), shown_account


def test_album_request_fields_and_limits_match_the_parser() -> None:
    request_schemas = ("NewAlbum", "AlbumChanges", "PhotoIds", "NewMember", "RoleChange", "NewLink", "Unlock")
    for name in request_schemas:
        assert schema(name)["additionalProperties"] is False, name
    assert tuple(schema("NewAlbum")["properties"]) == ("title", "description")
    assert schema("NewAlbum")["required"] == ["title"]
    changes = schema("AlbumChanges")
    assert set(changes["properties"]) == {*album_schemas._EDITABLE, "version"}
    assert changes["required"] == ["version"]
    assert [branch["required"] for branch in changes["anyOf"]] == [[field] for field in album_schemas._EDITABLE]
    for document in ("NewAlbum", "AlbumChanges"):
        assert _max_length(schema(document)["properties"]["title"]) == album_models.TITLE_MAX
        assert _max_length(schema(document)["properties"]["description"]) == album_models.DESCRIPTION_MAX
    photo_ids = schema("PhotoIds")["properties"]["photo_ids"]
    assert (photo_ids["minItems"], photo_ids["maxItems"]) == (1, album_models.PHOTOS_PER_CALL)
    assert schema("PhotoIds")["required"] == ["photo_ids"]
    member = schema("NewMember")
    assert tuple(member["properties"]) == ("username", "role")
    assert member["required"] == ["username", "role"]
    assert member["properties"]["username"]["maxLength"] == USERNAME_MAX
    assert schema("RoleChange")["required"] == ["role"]
    assert schema("MemberRole")["enum"] == [role.value for role in album_models.MEMBER_ROLES]
    assert set(schema("Role")["enum"]) == {role.value for role in album_models.Role} - {album_models.Role.LINK}
    link = schema("NewLink")
    assert tuple(link["properties"]) == ("expires_at", "password", "allow_download")
    assert "required" not in link
    password = next(b for b in link["properties"]["password"]["oneOf"] if b.get("type") == "string")
    assert (password["minLength"], password["maxLength"]) == (album_models.PASSWORD_MIN, album_models.PASSWORD_MAX)
    assert str(album_models.LINK_EXPIRY_MAX_DAYS) in link["properties"]["expires_at"]["description"]
    unlock = schema("Unlock")["properties"]["password"]
    assert (unlock["minLength"], unlock["maxLength"]) == (1, album_models.PASSWORD_MAX)
    assert schema("MemberList")["properties"]["items"]["maxItems"] == album_models.MEMBERS_MAX + 1
    for results in ("AddedPhotos", "RemovedPhotos"):
        assert schema(results)["properties"]["results"]["maxItems"] == album_models.PHOTOS_PER_CALL


def test_album_response_fields_are_the_ones_the_api_sends() -> None:
    """Every key each album shaper writes is documented, and only those (responses have additionalProperties: no)."""
    now = "2030-01-01T00:00:00.000Z"
    album = album_models.Album("01JD0000000000000000000000", "owner", "T", now, now)
    link = album_models.Link("01JD0000000000000000000001", album.album_id, "h", now)
    member = album_models.Member("u", "name", None, album_models.Role.VIEWER, now)
    photo = photo_models.Photo(
        photo_id="01JD0000000000000000000002",
        owner_id="owner",
        status=photo_models.PhotoStatus.READY,
        filename="a.jpg",
        content_type="image/jpeg",
        size_bytes=1,
        created_at=now,
        updated_at=now,
        upload_expires_at=now,
    )
    urls = photo_models.DownloadUrls(original="o", large="l", small="s")
    entry = album_models.AlbumPhotoEntry(album.album_id, photo.photo_id, "owner", now)
    shapes = {
        "Album": album_schemas.album_out(album, album_models.Role.OWNER, urls),
        "AlbumPhoto": album_schemas.album_photo_out(entry, photo, urls, caller="owner"),
        "PublicPhoto": album_schemas.public_photo_out(photo, urls),
        "PublicAlbum": album_schemas.public_album_out(album, None),
        "Member": album_schemas.member_out(member),
        "Link": album_schemas.link_out(link),
        "LinkCreated": album_schemas.link_out(link, "t" * 43),
    }
    for name, shown in shapes.items():
        documented = schema(name)
        assert set(shown) == set(documented["properties"]) == set(documented["required"]), name
        assert documented["additionalProperties"] is False, name
    results = album_schemas.results_out([album_models.PhotoResult(photo.photo_id, "added")])
    assert set(results) == set(schema("AddedPhotos")["properties"])


def test_every_result_status_the_service_writes_is_documented() -> None:
    """A status missing from the enums would fail every client that validates (and the fuzzer)."""
    source = (PROJECT_DIR / "chalicelib" / "albums" / "service.py").read_text()
    written = set(re.findall(r'PhotoResult\(\s*photo_id,\s*"(\w+)"', source))
    assert {"not_ready", "not_found", "forbidden", "removed"} <= written  # the scan still finds them
    added = schema("AddedPhotos")["properties"]["results"]["items"]["properties"]["status"]["enum"]
    removed = schema("RemovedPhotos")["properties"]["results"]["items"]["properties"]["status"]["enum"]
    # add_photos also passes the repository's own outcomes through: "added" and "already".
    assert written | {"added", "already"} == set(added) | set(removed)


def test_ids_in_paths_and_bodies_have_the_apis_patterns() -> None:
    # The same pattern, but for its end: ECMA-262's `$` is Python's `\Z` (Python's `$` also matches before a final
    # newline).
    ulid = schema("Ulid")["pattern"]
    assert ulid == ids.ULID_PATTERN.pattern.replace("\\Z", "$")
    for path, method, _ in operations():
        for (where, name), declared in parameters_of(path, method).items():
            if where == "path" and name in ("album_id", "link_id"):
                assert declared["schema"] == {"$ref": "#/components/schemas/Ulid"}, f"{method} {path} {name}"
            if where == "path" and name == "token":
                assert _ecma(declared["schema"]["pattern"]).search(album_links.new_token())
    member = parameters_of("/albums/{album_id}/members/{user_id}", "PATCH")[("path", "user_id")]
    assert member["schema"]["pattern"] == user_service._USER_ID.pattern.replace("\\Z", "$")
    assert (
        schema("LinkCreated")["properties"]["token"]["pattern"]
        == parameter({"$ref": "#/components/parameters/LinkToken"})["schema"]["pattern"]
    )


@pytest.mark.parametrize(
    "value",
    [
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        ids.new_ulid(),
        "7ZZZZZZZZZZZZZZZZZZZZZZZZZ",
        "81ARZ3NDEKTSV4RRFFQ69G5FAV",  # past the 48-bit time
        "01arz3ndektsv4rrffq69g5fav",
        "01ARZ3NDEKTSV4RRFFQ69G5FAI",  # I, L, O and U are not Crockford digits
        "01ARZ3NDEKTSV4RRFFQ69G5FAL",
        "01ARZ3NDEKTSV4RRFFQ69G5FA",
        "01ARZ3NDEKTSV4RRFFQ69G5FAVV",
        " 01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "",
    ],
)
def test_the_ulid_schema_agrees_with_the_api(value: str) -> None:
    spec_accepts = _validator_for({"$ref": "#/components/schemas/Ulid"}).is_valid(value)
    assert spec_accepts is ids.is_ulid(value)
    assert _validator_for(schema("PhotoIds")).is_valid({"photo_ids": [value]}) is _api_accepts(
        album_schemas.parse_photo_ids, {"photo_ids": [value]}
    )


def test_an_id_with_a_trailing_newline_is_refused_like_the_spec_says() -> None:
    value = "01ARZ3NDEKTSV4RRFFQ69G5FAV\n"
    assert not _validator_for({"$ref": "#/components/schemas/Ulid"}).is_valid(value)
    assert not ids.is_ulid(value)


def test_profile_request_fields_and_limits_match_the_parser() -> None:
    for name in ("NewProfile", "ProfileChanges"):
        document = schema(name)
        assert tuple(document["properties"]) == user_schemas._PROFILE_FIELDS
        assert _max_length(document["properties"]["display_name"]) == user_models.DISPLAY_NAME_MAX
        assert _max_length(document["properties"]["bio"]) == user_models.BIO_MAX


@pytest.mark.parametrize(
    ("tag", "accepted"),
    [
        ("holiday", True),
        ("New York", True),
        ("a.b-c_d", True),
        ("x" * 40, True),
        ("-x", False),
        ("x-", False),
        ("a/b", False),
        ("#a", False),
        ("", False),
        ("x" * 41, False),
    ],
)
def test_the_tag_schema_agrees_with_the_api(tag: str, accepted: bool) -> None:
    assert _validator_for({"$ref": "#/components/schemas/Tag"}).is_valid(tag) is accepted
    try:
        photo_schemas.normalize_tag(tag)
        api_accepts = True
    except errors.Invalid:  # anything else is a bug, and fails the test
        api_accepts = False
    assert api_accepts is accepted


# --- request text: the spec's patterns are the API's rules -----------------------------------------------------


_NEW_PHOTO = {"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": 10}
_NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _parse_title(value: str) -> Any:
    return photo_schemas.parse_new_photo({**_NEW_PHOTO, "title": value}, max_upload_bytes=100)


def _parse_description(value: str) -> Any:
    return photo_schemas.parse_new_photo({**_NEW_PHOTO, "description": value}, max_upload_bytes=100)


def _parse_filename(value: str) -> Any:
    return photo_schemas.parse_new_photo({**_NEW_PHOTO, "filename": value}, max_upload_bytes=100)


# field -> (its schema in the spec, the API's parser for a body with that field set)
TEXT_FIELDS: dict[str, tuple[tuple[str, ...], Any]] = {
    "display_name": (
        ("NewProfile", "display_name"),
        lambda v: user_schemas.parse_new_profile({"display_name": v}),
    ),
    "bio": (("NewProfile", "bio"), lambda v: user_schemas.parse_new_profile({"display_name": "A", "bio": v})),
    "filename": (("NewPhoto", "filename"), _parse_filename),
    "title": (("NewPhoto", "title"), _parse_title),
    "description": (("NewPhoto", "description"), _parse_description),
    "edited title": (
        ("PhotoChanges", "title"),
        lambda v: photo_schemas.parse_photo_changes({"title": v, "version": 1}),
    ),
    "album title": (("NewAlbum", "title"), lambda v: album_schemas.parse_new_album({"title": v})),
    "album description": (
        ("NewAlbum", "description"),
        lambda v: album_schemas.parse_new_album({"title": "A", "description": v}),
    ),
    "edited album title": (
        ("AlbumChanges", "title"),
        lambda v: album_schemas.parse_album_changes({"title": v, "version": 1}),
    ),
    "edited album description": (
        ("AlbumChanges", "description"),
        lambda v: album_schemas.parse_album_changes({"description": v, "version": 1}),
    ),
    "link password": (
        ("NewLink", "password"),
        lambda v: album_schemas.parse_new_link({"password": v}, now=_NOW),
    ),
}


def _api_accepts(parse: Any, value: Any) -> bool:
    try:
        parse(value)
    except errors.Invalid:
        return False
    return True


def _text_rule(document: str, field: str) -> tuple[re.Pattern[str], int, int]:
    """(pattern, minLength, maxLength) of a text field's string branch, refs and allOf resolved."""
    node = schema(document)["properties"][field]
    node = next((branch for branch in node.get("oneOf", [node]) if branch.get("type") != "null"), node)
    merged: dict[str, Any] = {}
    parts = [*node.get("allOf", []), node]
    for part in (schema(p["$ref"].rsplit("/", 1)[-1]) if "$ref" in p else p for p in parts):
        merged.update({k: v for k, v in part.items() if k in ("pattern", "minLength", "maxLength")})
    return _ecma(merged["pattern"]), merged.get("minLength", 0), merged["maxLength"]


# One field per pattern and parser (bio shares description's, the edited titles the new ones'): seconds each.
@pytest.mark.parametrize(
    "name", ["display_name", "filename", "title", "description", "album title", "album description"]
)
def test_text_patterns_agree_with_the_api_on_every_bmp_character(name: str) -> None:
    """Each character alone, and inside a name, is allowed by the spec exactly when the API takes it."""
    (document, field), parse = TEXT_FIELDS[name]
    pattern, _, _ = _text_rule(document, field)
    disagreements = []
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue  # lone surrogates: refused by the API, outside the patterns (see the spec)
        for value in (chr(code), f"a{chr(code)}b"):
            if (pattern.search(value) is not None) != _api_accepts(parse, value):
                disagreements.append(f"U+{code:04X} in {value!r}")
    assert not disagreements, f"{name}: {len(disagreements)} disagreements, e.g. {disagreements[:10]}"


# Characters at the rules' edges, mixed with any others: the sweep above tries them one at a time, this mixes them.
_EDGE_CHARACTERS = (
    " \t\n\r\x0b\x1f\x85\xa0\xad\u061c\u0958\u115f\u200b\u200d\u200e\u2028\u202e\u2066\u2800\u3000\u3164\ufeffae\u0301"
)
_text_values = st.text(
    alphabet=st.sampled_from(_EDGE_CHARACTERS) | st.characters(exclude_categories=["Cs"]), max_size=70
) | st.builds(
    lambda pad, core: pad + core, st.text(alphabet=" \u3000\n", max_size=3), st.text("xé", min_size=60, max_size=66)
)


@pytest.mark.parametrize("name", TEXT_FIELDS)
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(value=_text_values)
def test_text_schemas_agree_with_the_api_on_mixed_text(name: str, value: str) -> None:
    (document, field), parse = TEXT_FIELDS[name]
    pattern, min_length, max_length = _text_rule(document, field)
    spec_accepts = min_length <= len(value) <= max_length and pattern.search(value) is not None
    outside_the_patterns = any(ord(ch) > 0xFFFF for ch in value) or "\u0958" in value  # see the spec's comment
    assume(not outside_the_patterns or spec_accepts == _api_accepts(parse, value))
    assert spec_accepts is _api_accepts(parse, value), value


EDGE_VALUES = [
    "",
    " ",
    "   ",
    "\t",
    "\n",
    "\r\n",
    "a\r\nb",
    "a\rb",
    "a\n",
    "\na",
    " a ",
    "\u3000a\u3000",
    "\u200b",
    " \u200b ",
    "a\u200b",
    "\u2066a\u2069",
    "\u202ea",
    "x" * 63,
    "x" * 64,
    " " + "x" * 63,
    " " + "x" * 64,
    "x" * 64 + "\n",
    "x" * 199 + " ",
    "x" * 200,
    " " + "x" * 200,
    "x" * 255,
    "x" * 256,
    "x" * 2000,
    "x" * 1999 + "\r\n",
    "\r\n" + "x" * 1999,
]


@pytest.mark.parametrize("name", TEXT_FIELDS)
def test_text_schemas_agree_with_the_api_at_the_edges(name: str) -> None:
    """Lengths count the characters as sent: a 65-character name starting with a space is refused by both."""
    (document, field), parse = TEXT_FIELDS[name]
    validator = _validator_for(schema(document)["properties"][field])
    for value in EDGE_VALUES:
        assert validator.is_valid(value) is _api_accepts(parse, value), f"{name}: {value!r}"


def test_the_link_password_pattern_agrees_with_the_api_on_every_bmp_character() -> None:
    (document, field), parse = TEXT_FIELDS["link password"]
    pattern, _, _ = _text_rule(document, field)
    disagreements = [
        f"U+{code:04X}"
        for code in range(0x10000)
        if not 0xD800 <= code <= 0xDFFF
        for value in (f"abc{chr(code)}", f"a{chr(code)}bc")
        if (pattern.search(value) is not None) != _api_accepts(parse, value)
    ]
    assert not disagreements, disagreements[:10]


def _parse_username(value: str) -> Any:
    return album_schemas.parse_new_member({"username": value, "role": "viewer"})


def test_the_username_pattern_agrees_with_the_api_on_every_bmp_character() -> None:
    pattern, _, _ = _text_rule("NewMember", "username")
    disagreements = [
        f"U+{code:04X} in {value!r}"
        for code in range(0x10000)
        if not 0xD800 <= code <= 0xDFFF
        for value in (chr(code), f"a{chr(code)}b")
        if (pattern.search(value) is not None) != _api_accepts(_parse_username, value)
    ]
    assert not disagreements, disagreements[:10]


@pytest.mark.parametrize(
    "value",
    ["alice", "a", "x" * 128, "x" * 129, "", "a b", " a", "a\u3000", "élise@example.com", "a\tb", "\u200b", "a\x85"],
)
def test_the_username_schema_agrees_with_the_api_at_the_edges(value: str) -> None:
    validator = _validator_for(schema("NewMember")["properties"]["username"])
    assert validator.is_valid(value) is _api_accepts(_parse_username, value)


def test_a_username_with_a_trailing_newline_is_refused_like_the_spec_says() -> None:
    assert not _validator_for(schema("NewMember")["properties"]["username"]).is_valid("alice\n")
    assert not _api_accepts(_parse_username, "alice\n")


@pytest.mark.parametrize("value", ["x", "x" * 128, "x" * 129, "", " ", "\x00", "\n", "pass word\t", "ünïcödé"])
def test_the_unlock_password_schema_agrees_with_the_api(value: str) -> None:
    validator = _validator_for(schema("Unlock"))
    assert validator.is_valid({"password": value}) is _api_accepts(album_schemas.parse_unlock, {"password": value})


def _expiry_accepted(value: Any) -> bool:
    return _api_accepts(lambda v: album_schemas.parse_new_link({"expires_at": v}, now=_NOW), value)


@pytest.mark.parametrize(
    "spelling",
    [
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dt%H:%M:%Sz",
        "%Y-%m-%dT%H:%M:%S.%fZ",
        "%Y-%m-%dT%H:%M:%S.123456789Z",
        "%Y-%m-%dT%H:%M:%S+00:00",
        "%Y-%m-%dT%H:%M:%S-00:00",
    ],
)
def test_every_rfc_3339_spelling_of_a_future_time_is_a_valid_expiry(spelling: str) -> None:
    value = (_NOW + timedelta(days=1)).strftime(spelling)
    expiry = schema("NewLink")["properties"]["expires_at"]
    assert _validator_for(expiry).is_valid(value), value
    assert _expiry_accepted(value), value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ((_NOW - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), "in the past"),
        ((_NOW + timedelta(days=album_models.LINK_EXPIRY_MAX_DAYS + 1)).strftime("%Y-%m-%dT%H:%M:%SZ"), "too far"),
    ],
)
def test_the_expiries_the_spec_describes_in_words_are_refused(value: str, why: str) -> None:
    # Valid RFC 3339 date-times that the description (not the schema) rules out.
    assert _validator_for(schema("NewLink")["properties"]["expires_at"]).is_valid(value), why
    assert not _expiry_accepted(value), why
    # RFC 3339 allows a leap second (the format checker used here does not); the description says it is refused.
    assert not _expiry_accepted("2031-06-30T23:59:60Z")


@pytest.mark.parametrize(
    "value", ["2031-01-01T00:00:00", "2031-01-01", "tomorrow", "2031-01-01T00:00:00.0000000000000000000000000Z", 5]
)
def test_an_expiry_the_spec_refuses_is_refused(value: Any) -> None:
    assert not _validator_for(schema("NewLink")["properties"]["expires_at"]).is_valid(value)
    assert not _expiry_accepted(value)


def test_null_tags_are_valid_for_the_spec_and_the_api_alike() -> None:
    for document in ("NewPhoto", "PhotoChanges"):
        assert _validator_for(schema(document)["properties"]["tags"]).is_valid(None)
    assert photo_schemas.parse_new_photo({**_NEW_PHOTO, "tags": None}, max_upload_bytes=100).tags == ()


def test_an_empty_tag_filter_is_invalid_for_the_spec_and_the_api_alike() -> None:
    parameters = {p["name"]: p["schema"] for p in spec()["paths"]["/photos"]["get"]["parameters"]}
    assert not _validator_for(parameters["tag"]).is_valid("")
    with pytest.raises(errors.Invalid) as caught:
        photo_schemas.parse_list_query({"tag": ""})
    assert caught.value.field == "tag"


# --- real responses against the documented schemas --------------------------------------------------------------


def _registry() -> Registry[Any]:
    return Registry().with_resource(SPEC_URI, Resource.from_contents(spec(), default_specification=DRAFT202012))


@cache
def _ecma(pattern: str) -> re.Pattern[str]:
    """`pattern` as JSON Schema (ECMA-262) reads it: Python's `$` would also match before a final newline."""
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith("\\$") else pattern)


def _ecma_pattern(validator: Any, pattern: str, instance: Any, _schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _ecma(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


def _validator_for(fragment: dict[str, Any]) -> Draft202012Validator:
    # Refs in the fragment are document-local ("#/components/..."): resolve them against the whole spec.
    rooted = json.loads(json.dumps(fragment).replace('"#/components/', f'"{SPEC_URI}#/components/'))
    validator: Draft202012Validator = EcmaValidator(rooted, registry=_registry(), format_checker=FormatChecker())
    return validator


def documented_response(path: str, method: str, status: int) -> dict[str, Any]:
    responses = spec()["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, which the spec does not document"
    response: dict[str, Any] = responses[str(status)]
    if "$ref" in response:
        response = spec()["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    return response


class Checked:
    """Calls the API as a user and checks every reply against the spec; remembers what it covered."""

    def __init__(self, user: User | Visitor) -> None:
        self.user = user
        self.covered: set[tuple[str, str, int]] = set()

    def call(self, method: str, template: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = self.user.call(method, path, body, **kwargs)
        documented = documented_response(template, method, response.status_code)
        content = documented.get("content")
        if content is None:
            assert not response.body, f"{method} {path}: {response.status_code} should have no body"
        else:
            reply = json.loads(response.body)
            errors = sorted(_validator_for(content["application/json"]["schema"]).iter_errors(reply), key=str)
            assert not errors, f"{method} {path} {response.status_code}: {[e.message for e in errors]}\n{reply}"
        for header, rule in documented.get("headers", {}).items():
            if rule.get("required"):
                assert header in response.headers, f"{method} {path}: no {header} header"
        self.covered.add((method, template, response.status_code))
        return response


def _jpeg(colour: tuple[int, int, int] = (20, 120, 200)) -> bytes:
    image = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(image, "JPEG")
    return image.getvalue()


def _uploaded(checked: Checked, s3: Any, data: bytes, outcome: str = "ready") -> dict[str, Any]:
    """A photo started, its file sent and taken in by the worker, which must answer `outcome`."""
    started = json.loads(
        checked.call(
            "POST",
            "/photos",
            "/photos",
            {"filename": "sky.jpg", "content_type": "image/jpeg", "size_bytes": len(data), "tags": ["Sky"]},
        ).body
    )
    photo: dict[str, Any] = started["photo"]
    key = keys.upload_object(photo["owner_id"], photo["photo_id"])
    s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="image/jpeg")
    assert str(deps.upload_processor().ingest(key)) == outcome
    return photo


def _ready_photo(checked: Checked, s3: Any) -> dict[str, Any]:
    return _uploaded(checked, s3, _jpeg())


def test_real_responses_fit_the_documented_schemas(alice: User, bob: User, aws: boto3.session.Session) -> None:
    a, b = Checked(alice), Checked(bob)
    a.call("GET", "/health", "/health")
    a.call("GET", "/users/me", "/users/me")  # 404: no profile yet
    a.call("POST", "/users", "/users", {"display_name": "Alice", "bio": "Skies"})
    a.call("POST", "/users", "/users", {"display_name": "Alice again"})  # 409
    a.call("POST", "/users", "/users", {"display_name": ""})  # 400
    a.call("GET", "/users/me", "/users/me")
    a.call("PATCH", "/users/me", "/users/me", {"bio": None})
    b.call("GET", "/users/{user_id}", f"/users/{alice.sub}")
    b.call("GET", "/users/{user_id}", "/users/not-a-user")  # 404

    photo = _ready_photo(a, aws.client("s3"))
    pending = json.loads(
        a.call("POST", "/photos", "/photos", {"filename": "b.png", "content_type": "image/png", "size_bytes": 9}).body
    )["photo"]
    a.call("POST", "/photos", "/photos", {"filename": "c.jpg", "content_type": "image/jpeg", "size_bytes": 1 << 40})
    a.call("POST", "/photos", "/photos", {"filename": "c.svg", "content_type": "image/svg+xml", "size_bytes": 9})
    listed = json.loads(a.call("GET", "/photos", "/photos?limit=1").body)
    assert listed["next_cursor"]
    a.call("GET", "/photos", f"/photos?limit=1&cursor={listed['next_cursor']}")
    a.call("GET", "/photos", "/photos?tag=sky")
    a.call("GET", "/photos", "/photos?cursor=forged")  # 400
    a.call("GET", "/photos/{photo_id}", f"/photos/{photo['photo_id']}")  # READY, with URLs
    a.call("GET", "/photos/{photo_id}", f"/photos/{pending['photo_id']}")
    b.call("GET", "/photos/{photo_id}", f"/photos/{photo['photo_id']}")  # 404: not bob's
    a.call("PATCH", "/photos/{photo_id}", f"/photos/{photo['photo_id']}", {"title": "Blue", "version": 1})
    a.call("PATCH", "/photos/{photo_id}", f"/photos/{photo['photo_id']}", {"title": "Old", "version": 1})  # 409
    a.call("DELETE", "/photos/{photo_id}", f"/photos/{pending['photo_id']}")
    a.call("DELETE", "/photos/{photo_id}", f"/photos/{pending['photo_id']}")  # 404
    a.call("GET", "/users/me", "/users/me", Authorization="forged")  # 401

    statuses = {status for _, _, status in a.covered | b.covered}
    assert {200, 201, 204, 400, 401, 404, 409, 413, 415} <= statuses


def test_a_throttled_dependency_answers_the_documented_503(alice: User, aws: boto3.session.Session) -> None:
    def throttle(**_: Any) -> None:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Query")

    deps.dynamodb().meta.events.register("before-call.dynamodb.Query", throttle)
    response = Checked(alice).call("GET", "/photos", "/photos")
    # Checked.call accepts any documented status (200 too): this test is about exactly the 503.
    assert response.status_code == 503, response.body
    assert re.fullmatch(r"[1-9][0-9]*", response.headers.get("Retry-After", "")), response.headers
    reply = json.loads(response.body)
    assert reply["Code"] == "ServiceUnavailableError"
    assert "retry" in reply["Message"]


def test_real_library_responses_fit_the_documented_schemas(
    alice: User, aws: boto3.session.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Favourites, the timeline, sorting and day ranges, duplicates, the trash, batches and deleting the account."""
    a, s3 = Checked(alice), aws.client("s3")
    a.call("POST", "/users", "/users", {"display_name": "Alice"})
    data = _jpeg((200, 40, 40))
    photo = _uploaded(a, s3, data)
    path = f"/photos/{photo['photo_id']}"
    other = _uploaded(a, s3, _jpeg((40, 200, 40)))

    # Favourites, the timeline, and the listing's new parameters.
    a.call("PATCH", "/photos/{photo_id}", path, {"favorite": True, "version": 1})
    favorites = json.loads(a.call("GET", "/photos", "/photos?favorite=true").body)
    assert [item["photo_id"] for item in favorites["items"]] == [photo["photo_id"]]
    assert favorites["items"][0]["favorite"] is True
    taken = json.loads(a.call("GET", "/photos", "/photos?sort=taken&from=2000-01-01&to=2999-12-31&limit=1").body)
    assert len(taken["items"]) == 1
    assert taken["next_cursor"]
    a.call("GET", "/photos", f"/photos?sort=taken&from=2000-01-01&to=2999-12-31&limit=1&cursor={taken['next_cursor']}")
    a.call("GET", "/photos", "/photos?sort=taken&tag=sky")  # 400
    a.call("GET", "/photos", "/photos?favorite=false")  # 400
    a.call("GET", "/photos", "/photos?from=2024-02-30")  # 400
    a.call("GET", "/photos", "/photos?from=2024-02-02&to=2024-02-01")  # 400
    timeline = json.loads(a.call("GET", "/photos/timeline", "/photos/timeline").body)
    assert sum(bucket["count"] for bucket in timeline["buckets"]) == 2
    a.call("GET", "/photos/timeline", "/photos/timeline?limit=5")  # 400

    # Duplicates: refused before the upload when the client sends the hash, rejected by the worker when not.
    sha256 = hashlib.sha256(data).hexdigest()
    new = {"filename": "again.jpg", "content_type": "image/jpeg", "size_bytes": len(data)}
    refused = json.loads(a.call("POST", "/photos", "/photos", {**new, "sha256": sha256}).body)  # 409
    assert (refused["Code"], refused["photo_id"]) == ("DuplicatePhoto", photo["photo_id"])
    a.call("POST", "/photos", "/photos", {**new, "sha256": sha256.upper()})  # 400
    copy = _uploaded(a, s3, data, outcome="duplicate")
    rejected = json.loads(a.call("GET", "/photos/{photo_id}", f"/photos/{copy['photo_id']}").body)
    assert (rejected["status"], rejected["duplicate_of"]) == ("REJECTED", photo["photo_id"])
    ready = json.loads(a.call("GET", "/photos/{photo_id}", path).body)
    assert ready["sha256"] == sha256

    # The trash.
    a.call("DELETE", "/photos/{photo_id}", f"{path}?permanent=maybe")  # 400
    a.call("DELETE", "/photos/{photo_id}", path)
    trashed = json.loads(a.call("GET", "/photos/{photo_id}", path).body)
    assert trashed["trashed_at"]
    assert trashed["purge_at"]
    a.call("DELETE", "/photos/{photo_id}", path)  # 204 again
    a.call("PATCH", "/photos/{photo_id}", path, {"title": "x", "version": trashed["version"]})  # 409
    listed = json.loads(a.call("GET", "/trash", "/trash?limit=1").body)
    assert [item["photo_id"] for item in listed["items"]] == [photo["photo_id"]]
    a.call("GET", "/trash", "/trash?limit=0")  # 400
    a.call("GET", "/trash", "/trash?cursor=forged")  # 400
    usage = json.loads(a.call("GET", "/users/me", "/users/me").body)["usage"]
    assert usage["trash"] == {"photos": 1, "bytes": len(data)}
    assert photo["photo_id"] not in {
        item["photo_id"] for item in json.loads(a.call("GET", "/photos", "/photos").body)["items"]
    }

    # A copy of the trashed photo enters the library: restoring the original is refused, naming the copy.
    second = _uploaded(a, s3, data)
    blocked = json.loads(a.call("POST", "/photos/{photo_id}/restore", f"{path}/restore").body)  # 409
    assert (blocked["Code"], blocked["photo_id"]) == ("DuplicatePhoto", second["photo_id"])
    a.call("DELETE", "/photos/{photo_id}", f"/photos/{second['photo_id']}?permanent=true")
    restored = json.loads(a.call("POST", "/photos/{photo_id}/restore", f"{path}/restore").body)
    assert restored["trashed_at"] is None
    assert restored["purge_at"] is None
    a.call("POST", "/photos/{photo_id}/restore", f"{path}/restore")  # not in the trash: 200 unchanged
    a.call("POST", "/photos/{photo_id}/restore", f"/photos/{ids.new_ulid()}/restore")  # 404

    # Batches.
    batch = {"action": "unfavorite", "photo_ids": [photo["photo_id"], ids.new_ulid(), "not-an-id"]}
    results = json.loads(a.call("POST", "/photos/batch", "/photos/batch", batch).body)["results"]
    assert [result["status"] for result in results] == ["done", "not_found", "not_found"]
    a.call("POST", "/photos/batch", "/photos/batch", {"action": "trash", "photo_ids": [other["photo_id"]]})
    tagging = {"action": "add_tags", "photo_ids": [other["photo_id"], photo["photo_id"]], "tags": ["dusk"]}
    results = json.loads(a.call("POST", "/photos/batch", "/photos/batch", tagging).body)["results"]
    assert [result["status"] for result in results] == ["conflict", "done"]
    too_many = {"action": "add_tags", "photo_ids": [photo["photo_id"]], "tags": [f"t{i}" for i in range(19)]}
    results = json.loads(a.call("POST", "/photos/batch", "/photos/batch", too_many).body)["results"]
    assert [result["status"] for result in results] == ["invalid"]
    a.call(
        "POST", "/photos/batch", "/photos/batch", {"action": "trash", "photo_ids": [photo["photo_id"]], "tags": ["x"]}
    )  # 400
    a.call("POST", "/photos/batch", "/photos/batch", {"action": "trash", "photo_ids": [photo["photo_id"]] * 2})  # 400

    # Emptying the trash: out of time at once (202 and what is left), then done (204).
    monkeypatch.setattr(app_module, "WORK_BUDGET_SECONDS", 0)
    remaining = json.loads(a.call("DELETE", "/trash", "/trash").body)
    assert remaining == {"remaining": 1}
    monkeypatch.setattr(app_module, "WORK_BUDGET_SECONDS", 20)
    a.call("DELETE", "/trash", "/trash")
    assert json.loads(a.call("GET", "/trash", "/trash").body)["items"] == []

    # Deleting the account: out of time at once (202), then finished by the retry (204); the profile is gone.
    monkeypatch.setattr(app_module, "WORK_BUDGET_SECONDS", -1)
    assert json.loads(a.call("DELETE", "/users/me", "/users/me").body) == {"status": "deleting"}
    monkeypatch.setattr(app_module, "WORK_BUDGET_SECONDS", 20)
    a.call("DELETE", "/users/me", "/users/me")
    a.call("GET", "/users/me", "/users/me")  # 404
    a.call("DELETE", "/users/me", "/users/me")  # nothing left: 204 again
    a.call("GET", "/trash", "/trash", Authorization="forged")  # 401

    library = {
        ("GET", "/photos/timeline"),
        ("POST", "/photos/batch"),
        ("POST", "/photos/{photo_id}/restore"),
        ("GET", "/trash"),
        ("DELETE", "/trash"),
        ("DELETE", "/users/me"),
    }
    assert library <= {(method, path) for method, path, _ in a.covered}
    covered = {(method, path, status) for method, path, status in a.covered}
    for expected in [
        ("DELETE", "/trash", 202),
        ("DELETE", "/trash", 204),
        ("DELETE", "/users/me", 202),
        ("DELETE", "/users/me", 204),
        ("POST", "/photos", 409),
        ("POST", "/photos/{photo_id}/restore", 409),
        ("PATCH", "/photos/{photo_id}", 409),
        ("DELETE", "/photos/{photo_id}", 400),
        ("POST", "/photos/batch", 400),
    ]:
        assert expected in covered, expected


class Visitor:
    """A share-link visitor: no Authorization header, as a browser without an account sends it."""

    def __init__(self, api: Client) -> None:
        self._api = api

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        return albums.public(self._api, method, path, body, **headers)


def test_real_album_responses_fit_the_documented_schemas(
    api: Client, alice: User, bob: User, aws: boto3.session.Session
) -> None:
    a, b = Checked(alice), Checked(bob)
    v = Checked(Visitor(api))
    a.call("POST", "/users", "/users", {"display_name": "Alice"})
    photo = _ready_photo(a, aws.client("s3"))
    pending = json.loads(
        a.call("POST", "/photos", "/photos", {"filename": "b.png", "content_type": "image/png", "size_bytes": 9}).body
    )["photo"]

    album = json.loads(a.call("POST", "/albums", "/albums", {"title": "Sky", "description": None}).body)
    album_path = f"/albums/{album['album_id']}"
    a.call("POST", "/albums", "/albums", {"title": " "})  # 400
    a.call("POST", "/albums", "/albums", {"title": "A", "owner_id": "x"})  # 400
    a.call("GET", "/albums", "/albums")
    a.call("GET", "/albums", "/albums?limit=0")  # 400
    a.call("GET", "/albums/{album_id}", album_path)
    a.call("GET", "/albums/{album_id}", f"/albums/{ids.new_ulid()}")  # 404

    ids_body = {"photo_ids": [photo["photo_id"], pending["photo_id"], ids.new_ulid(), photo["photo_id"]]}
    results = json.loads(a.call("POST", "/albums/{album_id}/photos", f"{album_path}/photos", ids_body).body)
    assert [r["status"] for r in results["results"]] == ["added", "not_ready", "not_found"]
    a.call("POST", "/albums/{album_id}/photos", f"{album_path}/photos", {"photo_ids": [photo["photo_id"]]})  # already
    a.call("POST", "/albums/{album_id}/photos", f"{album_path}/photos", {"photo_ids": []})  # 400
    a.call("GET", "/albums/{album_id}", album_path)  # with a cover
    listed = json.loads(a.call("GET", "/albums", "/albums").body)
    assert listed["items"][0]["cover"] is not None
    a.call("GET", "/albums/{album_id}/photos", f"{album_path}/photos")
    a.call("GET", "/albums/{album_id}/photos", f"{album_path}/photos?cursor=forged")  # 400

    album_now = json.loads(
        a.call("PATCH", "/albums/{album_id}", album_path, {"title": "Blue", "description": "x", "version": 1}).body
    )
    a.call("PATCH", "/albums/{album_id}", album_path, {"title": "Old", "version": 1})  # 409
    a.call("PATCH", "/albums/{album_id}", album_path, {"version": album_now["version"]})  # 400: nothing to change
    cover = {"cover_photo_id": ids.new_ulid(), "version": album_now["version"]}
    a.call("PATCH", "/albums/{album_id}", album_path, cover)  # 400: not in the album

    members_path = f"{album_path}/members"
    a.call("POST", "/albums/{album_id}/members", members_path, {"username": bob.username, "role": "viewer"})
    a.call("POST", "/albums/{album_id}/members", members_path, {"username": bob.username, "role": "viewer"})  # 409
    a.call("POST", "/albums/{album_id}/members", members_path, {"username": "nobody-here", "role": "viewer"})  # 404
    a.call("POST", "/albums/{album_id}/members", members_path, {"username": "a b", "role": "viewer"})  # 400
    a.call("GET", "/albums/{album_id}/members", members_path)
    b.call("GET", "/albums/{album_id}/members", members_path)
    b.call("GET", "/albums/{album_id}", album_path)  # role viewer
    b.call("GET", "/albums/{album_id}/photos", f"{album_path}/photos")  # mine: false
    b.call("PATCH", "/albums/{album_id}", album_path, {"title": "Mine now", "version": 2})  # 403
    b.call("POST", "/albums/{album_id}/photos", f"{album_path}/photos", {"photo_ids": [photo["photo_id"]]})  # 403
    b.call("POST", "/albums/{album_id}/links", f"{album_path}/links", {})  # 403
    b.call("GET", "/albums/{album_id}/links", f"{album_path}/links")  # 403
    member_path = f"{members_path}/{bob.sub}"
    template = "/albums/{album_id}/members/{user_id}"
    a.call("PATCH", template, member_path, {"role": "contributor"})
    a.call("PATCH", template, f"{members_path}/{alice.sub}", {"role": "viewer"})  # 409: the owner's role
    a.call("PATCH", template, member_path, {"role": "owner"})  # 400
    b.call("DELETE", template, f"{members_path}/{alice.sub}")  # 403: a member removes only themselves
    a.call("DELETE", template, f"{members_path}/{alice.sub}")  # 403: the owner cannot leave

    links_path = f"{album_path}/links"
    expiry = iso_utc(datetime.now(UTC) + timedelta(days=7))
    open_link = json.loads(a.call("POST", "/albums/{album_id}/links", links_path, {"expires_at": expiry}).body)
    locked = json.loads(
        a.call("POST", "/albums/{album_id}/links", links_path, {"password": "open sesame", "allow_download": True}).body
    )
    a.call("POST", "/albums/{album_id}/links", links_path, {"expires_at": "2001-01-01T00:00:00Z"})  # 400
    a.call("POST", "/albums/{album_id}/links", links_path, {"password": "abc"})  # 400
    a.call("GET", "/albums/{album_id}/links", links_path)

    public, unlock = "/public/albums/{token}", "/public/albums/{token}/unlock"
    v.call("GET", public, f"/public/albums/{open_link['token']}")
    v.call("GET", public, f"/public/albums/{open_link['token']}?limit=1000")  # 400
    v.call("GET", public, f"/public/albums/{locked['token']}")  # 401 PasswordRequired
    v.call("GET", public, f"/public/albums/{locked['token']}", **{"X-Link-Access": "1.forged"})  # 401
    v.call("GET", public, f"/public/albums/{album_links.new_token()}")  # 404
    v.call("POST", unlock, f"/public/albums/{open_link['token']}/unlock", {"password": "anything"})  # 200
    granted = json.loads(
        v.call("POST", unlock, f"/public/albums/{locked['token']}/unlock", {"password": "open sesame"}).body
    )
    page = json.loads(
        v.call("GET", public, f"/public/albums/{locked['token']}", **{"X-Link-Access": granted["access_token"]}).body
    )
    assert page["allow_download"]
    assert page["items"][0]["urls"]["original"]
    v.call("POST", unlock, f"/public/albums/{locked['token']}/unlock", {"password": ""})  # 400
    v.call("POST", unlock, f"/public/albums/{album_links.new_token()}/unlock", {"password": "x"})  # 404
    for _ in range(10):
        v.call("POST", unlock, f"/public/albums/{locked['token']}/unlock", {"password": "guess"})  # 401
    v.call("POST", unlock, f"/public/albums/{locked['token']}/unlock", {"password": "open sesame"})  # 429

    link_template = "/albums/{album_id}/links/{link_id}"
    a.call("DELETE", link_template, f"{links_path}/{open_link['link_id']}")
    a.call("DELETE", link_template, f"{links_path}/{open_link['link_id']}")  # 404
    v.call("GET", public, f"/public/albums/{open_link['token']}")  # 404: revoked

    removal = {"photo_ids": [photo["photo_id"], ids.new_ulid()]}
    a.call("POST", "/albums/{album_id}/photos/remove", f"{album_path}/photos/remove", removal)
    a.call("POST", "/albums/{album_id}/photos/remove", f"{album_path}/photos/remove", {"photo_ids": "x"})  # 400
    b.call("DELETE", template, member_path)  # bob leaves
    b.call("GET", "/albums/{album_id}", album_path)  # 404: no longer a member
    a.call("DELETE", template, member_path)  # 404: no such member
    a.call("DELETE", "/albums/{album_id}", album_path)
    a.call("GET", "/albums/{album_id}", album_path)  # 404
    v.call("GET", public, f"/public/albums/{locked['token']}")  # 404: the album went
    a.call("GET", "/albums", "/albums", Authorization="forged")  # 401

    covered = a.covered | b.covered | v.covered
    album_operations = {(method, path) for path, method, _ in operations() if path.startswith(("/albums", "/public"))}
    assert album_operations <= {(method, path) for method, path, _ in covered}
    statuses = {status for _, _, status in covered}
    assert {200, 201, 204, 400, 401, 403, 404, 409, 429} <= statuses
