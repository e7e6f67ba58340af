"""Share-link secrets and the album permission table, without AWS."""

from __future__ import annotations

import time

import pytest

from chalicelib import errors
from chalicelib.albums import links
from chalicelib.albums.access import PERMISSIONS, Action, decide, role_of
from chalicelib.albums.models import Album, Membership, Role

ALBUM = Album(album_id="01HZZZZZZZZZZZZZZZZZZZZZZZ", owner_id="owner", title="t", created_at="x", updated_at="x")


def test_tokens_are_256_random_bits_url_safe_and_distinct() -> None:
    made = {links.new_token() for _ in range(200)}
    assert len(made) == 200
    assert all(links.looks_like_token(token) for token in made)
    assert not links.looks_like_token("A" * 42)
    assert not links.looks_like_token("A" * 42 + "=")
    assert not links.looks_like_token("A" * 42 + "é")


def test_a_token_is_stored_as_its_sha256() -> None:
    assert links.token_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_passwords_are_scrypt_hashed_with_a_random_salt_and_checked_in_constant_time() -> None:
    first, second = links.hash_password("hunter22"), links.hash_password("hunter22")
    assert first != second  # salted
    assert first.startswith("scrypt$16384$8$1$")
    assert "hunter22" not in first
    assert links.password_matches("hunter22", first)
    assert not links.password_matches("hunter23", first)
    assert not links.password_matches("", first)


def test_a_stored_hash_keeps_its_parameters_so_they_can_be_raised_later() -> None:
    cheap = links.hash_password("pw", salt=b"0" * 16).replace("scrypt$16384$", "scrypt$1024$")
    # Re-derive with the stored (lower) n: a hash made with other parameters still verifies with its own.
    scheme, n, r, p, salt, _ = cheap.split("$")
    derived = links._scrypt("pw", links._unb64(salt), int(n), int(r), int(p))
    assert links.password_matches("pw", "$".join([scheme, n, r, p, salt, links._b64(derived)]))


def test_access_tokens_are_bound_to_the_link_and_expire() -> None:
    tokens = links.AccessTokens(lambda: b"s" * 32)
    now = int(time.time())
    issued = tokens.issue("LINK1", now + 60)
    assert tokens.valid(issued, "LINK1", now)
    assert not tokens.valid(issued, "LINK2", now)
    assert not tokens.valid(issued, "LINK1", now + 60)  # expired at its second
    expires, signature = issued.split(".")
    assert not tokens.valid(f"{int(expires) + 3600}.{signature}", "LINK1", now)  # a later expiry is not signed
    assert not links.AccessTokens(lambda: b"t" * 32).valid(issued, "LINK1", now)  # another secret
    far = str(now + 10**6)
    for junk in (None, "", "x", "1.2.3", "٣.sig", "9" * 20 + ".sig", "a" * 200, f"{far}.é", f"{far}.{signature}é"):
        assert not tokens.valid(junk, "LINK1", now)


def test_every_action_is_in_the_permission_table_and_only_the_owner_manages() -> None:
    assert set(PERMISSIONS) == set(Action)
    for action in (Action.EDIT, Action.DELETE, Action.MANAGE_MEMBERS, Action.MANAGE_LINKS):
        assert PERMISSIONS[action] == {Role.OWNER}
    assert Role.LINK in PERMISSIONS[Action.READ]
    assert all(Role.LINK not in roles for action, roles in PERMISSIONS.items() if action is not Action.READ)


@pytest.mark.parametrize("role", [Role.CONTRIBUTOR, Role.VIEWER])
def test_a_member_who_may_see_but_not_act_gets_a_403_and_anyone_else_a_404(role: Role) -> None:
    with pytest.raises(errors.Forbidden):
        decide(ALBUM, role, Action.EDIT)
    with pytest.raises(errors.NotFound):
        decide(ALBUM, None, Action.READ)
    with pytest.raises(errors.NotFound):
        decide(None, role, Action.READ)
    deleting = Album(**{**ALBUM.__dict__, "deleting_since": "now"})
    with pytest.raises(errors.NotFound):
        decide(deleting, Role.OWNER, Action.READ)


def test_a_leaving_member_has_no_role() -> None:
    member = Membership(ALBUM.album_id, "bob", "bob", Role.CONTRIBUTOR, "x")
    assert role_of(ALBUM, member, "bob") is Role.CONTRIBUTOR
    assert role_of(ALBUM, Membership(**{**member.__dict__, "leaving_since": "x"}), "bob") is None
    assert role_of(ALBUM, None, "owner") is Role.OWNER
    assert role_of(ALBUM, None, "stranger") is None
