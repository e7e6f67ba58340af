"""Single-table key layout: every partition and sort key is built here and nowhere else.

    PK = USER#<sub>   SK = PROFILE     the user's profile
    PK = USER#<sub>   SK = USAGE       the user's usage counters (created on first use)

Keys never leave the adapters: clients see `user_id`, never `PK`/`SK`.
"""

from __future__ import annotations

PROFILE_SK = "PROFILE"
USAGE_SK = "USAGE"


def user_pk(user_id: str) -> str:
    return f"USER#{user_id}"


def profile_key(user_id: str) -> dict[str, dict[str, str]]:
    return {"PK": {"S": user_pk(user_id)}, "SK": {"S": PROFILE_SK}}


def usage_key(user_id: str) -> dict[str, dict[str, str]]:
    return {"PK": {"S": user_pk(user_id)}, "SK": {"S": USAGE_SK}}
