from __future__ import annotations

import itertools

import pytest

from chalicelib import errors
from chalicelib.users.models import NewProfile, ProfileChanges, Quota, Usage
from chalicelib.users.service import UserService
from tests.support.fakes import InMemoryUserRepository

QUOTA = Quota(photos=5, bytes=1000, pending=3)


@pytest.fixture
def repository() -> InMemoryUserRepository:
    return InMemoryUserRepository()


@pytest.fixture
def service(repository: InMemoryUserRepository) -> UserService:
    ticks = (f"2026-11-23T10:00:{second:02d}.000Z" for second in itertools.count())
    return UserService(repository, clock=lambda: next(ticks), quota=QUOTA)


def test_new_profile_starts_with_equal_created_and_updated_times(service: UserService) -> None:
    account = service.create_profile("u1", NewProfile("Ada", "hello"))
    assert account.profile.created_at == account.profile.updated_at == "2026-11-23T10:00:00.000Z"
    assert account.usage == Usage()
    assert account.quota == QUOTA


def test_a_new_profile_shows_usage_from_uploads_made_before_it(
    service: UserService, repository: InMemoryUserRepository
) -> None:
    repository.usage["u1"] = Usage(photos=2, bytes=500)
    assert service.create_profile("u1", NewProfile("Ada")).usage == Usage(photos=2, bytes=500)


def test_second_profile_for_the_same_user_is_a_conflict(service: UserService) -> None:
    service.create_profile("u1", NewProfile("Ada"))
    with pytest.raises(errors.Conflict):
        service.create_profile("u1", NewProfile("Someone else"))
    assert service.get_account("u1").profile.display_name == "Ada"


def test_account_without_profile_is_not_found(service: UserService) -> None:
    with pytest.raises(errors.NotFound, match="POST /users"):
        service.get_account("u1")


def test_update_changes_only_what_was_sent_and_moves_updated_at(service: UserService) -> None:
    service.create_profile("u1", NewProfile("Ada", "bio"))
    account = service.update_profile("u1", ProfileChanges(display_name="Ada L."))
    assert account.profile.display_name == "Ada L."
    assert account.profile.bio == "bio"
    assert account.profile.updated_at > account.profile.created_at


def test_update_can_clear_the_bio(service: UserService) -> None:
    service.create_profile("u1", NewProfile("Ada", "bio"))
    assert service.update_profile("u1", ProfileChanges(bio=None, bio_set=True)).profile.bio is None


def test_update_without_profile_is_not_found(service: UserService) -> None:
    with pytest.raises(errors.NotFound):
        service.update_profile("u1", ProfileChanges(display_name="x"))


def test_public_profile_of_unknown_user_is_not_found(service: UserService) -> None:
    with pytest.raises(errors.NotFound):
        service.get_public_profile("nobody")


@pytest.mark.parametrize("user_id", ["", "x" * 129, "USER#x", "a/b", "a b", "ü"])
def test_ids_that_cannot_be_a_cognito_sub_are_not_found_without_a_lookup(user_id: str) -> None:
    class ExplodingRepository(InMemoryUserRepository):
        def get(self, user_id: str) -> None:
            raise AssertionError("looked up an impossible id")

    service = UserService(ExplodingRepository(), clock=lambda: "t", quota=QUOTA)
    with pytest.raises(errors.NotFound):
        service.get_public_profile(user_id)
