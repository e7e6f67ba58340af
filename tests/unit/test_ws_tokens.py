"""The WebSocket connect's token check (chalicelib/realtime/tokens.py) and its pure-Python RS256 (chalicelib/rs256.py).

`cryptography` signs what rs256 verifies, so the production verifier is never its own judge; devstack/auth.py's
PyJWT verifier (what the REST API's authorizer does in the dev stack) must reach the same verdict on every token of
a corpus of forgeries; and tokens issued by moto's Cognito verify.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import jwt
import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from moto import mock_aws

from chalicelib import rs256
from chalicelib.realtime import tokens
from chalicelib.realtime.tokens import IdTokenVerifier, TokenRejected
from devstack.auth import CognitoIdTokenVerifier, HttpJwks, StaticJwks, _as_api_gateway_string, cognito_issuer
from devstack.auth import TokenRejected as DevstackRejected
from tests.conftest import POOL, PROJECT_DIR
from tests.support.cognito import REGION, FakeCognitoPool, bad_tokens, unsigned_token

SUB = "7d4c3b2a-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
JWKS_URL = "http://jwks.invalid/jwks.json"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_of(public: rsa.RSAPublicKey, kid: str) -> dict[str, Any]:
    numbers = public.public_numbers()
    n, e = numbers.n, numbers.e
    return {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64(n.to_bytes((n.bit_length() + 7) // 8)),
            "e": b64(e.to_bytes((e.bit_length() + 7) // 8))}  # fmt: skip


class RawSigner:
    """Signs any header and payload bytes (PyJWT would only sign JSON claims): for tokens whose payload is not JSON."""

    def __init__(self, kid: str = "raw-signer") -> None:
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, Any]:
        return jwk_of(self.key.public_key(), self.kid)

    def token(self, payload: bytes, **header: Any) -> str:
        signing_input = f"{b64(json.dumps({'alg': 'RS256', 'kid': self.kid, **header}).encode())}.{b64(payload)}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64(signature)}"


RAW = RawSigner()
# Too short to trust (the point of the tests that use it).
SHORT_KEY = jwk_of(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key(), "short")  # noqa: S505


class Clock:
    """Wall-clock time that the test moves (POOL's tokens are stamped with the real time, so it starts there)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Fetch:
    """Serves JWKS documents in turn (the last one repeats), counting fetches; an exception in the list is raised."""

    def __init__(self, *documents: dict[str, Any] | bytes | Exception) -> None:
        self.documents = list(documents)
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        document = self.documents[min(len(self.urls), len(self.documents)) - 1]
        if isinstance(document, Exception):
            raise document
        return document if isinstance(document, bytes) else json.dumps(document).encode()

    @property
    def calls(self) -> int:
        return len(self.urls)


def both_jwks() -> dict[str, Any]:
    return {"keys": [*POOL.jwks()["keys"], RAW.jwk()]}


def make_verifier(fetch: Fetch | None = None, clock: Clock | None = None) -> IdTokenVerifier:
    return IdTokenVerifier(
        issuer=POOL.issuer, audience=POOL.client_id, jwks_url=JWKS_URL, fetch=fetch or Fetch(both_jwks()), clock=clock
    )


@pytest.fixture
def verifier() -> IdTokenVerifier:
    return make_verifier()


def rejection(verifier: IdTokenVerifier, token: str | None) -> str:
    with pytest.raises(TokenRejected) as caught:
        verifier.verify(token)
    return caught.value.reason


# --- rs256 against cryptography ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_keys() -> list[rsa.RSAPrivateKey]:
    # The usual Cognito key; a small exponent (where lenient parsers are forgeable); a longer modulus that is not a
    # whole number of bytes (so signatures often start with a zero byte, and s + n still fits in the signature).
    return [
        RAW.key,
        rsa.generate_private_key(public_exponent=3, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=3076),
    ]


def public_of(key: rsa.RSAPrivateKey) -> rs256.PublicKey:
    numbers = key.public_key().public_numbers()
    return rs256.public_key(numbers.n, numbers.e)


def test_rs256_accepts_what_cryptography_signs_and_nothing_it_rejects(rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    rng = random.Random(16)  # noqa: S311 - reproducible test messages, not secrets
    for key in rsa_keys:
        public = public_of(key)
        for _ in range(12):
            message = rng.randbytes(rng.randrange(0, 600))
            signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
            assert rs256.verify(public, message, signature)
            # One flipped bit in the signature or the message: cryptography refuses it, and so must we.
            bit = rng.randrange(len(signature) * 8)
            flipped = (int.from_bytes(signature) ^ (1 << bit)).to_bytes(len(signature))
            with pytest.raises(InvalidSignature):
                key.public_key().verify(flipped, message, padding.PKCS1v15(), hashes.SHA256())
            assert not rs256.verify(public, message, flipped)
            assert not rs256.verify(public, message + b"\x00", signature)


def test_rs256_rejects_signatures_that_are_not_exactly_the_modulus_long(rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    key = rsa_keys[2]
    public = public_of(key)
    assert public.n.bit_length() % 8 != 0
    # Find a signature with a leading zero byte, which a lenient verifier would also take without it.
    for i in range(500):
        message = f"message {i}".encode()
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        if signature[0] == 0:
            break
    else:
        pytest.fail("no signature with a leading zero byte in 500 tries")
    assert rs256.verify(public, message, signature)
    assert not rs256.verify(public, message, signature[1:])
    assert not rs256.verify(public, message, b"\x00" + signature)
    # s + n is not a signature, although it is the same number modulo n.
    assert not rs256.verify(public, message, (int.from_bytes(signature) + public.n).to_bytes(public.size))


def test_rs256_rejects_other_hashes_and_padding_schemes(rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    key, message = rsa_keys[0], b"the signed input"
    public = public_of(key)
    assert not rs256.verify(public, message, key.sign(message, padding.PKCS1v15(), hashes.SHA512()))
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    assert not rs256.verify(public, message, key.sign(message, pss, hashes.SHA256()))


def integer_cube_root_ceiling(value: int) -> int:
    low, high = 0, 1 << (value.bit_length() // 3 + 2)
    while low < high:
        middle = (low + high) // 2
        if middle**3 < value:
            low = middle + 1
        else:
            high = middle
    return low


def test_a_bleichenbacher_forgery_that_fools_a_lenient_parser_does_not_verify(
    rsa_keys: list[rsa.RSAPrivateKey],
) -> None:
    # With e = 3 and a verifier that parses the padding and DigestInfo and ignores what follows the hash, anyone can
    # forge a signature: a cube root of "00 01 FF 00 DigestInfo H" followed by garbage (Bleichenbacher, 2006).
    public = public_of(rsa_keys[1])
    assert public.e == 3
    message = b"a message nobody signed"
    prefix = (
        b"\x00\x01\xff\x00" + bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(message).digest()
    )
    forged = integer_cube_root_ceiling(int.from_bytes(prefix + bytes(public.size - len(prefix))))
    cubed = (forged**3).to_bytes(public.size)
    assert forged**3 < public.n
    assert cubed.startswith(prefix), "the forgery works against a lenient parser"
    assert not rs256.verify(public, message, forged.to_bytes(public.size))


def test_short_keys_and_broken_exponents_are_refused() -> None:
    short = SHORT_KEY
    with pytest.raises(ValueError, match="1024 bits"):
        rs256.public_key_from_jwk(short)
    n = RAW.key.public_key().public_numbers().n
    for e in (1, 2, 65536, 1 << 300 | 1):
        with pytest.raises(ValueError, match="exponent"):
            rs256.public_key(n, e)
    with pytest.raises(ValueError, match="even"):
        rs256.public_key(n + 1, 65537)
    with pytest.raises(ValueError, match="bits"):
        rs256.public_key((1 << 8200) + 1, 65537)
    with pytest.raises(ValueError, match="RSA"):
        rs256.public_key_from_jwk({"kty": "EC", "kid": "k", "x": "AA", "y": "AA"})


@pytest.mark.parametrize("text", ["AAA=", "AA==", "A+/A", "A", "AAA!", "AB"])
def test_only_canonical_unpadded_base64url_decodes(text: str) -> None:
    # "AB" decodes to the same byte as "AA": the stray low bits would let a token be re-encoded and still verify.
    with pytest.raises(ValueError, match="base64url"):
        rs256.b64url_decode(text)
    assert rs256.b64url_decode("AA") == b"\x00"


# --- the token verifier ----------------------------------------------------------------------------------------


def test_a_valid_id_token_yields_its_claims_as_json_decoded_them(verifier: IdTokenVerifier) -> None:
    claims = POOL.id_claims(SUB)
    assert verifier.verify(POOL.sign(claims)) == claims
    assert verifier.verify(POOL.sign(claims))["email_verified"] is True


@functools.cache
def rest_bad_tokens() -> dict[str, str | None]:
    return bad_tokens(POOL, SUB)  # built once: each call generates an RSA key


@pytest.mark.parametrize("kind", list(rest_bad_tokens()))
def test_every_token_the_rest_authorizer_refuses_is_refused(verifier: IdTokenVerifier, kind: str) -> None:
    rejection(verifier, rest_bad_tokens()[kind])


def hs256(claims: dict[str, Any], secret: bytes) -> str:
    header = {"alg": "HS256", "typ": "JWT", "kid": POOL.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def public_pem() -> bytes:
    public = jwt.algorithms.RSAAlgorithm.from_jwk(POOL.jwks()["keys"][0])
    assert isinstance(public, rsa.RSAPublicKey)
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def with_header(token: str, **header: Any) -> str:
    """The token with its header changed and its signature kept."""
    _, payload, signature = token.split(".")
    return f"{b64(json.dumps(header).encode())}.{payload}.{signature}"


def with_signature(token: str, signature: bytes) -> str:
    return token.rsplit(".", 1)[0] + "." + b64(signature)


def flipped_signature(token: str) -> str:
    signature = bytearray(rs256.b64url_decode(token.rsplit(".", 1)[1]))
    signature[100] ^= 0x01
    return with_signature(token, bytes(signature))


def test_each_rejection_says_why(verifier: IdTokenVerifier) -> None:
    good = POOL.id_token(SUB)
    header, payload, signature = good.split(".")
    now = int(time.time())
    cases: dict[str, str | None] = {
        "no token": None,
        "no token ": "",
        "longer than 16384": good + "A" * tokens.MAX_TOKEN_CHARS,
        "three base64url parts": f"{header}.{payload}",
        "three base64url parts ": f"{good}.{signature}",
        "header is not base64url": f"{header}=.{payload}.{signature}",
        "payload is not base64url": f"{header}.{payload}!.{signature}",
        "signature is not base64url": f"{header}.{payload}.{signature}é",
        "header is not JSON": f"{b64(b'{not json')}.{payload}.{signature}",
        "header is not a JSON object": f"{b64(b'[1]')}.{payload}.{signature}",
        "'none' is not RS256": unsigned_token(POOL.id_claims(SUB)),
        "'HS256' is not RS256": hs256(POOL.id_claims(SUB), public_pem()),
        "'RS512' is not RS256": with_header(good, alg="RS512", kid=POOL.kid),
        "critical extensions": with_header(good, alg="RS256", kid=POOL.kid, crit=["exp"], exp=1),
        "no key id": with_header(good, alg="RS256"),
        "no key id ": with_header(good, alg="RS256", kid=7),
        "unknown signing key 'nope'": POOL.sign(POOL.id_claims(SUB), kid="nope"),
        "signature does not verify": flipped_signature(good),
        "signature does not verify ": with_signature(good, b"\x00" * 256),
        "payload is not JSON": RAW.token(b"not json"),
        "payload is not a JSON object": RAW.token(b'"a string"'),
        "no exp claim": POOL.sign({k: v for k, v in POOL.id_claims(SUB).items() if k != "exp"}),
        "no iat claim": POOL.sign({k: v for k, v in POOL.id_claims(SUB).items() if k != "iat"}),
        "no aud claim": POOL.id_token(SUB, aud=None),
        "no sub claim": POOL.sign({k: v for k, v in POOL.id_claims(SUB).items() if k != "sub"}),
        "token_use is None": POOL.id_token(SUB, token_use=None),
        "has expired": POOL.id_token(SUB, exp=now - 1),
        "exp is not a number": POOL.id_token(SUB, exp=str(now + 60)),
        "exp is not a number ": POOL.id_token(SUB, exp=True),
        "issued in the future": POOL.id_token(SUB, iat=now + 120),
        "not valid yet": POOL.id_token(SUB, nbf=now + 120),
        "not this pool": POOL.id_token(SUB, iss=POOL.issuer + "x"),
        "not for this app client": POOL.id_token(SUB, aud="other-client"),
        "not for this app client ": POOL.id_token(SUB, aud=["other-client", "another"]),
        "aud is neither": POOL.id_token(SUB, aud=[POOL.client_id, 7]),
        "sub is not a non-empty string": POOL.sign({**POOL.id_claims(SUB), "sub": ""}),
        "sub is not a non-empty string ": POOL.sign({**POOL.id_claims(SUB), "sub": 12}),
        "jti is not a string": POOL.id_token(SUB, jti=12),
        "token_use is 'access'": POOL.access_token(SUB),
    }
    for expected, token in cases.items():
        assert expected.strip() in rejection(verifier, token), expected


def test_values_the_caller_chose_are_cut_short_in_the_reason(verifier: IdTokenVerifier) -> None:
    # A log line stays a log line, whatever a forger puts in the header.
    reason = rejection(verifier, POOL.sign(POOL.id_claims(SUB), kid="k" * 5000))
    assert "unknown signing key 'kkk" in reason
    assert len(reason) < 80


def test_a_token_that_is_not_a_string_is_rejected(verifier: IdTokenVerifier) -> None:
    assert "not a string" in rejection(verifier, POOL.id_token(SUB).encode())  # type: ignore[arg-type]


def test_a_token_expiring_this_very_second_is_expired() -> None:
    clock = Clock()
    verifier = make_verifier(clock=clock)
    exp = int(clock.now.timestamp()) + 10
    token = POOL.id_token(SUB, exp=exp)
    clock.advance(exp - clock.now.timestamp() - 0.5)
    assert verifier.verify(token)["exp"] == exp
    clock.advance(0.5)
    assert "expired" in rejection(verifier, token)


def test_an_audience_list_naming_the_app_client_is_accepted_as_the_rest_authorizer_does(
    verifier: IdTokenVerifier,
) -> None:
    assert verifier.verify(POOL.id_token(SUB, aud=["other", POOL.client_id]))["sub"] == SUB


def test_a_past_nbf_is_fine(verifier: IdTokenVerifier) -> None:
    assert verifier.verify(POOL.id_token(SUB, nbf=int(time.time()) - 5))["sub"] == SUB


def test_a_rejection_reason_never_holds_the_token(verifier: IdTokenVerifier) -> None:
    corpus = [*rest_bad_tokens().values(), *differential_corpus().values()]
    for token in corpus:
        try:
            verifier.verify(token)
        except TokenRejected as e:
            reason = e.reason
        else:
            continue
        for part in (token or "").split("."):
            if len(part) >= 12:  # short parts ("", "abc") occur in any text
                assert part[:12] not in reason


# --- the JWKS: fetched lazily, cached, refetched rarely, failures rejected -----------------------------------------


def test_the_jwks_is_fetched_on_first_use_only_and_cached() -> None:
    fetch = Fetch(both_jwks())
    verifier = make_verifier(fetch)
    assert fetch.calls == 0
    for _ in range(3):
        verifier.verify(POOL.id_token(SUB))
    assert fetch.urls == [JWKS_URL]


def test_an_unknown_kid_refetches_at_most_once_a_minute_and_a_rotated_key_is_found() -> None:
    rotated = FakeCognitoPool(POOL.pool_id, POOL.client_id)
    fetch = Fetch(POOL.jwks(), POOL.jwks(), rotated.jwks())
    clock = Clock()
    verifier = make_verifier(fetch, clock)
    verifier.verify(POOL.id_token(SUB))
    forged = POOL.sign(POOL.id_claims(SUB), kid="attacker-kid")
    rejection(verifier, forged)
    assert fetch.calls == 1  # the first load was less than a minute ago
    clock.advance(tokens.REFETCH_SECONDS)
    for _ in range(5):
        rejection(verifier, forged)
    assert fetch.calls == 2  # one refetch for the unknown kid, then none
    clock.advance(tokens.REFETCH_SECONDS - 1)
    assert "unknown signing key" in rejection(verifier, rotated.id_token(SUB))
    assert fetch.calls == 2
    clock.advance(1)
    assert verifier.verify(rotated.id_token(SUB))["sub"] == SUB
    assert fetch.calls == 3


def test_a_clock_set_back_does_not_block_refetching() -> None:
    rotated = FakeCognitoPool(POOL.pool_id, POOL.client_id)
    fetch = Fetch(POOL.jwks(), rotated.jwks())
    clock = Clock()
    verifier = make_verifier(fetch, clock)
    verifier.verify(POOL.id_token(SUB))
    clock.advance(-3600)
    clock_back_token = rotated.sign(rotated.id_claims(SUB, iat=int(clock.now.timestamp())))
    assert verifier.verify(clock_back_token)["sub"] == SUB


def test_an_unreachable_jwks_rejects_the_token_and_logs_the_failure_without_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    verifier = make_verifier(Fetch(OSError("connection refused")))
    token = POOL.id_token(SUB)
    assert "JWKS fetch failed" in rejection(verifier, token)
    out = capsys.readouterr().out
    logged = json.loads(out)
    assert logged["type"] == "jwks_fetch_failed"
    assert logged["url"] == JWKS_URL
    assert "connection refused" in logged["error"]
    for part in token.split("."):
        assert part not in out


def test_a_failed_first_fetch_is_retried_after_a_few_seconds_not_on_every_connect() -> None:
    fetch = Fetch(TimeoutError("timed out"), both_jwks())
    clock = Clock()
    verifier = make_verifier(fetch, clock)
    for _ in range(3):
        rejection(verifier, POOL.id_token(SUB))
    assert fetch.calls == 1
    clock.advance(tokens.RETRY_FIRST_FETCH_SECONDS)
    assert verifier.verify(POOL.id_token(SUB))["sub"] == SUB
    assert fetch.calls == 2


def test_a_failed_refetch_keeps_the_keys_already_known() -> None:
    fetch = Fetch(POOL.jwks(), OSError("down"))
    clock = Clock()
    verifier = make_verifier(fetch, clock)
    verifier.verify(POOL.id_token(SUB))
    clock.advance(tokens.REFETCH_SECONDS)
    assert "unknown signing key" in rejection(verifier, POOL.sign(POOL.id_claims(SUB), kid="new-kid"))
    assert fetch.calls == 2
    assert verifier.verify(POOL.id_token(SUB))["sub"] == SUB


@pytest.mark.parametrize(
    "document",
    [
        b"<html>not json</html>",
        b"[]",
        {"keys": "none"},
        {"keys": []},
        {"keys": [SHORT_KEY]},  # a 1024-bit key is not trusted, even from the pool's own URL
        {"keys": [{**POOL.jwks()["keys"][0], "use": "enc"}]},
        {"keys": [{**POOL.jwks()["keys"][0], "alg": "RS512"}]},
        {"keys": [{"kty": "oct", "kid": POOL.kid, "k": b64(public_pem())}]},
        {"keys": [{**POOL.jwks()["keys"][0], "n": "not base64!"}]},
    ],
    ids=["html", "array", "keys-not-a-list", "empty", "short-key", "enc-key", "rs512-key", "hmac-key", "bad-n"],
)
def test_a_jwks_without_a_usable_key_rejects_every_token(document: dict[str, Any] | bytes) -> None:
    verifier = make_verifier(Fetch(document))
    assert "JWKS fetch failed" in rejection(verifier, POOL.id_token(SUB))


def test_usable_keys_are_kept_beside_unusable_ones() -> None:
    verifier = make_verifier(Fetch({"keys": [SHORT_KEY, {"kty": "RSA"}, "junk", *POOL.jwks()["keys"]]}))
    assert verifier.verify(POOL.id_token(SUB))["sub"] == SUB


class FakeResponse:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def read(self, limit: int) -> bytes:
        return self.body[:limit]

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def test_the_default_fetch_is_a_short_urllib_get_with_a_size_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[str, float]] = []
    body = json.dumps(POOL.jwks()).encode()

    def urlopen(request: Any, timeout: float) -> FakeResponse:
        opened.append((request.full_url, timeout))
        return FakeResponse(body)

    monkeypatch.setattr(tokens.urllib.request, "urlopen", urlopen)
    verifier = IdTokenVerifier(issuer=POOL.issuer, audience=POOL.client_id, jwks_url=JWKS_URL)
    assert verifier.verify(POOL.id_token(SUB))["sub"] == SUB
    assert opened == [(JWKS_URL, tokens.FETCH_TIMEOUT_SECONDS)]

    body = b" " * (tokens.MAX_JWKS_BYTES + 1)
    with pytest.raises(ValueError, match="larger than"):
        tokens.http_get(JWKS_URL)


def test_the_default_fetch_opens_only_http_urls() -> None:
    with pytest.raises(ValueError, match="http"):
        tokens.http_get("file:///etc/passwd")


def test_the_verifier_needs_its_settings() -> None:
    with pytest.raises(ValueError, match="audience"):
        IdTokenVerifier(issuer=POOL.issuer, audience="", jwks_url=JWKS_URL)


# --- the same verdicts as the dev stack's PyJWT verifier ---------------------------------------------------------


@functools.cache
def differential_corpus() -> dict[str, str]:
    good = POOL.id_token(SUB)
    claims = POOL.id_claims(SUB)
    header, _, signature = good.split(".")
    now = int(time.time())
    stranger = FakeCognitoPool(POOL.pool_id, POOL.client_id)
    return {
        "valid": good,
        "valid_aud_list": POOL.id_token(SUB, aud=[POOL.client_id, "other"]),
        "valid_nbf_past": POOL.id_token(SUB, nbf=now - 10),
        "valid_minimal": POOL.sign({k: claims[k] for k in ("sub", "aud", "iss", "exp", "iat", "token_use")}),
        "altered_payload": f"{header}.{b64(json.dumps({**claims, 'sub': 'mallory'}).encode())}.{signature}",
        "altered_signature": flipped_signature(good),
        "zero_signature": with_signature(good, b"\x00" * 256),
        "truncated_signature": with_signature(good, rs256.b64url_decode(signature)[1:]),
        "other_key_same_kid": stranger.sign(claims, kid=POOL.kid),
        "other_key_own_kid": stranger.id_token(SUB),
        "expired": POOL.id_token(SUB, exp=now - 30, iat=now - 3630),
        "wrong_aud": POOL.id_token(SUB, aud="someone-elses-client"),
        "empty_aud": POOL.id_token(SUB, aud=""),
        "wrong_iss": POOL.id_token(SUB, iss=f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_Other"),
        "token_use_access": POOL.id_token(SUB, token_use="access"),
        "access_token": POOL.access_token(SUB),
        "alg_none": unsigned_token(claims),
        "alg_none_with_kid_and_signature": with_header(good, alg="none", kid=POOL.kid),
        "hs256_public_pem_as_secret": hs256(claims, public_pem()),
        "hs256_jwk_as_secret": hs256(claims, json.dumps(POOL.jwks()["keys"][0]).encode()),
        "rs512_header": with_header(good, alg="RS512", kid=POOL.kid),
        "missing_kid": with_header(good, alg="RS256", typ="JWT"),
        "unknown_kid": POOL.sign(claims, kid="no-such-kid"),
        "iat_future": POOL.id_token(SUB, iat=now + 300),
        "nbf_future": POOL.id_token(SUB, nbf=now + 300),
        "no_iat": POOL.sign({k: v for k, v in claims.items() if k != "iat"}),
        "no_exp": POOL.sign({k: v for k, v in claims.items() if k != "exp"}),
        "no_sub": POOL.sign({k: v for k, v in claims.items() if k != "sub"}),
        "empty_sub": POOL.sign({**claims, "sub": ""}),
        "null_token_use": POOL.id_token(SUB, token_use=None),
        "two_parts": good.rsplit(".", 1)[0],
        "four_parts": good + ".AAAA",
        "garbage": "abc.def.ghi",
    }


def verdict(verify: Any, token: str) -> tuple[bool, dict[str, str] | None]:
    try:
        claims = verify(token)
    except (TokenRejected, DevstackRejected):
        return False, None
    return True, {name: _as_api_gateway_string(value) for name, value in claims.items()}


def test_the_same_verdict_and_claims_as_the_dev_stack_verifier_on_every_token() -> None:
    ours = make_verifier()
    reference = CognitoIdTokenVerifier(issuer=POOL.issuer, audiences=[POOL.client_id], jwks=StaticJwks(POOL.jwks()))
    corpus = differential_corpus()
    verdicts = {}
    for name, token in corpus.items():
        verdicts[name] = verdict(ours.verify, token)
        assert verdicts[name] == verdict(reference.verify, token), name
    # The corpus is not all one verdict: the accepted tokens are exactly the valid ones.
    assert {name for name, (accepted, _) in verdicts.items() if accepted} == {
        name for name in corpus if name.startswith("valid")
    }


# --- real tokens from moto's Cognito -------------------------------------------------------------------------------


def test_tokens_issued_by_motos_cognito_verify_against_its_jwks() -> None:
    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name=REGION)
        pool_id = cognito.create_user_pool(PoolName="ws")["UserPool"]["Id"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id, ClientName="spa", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
        )["UserPoolClient"]["ClientId"]
        cognito.admin_create_user(UserPoolId=pool_id, Username="ann", MessageAction="SUPPRESS")
        cognito.admin_set_user_password(UserPoolId=pool_id, Username="ann", Password="Passw0rd!x", Permanent=True)
        result = cognito.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "ann", "PASSWORD": "Passw0rd!x"},
        )["AuthenticationResult"]
        attributes = cognito.admin_get_user(UserPoolId=pool_id, Username="ann")["UserAttributes"]
        sub = next(a["Value"] for a in attributes if a["Name"] == "sub")
        # moto serves the pool's JWKS at Cognito's own URL, to `requests` (which it intercepts) rather than urllib.
        jwks_url = f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}/.well-known/jwks.json"
        fetched: list[str] = []

        def fetch(url: str, timeout: float = 2.0) -> bytes:
            fetched.append(url)
            return requests.get(url, timeout=timeout).content

        ours = IdTokenVerifier(
            issuer=cognito_issuer(REGION, pool_id), audience=client_id, jwks_url=jwks_url, fetch=fetch
        )
        reference = CognitoIdTokenVerifier(
            issuer=cognito_issuer(REGION, pool_id), audiences=[client_id], jwks=HttpJwks(jwks_url, fetch=fetch)
        )
        claims = ours.verify(result["IdToken"])
        assert claims["sub"] == sub
        assert claims["cognito:username"] == "ann"
        assert verdict(ours.verify, result["IdToken"]) == verdict(reference.verify, result["IdToken"])
        assert "token_use is 'access'" in rejection(ours, result["AccessToken"])
        assert fetched[0] == jwks_url


# --- what the module may import --------------------------------------------------------------------------------


def test_the_verifier_loads_nothing_but_the_standard_library_and_chalicelib() -> None:
    # Whatever the interpreter loaded before (site's .pth hooks) is not the module's doing.
    probe = (
        "import sys, sysconfig\n"
        "before = set(sys.modules)\n"
        "import chalicelib.realtime.tokens\n"
        "site = sysconfig.get_paths()['purelib']\n"
        "loaded = [sys.modules[name] for name in set(sys.modules) - before]\n"
        "print(sorted(m.__name__ for m in loaded if (getattr(m, '__file__', None) or '').startswith(site)))"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", "no third-party (so no native, no PyJWT, no cryptography) module"
