"""Media signing keys and a verifier for tests: `cryptography` (a dev dependency) checks what chalicelib/p256.py
signs, so the production signer is never its own judge."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

_UNSAFE = str.maketrans("-_~", "+=/")


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_pem(key: ec.EllipticCurvePrivateKey, *, pkcs8: bool = True) -> str:
    fmt = serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def media_key_json(key: ec.EllipticCurvePrivateKey, key_pair_id: str = "KTESTKEY000001") -> str:
    return json.dumps({"key_pair_id": key_pair_id, "private_key": private_pem(key)})


def new_media_key_json(key_pair_id: str = "KTESTKEY000001") -> str:
    return media_key_json(new_private_key(), key_pair_id)


def public_key_of(key_json: str) -> ec.EllipticCurvePublicKey:
    pem = json.loads(key_json)["private_key"].encode()
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    return private.public_key()


def cloudfront_b64decode(text: str) -> bytes:
    return base64.b64decode(text.translate(_UNSAFE))


def signed_policy(url: str, public_key: ec.EllipticCurvePublicKey) -> dict:
    """The policy of a signed URL, after checking its signature (InvalidSignature if it does not verify)."""
    query = parse_qs(urlsplit(url).query)
    assert query["Hash-Algorithm"] == ["SHA256"]
    policy = cloudfront_b64decode(query["Policy"][0])
    public_key.verify(cloudfront_b64decode(query["Signature"][0]), policy, ec.ECDSA(hashes.SHA256()))
    return json.loads(policy)
