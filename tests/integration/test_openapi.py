"""openapi.yaml cannot drift from the API: same operations, same guards, same limits, and real responses fit it.

The spec is hand-written (it carries prose, links and patterns no generator would), so this test is what keeps it
true: every route in `app.py` against every operation in the spec, the request schemas against the parsers'
field lists and limits, and the body of every status a realistic session produces against the documented schema.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import boto3
import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate as validate_spec
from PIL import Image
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from app import app
from chalicelib import deps, keys, web
from chalicelib.config import Settings
from chalicelib.photos import models as photo_models
from chalicelib.photos import schemas as photo_schemas
from chalicelib.users import models as user_models
from chalicelib.users import schemas as user_schemas
from tests.conftest import PROJECT_DIR
from tests.integration.conftest import BUCKET, User

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
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        for method, operation in item.items():
            if method in HTTP_METHODS:
                declared |= {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared == names, path
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


def test_every_error_response_uses_the_contract_shapes() -> None:
    for path, method, operation in operations():
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                expected = "Unauthorized" if status == "401" else {"503": "Unavailable"}.get(status)
                ref = response["$ref"].rsplit("/", 1)[-1]
                if expected:
                    assert ref == expected, f"{method} {path} {status}"
                body = spec()["components"]["responses"][ref]["content"]["application/json"]["schema"]["$ref"]
                assert body.endswith("/Unauthorized" if status == "401" else "/Error"), f"{method} {path} {status}"


def test_the_error_codes_are_the_ones_the_api_sends() -> None:
    assert set(schema("Error")["properties"]["Code"]["enum"]) == {code for _, code in web.ERROR_STATUS.values()}


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


def test_list_parameters_match_the_parser() -> None:
    parameters = {p["name"]: p["schema"] for p in spec()["paths"]["/photos"]["get"]["parameters"]}
    assert set(parameters) == {"limit", "cursor", "tag"}
    assert parameters["limit"]["maximum"] == photo_schemas.LIST_LIMIT_MAX
    assert parameters["limit"]["default"] == photo_schemas.LIST_LIMIT_DEFAULT


def test_profile_request_fields_and_limits_match_the_parser() -> None:
    for name in ("NewProfile", "ProfileChanges"):
        document = schema(name)
        assert tuple(document["properties"]) == user_schemas._PROFILE_FIELDS
        assert _max_length(document["properties"]["display_name"]) == user_models.DISPLAY_NAME_MAX
        assert _max_length(document["properties"]["bio"]) == user_models.BIO_MAX


@pytest.mark.parametrize(
    ("tag", "accepted"),
    [("holiday", True), ("New York", True), ("a.b-c_d", True), ("-x", False), ("x-", False), ("a/b", False)],
)
def test_the_tag_pattern_agrees_with_the_api(tag: str, accepted: bool) -> None:
    matches = re.fullmatch(schema("Tag")["pattern"], tag) is not None
    assert matches is accepted
    try:
        photo_schemas.normalize_tag(tag)
        api_accepts = True
    except Exception:
        api_accepts = False
    assert api_accepts is accepted


# --- real responses against the documented schemas --------------------------------------------------------------


def _registry() -> Registry[Any]:
    return Registry().with_resource(SPEC_URI, Resource.from_contents(spec(), default_specification=DRAFT202012))


def _validator_for(fragment: dict[str, Any]) -> Draft202012Validator:
    # Refs in the fragment are document-local ("#/components/..."): resolve them against the whole spec.
    rooted = json.loads(json.dumps(fragment).replace('"#/components/', f'"{SPEC_URI}#/components/'))
    return Draft202012Validator(rooted, registry=_registry(), format_checker=FormatChecker())


def documented_response(path: str, method: str, status: int) -> dict[str, Any]:
    responses = spec()["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, which the spec does not document"
    response: dict[str, Any] = responses[str(status)]
    if "$ref" in response:
        response = spec()["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    return response


class Checked:
    """Calls the API as a user and checks every reply against the spec; remembers what it covered."""

    def __init__(self, user: User) -> None:
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


def _ready_photo(checked: Checked, s3: Any) -> dict[str, Any]:
    image = io.BytesIO()
    Image.new("RGB", (320, 240), (20, 120, 200)).save(image, "JPEG")
    data = image.getvalue()
    started = json.loads(
        checked.call(
            "POST",
            "/photos",
            "/photos",
            {"filename": "sky.jpg", "content_type": "image/jpeg", "size_bytes": len(data), "tags": ["Sky"]},
        ).body
    )
    photo = started["photo"]
    key = keys.upload_object(photo["owner_id"], photo["photo_id"])
    s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="image/jpeg")
    assert str(deps.upload_processor().ingest(key)) == "ready"
    return photo


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
    Checked(alice).call("GET", "/photos", "/photos")
