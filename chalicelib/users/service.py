"""Profile use cases. No boto3, no chalice: the repository and the clock are handed in."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from chalicelib import errors
from chalicelib.users.models import Account, NewProfile, Profile, ProfileChanges, Quota, Usage

# Cognito subs are UUIDs; anything else in a path cannot name a user. Checking here keeps absurd keys away
# from DynamoDB (whose key size limit would otherwise surface as a 500).
_USER_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}\Z")


def is_user_id(value: str) -> bool:
    return bool(_USER_ID.match(value))


class UserRepository(Protocol):
    def add(self, profile: Profile) -> None: ...
    def get(self, user_id: str) -> Profile | None: ...
    def get_usage(self, user_id: str) -> Usage: ...
    def get_with_usage(self, user_id: str) -> tuple[Profile | None, Usage]: ...
    def update(self, user_id: str, changes: ProfileChanges, updated_at: str) -> Profile | None: ...


class UserService:
    def __init__(self, repository: UserRepository, clock: Callable[[], str], quota: Quota) -> None:
        self._repository = repository
        self._clock = clock
        self._quota = quota

    def create_profile(self, user_id: str, new: NewProfile) -> Account:
        now = self._clock()
        profile = Profile(user_id=user_id, display_name=new.display_name, bio=new.bio, created_at=now, updated_at=now)
        self._repository.add(profile)
        # Uploads do not wait for a profile, so a new profile may already have usage to show.
        return Account(profile, self._repository.get_usage(user_id), self._quota)

    def get_account(self, user_id: str) -> Account:
        profile, usage = self._repository.get_with_usage(user_id)
        if profile is None:
            raise errors.NotFound("you have no profile yet: create it with POST /users")
        return Account(profile, usage, self._quota)

    def update_profile(self, user_id: str, changes: ProfileChanges) -> Account:
        profile = self._repository.update(user_id, changes, updated_at=self._clock())
        if profile is None:
            raise errors.NotFound("you have no profile yet: create it with POST /users")
        return Account(profile, self._repository.get_usage(user_id), self._quota)

    def get_public_profile(self, user_id: str) -> Profile:
        profile = self._repository.get(user_id) if _USER_ID.match(user_id) else None
        if profile is None:
            raise errors.NotFound("no such user")
        return profile
