from __future__ import annotations

import json

import pytest

from devstack.auth import CognitoIdTokenVerifier, HttpJwks, StaticJwks, TokenRejected
from tests.conftest import POOL
from tests.support.cognito import FakeCognitoPool, bad_tokens

SUB = "2f1e6c1a-9d7b-4e8e-9c55-6f0e4b0d1a2b"


@pytest.fixture
def verifier() -> CognitoIdTokenVerifier:
    return CognitoIdTokenVerifier(issuer=POOL.issuer, audiences=[POOL.client_id], jwks=StaticJwks(POOL.jwks()))


def test_a_valid_id_token_yields_its_claims_as_strings(verifier: CognitoIdTokenVerifier) -> None:
    claims = verifier.verify(POOL.id_token(SUB))
    assert claims["sub"] == SUB
    assert claims["token_use"] == "id"
    # API Gateway hands every claim to the Lambda as a string.
    assert all(isinstance(value, str) for value in claims.values())
    assert claims["email_verified"] == "true"


@pytest.mark.parametrize("prefix", ["Bearer ", "bearer ", "  Bearer   "])
def test_a_bearer_prefix_is_accepted(verifier: CognitoIdTokenVerifier, prefix: str) -> None:
    assert verifier.verify(prefix + POOL.id_token(SUB))["sub"] == SUB


@pytest.mark.parametrize("kind", list(bad_tokens(POOL, SUB)))
def test_every_bad_token_is_rejected(verifier: CognitoIdTokenVerifier, kind: str) -> None:
    with pytest.raises(TokenRejected):
        verifier.verify(bad_tokens(POOL, SUB)[kind])


def test_any_configured_app_client_is_an_accepted_audience() -> None:
    verifier = CognitoIdTokenVerifier(
        issuer=POOL.issuer, audiences=[POOL.client_id, "mobile-client"], jwks=StaticJwks(POOL.jwks())
    )
    assert verifier.verify(POOL.id_token(SUB, aud="mobile-client"))["sub"] == SUB


def test_at_least_one_audience_is_required() -> None:
    with pytest.raises(ValueError, match="audience"):
        CognitoIdTokenVerifier(issuer=POOL.issuer, audiences=[], jwks=StaticJwks(POOL.jwks()))


class CountingFetch:
    def __init__(self, *documents: dict[str, object]) -> None:
        self.documents = list(documents)
        self.calls = 0

    def __call__(self, url: str, timeout: float) -> bytes:
        self.calls += 1
        document = self.documents[min(self.calls, len(self.documents)) - 1]
        return json.dumps(document).encode()


def test_http_jwks_is_fetched_once_and_cached() -> None:
    fetch = CountingFetch(POOL.jwks())
    verifier = CognitoIdTokenVerifier(
        issuer=POOL.issuer, audiences=[POOL.client_id], jwks=HttpJwks("http://jwks.invalid/", fetch=fetch)
    )
    for _ in range(3):
        verifier.verify(POOL.id_token(SUB))
    assert fetch.calls == 1


def test_http_jwks_refetches_when_the_pool_rotates_its_key() -> None:
    rotated = FakeCognitoPool(POOL.pool_id, POOL.client_id)
    fetch = CountingFetch(POOL.jwks(), rotated.jwks())
    jwks = HttpJwks("http://jwks.invalid/", fetch=fetch, refresh_seconds=0)
    verifier = CognitoIdTokenVerifier(issuer=POOL.issuer, audiences=[POOL.client_id], jwks=jwks)
    verifier.verify(POOL.id_token(SUB))
    assert verifier.verify(rotated.id_token(SUB))["sub"] == SUB
    assert fetch.calls == 2


def test_unknown_kids_do_not_hammer_the_jwks_endpoint() -> None:
    fetch = CountingFetch(POOL.jwks())
    verifier = CognitoIdTokenVerifier(
        issuer=POOL.issuer, audiences=[POOL.client_id], jwks=HttpJwks("http://jwks.invalid/", fetch=fetch)
    )
    forged = POOL.sign(POOL.id_claims(SUB), kid="attacker-kid")
    for _ in range(5):
        with pytest.raises(TokenRejected):
            verifier.verify(forged)
    assert fetch.calls == 1


def test_an_unreachable_jwks_rejects_the_token_instead_of_failing() -> None:
    def unreachable(url: str, timeout: float) -> bytes:
        raise OSError("connection refused")

    verifier = CognitoIdTokenVerifier(
        issuer=POOL.issuer, audiences=[POOL.client_id], jwks=HttpJwks("http://jwks.invalid/", fetch=unreachable)
    )
    with pytest.raises(TokenRejected, match="JWKS"):
        verifier.verify(POOL.id_token(SUB))
