"""What the emulated AWS lacks and PhotoSky's clients call, filled in for the dev stack only.

moto 5.2 implements Cognito's AdminDeleteUser but not DeleteUser, with which a signed-in user deletes themselves
(their access token is the only credential): the web client's account deletion calls it. Without it moto answers
500 and the flow stops after the user's data is gone. The stand-in below does what Cognito does: a valid access
token deletes its user and signs them out; anything else is NotAuthorizedException.
"""

from __future__ import annotations

from typing import Any


def add_cognito_delete_user() -> None:
    from moto.cognitoidp.exceptions import NotAuthorizedError
    from moto.cognitoidp.responses import CognitoIdpResponse
    from moto.core.responses import EmptyResult

    if hasattr(CognitoIdpResponse, "delete_user"):
        return  # moto has it now: use the real one

    def delete_user(self: Any) -> Any:
        access_token = self._get_param("AccessToken")
        for pool in self.backend.user_pools.values():
            if access_token in pool.access_tokens:
                _, username = pool.access_tokens[access_token]
                pool.sign_out(username)
                self.backend.admin_delete_user(pool.id, username)
                return EmptyResult()
        raise NotAuthorizedError("Invalid Access Token")

    CognitoIdpResponse.delete_user = delete_user  # type: ignore[attr-defined]
