"""The dev stack's media endpoint: what CloudFront does for `/previews/*` and `/originals/*` in AWS.

In AWS those two behaviours of the SPA's distribution require CloudFront signed URLs from a trusted key group and
read the private photo bucket through an origin access control (the API signs: chalicelib/media.py). Here one
small HTTP server on 127.0.0.1 plays both parts against the emulated S3, so the API's signed URLs are checked the way
CloudFront checks them, not merely accepted:

- a custom policy (`Policy`, `Signature`, `Key-Pair-Id`, optional `Hash-Algorithm=SHA256|SHA1`) or a canned one
  (`Expires`, `Signature`, `Key-Pair-Id`); ECDSA P-256 and RSA 2048 public keys, as CloudFront accepts;
- the signature over the policy's exact bytes, `DateLessThan` (expired at or after it), `DateGreaterThan`,
  `IpAddress`, and the `Resource` against the requested URL (scheme, host, path and the query string without the
  signing parameters), with CloudFront's wildcards (`*` any run of characters, `?` one);
- every refusal is a 403 with a CloudFront-like XML body and `Cache-Control: no-store`; a path outside the two
  behaviours is a 403 too, and so is a missing object (S3 answers AccessDenied to an OAC that may not list).

A URL that passes is served from the bucket with the object's own Content-Type, Cache-Control, ETag, Last-Modified
and Content-Length; S3's `response-*` overrides (the API sets `response-content-disposition` on originals) are
honoured as S3 honours them on a signed request, and `If-None-Match` / `If-Modified-Since` get a 304.

The query string of a media URL is a credential: nothing here logs it (paths and reasons only).
"""

from __future__ import annotations

import base64
import binascii
import collections
import email.message
import email.utils
import ipaddress
import json
import logging
import re
import secrets
import string
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from devstack.serving import DevServer
from devstack.web import SECURITY_HEADERS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient

log = logging.getLogger(__name__)

# The behaviours that reach the photo bucket; CloudFront answers anything else from elsewhere (here: 403).
MEDIA_PREFIXES = ("/previews/", "/originals/")
# Query parameters CloudFront reads as the signature and removes before it compares the URL with the policy.
SIGNING_PARAMETERS = frozenset({"Policy", "Signature", "Key-Pair-Id", "Expires", "Hash-Algorithm"})
HASH_ALGORITHMS: dict[str, Callable[[], hashes.HashAlgorithm]] = {"SHA1": hashes.SHA1, "SHA256": hashes.SHA256}
# Hash-Algorithm absent: CloudFront's original scheme, SHA-1.
DEFAULT_HASH_ALGORITHM = "SHA1"
# A CloudFront key group holds at most this many public keys (a quota that cannot be raised).
KEY_GROUP_MAX_KEYS = 5
# CloudFront public key ids: `K` and 13 upper-case letters and digits (e.g. K2JCJMDEHXQW5F).
KEY_PAIR_ID_ALPHABET = string.ascii_uppercase + string.digits
KEY_PAIR_ID_LENGTH = 14
# S3's overrides of response headers on a signed GET; query parameter -> header.
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
# Per-path request counts go out in this header: a test outside the process can tell whether a browser's second
# visit reached the network (the count moved) or was served from its HTTP cache (it did not).
REQUEST_COUNT_HEADER = "X-Devstack-Path-Requests"
_CHUNK_BYTES = 64 * 1024
# CloudFront-safe base64 (`+`, `=`, `/` are not URL-safe): the three characters it swaps.
_FROM_CLOUDFRONT_SAFE = str.maketrans("-_~", "+=/")
_QUERY = re.compile(r"\?[^\s'\"]*")


# --- keys ----------------------------------------------------------------------------------------------------------


def new_key_pair_id() -> str:
    return "K" + "".join(secrets.choice(KEY_PAIR_ID_ALPHABET) for _ in range(KEY_PAIR_ID_LENGTH - 1))


@dataclass(frozen=True)
class SigningKey:
    """A key pair as CloudFront uses it: the private half signs (the API), the public half is trusted (here)."""

    key_pair_id: str
    private_key_pem: str
    public_key_pem: str

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh ECDSA P-256 key pair (what the API signs with: short signatures, fast to make)."""
        private_key = ec.generate_private_key(ec.SECP256R1())
        private_pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        public_pem = (
            private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        return cls(new_key_pair_id(), private_pem, public_pem)

    def secret_string(self) -> str:
        """The SecretString the API reads (PHOTOSKY_MEDIA_KEY_SECRET_ARN): `{"key_pair_id", "private_key"}`."""
        return json.dumps({"key_pair_id": self.key_pair_id, "private_key": self.private_key_pem})


def store_signing_key(secretsmanager: SecretsManagerClient, name: str, key: SigningKey) -> str:
    """Put the key in a Secrets Manager secret, as an operator does in AWS; returns the secret's ARN."""
    return secretsmanager.create_secret(
        Name=name, SecretString=key.secret_string(), Description="PhotoSky media URL signing key"
    )["ARN"]


PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def load_public_key(public_pem: str | bytes) -> PublicKey:
    """A public key CloudFront would accept in a key group: ECDSA P-256 or RSA 2048 (anything else: ValueError)."""
    key = serialization.load_pem_public_key(public_pem.encode() if isinstance(public_pem, str) else public_pem)
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048:
        return key
    raise ValueError("CloudFront accepts ECDSA P-256 and RSA 2048 public keys only")


class TrustedKeyGroup:
    """The key group the media behaviours trust: key pair id -> public key. Rotation keeps two for a while."""

    def __init__(self) -> None:
        self._keys: dict[str, PublicKey] = {}
        self._lock = threading.Lock()

    def trust(self, key_id: str, public_pem: str | bytes) -> None:
        key = load_public_key(public_pem)
        with self._lock:
            if key_id not in self._keys and len(self._keys) >= KEY_GROUP_MAX_KEYS:
                raise ValueError(f"a key group holds at most {KEY_GROUP_MAX_KEYS} public keys")
            self._keys[key_id] = key

    def distrust(self, key_id: str) -> None:
        with self._lock:
            self._keys.pop(key_id, None)

    def get(self, key_id: str) -> PublicKey | None:
        with self._lock:
            return self._keys.get(key_id)

    def key_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._keys)


# --- the signed URL check -------------------------------------------------------------------------------------------


class Refused(Exception):
    """A request CloudFront would refuse: `code` and `message` go to the client, `reason` only to the log."""

    def __init__(self, code: str, message: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.message = message
        self.reason = reason


def _access_denied(reason: str) -> Refused:
    return Refused("AccessDenied", "Access denied", reason)


def _malformed(reason: str) -> Refused:
    return Refused("MalformedPolicy", "Malformed Policy", reason)


def _cloudfront_b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.translate(_FROM_CLOUDFRONT_SAFE), validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(f"{what} is not CloudFront-safe base64") from None


def canned_policy(resource: str, expires: int) -> bytes:
    """The policy statement a canned-policy signature covers (CloudFront rebuilds it from the URL and Expires)."""
    return json.dumps(
        {"Statement": [{"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}]},
        separators=(",", ":"),
    ).encode()


def resource_matches(resource: str, url: str) -> bool:
    """CloudFront's wildcard match of a policy's Resource: `*` any run of characters (none too), `?` exactly one;
    everything else literally and case-sensitively."""
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in resource)
    return re.fullmatch(pattern, url, flags=re.DOTALL) is not None


def split_query(raw_query: str) -> tuple[dict[str, str], list[str]]:
    """(signing parameters by name, the other parameters as sent, in order). A signing parameter twice is refused."""
    signing: dict[str, str] = {}
    others: list[str] = []
    for part in raw_query.split("&") if raw_query else []:
        name, _, value = part.partition("=")
        if name in SIGNING_PARAMETERS:
            if name in signing:
                raise _malformed(f"{name} appears more than once")
            signing[name] = urllib.parse.unquote(value)
        else:
            others.append(part)
    return signing, others


def _epoch_time(condition: Any, name: str) -> int | None:
    if condition is None:
        return None
    if not isinstance(condition, dict) or set(condition) != {"AWS:EpochTime"}:
        raise _malformed(f"{name} must be {{'AWS:EpochTime': <seconds>}}")
    value = condition["AWS:EpochTime"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _malformed(f"{name} must be whole seconds since the epoch")
    return value


@dataclass(frozen=True)
class PolicyStatement:
    resource: str | None  # None: every object the key group guards (CloudFront allows leaving it out)
    date_less_than: int
    date_greater_than: int | None
    source_ip: str | None


def parse_policy(document: bytes) -> PolicyStatement:
    try:
        policy = json.loads(document)
    except (UnicodeDecodeError, ValueError):
        raise _malformed("the policy is not JSON") from None
    statements = policy.get("Statement") if isinstance(policy, dict) else None
    if not isinstance(statements, list) or len(statements) != 1 or not isinstance(statements[0], dict):
        raise _malformed("the policy must hold exactly one Statement")
    statement = statements[0]
    if not set(statement) <= {"Resource", "Condition"}:
        raise _malformed(f"unknown statement fields {sorted(set(statement) - {'Resource', 'Condition'})}")
    resource = statement.get("Resource")
    if resource is not None and not isinstance(resource, str):
        raise _malformed("Resource must be a string")
    condition = statement.get("Condition")
    if not isinstance(condition, dict) or not set(condition) <= {"DateLessThan", "DateGreaterThan", "IpAddress"}:
        raise _malformed("Condition must hold DateLessThan, and optionally DateGreaterThan and IpAddress")
    date_less_than = _epoch_time(condition.get("DateLessThan"), "DateLessThan")
    if date_less_than is None:
        raise _malformed("DateLessThan is required")
    source_ip = None
    if "IpAddress" in condition:
        address = condition["IpAddress"]
        if (
            not isinstance(address, dict)
            or set(address) != {"AWS:SourceIp"}
            or not isinstance(address["AWS:SourceIp"], str)
        ):
            raise _malformed("IpAddress must be {'AWS:SourceIp': '<cidr>'}")
        source_ip = address["AWS:SourceIp"]
    return PolicyStatement(
        resource, date_less_than, _epoch_time(condition.get("DateGreaterThan"), "DateGreaterThan"), source_ip
    )


def _verify(key: PublicKey, signature: bytes, document: bytes, algorithm: hashes.HashAlgorithm) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, document, ec.ECDSA(algorithm))
        else:
            key.verify(signature, document, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        return False
    return True


def check_signed_url(url: str, raw_query: str, keys: TrustedKeyGroup, *, now: float, client_ip: str) -> None:
    """Raise `Refused` unless the request for `url` (scheme, host and path, as requested) with `raw_query` carries a
    valid signature from a trusted key whose policy allows it now, from `client_ip`. CloudFront's order: the key,
    the signature (nothing in the policy is believed before it), then the policy's conditions."""
    signing, others = split_query(raw_query)
    compared_url = url + ("?" + "&".join(others) if others else "")
    key_id = signing.get("Key-Pair-Id")
    if not key_id:
        raise Refused("MissingKey", "Missing Key-Pair-Id query parameter or cookie value", "no Key-Pair-Id")
    key = keys.get(key_id)
    if key is None:
        raise Refused("InvalidKey", "Unknown Key", f"key {key_id} is not in the trusted key group")
    signature, document, algorithm_name = _signed_document(signing, compared_url)
    if not _verify(key, signature, document, HASH_ALGORITHMS[algorithm_name]()):
        raise _access_denied(f"the signature does not match the policy (key {key_id}, {algorithm_name})")
    _check_conditions(parse_policy(document), compared_url, now=now, client_ip=client_ip)


def _signed_document(signing: Mapping[str, str], compared_url: str) -> tuple[bytes, bytes, str]:
    """(signature, the policy bytes it must cover, hash algorithm name) from the signing parameters."""
    if "Signature" not in signing:
        raise _malformed("no Signature")
    if ("Policy" in signing) == ("Expires" in signing):
        raise _malformed("exactly one of Policy (custom) and Expires (canned) is needed")
    algorithm_name = signing.get("Hash-Algorithm", DEFAULT_HASH_ALGORITHM)
    if algorithm_name not in HASH_ALGORITHMS:
        raise _malformed(f"Hash-Algorithm must be one of {sorted(HASH_ALGORITHMS)}")
    signature = _cloudfront_b64decode(signing["Signature"], "Signature")
    if "Policy" in signing:
        return signature, _cloudfront_b64decode(signing["Policy"], "Policy"), algorithm_name
    expires = signing["Expires"]
    if not expires.isascii() or not expires.isdigit():
        raise _malformed("Expires must be whole seconds since the epoch")
    # A canned policy's resource is the URL itself: CloudFront rebuilds the statement the signer signed.
    return signature, canned_policy(compared_url, int(expires)), algorithm_name


def _check_conditions(statement: PolicyStatement, compared_url: str, *, now: float, client_ip: str) -> None:
    if statement.date_less_than <= now:
        raise _access_denied(f"expired at {statement.date_less_than} (now {int(now)})")
    if statement.date_greater_than is not None and now < statement.date_greater_than:
        raise _access_denied(f"not valid before {statement.date_greater_than} (now {int(now)})")
    if statement.source_ip is not None:
        try:
            allowed = ipaddress.ip_address(client_ip) in ipaddress.ip_network(statement.source_ip, strict=False)
        except ValueError:
            raise _malformed("AWS:SourceIp is not an IP address range") from None
        if not allowed:
            raise _access_denied(f"the policy allows {statement.source_ip} only")
    if statement.resource is not None and not resource_matches(statement.resource, compared_url):
        # The resource is logged (it names no secret); the URL compared is not (its query may hold the client's).
        raise _access_denied(f"the policy's Resource {statement.resource!r} does not cover this URL")


# --- the server -----------------------------------------------------------------------------------------------------


def error_document(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'.encode()
    )


@dataclass(frozen=True)
class _Object:
    headers: dict[str, str]
    etag: str
    last_modified: datetime
    body: Any  # botocore's StreamingBody


class MediaServer(DevServer):
    def __init__(
        self,
        address: tuple[str, int],
        *,
        s3: S3Client,
        bucket: str,
        keys: TrustedKeyGroup | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.keys = keys if keys is not None else TrustedKeyGroup()
        self.clock = clock
        self._requests: collections.Counter[str] = collections.Counter()
        self._requests_lock = threading.Lock()
        super().__init__(address, _MediaHandler)
        # No trailing slash, as PHOTOSKY_MEDIA_URL is written; the port the OS chose when asked for port 0.
        self.media_url = f"http://{address[0]}:{self.server_address[1]}"

    def count_request(self, path: str) -> int:
        with self._requests_lock:
            self._requests[path] += 1
            return self._requests[path]

    def requests_for(self, path: str) -> int:
        """How many requests for `path` (no query) reached this endpoint, whatever they were answered."""
        with self._requests_lock:
            return self._requests[path]

    def read_object(self, key: str) -> _Object | None:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound", "AccessDenied"):
                return None
            raise
        headers = {"Content-Type": response.get("ContentType") or "binary/octet-stream"}
        for header, field in (
            ("Cache-Control", "CacheControl"),
            ("Content-Disposition", "ContentDisposition"),
            ("Content-Encoding", "ContentEncoding"),
            ("Content-Language", "ContentLanguage"),
        ):
            value = response.get(field)
            if value:
                headers[header] = str(value)
        last_modified = response["LastModified"].astimezone(UTC)
        headers["ETag"] = response["ETag"]
        headers["Last-Modified"] = email.utils.format_datetime(last_modified, usegmt=True)
        headers["Content-Length"] = str(response["ContentLength"])
        return _Object(headers, response["ETag"], last_modified, response["Body"])


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110's weak comparison, as S3 and CloudFront apply it to If-None-Match."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == wanted for candidate in if_none_match.split(","))


def _not_modified(headers: email.message.Message, stored: _Object) -> bool:
    """Whether the request's validators (case-insensitive headers) say the client's copy is current."""
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:  # it wins over If-Modified-Since (RFC 9110 13.2.2)
        return _etag_matches(if_none_match, stored.etag)
    if_modified_since = headers.get("If-Modified-Since")
    if if_modified_since is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return stored.last_modified.replace(microsecond=0) <= since


class _MediaHandler(BaseHTTPRequestHandler):
    server: MediaServer
    _path_requests: int | None = None
    protocol_version = "HTTP/1.1"
    server_version = "PhotoSkyDevMedia"
    sys_version = ""

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def __getattr__(self, name: str) -> Any:
        # The media behaviours allow GET and HEAD only; CloudFront refuses any other verb with a 403.
        if name.startswith("do_"):
            return self._other_method
        raise AttributeError(name)

    def _other_method(self) -> None:
        self._path_requests = None
        self.close_connection = True  # its body (if any) is never read, so nothing after it can be trusted
        self._refuse(_access_denied(f"{self.command} is not allowed"), send_body=True)

    def _serve(self, *, send_body: bool) -> None:
        self._path_requests = None  # a kept-alive connection's handler serves many requests
        path, _, raw_query = self.path.partition("?")
        if not path.startswith(MEDIA_PREFIXES):
            self._refuse(_access_denied("no media behaviour for this path"), send_body=send_body)
            return
        self._path_requests = self.server.count_request(path)
        # The URL as the viewer asked for it, on the host it named (as CloudFront compares an alternate domain name).
        host = self.headers.get("Host")
        base = f"http://{host}" if host else self.server.media_url
        try:
            check_signed_url(
                base + path, raw_query, self.server.keys, now=self.server.clock(), client_ip=self.client_address[0]
            )
        except Refused as refused:
            self._refuse(refused, send_body=send_body)
            return
        try:
            stored = self.server.read_object(urllib.parse.unquote(path[1:]))
        except (ClientError, BotoCoreError) as e:
            log.warning("media %s %s: the bucket failed: %s", self.command, path, type(e).__name__)
            self._send(HTTPStatus.BAD_GATEWAY, error_document("BadGateway", "The origin failed"), send_body)
            return
        if stored is None:
            # The origin access control may not list the bucket, so S3 cannot say "no such key".
            self._refuse(Refused("AccessDenied", "Access Denied", "no such object"), send_body=send_body)
            return
        with stored.body:
            headers = dict(stored.headers)
            if _not_modified(self.headers, stored):
                kept = ("ETag", "Last-Modified", "Cache-Control")
                self._send(HTTPStatus.NOT_MODIFIED, None, send_body, {k: headers[k] for k in kept if k in headers})
                return
            _, others = split_query(raw_query)
            for name, value in urllib.parse.parse_qsl("&".join(others), keep_blank_values=True):
                if name in RESPONSE_OVERRIDES:
                    headers[RESPONSE_OVERRIDES[name]] = value
            self._start(HTTPStatus.OK, headers)
            if send_body:
                try:
                    for chunk in stored.body.iter_chunks(_CHUNK_BYTES):
                        self.wfile.write(chunk)
                except ConnectionError:
                    # A browser drops an image it no longer needs (a page left, a lazy tile scrolled away).
                    self.close_connection = True

    def _refuse(self, refused: Refused, *, send_body: bool) -> None:
        log.info("media 403 %s %s: %s", self.command, self.path.partition("?")[0], refused.reason)
        body = error_document(refused.code, refused.message)
        self._send(HTTPStatus.FORBIDDEN, body, send_body, {"Cache-Control": "no-store"})

    def _send(
        self, status: HTTPStatus, body: bytes | None, send_body: bool, headers: Mapping[str, str] | None = None
    ) -> None:
        all_headers = dict(headers or {})
        if body is not None:
            all_headers = {"Content-Type": "text/xml", "Content-Length": str(len(body)), **all_headers}
        self._start(status, all_headers)
        if send_body and body is not None:
            self.wfile.write(body)

    def _start(self, status: HTTPStatus, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        if self._path_requests is not None:
            self.send_header(REQUEST_COUNT_HEADER, str(self._path_requests))
        self.end_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # http.server logs the request line, query string (the URL's signature) included: the path only, here.
        path = getattr(self, "path", "")  # unset when the request line could not be read
        log.debug("media %s %s %s", code, self.command, path.partition("?")[0])

    def log_message(self, format: str, *args: Any) -> None:
        # http.server's own complaints (a malformed request line) quote the request line: cut every query out.
        log.debug("media %s: %s", self.address_string(), _QUERY.sub("?…", format % args))


def serve_media(host: str, port: int, *, s3: S3Client, bucket: str, keys: TrustedKeyGroup) -> MediaServer:
    """Start the media endpoint on a daemon thread; stop it with `shutdown()` then `server_close()`."""
    server = MediaServer((host, port), s3=s3, bucket=bucket, keys=keys)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="media-server", daemon=True
    ).start()
    return server
