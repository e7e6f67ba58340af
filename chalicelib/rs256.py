"""RSASSA-PKCS1-v1_5 with SHA-256 ("RS256", RFC 8017 section 8.2.2), verification only, in pure Python.

What the WebSocket connect needs to check a Cognito ID token: the Lambda ships no native code (see p256.py), and
verifying costs one modular exponentiation with a small public exponent, well under a millisecond with `pow`.

The check is the one RFC 8017 recommends: build the whole expected encoded message EM' = 0x00 01 FF..FF 00 ||
DigestInfo(SHA-256) || H and compare it, byte for byte, with the signature raised to e. Nothing is parsed out of
the decrypted block, so the classic lenient-parser forgeries (Bleichenbacher 2006: short padding, garbage after the
hash or inside the ASN.1) have nothing to exploit, whatever the exponent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# DER of DigestInfo { AlgorithmIdentifier { id-sha256, NULL }, OCTET STRING (32 bytes) }, before the hash itself
# (RFC 8017 section 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
# Below 2048 bits RSA is no longer considered safe (NIST SP 800-131A); Cognito signs with 2048-bit keys. The upper
# bound only keeps a hostile or broken JWKS from making each verification arbitrarily slow.
MIN_MODULUS_BITS = 2048
MAX_MODULUS_BITS = 8192
# FIPS 186-5 wants 2^16 < e < 2^256; small odd exponents (3, 17) are still sound with a full-EM comparison, so
# only the mathematically broken (e < 3, even) and the absurdly large are refused.
MAX_EXPONENT_BITS = 256

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*\Z")


@dataclass(frozen=True)
class PublicKey:
    n: int
    e: int

    @property
    def size(self) -> int:
        """The modulus's length in bytes: every signature and encoded message has exactly this length."""
        return (self.n.bit_length() + 7) // 8


def public_key(n: int, e: int) -> PublicKey:
    """A public key fit for verification; ValueError for one that is too short, too long or malformed."""
    if not MIN_MODULUS_BITS <= n.bit_length() <= MAX_MODULUS_BITS:
        raise ValueError(
            f"RSA modulus of {n.bit_length()} bits (RS256 needs {MIN_MODULUS_BITS} to {MAX_MODULUS_BITS} bits)"
        )
    if n % 2 == 0:
        raise ValueError("RSA modulus is even")
    if e < 3 or e % 2 == 0 or e.bit_length() > MAX_EXPONENT_BITS:
        raise ValueError(f"RSA public exponent {e} is not an odd number from 3 to 2^{MAX_EXPONENT_BITS}")
    return PublicKey(n=n, e=e)


def public_key_from_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """The RSA public key in a JWK (RFC 7518 section 6.3.1: `kty` RSA, `n` and `e` base64url); ValueError otherwise."""
    if jwk.get("kty") != "RSA":
        raise ValueError(f"JWK key type {jwk.get('kty')!r} is not RSA")
    n, e = jwk.get("n"), jwk.get("e")
    if not isinstance(n, str) or not isinstance(e, str):
        raise ValueError("RSA JWK without string members n and e")
    return public_key(int.from_bytes(b64url_decode(n), "big"), int.from_bytes(b64url_decode(e), "big"))


def b64url_decode(text: str) -> bytes:
    """Unpadded base64url (RFC 7515 section 2), decoded only if it is the canonical encoding of its bytes: no
    padding, no characters outside the alphabet, no stray bits in the last character. ValueError otherwise."""
    if not _BASE64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as e:
        raise ValueError("not unpadded base64url") from e
    # One string per byte string: otherwise a token could be re-encoded (low bits flipped) and still verify.
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != text:
        raise ValueError("not canonical base64url")
    return data


def _expected_encoding(message: bytes, size: int) -> bytes:
    """EMSA-PKCS1-v1_5-ENCODE(message, size) for SHA-256 (RFC 8017 section 9.2)."""
    t = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    # size >= 256 (MIN_MODULUS_BITS), so the padding is always far longer than the 8 bytes the RFC requires.
    return b"\x00\x01" + b"\xff" * (size - len(t) - 3) + b"\x00" + t


def verify(key: PublicKey, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is key's RS256 signature of `message`."""
    # The signature is an octet string exactly as long as the modulus (RFC 8017 section 8.2.2 step 1): a shorter
    # one (leading zeros dropped) or a longer one is malformed, not a number to be interpreted leniently.
    if len(signature) != key.size:
        return False
    s = int.from_bytes(signature, "big")
    if s >= key.n:
        return False
    encoded = pow(s, key.e, key.n).to_bytes(key.size, "big")
    return hmac.compare_digest(encoded, _expected_encoding(message, key.size))
