"""Finding a PhotoSky user by user name: the user pool is the one place that knows every account.

A user with no profile yet can still be shared with (their display name is then null), so the table cannot answer
this. One AdminGetUser per share; the client is made on first use, so no other route pays for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.aws import dependency_errors, error_code

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

# Cognito's own limits on a user name: 1 to 128 characters, no white space ([\p{L}\p{M}\p{S}\p{N}\p{P}]+).
USERNAME_MAX = 128


@dataclass(frozen=True)
class DirectoryUser:
    user_id: str
    username: str


class CognitoDirectory:
    def __init__(self, client: Callable[[], CognitoIdentityProviderClient], user_pool_id: str) -> None:
        self._client = client
        self._pool = user_pool_id

    def find(self, username: str) -> DirectoryUser | None:
        """The enabled, confirmed user with this user name (or alias), or None."""
        try:
            with dependency_errors("Cognito"):
                found: Any = self._client().admin_get_user(UserPoolId=self._pool, Username=username)
        except ClientError as e:
            if error_code(e) in ("UserNotFoundException", "InvalidParameterException"):
                return None
            raise
        if not found.get("Enabled", True) or found.get("UserStatus") not in (None, "CONFIRMED"):
            return None  # a disabled or unconfirmed account cannot sign in to see what is shared with it
        attributes = {attribute["Name"]: attribute["Value"] for attribute in found.get("UserAttributes", [])}
        sub = attributes.get("sub")
        return DirectoryUser(user_id=sub, username=found["Username"]) if sub else None
