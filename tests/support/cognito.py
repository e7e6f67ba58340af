"""Tokens built the way Cognito builds them, and every kind of bad token API Gateway turns away.

`FakeCognitoPool` signs with an RSA key generated for the test run; the verifier under test trusts its JWKS.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

REGION = "us-east-1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakeCognitoPool:
    def __init__(self, pool_id: str = "us-east-1_TestPool", client_id: str = "testspaclient") -> None:
        self.pool_id = pool_id
        self.client_id = client_id
        self.issuer = f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}"
        self.arn = f"arn:aws:cognito-idp:{REGION}:123456789012:userpool/{pool_id}"
        self.kid = f"kid-{uuid.uuid4().hex[:8]}"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": kid or self.kid})

    def id_claims(self, sub: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "sub": sub,
            "aud": self.client_id,
            "email_verified": True,
            "event_id": str(uuid.uuid4()),
            "token_use": "id",
            "auth_time": now,
            "iss": self.issuer,
            "cognito:username": f"user-{sub[:8]}",
            "exp": now + 3600,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "origin_jti": str(uuid.uuid4()),
            "email": f"{sub[:8]}@example.test",
        }
        claims.update(overrides)
        return claims

    def id_token(self, sub: str | None = None, **overrides: Any) -> str:
        return self.sign(self.id_claims(sub or str(uuid.uuid4()), **overrides))

    def access_token(self, sub: str) -> str:
        now = int(time.time())
        return self.sign(
            {
                "sub": sub,
                "token_use": "access",
                "scope": "aws.cognito.signin.user.admin",
                "auth_time": now,
                "iss": self.issuer,
                "exp": now + 3600,
                "iat": now,
                "jti": str(uuid.uuid4()),
                "client_id": self.client_id,
                "username": f"user-{sub[:8]}",
            }
        )


def unsigned_token(claims: dict[str, Any]) -> str:
    """`alg: none`, the classic forgery."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def bad_tokens(pool: FakeCognitoPool, sub: str) -> dict[str, str | None]:
    """Every kind of token that must get 401, by name (None means no Authorization header at all)."""
    stranger = FakeCognitoPool(pool.pool_id, pool.client_id)  # same ids, different key
    good_claims = pool.id_claims(sub)
    forged_hs256 = jwt.encode(good_claims, "not-the-pool-key-but-long-enough-for-hmac", algorithm="HS256")
    header, _payload, _ = pool.id_token(sub).split(".")
    tampered_payload = _b64(json.dumps({**good_claims, "sub": "someone-else"}).encode())
    return {
        "missing": None,
        "empty": "",
        "no_dots": "garbage",
        "garbage_segments": "abc.def.ghi",
        "bearer_only": "Bearer ",
        "alg_none": unsigned_token(good_claims),
        "hs256_forgery": forged_hs256,
        "wrong_key": stranger.sign(good_claims, kid=pool.kid),
        "unknown_kid": pool.sign(good_claims, kid="no-such-kid"),
        "tampered_payload": f"{header}.{tampered_payload}.{pool.id_token(sub).split('.')[2]}",
        "expired": pool.id_token(sub, exp=int(time.time()) - 60, iat=int(time.time()) - 3660),
        "wrong_issuer": pool.id_token(sub, iss=f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_Other"),
        "wrong_audience": pool.id_token(sub, aud="some-other-client"),
        "access_token": pool.access_token(sub),
        "no_sub": pool.sign({k: v for k, v in good_claims.items() if k != "sub"}),
    }


TokenFactory = Callable[[], str]
