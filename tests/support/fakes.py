"""In-memory stand-ins for the adapters, held to the same contract tests as the real ones."""

from __future__ import annotations

import dataclasses

from chalicelib import errors
from chalicelib.users.models import Profile, ProfileChanges, Usage


class InMemoryUserRepository:
    def __init__(self) -> None:
        self.profiles: dict[str, Profile] = {}
        self.usage: dict[str, Usage] = {}

    def add(self, profile: Profile) -> None:
        if profile.user_id in self.profiles:
            raise errors.Conflict("a profile already exists for this user")
        self.profiles[profile.user_id] = profile

    def get(self, user_id: str) -> Profile | None:
        return self.profiles.get(user_id)

    def get_usage(self, user_id: str) -> Usage:
        return self.usage.get(user_id, Usage())

    def get_with_usage(self, user_id: str) -> tuple[Profile | None, Usage]:
        return self.get(user_id), self.get_usage(user_id)

    def update(self, user_id: str, changes: ProfileChanges, updated_at: str) -> Profile | None:
        profile = self.profiles.get(user_id)
        if profile is None:
            return None
        profile = dataclasses.replace(profile, updated_at=updated_at)
        if changes.display_name is not None:
            profile = dataclasses.replace(profile, display_name=changes.display_name)
        if changes.bio_set:
            profile = dataclasses.replace(profile, bio=changes.bio)
        self.profiles[user_id] = profile
        return profile
