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
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from openapi_spec_validator import validate as validate_spec
from PIL import Image
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from app import app
from chalicelib import deps, errors, keys, web
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
}


def _api_accepts(parse: Any, value: str) -> bool:
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


# One field per pattern (bio shares description's, the edited title the new one's): the sweep takes seconds.
@pytest.mark.parametrize("name", ["display_name", "filename", "title", "description"])
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
    response = Checked(alice).call("GET", "/photos", "/photos")
    # Checked.call accepts any documented status (200 too): this test is about exactly the 503.
    assert response.status_code == 503, response.body
    assert re.fullmatch(r"[1-9][0-9]*", response.headers.get("Retry-After", "")), response.headers
    reply = json.loads(response.body)
    assert reply["Code"] == "ServiceUnavailableError"
    assert "retry" in reply["Message"]
