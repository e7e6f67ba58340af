"""The Cognito adapter that finds a user by user name, against moto's Cognito (in-process)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from chalicelib.albums.directory import CognitoDirectory


@pytest.fixture
def pool(aws: boto3.session.Session) -> tuple[Any, str]:
    cognito = aws.client("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName="p", UsernameConfiguration={"CaseSensitive": False})["UserPool"]["Id"]
    return cognito, pool_id


def _user(cognito: Any, pool_id: str, username: str) -> str:
    created = cognito.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=username, Password="Passw0rd!x", Permanent=True)
    return next(a["Value"] for a in created["User"]["Attributes"] if a["Name"] == "sub")


def test_a_confirmed_user_is_found_by_user_name_with_their_sub(pool: tuple[Any, str]) -> None:
    cognito, pool_id = pool
    sub = _user(cognito, pool_id, "dana")
    found = CognitoDirectory(lambda: cognito, pool_id).find("dana")
    assert found is not None
    assert (found.user_id, found.username) == (sub, "dana")


def test_unknown_disabled_and_unconfirmed_users_are_not_found(pool: tuple[Any, str]) -> None:
    cognito, pool_id = pool
    directory = CognitoDirectory(lambda: cognito, pool_id)
    assert directory.find("nobody") is None
    _user(cognito, pool_id, "gone")
    cognito.admin_disable_user(UserPoolId=pool_id, Username="gone")
    assert directory.find("gone") is None
    cognito.admin_create_user(UserPoolId=pool_id, Username="invited", MessageAction="SUPPRESS")  # FORCE_CHANGE_PASSWORD
    assert directory.find("invited") is None
