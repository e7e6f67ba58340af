"""The dev stack's media endpoint (devstack/media.py) in-process, over real HTTP on 127.0.0.1, on moto's S3.

URLs are made by a tiny signer written here from CloudFront's documentation (not the API's signer), so the endpoint
is checked against the format itself: a custom policy (CloudFront-safe base64 of the policy JSON, the DER ECDSA or
PKCS#1 v1.5 RSA signature of exactly those bytes, Key-Pair-Id, Hash-Algorithm) or a canned one (Expires).
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import logging
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from moto import mock_aws

from devstack import resources
from devstack.media import (
    KEY_GROUP_MAX_KEYS,
    REQUEST_COUNT_HEADER,
    MediaServer,
    SigningKey,
    TrustedKeyGroup,
    resource_matches,
    store_signing_key,
)
from devstack.web import content_security_policy, dev_content_security_policy
from tests.integration.conftest import BUCKET
from tests.support.cognito import REGION

NOW = 1_800_000_000
HOUR = 3600
OWNER = "0wner000-0000-4000-8000-000000000001"
OTHER = "07her000-0000-4000-8000-000000000002"
PHOTO = "01HZZZPHOTO000000000000001"
SMALL = f"/previews/{OWNER}/{PHOTO}/small.jpg"
LARGE = f"/previews/{OWNER}/{PHOTO}/large.jpg"
ORIGINAL = f"/originals/{OWNER}/{PHOTO}"
OTHERS_SMALL = f"/previews/{OTHER}/{PHOTO}/small.jpg"
PREVIEW_CACHE_CONTROL = "private, max-age=31536000, immutable"
SMALL_BYTES = b"\xff\xd8small-preview-bytes\xff\xd9"
ORIGINAL_BYTES = b"\xff\xd8" + bytes(range(256)) * 300 + b"\xff\xd9"  # bigger than one chunk of the endpoint


# --- a signer written from CloudFront's documentation ---------------------------------------------------------------


def cloudfront_b64(data: bytes) -> str:
    return base64.b64encode(data).decode().translate(str.maketrans("+=/", "-_~"))


HASHES = {"SHA256": hashes.SHA256, "SHA1": hashes.SHA1}


@dataclass(frozen=True)
class Signer:
    key_id: str
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @classmethod
    def ecdsa(cls, key_id: str) -> Signer:
        return cls(key_id, ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def rsa(cls, key_id: str) -> Signer:
        return cls(key_id, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, data: bytes, algorithm: str) -> bytes:
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            return self.private_key.sign(data, ec.ECDSA(HASHES[algorithm]()))
        return self.private_key.sign(data, padding.PKCS1v15(), HASHES[algorithm]())


def policy_json(resource: str | None, expires: int, starts: int | None = None, source_ip: str | None = None) -> bytes:
    condition: dict[str, Any] = {"DateLessThan": {"AWS:EpochTime": expires}}
    if starts is not None:
        condition["DateGreaterThan"] = {"AWS:EpochTime": starts}
    if source_ip is not None:
        condition["IpAddress"] = {"AWS:SourceIp": source_ip}
    statement: dict[str, Any] = {"Condition": condition}
    if resource is not None:
        statement = {"Resource": resource, **statement}
    return json.dumps({"Statement": [statement]}, separators=(",", ":")).encode()


def custom_url(
    url: str,
    key: Signer,
    *,
    resource: str | None,
    expires: int = NOW + HOUR,
    starts: int | None = None,
    source_ip: str | None = None,
    algorithm: str | None = "SHA256",
    policy: bytes | None = None,
) -> str:
    """`url` (maybe with its own query) signed with a custom policy, the signing parameters appended."""
    document = policy if policy is not None else policy_json(resource, expires, starts, source_ip)
    signature = key.sign(document, algorithm or "SHA1")
    params = f"Policy={cloudfront_b64(document)}&Signature={cloudfront_b64(signature)}&Key-Pair-Id={key.key_id}"
    if algorithm is not None:
        params += f"&Hash-Algorithm={algorithm}"
    return url + ("&" if "?" in url else "?") + params


def canned_url(url: str, key: Signer, *, expires: int = NOW + HOUR, algorithm: str | None = "SHA256") -> str:
    document = json.dumps(
        {"Statement": [{"Resource": url, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}]},
        separators=(",", ":"),
    ).encode()
    signature = key.sign(document, algorithm or "SHA1")
    params = f"Expires={expires}&Signature={cloudfront_b64(signature)}&Key-Pair-Id={key.key_id}"
    if algorithm is not None:
        params += f"&Hash-Algorithm={algorithm}"
    return url + ("&" if "?" in url else "?") + params


# --- the endpoint ---------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


@dataclass
class Media:
    server: MediaServer
    keys: TrustedKeyGroup
    clock: Clock
    key: Signer
    s3: Any

    @property
    def base(self) -> str:
        return self.server.media_url

    def url(self, path: str) -> str:
        return self.base + path


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def fetch(media: Media, url: str, method: str = "GET", **headers: str) -> Reply:
    """One request; the path and query go out exactly as written (http.client adds Host from the address)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection("127.0.0.1", media.server.server_address[1], timeout=5)
    try:
        connection.putrequest(method, url[len(f"{parts.scheme}://{parts.netloc}") :], skip_host=True)
        connection.putheader("Host", headers.pop("Host", parts.netloc))
        for name, value in headers.items():
            connection.putheader(name.replace("_", "-"), value)
        connection.endheaders()
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def put(s3: Any, path: str, body: bytes, content_type: str, cache_control: str | None) -> None:
    extra = {"CacheControl": cache_control} if cache_control else {}
    s3.put_object(Bucket=BUCKET, Key=path.lstrip("/"), Body=body, ContentType=content_type, **extra)


@pytest.fixture(scope="module")
def aws_session() -> Iterator[boto3.session.Session]:
    """One in-process moto for the module (the objects are only read): the checks stay fast."""
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        s3 = session.client("s3")
        resources.create_bucket(s3, BUCKET, REGION)
        put(s3, SMALL, SMALL_BYTES, "image/jpeg", PREVIEW_CACHE_CONTROL)
        put(s3, LARGE, b"large", "image/jpeg", PREVIEW_CACHE_CONTROL)
        put(s3, ORIGINAL, ORIGINAL_BYTES, "image/png", None)
        put(s3, OTHERS_SMALL, b"not yours", "image/jpeg", PREVIEW_CACHE_CONTROL)
        yield session


@pytest.fixture
def media(aws_session: boto3.session.Session) -> Iterator[Media]:
    """An endpoint of its own for each test (its key group, clock and counts), on the module's bucket."""
    s3 = aws_session.client("s3")
    keys = TrustedKeyGroup()
    key = Signer.ecdsa("K2TESTKEYONE00")
    keys.trust(key.key_id, key.public_pem())
    clock = Clock()
    server = MediaServer(("127.0.0.1", 0), s3=s3, bucket=BUCKET, keys=keys, clock=clock)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield Media(server, keys, clock, key, s3)
    finally:
        server.shutdown()
        server.server_close()


def owner_previews(media: Media) -> str:
    return f"{media.base}/previews/{OWNER}/*"


def assert_refused(reply: Reply, code: str = "AccessDenied") -> None:
    assert reply.status == 403, reply
    assert reply.headers["cache-control"] == "no-store"
    assert reply.headers["content-type"] == "text/xml"
    assert reply.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>'), reply.body
    assert f"<Code>{code}</Code>".encode() in reply.body, reply.body


# --- served --------------------------------------------------------------------------------------------------------


def test_a_url_signed_per_the_spec_is_served_with_the_objects_headers(media: Media) -> None:
    reply = fetch(media, custom_url(media.url(SMALL), media.key, resource=owner_previews(media)))

    stored = media.s3.head_object(Bucket=BUCKET, Key=SMALL[1:])
    assert (reply.status, reply.body) == (200, SMALL_BYTES)
    assert reply.headers["content-type"] == "image/jpeg"
    assert reply.headers["cache-control"] == PREVIEW_CACHE_CONTROL
    assert reply.headers["etag"] == stored["ETag"]
    assert reply.headers["last-modified"] == email.utils.format_datetime(
        stored["LastModified"].astimezone(UTC), usegmt=True
    )
    assert reply.headers["content-length"] == str(len(SMALL_BYTES))
    assert reply.headers["x-content-type-options"] == "nosniff"


def test_one_signature_per_prefix_covers_every_object_under_it(media: Media) -> None:
    # The owner's URLs share one policy and signature per window: only the path differs.
    signed = custom_url(media.url(SMALL), media.key, resource=owner_previews(media))
    query = signed.split("?", 1)[1]
    assert fetch(media, f"{media.url(LARGE)}?{query}").body == b"large"
    assert_refused(fetch(media, f"{media.url(OTHERS_SMALL)}?{query}"))


def test_an_original_is_served_whole_with_its_type_and_no_cache_control_when_none_is_stored(media: Media) -> None:
    reply = fetch(media, custom_url(media.url(ORIGINAL), media.key, resource=media.url(ORIGINAL)))
    assert (reply.status, reply.body) == (200, ORIGINAL_BYTES)
    assert reply.headers["content-type"] == "image/png"
    assert "cache-control" not in reply.headers
    assert reply.headers["content-length"] == str(len(ORIGINAL_BYTES))


def test_response_content_disposition_is_honoured_as_s3_does_on_a_signed_request(media: Media) -> None:
    disposition = "attachment; filename*=UTF-8''beach%20day.png"
    url = media.url(ORIGINAL) + "?response-content-disposition=" + urllib.parse.quote(disposition, safe="")
    # The query string is part of the URL the policy must cover: a trailing * allows it.
    reply = fetch(media, custom_url(url, media.key, resource=media.url(ORIGINAL) + "*"))
    assert reply.status == 200
    assert reply.headers["content-disposition"] == disposition
    # An exact resource without the query does not cover a URL with one.
    assert_refused(fetch(media, custom_url(url, media.key, resource=media.url(ORIGINAL))))


def test_head_answers_the_headers_without_the_body(media: Media) -> None:
    reply = fetch(media, custom_url(media.url(SMALL), media.key, resource=owner_previews(media)), method="HEAD")
    assert (reply.status, reply.body) == (200, b"")
    assert reply.headers["content-length"] == str(len(SMALL_BYTES))
    assert reply.headers["cache-control"] == PREVIEW_CACHE_CONTROL
    assert reply.headers["content-type"] == "image/jpeg"


def test_a_current_etag_or_date_is_a_304_without_a_body(media: Media) -> None:
    url = custom_url(media.url(SMALL), media.key, resource=owner_previews(media))
    first = fetch(media, url)

    revalidated = fetch(media, url, If_None_Match=first.headers["etag"])
    assert (revalidated.status, revalidated.body) == (304, b"")
    assert revalidated.headers["etag"] == first.headers["etag"]
    assert revalidated.headers["cache-control"] == PREVIEW_CACHE_CONTROL
    assert fetch(media, url, If_None_Match=f'"other", W/{first.headers["etag"]}').status == 304
    assert fetch(media, url, If_None_Match='"other"').status == 200
    assert fetch(media, url, If_Modified_Since=first.headers["last-modified"]).status == 304
    assert fetch(media, url, If_Modified_Since="Mon, 01 Jan 2001 00:00:00 GMT").status == 200
    # If-None-Match wins over If-Modified-Since.
    assert fetch(media, url, If_None_Match='"other"', If_Modified_Since=first.headers["last-modified"]).status == 200


def test_a_304_still_needs_a_valid_signature(media: Media) -> None:
    etag = fetch(media, custom_url(media.url(SMALL), media.key, resource=owner_previews(media))).headers["etag"]
    expired = custom_url(media.url(SMALL), media.key, resource=owner_previews(media), expires=NOW)
    assert_refused(fetch(media, expired, If_None_Match=etag))


def test_a_canned_policy_is_checked_against_the_exact_url(media: Media) -> None:
    assert fetch(media, canned_url(media.url(SMALL), media.key)).body == SMALL_BYTES
    with_query = media.url(ORIGINAL) + "?response-content-disposition=inline"
    assert fetch(media, canned_url(with_query, media.key)).headers["content-disposition"] == "inline"
    # The same signature on another object, or with the query changed, no longer matches what was signed.
    query = canned_url(media.url(SMALL), media.key).split("?", 1)[1]
    assert_refused(fetch(media, f"{media.url(LARGE)}?{query}"))
    tampered = canned_url(with_query, media.key).replace("disposition=inline", "disposition=attachment")
    assert_refused(fetch(media, tampered))
    assert_refused(fetch(media, canned_url(media.url(SMALL), media.key, expires=NOW)))


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA1", None])
@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_ecdsa_and_rsa_keys_with_either_hash_are_accepted(media: Media, kind: str, algorithm: str | None) -> None:
    key = Signer.ecdsa("K2ECDSAKEY0000") if kind == "ecdsa" else Signer.rsa("K2RSAKEY000000")
    media.keys.trust(key.key_id, key.public_pem())
    url = custom_url(media.url(SMALL), key, resource=owner_previews(media), algorithm=algorithm)
    assert fetch(media, url).status == 200
    # Without Hash-Algorithm CloudFront hashes with SHA-1: a SHA-256 signature then fails, and vice versa.
    if algorithm is not None:
        other = "SHA1" if algorithm == "SHA256" else "SHA256"
        assert_refused(fetch(media, url.replace(f"Hash-Algorithm={algorithm}", f"Hash-Algorithm={other}")))


def test_a_resource_can_be_left_out_to_cover_everything_the_key_group_guards(media: Media) -> None:
    assert fetch(media, custom_url(media.url(OTHERS_SMALL), media.key, resource=None)).status == 200


# --- refused -------------------------------------------------------------------------------------------------------


def test_no_signature_at_all_is_a_missing_key(media: Media) -> None:
    assert_refused(fetch(media, media.url(SMALL)), "MissingKey")
    assert_refused(fetch(media, media.url(SMALL) + "?response-content-disposition=inline"), "MissingKey")


def test_an_unknown_key_id_is_refused(media: Media) -> None:
    stranger = Signer.ecdsa("K2STRANGER0000")
    assert_refused(fetch(media, custom_url(media.url(SMALL), stranger, resource=owner_previews(media))), "InvalidKey")


def test_a_signature_by_another_key_under_a_trusted_id_is_refused(media: Media) -> None:
    impostor = Signer.ecdsa(media.key.key_id)
    assert_refused(fetch(media, custom_url(media.url(SMALL), impostor, resource=owner_previews(media))))


def test_a_policy_changed_after_signing_is_refused(media: Media) -> None:
    # The owner of one prefix widens the policy to every prefix, keeping the signature.
    signed = custom_url(media.url(SMALL), media.key, resource=owner_previews(media))
    params = urllib.parse.parse_qs(signed.split("?", 1)[1])
    wider = cloudfront_b64(policy_json(f"{media.base}/*", NOW + HOUR))
    forged = signed.replace(params["Policy"][0], wider)
    assert_refused(fetch(media, forged.replace(SMALL, OTHERS_SMALL)))
    # ... or keeps the policy and puts another signature's bytes in.
    signature = params["Signature"][0]
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    reply = fetch(media, signed.replace(signature, flipped))
    assert reply.status == 403


def _malformed_urls(media: Media) -> dict[str, str]:
    good = custom_url(media.url(SMALL), media.key, resource=owner_previews(media))
    params = dict(urllib.parse.parse_qsl(good.split("?", 1)[1]))
    base = media.url(SMALL)

    def with_params(**changes: str | None) -> str:
        merged = {**params, **changes}
        return base + "?" + "&".join(f"{name.replace('_', '-')}={v}" for name, v in merged.items() if v is not None)

    not_json = b"this is not a policy"
    return {
        "no Signature": with_params(Signature=None),
        "no Policy": with_params(Policy=None),
        "Policy and Expires": with_params(Expires=str(NOW + HOUR)),
        "Signature not base64": with_params(Signature="%%%not-base64!"),
        "Policy not base64": with_params(Policy="***"),
        "unknown Hash-Algorithm": with_params(Hash_Algorithm="MD5"),
        "Signature twice": good + "&Signature=" + params["Signature"],
        "Expires not a number": canned_url(base, media.key).replace("Expires=", "Expires=x"),
        "signed non-JSON policy": custom_url(base, media.key, resource=None, policy=not_json),
        "signed policy without DateLessThan": custom_url(
            base, media.key, resource=None, policy=b'{"Statement":[{"Resource":"*","Condition":{}}]}'
        ),
        "signed policy with a string time": custom_url(
            base,
            media.key,
            resource=None,
            policy=b'{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":"1900000000"}}}]}',
        ),
        "signed policy with two statements": custom_url(
            base,
            media.key,
            resource=None,
            policy=json.dumps({"Statement": [json.loads(policy_json(None, NOW + HOUR))["Statement"][0]] * 2}).encode(),
        ),
    }


MALFORMED_CASES = [
    "no Signature",
    "no Policy",
    "Policy and Expires",
    "Signature not base64",
    "Policy not base64",
    "unknown Hash-Algorithm",
    "Signature twice",
    "Expires not a number",
    "signed non-JSON policy",
    "signed policy without DateLessThan",
    "signed policy with a string time",
    "signed policy with two statements",
]


@pytest.mark.parametrize("case", MALFORMED_CASES)
def test_malformed_signing_parameters_are_refused(media: Media, case: str) -> None:
    assert_refused(fetch(media, _malformed_urls(media)[case]), "MalformedPolicy")


@pytest.mark.parametrize("expires", [NOW - HOUR, NOW - 1, NOW])
def test_an_expired_policy_is_refused(media: Media, expires: int) -> None:
    # DateLessThan means what it says: at that second the URL is already dead.
    assert_refused(
        fetch(media, custom_url(media.url(SMALL), media.key, resource=owner_previews(media), expires=expires))
    )


def test_a_policy_is_valid_until_its_date_less_than(media: Media) -> None:
    url = custom_url(media.url(SMALL), media.key, resource=owner_previews(media), expires=NOW + 10)
    media.clock.now = NOW + 9.5
    assert fetch(media, url).status == 200
    media.clock.now = NOW + 10
    assert_refused(fetch(media, url))


def test_a_date_greater_than_in_the_future_is_refused_until_it_comes(media: Media) -> None:
    url = custom_url(media.url(SMALL), media.key, resource=owner_previews(media), starts=NOW + 60)
    assert_refused(fetch(media, url))
    media.clock.now = NOW + 60
    assert fetch(media, url).status == 200


def test_a_source_ip_condition_is_checked(media: Media) -> None:
    ours = custom_url(media.url(SMALL), media.key, resource=owner_previews(media), source_ip="127.0.0.0/8")
    assert fetch(media, ours).status == 200
    theirs = custom_url(media.url(SMALL), media.key, resource=owner_previews(media), source_ip="192.0.2.0/24")
    assert_refused(fetch(media, theirs))


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        (f"/previews/{OWNER}/*", OTHERS_SMALL),  # another user's prefix
        (f"/previews/{OWNER}/{PHOTO}/*", f"/originals/{OWNER}/{PHOTO}"),  # a preview grant is no original grant
        (ORIGINAL, ORIGINAL + "?response-content-disposition=inline"),  # exact: no query may be added
        (ORIGINAL, f"/originals/{OWNER}/{PHOTO}x"),
        (f"/previews/{OWNER}/{PHOTO}/small.jp?", SMALL[:-1] + "gg"),  # `?` is exactly one character
        (f"/PREVIEWS/{OWNER}/*", SMALL),  # case-sensitive
        (f"/previews/{OWNER}/{PHOTO}/small.jpg", SMALL + "?x=1"),
    ],
)
def test_a_resource_that_does_not_cover_the_url_is_refused(media: Media, resource: str, path: str) -> None:
    assert_refused(fetch(media, custom_url(media.url(path), media.key, resource=media.base + resource)))


def test_the_resource_names_the_host_the_viewer_asked_for(media: Media) -> None:
    url = custom_url(media.url(SMALL), media.key, resource=owner_previews(media))
    port = media.server.server_address[1]
    assert fetch(media, url, Host=f"127.0.0.1:{port}").status == 200
    assert_refused(fetch(media, url, Host=f"localhost:{port}"))


def test_a_missing_object_is_a_403_as_through_an_oac_that_may_not_list(media: Media) -> None:
    missing = f"/previews/{OWNER}/NOPHOTO/small.jpg"
    assert_refused(fetch(media, custom_url(media.url(missing), media.key, resource=owner_previews(media))))


def test_dot_segments_do_not_lead_out_of_the_signed_prefix(media: Media) -> None:
    # `*` covers `../..`, and S3 keys are literal: no such object, so another user's preview stays out of reach.
    sneaky = f"/previews/{OWNER}/../{OTHER}/{PHOTO}/small.jpg"
    assert_refused(fetch(media, custom_url(media.url(sneaky), media.key, resource=owner_previews(media))))


@pytest.mark.parametrize("path", ["/", "/index.html", "/uploads/x/y", "/favicon.ico", "/previewsX/a", "/originals"])
def test_paths_outside_the_media_behaviours_are_refused_however_signed(media: Media, path: str) -> None:
    assert_refused(fetch(media, custom_url(media.url(path), media.key, resource=f"{media.base}/*")))


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_only_get_and_head_are_allowed(media: Media, method: str) -> None:
    assert_refused(fetch(media, custom_url(media.url(SMALL), media.key, resource=owner_previews(media)), method))


# --- rotation and keys ----------------------------------------------------------------------------------------------


def test_during_a_rotation_urls_from_both_keys_pass_and_the_old_one_fails_once_distrusted(media: Media) -> None:
    old, new = media.key, Signer.ecdsa("K2TESTKEYTWO00")
    old_url = custom_url(media.url(SMALL), old, resource=owner_previews(media))
    new_url = custom_url(media.url(SMALL), new, resource=owner_previews(media))
    assert_refused(fetch(media, new_url), "InvalidKey")

    media.keys.trust(new.key_id, new.public_pem())
    assert media.keys.key_ids() == sorted([old.key_id, new.key_id])
    assert fetch(media, old_url).status == 200
    assert fetch(media, new_url).status == 200

    media.keys.distrust(old.key_id)
    assert_refused(fetch(media, old_url), "InvalidKey")
    assert fetch(media, new_url).status == 200


def test_the_key_group_takes_only_keys_cloudfront_takes_and_at_most_five() -> None:
    keys = TrustedKeyGroup()
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    small_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505 - one to refuse
    for unsupported in (p384, small_rsa):
        pem = unsupported.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        with pytest.raises(ValueError, match="ECDSA P-256 and RSA 2048"):
            keys.trust("K2UNSUPPORTED0", pem)
    for n in range(KEY_GROUP_MAX_KEYS):
        keys.trust(f"K2KEY{n:09d}", Signer.ecdsa("x").public_pem())
    with pytest.raises(ValueError, match="at most 5"):
        keys.trust("K2ONETOOMANY00", Signer.ecdsa("x").public_pem())
    keys.trust("K2KEY000000000", Signer.ecdsa("x").public_pem())  # replacing one is fine


def test_the_dev_stacks_key_is_cloudfront_shaped_and_its_secret_signs_urls_the_endpoint_accepts(
    media: Media, aws_session: boto3.session.Session
) -> None:
    key = SigningKey.generate()
    assert len(key.key_pair_id) == 14
    assert key.key_pair_id.startswith("K")
    assert key.key_pair_id.isupper()
    assert key.key_pair_id.isalnum()
    arn = store_signing_key(aws_session.client("secretsmanager"), "photosky-test-media-key", key)
    secret = json.loads(aws_session.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])
    assert set(secret) == {"key_pair_id", "private_key"}
    assert secret["private_key"].startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    private_key = serialization.load_pem_private_key(secret["private_key"].encode(), password=None)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    assert isinstance(private_key.curve, ec.SECP256R1)

    media.keys.trust(key.key_pair_id, key.public_key_pem)
    signer = Signer(secret["key_pair_id"], private_key)
    assert fetch(media, custom_url(media.url(SMALL), signer, resource=owner_previews(media))).status == 200


# --- wildcards, logs, counts, CSP -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "url", "matches"),
    [
        ("https://d.example/a/*", "https://d.example/a/b/c.jpg?x=1", True),
        ("https://d.example/a/*", "https://d.example/a/", True),
        ("https://d.example/a/*", "https://d.example/a", False),
        ("https://d.example/a/?.jpg", "https://d.example/a/b.jpg", True),
        ("https://d.example/a/?.jpg", "https://d.example/a/bc.jpg", False),
        ("https://d.example/a/?.jpg", "https://d.example/a/.jpg", False),
        ("https://d.example/a.jpg", "https://d.example/aXjpg", False),  # `.` is literal
        ("https://d.example/a+b(c)[d]", "https://d.example/a+b(c)[d]", True),
        ("*", "https://anything.example/x?y", True),
        ("https://d.example/*/small.jpg", "https://d.example/u/p/small.jpg", True),
    ],
)
def test_resource_wildcards_are_cloudfronts(resource: str, url: str, matches: bool) -> None:
    assert resource_matches(resource, url) is matches


def test_the_query_string_is_never_logged(media: Media, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="devstack.media")
    served = custom_url(media.url(SMALL), media.key, resource=owner_previews(media))
    expired = custom_url(media.url(SMALL), media.key, resource=owner_previews(media), expires=NOW)
    assert fetch(media, served).status == 200
    assert fetch(media, expired).status == 403
    assert fetch(media, expired.replace("/previews/", "/nothing/")).status == 403
    # A request line http.server cannot parse is quoted in its own complaint: the query is cut out of that too.
    with socket.create_connection(("127.0.0.1", media.server.server_address[1]), timeout=5) as raw:
        raw.sendall(f"GET {served.split(str(media.server.server_address[1]), 1)[1]} junk HTTP/1.1\r\n\r\n".encode())
        assert b"Bad request syntax" in raw.recv(4096)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert SMALL in logged
    assert "expired" in logged  # the reason, for the developer
    for url in (served, expired):
        for name, value in urllib.parse.parse_qsl(url.split("?", 1)[1]):
            assert value not in logged, name
    for name in ("Policy=", "Signature=", "Key-Pair-Id="):
        assert name not in logged


def test_the_endpoint_counts_the_requests_that_reach_it_per_path(media: Media) -> None:
    url = custom_url(media.url(SMALL), media.key, resource=owner_previews(media))
    assert media.server.requests_for(SMALL) == 0
    assert fetch(media, url).headers[REQUEST_COUNT_HEADER.lower()] == "1"
    assert fetch(media, url, method="HEAD").headers[REQUEST_COUNT_HEADER.lower()] == "2"
    assert fetch(media, media.url(SMALL)).headers[REQUEST_COUNT_HEADER.lower()] == "3"  # refused ones too
    assert media.server.requests_for(SMALL) == 3
    assert media.server.requests_for(LARGE) == 0


def test_the_dev_csp_allows_images_from_the_media_endpoint_only_as_images() -> None:
    config = {"api_url": "http://127.0.0.1:8000", "cognito_endpoint": "http://127.0.0.1:5000"}
    directives = {
        name: set(sources)
        for name, *sources in (
            part.split() for part in dev_content_security_policy(config, "http://127.0.0.1:8090").split(";")
        )
    }
    assert "http://127.0.0.1:8090" in directives["img-src"]
    assert "http://127.0.0.1:8090" not in directives["connect-src"]  # the SPA never fetch()es media
    # Without a media origin (and in AWS, where 'self' already covers the SPA's own distribution) nothing changes.
    without = content_security_policy(api="https://a", cognito="https://c", storage=["https://s"])
    assert content_security_policy(api="https://a", cognito="https://c", storage=["https://s"], media=["'self'"]) == (
        without
    )
