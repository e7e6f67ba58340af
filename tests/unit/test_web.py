from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.app import Request

from chalicelib import errors, web


def request(body: bytes | None = None, claims: dict[str, Any] | None = None) -> Request:
    context: dict[str, Any] = {"httpMethod": "POST", "resourcePath": "/users"}
    if claims is not None:
        context["authorizer"] = {"claims": claims}
    return Request(
        {
            "multiValueQueryStringParameters": None,
            "headers": {"content-type": "application/json"},
            "pathParameters": None,
            "requestContext": context,
            "stageVariables": None,
            "body": body,
            "isBase64Encoded": False,
        }
    )


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.Invalid("title", "is required"), 400, "BadRequestError"),
        (errors.NotFound("no such photo"), 404, "NotFoundError"),
        (errors.Conflict("stale version"), 409, "ConflictError"),
        (errors.TooLarge("over 25 MiB"), 413, "RequestEntityTooLargeError"),
        (errors.UnsupportedType("image/svg+xml"), 415, "UnsupportedMediaType"),
        (errors.QuotaExceeded("over quota"), 429, "TooManyRequestsError"),
        (errors.Unavailable("DynamoDB is busy"), 503, "ServiceUnavailableError"),
    ],
)
def test_each_domain_error_maps_to_its_status_and_code(error: errors.DomainError, status: int, code: str) -> None:
    response = web.error_response(error)
    assert response.status_code == status
    assert response.body == {"Code": code, "Message": str(error)}


def test_unavailable_tells_the_client_when_to_retry() -> None:
    response = web.error_response(errors.Unavailable("busy", retry_after=3))
    assert response.headers["Retry-After"] == "3"


def test_unauthenticated_has_api_gateways_body() -> None:
    response = web.error_response(errors.Unauthenticated("no claims"))
    assert (response.status_code, response.body) == (401, {"message": "Unauthorized"})


def test_every_domain_error_has_a_status() -> None:
    unmapped = [
        kind
        for kind in vars(errors).values()
        if isinstance(kind, type) and issubclass(kind, errors.DomainError) and kind is not errors.DomainError
        if kind is not errors.Unauthenticated and not any(issubclass(kind, mapped) for mapped in web.ERROR_STATUS)
    ]
    assert unmapped == []


def test_http_errors_turns_domain_errors_into_responses_and_lets_bugs_through() -> None:
    @web.http_errors
    def view(kind: type[Exception]) -> str:
        raise kind("boom")

    assert view(errors.NotFound).status_code == 404
    with pytest.raises(KeyError):
        view(KeyError)


def test_json_body_parses_an_object() -> None:
    assert web.json_body(request(b'{"a": [1, "\\u00e9"]}')) == {"a": [1, "é"]}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (None, "must be a JSON object"),
        (b"", "must be a JSON object"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": Infinity}', "not valid JSON"),
        (b"[" * 100_000, "nested too deeply"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
    ids=["none", "empty", "syntax", "not-utf8", "nan", "infinity", "deep-nesting", "huge-integer"],
)
def test_unparsable_bodies_are_400_not_500(body: bytes | None, problem: str) -> None:
    with pytest.raises(errors.Invalid, match=problem):
        web.json_body(request(body))


def test_current_user_is_the_verified_sub() -> None:
    assert web.current_user_id(request(b"{}", claims={"sub": "abc-123", "email": "a@b.c"})) == "abc-123"


@pytest.mark.parametrize("claims", [None, {}, {"sub": ""}, {"sub": 5}, {"email": "a@b.c"}])
def test_a_request_without_a_verified_sub_is_unauthenticated(claims: dict[str, Any] | None) -> None:
    with pytest.raises(errors.Unauthenticated):
        web.current_user_id(request(b"{}", claims=claims))


def test_error_bodies_serialise_to_the_contract_shape() -> None:
    response = web.error_response(errors.Invalid("display_name", "is required"))
    assert json.loads(json.dumps(response.body)) == {"Code": "BadRequestError", "Message": "display_name: is required"}
