"""ECDSA over NIST P-256 with SHA-256, signing only, in pure Python: what CloudFront's signed URLs need.

Why not `cryptography`: the API Lambda ships no native code (its zip is built for arm64 by Chalice, which only
knows x86_64 wheels) and its cold path stays lean; importing `cryptography`'s EC module costs about 27 ms of CPU
where this module costs under 1 ms. The API signs rarely: one signature per user and prefix per URL window,
one per shared photo per window, memoised (chalicelib/media.py), so a pure-Python signature is affordable:
about 2 ms with the small table every container starts with, about 0.4 ms once it has built the fixed-base
table (done lazily, after a few signatures, when the container has shown it signs a lot).

Hardening, since Python's integers are not constant-time: the nonce is RFC 6979's (deterministic: no random
number generator to fail, and byte-identical to OpenSSL's deterministic ECDSA, which the tests check), and the
scalar multiplication does the same sequence of point operations whatever the nonce's digits.
"""

from __future__ import annotations

import hashlib
import hmac
import threading

# The curve (SEC 2, FIPS 186-4 D.1.2.3): y^2 = x^3 - 3x + b over GF(P), generator G of prime order N.
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

_Jacobian = tuple[int, int, int]  # (X, Y, Z) stands for (X/Z^2, Y/Z^3); Z = 0 is the point at infinity
_Affine = tuple[int, int]
_INFINITY: _Jacobian = (0, 1, 0)
_NIBBLES = 64  # a 256-bit scalar in 4-bit digits
# Signatures a container makes with the small table before building the fixed-base one (~30 ms, once).
_COMB_AFTER = 8


def _double(point: _Jacobian) -> _Jacobian:
    x, y, z = point
    if z == 0 or y == 0:
        return _INFINITY
    yy = y * y % P
    s = 4 * x * yy % P
    zz = z * z % P
    m = 3 * (x - zz) * (x + zz) % P  # a = -3
    x3 = (m * m - 2 * s) % P
    return x3, (m * (s - x3) - 8 * yy * yy) % P, 2 * y * z % P


def _add_affine(point: _Jacobian, other: _Affine) -> _Jacobian:
    x1, y1, z1 = point
    x2, y2 = other
    if z1 == 0:
        return x2, y2, 1
    z1z1 = z1 * z1 % P
    h = (x2 * z1z1 - x1) % P
    r = (y2 * z1 * z1z1 - y1) % P
    if h == 0:
        return _double(point) if r == 0 else _INFINITY
    hh = h * h % P
    hhh = h * hh % P
    v = x1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    return x3, (r * (v - x3) - y1 * hhh) % P, z1 * h % P


def _to_affine(point: _Jacobian) -> _Affine:
    x, y, z = point
    if z == 0:
        raise ValueError("the point at infinity has no affine coordinates")
    zi = pow(z, -1, P)
    zi2 = zi * zi % P
    return x * zi2 % P, y * zi2 * zi % P


def _multiples(base: _Affine) -> list[_Affine]:
    """[base, 2 base, ..., 15 base]."""
    out = [base]
    acc: _Jacobian = (base[0], base[1], 1)
    for _ in range(14):
        acc = _add_affine(acc, base)
        out.append(_to_affine(acc))
    return out


class _Tables:
    """The precomputed multiples of G, built on first use (never at import: the cold path pays nothing)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._small: list[_Affine] | None = None
        self._comb: list[list[_Affine]] | None = None
        self.signatures = 0

    def small(self) -> list[_Affine]:
        with self._lock:
            if self._small is None:
                self._small = _multiples((GX, GY))
            return self._small

    def comb(self) -> list[list[_Affine]] | None:
        """Row i holds [1..15] * 16^i * G, once the container has signed enough to be worth building it."""
        with self._lock:
            if self._comb is None and self.signatures >= _COMB_AFTER:
                rows, base = [], (GX, GY)
                for _ in range(_NIBBLES):
                    rows.append(_multiples(base))
                    point: _Jacobian = (base[0], base[1], 1)
                    for _ in range(4):
                        point = _double(point)
                    base = _to_affine(point)
                self._comb = rows
            return self._comb


_tables = _Tables()


def _digits(k: int) -> list[int]:
    return [(k >> (4 * i)) & 15 for i in range(_NIBBLES)]


def multiply_g(k: int) -> _Affine:
    """k * G for 0 < k < N. A zero digit still costs an addition (its result discarded), so the work done is
    the same for every scalar."""
    comb = _tables.comb()
    acc, dummy = _INFINITY, _INFINITY
    if comb is not None:
        for row, digit in zip(comb, _digits(k), strict=True):
            if digit:
                acc = _add_affine(acc, row[digit - 1])
            else:
                dummy = _add_affine(dummy, row[0])
        return _to_affine(acc)
    small = _tables.small()
    for digit in reversed(_digits(k)):
        for _ in range(4):
            acc = _double(acc)
        if digit:
            acc = _add_affine(acc, small[digit - 1])
        else:
            dummy = _add_affine(dummy, small[0])
    return _to_affine(acc)


def _rfc6979_nonce(secret: int, digest: bytes) -> int:
    """RFC 6979 section 3.2 with HMAC-SHA256, for a 256-bit order (so one HMAC block per candidate)."""
    x = secret.to_bytes(32, "big")
    h = (int.from_bytes(digest, "big") % N).to_bytes(32, "big")
    v, k = b"\x01" * 32, b"\x00" * 32
    k = hmac.new(k, v + b"\x00" + x + h, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    k = hmac.new(k, v + b"\x01" + x + h, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    while True:
        v = hmac.new(k, v, hashlib.sha256).digest()
        candidate = int.from_bytes(v, "big")
        if 1 <= candidate < N:
            return candidate
        k = hmac.new(k, v + b"\x00", hashlib.sha256).digest()
        v = hmac.new(k, v, hashlib.sha256).digest()


def _der_integer(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 8) // 8, "big")  # one spare bit: a leading 0x00 if the top bit is set
    return b"\x02" + bytes([len(body)]) + body


def sign(secret: int, message: bytes) -> bytes:
    """The DER-encoded ECDSA signature (r, s) of SHA-256(message), as OpenSSL writes it."""
    if not 0 < secret < N:
        raise ValueError("not a P-256 private key")
    digest = hashlib.sha256(message).digest()
    e = int.from_bytes(digest, "big")
    k = _rfc6979_nonce(secret, digest)
    r = multiply_g(k)[0] % N
    s = pow(k, -1, N) * (e + r * secret) % N
    # r or s of 0 happens with probability about 2^-256; RFC 6979 would continue with the next candidate nonce.
    if r == 0 or s == 0:
        raise ValueError("degenerate signature")
    with _tables._lock:
        _tables.signatures += 1
    body = _der_integer(r) + _der_integer(s)
    return b"\x30" + bytes([len(body)]) + body


# --- private keys as operators have them: PEM, SEC 1 ("EC PRIVATE KEY") or PKCS #8 ("PRIVATE KEY") ---------------

_EC_PUBLIC_KEY_OID = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1
_P256_OID = bytes.fromhex("2a8648ce3d030107")  # 1.2.840.10045.3.1.7 (prime256v1)


def _tlv(data: bytes, at: int) -> tuple[int, bytes, int]:
    """One DER element at `at`: (tag, contents, offset after it)."""
    if at + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length, at = data[at], data[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 3 or at + count > len(data):
            raise ValueError("bad DER length")
        length, at = int.from_bytes(data[at : at + count], "big"), at + count
    if at + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[at : at + length], at + length


def _children(contents: bytes) -> list[tuple[int, bytes]]:
    out, at = [], 0
    while at < len(contents):
        tag, body, at = _tlv(contents, at)
        out.append((tag, body))
    return out


def _sec1_secret(der: bytes, *, curve_known: bool) -> int:
    tag, body, _ = _tlv(der, 0)
    fields = _children(body) if tag == 0x30 else []
    if len(fields) < 2 or fields[0] != (0x02, b"\x01") or fields[1][0] != 0x04:
        raise ValueError("not an EC private key")
    parameters = [body for tag, body in fields[2:] if tag == 0xA0]
    if parameters:
        inner = _children(parameters[0])
        if inner != [(0x06, _P256_OID)]:
            raise ValueError("the EC key is not on P-256")
    elif not curve_known:
        raise ValueError("the EC key does not name its curve")
    secret = int.from_bytes(fields[1][1], "big")
    if not 0 < secret < N:
        raise ValueError("the EC private key is out of range")
    return secret


def private_key_from_pem(pem: str) -> int:
    """The secret scalar of a P-256 private key in PEM (SEC 1 or unencrypted PKCS #8); ValueError otherwise."""
    import base64  # (only when a key is loaded)

    lines = [line.strip() for line in pem.strip().splitlines() if line.strip()]
    if len(lines) < 3 or not lines[0].startswith("-----BEGIN ") or not lines[-1].startswith("-----END "):
        raise ValueError("not a PEM block")
    label = lines[0][len("-----BEGIN ") :].rstrip("-")
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        raise ValueError("the PEM body is not base64") from None
    if label == "EC PRIVATE KEY":
        return _sec1_secret(der, curve_known=False)
    if label == "PRIVATE KEY":
        tag, body, _ = _tlv(der, 0)
        fields = _children(body) if tag == 0x30 else []
        if len(fields) < 3 or fields[0] != (0x02, b"\x00") or fields[1][0] != 0x30 or fields[2][0] != 0x04:
            raise ValueError("not a PKCS #8 private key")
        if _children(fields[1][1]) != [(0x06, _EC_PUBLIC_KEY_OID), (0x06, _P256_OID)]:
            raise ValueError("not a P-256 EC key (CloudFront signs with RSA 2048 or ECDSA P-256; PhotoSky uses P-256)")
        return _sec1_secret(fields[2][1], curve_known=True)
    raise ValueError(f"a PEM {label!r} is not a private key PhotoSky can sign with (EC PRIVATE KEY or PRIVATE KEY)")


def on_curve(point: _Affine) -> bool:
    x, y = point
    return (y * y - (x * x * x - 3 * x + B)) % P == 0
