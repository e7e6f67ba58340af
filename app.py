"""PhotoSky API: routes only. Each view parses, identifies the caller, calls one service method, shapes the reply."""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice, CognitoUserPoolAuthorizer, Response

from chalicelib import config, deps, web
from chalicelib.users import schemas as user_schemas

app = Chalice(app_name="photosky")

# API Gateway verifies the Cognito ID token before the Lambda runs; the Lambda only reads the claims.
cognito = CognitoUserPoolAuthorizer("PhotoSkyUsers", provider_arns=config.user_pool_arns())


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.route("/users", methods=["POST"], authorizer=cognito)
@web.http_errors
def create_profile() -> Response:
    request = app.current_request
    new = user_schemas.parse_new_profile(web.json_body(request))
    account = deps.user_service().create_profile(web.current_user_id(request), new)
    return Response(body=user_schemas.account_out(account), status_code=201)


@app.route("/users/me", methods=["GET"], authorizer=cognito)
@web.http_errors
def get_my_profile() -> dict[str, Any]:
    account = deps.user_service().get_account(web.current_user_id(app.current_request))
    return user_schemas.account_out(account)


@app.route("/users/me", methods=["PATCH"], authorizer=cognito)
@web.http_errors
def update_my_profile() -> dict[str, Any]:
    request = app.current_request
    changes = user_schemas.parse_profile_changes(web.json_body(request))
    account = deps.user_service().update_profile(web.current_user_id(request), changes)
    return user_schemas.account_out(account)


@app.route("/users/{user_id}", methods=["GET"], authorizer=cognito)
@web.http_errors
def get_profile(user_id: str) -> dict[str, Any]:
    web.current_user_id(app.current_request)
    return user_schemas.public_profile_out(deps.user_service().get_public_profile(user_id))
