"""`python -m devstack.token [USERNAME PASSWORD]`: print a Cognito ID token from the running dev stack.

Signs in exactly as a client would in AWS (InitiateAuth, USER_PASSWORD_AUTH) against the emulated Cognito,
as the demo user unless a username and password are given.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

from devstack.clients import emulated_client

DEFAULT_OUTPUTS = Path(__file__).resolve().parent.parent / ".devstack" / "outputs.json"


def id_token(outputs: dict[str, Any], username: str, password: str) -> str:
    cognito = emulated_client("cognito-idp", outputs)
    result = cognito.initiate_auth(
        AuthFlow="USER_PASSWORD_AUTH",
        ClientId=outputs["user_pool_client_id"],
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )
    return str(result["AuthenticationResult"]["IdToken"])


def new_confirmed_user(outputs: dict[str, Any], prefix: str) -> tuple[str, str]:
    """Sign a fresh user up as the SPA would and confirm them as an admin would; returns (username, password)."""
    cognito = emulated_client("cognito-idp", outputs)
    username, password = f"{prefix}-{uuid.uuid4().hex[:10]}", f"Sky-{uuid.uuid4().hex[:8]}-Pass9"
    cognito.sign_up(
        ClientId=outputs["user_pool_client_id"],
        Username=username,
        Password=password,
        UserAttributes=[{"Name": "email", "Value": f"{username}@photosky.test"}],
    )
    cognito.admin_confirm_sign_up(UserPoolId=outputs["user_pool_id"], Username=username)
    return username, password


def main(argv: list[str]) -> int:
    if len(argv) not in (0, 2):
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    try:
        outputs = json.loads(DEFAULT_OUTPUTS.read_text())
    except FileNotFoundError:
        print(f"no dev stack outputs at {DEFAULT_OUTPUTS}: start it with `make dev`", file=sys.stderr)
        return 1
    username, password = argv if argv else (outputs["demo_user"]["username"], outputs["demo_user"]["password"])
    print(id_token(outputs, username, password))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
