"""The dev stack's stand-in for Cognito's DeleteUser (devstack/moto_gaps.py), against moto's Cognito in-process:
a user deletes themselves with their access token, and nothing else deletes anyone."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devstack.moto_gaps import add_cognito_delete_user

PASSWORD = "Passw0rd!x"


@pytest.fixture
def cognito(aws: boto3.session.Session) -> tuple[Any, str, str]:
    add_cognito_delete_user()
    client = aws.client("cognito-idp")
    pool_id = client.create_user_pool(PoolName="p")["UserPool"]["Id"]
    app_client = client.create_user_pool_client(
        UserPoolId=pool_id, ClientName="spa", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    for username in ("ann", "ben"):
        client.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
        client.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    return client, pool_id, app_client


def sign_in(client: Any, app_client: str, username: str) -> dict[str, str]:
    result = client.initiate_auth(
        ClientId=app_client, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD}
    )
    return dict(result["AuthenticationResult"])


def test_a_user_deletes_themselves_with_their_access_token_and_can_no_longer_sign_in(
    cognito: tuple[Any, str, str],
) -> None:
    client, pool_id, app_client = cognito
    tokens = sign_in(client, app_client, "ann")

    client.delete_user(AccessToken=tokens["AccessToken"])

    with pytest.raises(ClientError) as gone:
        sign_in(client, app_client, "ann")
    assert gone.value.response["Error"]["Code"] == "UserNotFoundException"
    assert client.admin_get_user(UserPoolId=pool_id, Username="ben")["Username"] == "ben"


@pytest.mark.parametrize("which", ["IdToken", "forged"])
def test_anything_but_a_valid_access_token_deletes_nobody(cognito: tuple[Any, str, str], which: str) -> None:
    client, pool_id, app_client = cognito
    tokens = sign_in(client, app_client, "ann")
    token = tokens["IdToken"] if which == "IdToken" else tokens["AccessToken"][:-4] + "AAAA"

    with pytest.raises(ClientError) as refused:
        client.delete_user(AccessToken=token)

    assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"
    assert client.admin_get_user(UserPoolId=pool_id, Username="ann")["Username"] == "ann"
