"""Media URLs: the pure-Python P-256 signer against OpenSSL, and the window, scope and key rules of the URLs."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chalicelib import errors, keys, p256
from chalicelib.config import ConfigError, Settings
from chalicelib.media import CloudFrontMedia, S3Media, parse_media_key
from chalicelib.photos.models import PreviewFormat
from tests.support.media import media_key_json, new_private_key, private_pem, public_key_of, signed_policy

BASE = "https://media.example"
HOUR = 3600
OWNER, OTHER, PHOTO = "owner-sub", "other-sub", "01JPHOTO"
JPEG, WEBP = PreviewFormat.JPEG, PreviewFormat.WEBP


# --- the signer ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pkcs8", [True, False], ids=["pkcs8", "sec1"])
def test_signatures_are_byte_identical_to_openssls_deterministic_ecdsa(pkcs8: bool) -> None:
    key = new_private_key()
    secret = p256.private_key_from_pem(private_pem(key, pkcs8=pkcs8))
    assert secret == key.private_numbers().private_value
    for message in (b"", b"x", b'{"Statement":[]}' * 50):
        ours = p256.sign(secret, message)
        key.public_key().verify(ours, message, ec.ECDSA(hashes.SHA256()))
        assert ours == key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))


def test_the_fixed_base_table_gives_the_same_signatures_as_the_small_one() -> None:
    key = new_private_key()
    secret = key.private_numbers().private_value
    before = p256.sign(secret, b"same message")
    for i in range(p256._COMB_AFTER + 1):  # enough signatures for the container to build its fixed-base table
        p256.sign(secret, bytes([i]))
    assert p256._tables.comb() is not None
    assert p256.sign(secret, b"same message") == before


def test_scalar_multiplication_lands_on_the_curve() -> None:
    for k in (1, 2, 15, 16, 2**255 + 12345, p256.N - 1):
        assert p256.on_curve(p256.multiply_g(k))
    assert p256.multiply_g(1) == (p256.GX, p256.GY)


@pytest.mark.parametrize(
    "pem",
    [
        "not a pem",
        "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
    ],
    ids=["garbage", "bad-base64", "certificate"],
)
def test_what_is_not_a_p256_private_key_is_refused(pem: str) -> None:
    with pytest.raises(ValueError, match=r"PEM|private key"):
        p256.private_key_from_pem(pem)


def test_rsa_and_other_curves_are_refused_with_a_reason() -> None:
    rsa_pem = private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="P-256"):
        p256.private_key_from_pem(rsa_pem)
    p384 = ec.generate_private_key(ec.SECP384R1())
    for pkcs8 in (True, False):
        with pytest.raises(ValueError, match="P-256"):
            p256.private_key_from_pem(private_pem(p384, pkcs8=pkcs8))


def test_an_encrypted_private_key_is_refused() -> None:
    encrypted = new_private_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"password"),
    )
    with pytest.raises(ValueError, match="private key"):
        p256.private_key_from_pem(encrypted.decode())


@pytest.mark.parametrize(
    "text",
    ["", "[]", '{"private_key": "x"}', '{"key_pair_id": "K1", "private_key": 3}', '{"key_pair_id": "K 1"}'],
)
def test_a_malformed_media_key_document_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"media key|PEM"):
        parse_media_key(text)


# --- the URLs ----------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class KeySource:
    """The secret as Secrets Manager would give it, counting reads; `fail` makes the next reads fail."""

    def __init__(self, key_json: str) -> None:
        self.key_json = key_json
        self.reads = 0
        self.fail: Exception | None = None

    def __call__(self) -> str:
        self.reads += 1
        if self.fail is not None:
            raise self.fail
        return self.key_json


@pytest.fixture
def key_json() -> str:
    return media_key_json(new_private_key(), "KFIRST0000001")


def make_media(key_json: str, now: float = 100 * HOUR + 10) -> tuple[CloudFrontMedia, Clock, KeySource]:
    clock, source = Clock(now), KeySource(key_json)
    return CloudFrontMedia(BASE, source, window_seconds=HOUR, clock=clock), clock, source


def test_the_owner_gets_urls_signed_for_their_own_prefixes_valid_at_least_a_window(key_json: str) -> None:
    media, clock, _ = make_media(key_json)
    urls = media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OWNER, original=True, filename="Été 1.jpg")
    public_key = public_key_of(key_json)
    assert urls.small is not None
    assert urls.original is not None
    assert urls.small.startswith(f"{BASE}/{keys.preview_object(OWNER, PHOTO, 'small', WEBP)}?Policy=")
    [statement] = signed_policy(urls.small, public_key)["Statement"]
    assert statement["Resource"] == f"{BASE}/previews/{OWNER}/*"
    expires = statement["Condition"]["DateLessThan"]["AWS:EpochTime"]
    assert expires >= clock.now + HOUR
    assert expires == 102 * HOUR
    [statement] = signed_policy(urls.original, public_key)["Statement"]
    assert statement["Resource"] == f"{BASE}/originals/{OWNER}/*"
    query = parse_qs(urlsplit(urls.original).query)
    assert query["Key-Pair-Id"] == ["KFIRST0000001"]
    assert query["response-content-disposition"] == ["inline; filename*=UTF-8''%C3%89t%C3%A9%201.jpg"]
    assert "response-content-disposition" not in unquote(urls.small)


def test_urls_are_byte_identical_for_a_whole_window_and_change_with_the_next(key_json: str) -> None:
    media, clock, _ = make_media(key_json, now=100 * HOUR)
    first = media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OWNER, original=True)
    clock.now = 101 * HOUR - 1
    assert media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OWNER, original=True) == first
    clock.now = 101 * HOUR
    later = media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OWNER, original=True)
    assert later.small != first.small
    assert signed_policy(later.small or "", public_key_of(key_json))["Statement"][0]["Condition"] == {
        "DateLessThan": {"AWS:EpochTime": 103 * HOUR}
    }


def test_one_signature_serves_every_photo_of_the_owner_in_a_window(key_json: str) -> None:
    media, _, _ = make_media(key_json)
    signed_before = p256._tables.signatures
    for i in range(50):
        media.urls(OWNER, f"01JPHOTO{i:04d}", preview_format=WEBP, viewer=OWNER, original=True)
    assert p256._tables.signatures - signed_before == 2  # previews and originals


def test_anyone_else_gets_urls_for_that_photo_only_and_the_original_only_when_allowed(key_json: str) -> None:
    media, _, _ = make_media(key_json)
    public_key = public_key_of(key_json)
    member = media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OTHER, original=True, filename="ignored.jpg")
    assert signed_policy(member.small or "", public_key)["Statement"][0]["Resource"] == (
        f"{BASE}/previews/{OWNER}/{PHOTO}/*"
    )
    assert signed_policy(member.original or "", public_key)["Statement"][0]["Resource"] == (
        f"{BASE}/originals/{OWNER}/{PHOTO}"
    )
    assert "response-content-disposition" not in (member.original or "")  # the file name stays the owner's
    visitor = media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=None, original=False)
    assert visitor.original is None
    assert visitor.small == member.small  # one signature per photo, whoever asks


def test_a_signature_from_another_key_does_not_verify(key_json: str) -> None:
    media, _, _ = make_media(key_json)
    url = media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OWNER, original=False).small or ""
    with pytest.raises(InvalidSignature):
        signed_policy(url, new_private_key().public_key())


def test_the_key_is_read_on_first_use_then_once_a_window(key_json: str) -> None:
    media, clock, source = make_media(key_json, now=100 * HOUR)
    assert source.reads == 0
    media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OWNER, original=True)
    media.urls(OTHER, PHOTO, preview_format=WEBP, viewer=OTHER, original=True)
    assert source.reads == 1
    clock.now += HOUR
    media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OWNER, original=True)
    assert source.reads == 2


def test_a_rotated_key_signs_from_the_next_window(key_json: str) -> None:
    media, clock, source = make_media(key_json, now=100 * HOUR)
    media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OWNER, original=True)
    rotated = media_key_json(new_private_key(), "KSECOND000002")
    source.key_json = rotated
    clock.now += HOUR
    url = media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OWNER, original=True).small or ""
    assert parse_qs(urlsplit(url).query)["Key-Pair-Id"] == ["KSECOND000002"]
    signed_policy(url, public_key_of(rotated))


def test_a_failed_refresh_keeps_signing_with_the_current_key_and_retries_later(key_json: str) -> None:
    media, clock, source = make_media(key_json, now=100 * HOUR)
    media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OWNER, original=True)
    source.fail = errors.Unavailable("Secrets Manager is busy; retry shortly")
    clock.now += HOUR
    url = media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OWNER, original=True).small or ""
    signed_policy(url, public_key_of(key_json))
    reads = source.reads
    media.urls(OTHER, PHOTO, preview_format=WEBP, viewer=OTHER, original=True)
    assert source.reads == reads  # no new read until the retry time
    clock.now += 61
    source.fail = None
    media.urls("third-sub", PHOTO, preview_format=WEBP, viewer="third-sub", original=True)
    assert source.reads == reads + 1


def test_an_unusable_refreshed_key_is_ignored_with_the_current_one_kept(key_json: str) -> None:
    media, clock, source = make_media(key_json, now=100 * HOUR)
    media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OWNER, original=True)
    source.key_json = '{"key_pair_id": "KBAD", "private_key": "not a pem"}'
    clock.now += HOUR
    signed_policy(
        media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OWNER, original=True).small or "", public_key_of(key_json)
    )


@pytest.mark.parametrize(
    "failure",
    [errors.Unavailable("Secrets Manager is unreachable; retry shortly"), None],
    ids=["unreachable", "unusable"],
)
def test_without_any_usable_key_the_caller_gets_a_503(key_json: str, failure: Exception | None) -> None:
    media, _, source = make_media(key_json)
    if failure is None:
        source.key_json = json.dumps({"key_pair_id": "K1", "private_key": "-----BEGIN X-----\nAA\n-----END X-----"})
    else:
        source.fail = failure
    with pytest.raises(errors.Unavailable):
        media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OWNER, original=True)


def test_a_window_shorter_than_an_hour_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 3600"):
        CloudFrontMedia(BASE, lambda: "", window_seconds=HOUR - 1)


class RecordingPresigner:
    def download_url(self, key: str, *, expires_in: int, filename: str | None = None) -> str:
        return f"s3://{key}?expires={expires_in}&filename={filename}"


def test_without_a_cdn_owners_and_others_get_presigned_urls_of_their_own_lifetimes() -> None:
    media = S3Media(RecordingPresigner(), owner_seconds=3600, shared_seconds=600)
    owner = media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OWNER, original=False, filename="a.jpg")
    assert owner.original == f"s3://{keys.original_object(OWNER, PHOTO)}?expires=3600&filename=a.jpg"
    shared = media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=OTHER, original=False, filename="a.jpg")
    assert shared.original is None
    assert shared.small == f"s3://{keys.preview_object(OWNER, PHOTO, 'small', WEBP)}?expires=600&filename=None"
    assert media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=None, original=True).original == (
        f"s3://{keys.original_object(OWNER, PHOTO)}?expires=600&filename=None"
    )


# --- preview formats: WebP for new photos, JPEG for those stored before ---------------------------------------------


def test_a_preview_is_named_by_its_format_and_a_photo_lists_the_names_of_both() -> None:
    assert keys.preview_object(OWNER, PHOTO, "large", WEBP) == f"previews/{OWNER}/{PHOTO}/large.webp"
    assert keys.preview_object(OWNER, PHOTO, "small", JPEG) == f"previews/{OWNER}/{PHOTO}/small.jpg"
    # What a delete removes: whatever the photo's format (and a photo an older worker began may have both).
    assert set(keys.photo_objects(OWNER, PHOTO)) == {
        f"uploads/{OWNER}/{PHOTO}",
        f"originals/{OWNER}/{PHOTO}",
        *(f"previews/{OWNER}/{PHOTO}/{size}.{ext}" for size in ("large", "small") for ext in ("jpg", "webp")),
    }
    assert all(key.startswith(keys.photo_previews_prefix(OWNER, PHOTO)) for key in keys.preview_objects(OWNER, PHOTO))


def test_a_format_absent_from_an_item_is_jpeg() -> None:
    assert PreviewFormat.recorded(None) is JPEG
    assert PreviewFormat.recorded("webp") is WEBP
    assert (JPEG.content_type, WEBP.content_type) == ("image/jpeg", "image/webp")


@pytest.mark.parametrize("viewer", [OWNER, OTHER, None], ids=["owner", "member", "visitor"])
def test_cdn_urls_name_the_photos_format_under_the_same_signatures(key_json: str, viewer: str | None) -> None:
    media, _, _ = make_media(key_json)
    webp = media.urls(OWNER, PHOTO, preview_format=WEBP, viewer=viewer, original=False)
    signed_before = p256._tables.signatures
    jpeg = media.urls(OWNER, PHOTO, preview_format=JPEG, viewer=viewer, original=False)
    for urls, extension in ((webp, "webp"), (jpeg, "jpg")):
        assert urls.large is not None
        assert urls.small is not None
        assert urls.large.startswith(f"{BASE}/previews/{OWNER}/{PHOTO}/large.{extension}?Policy=")
        assert urls.small.startswith(f"{BASE}/previews/{OWNER}/{PHOTO}/small.{extension}?Policy=")
    # The policies cover the prefix, not the name: the signatures serve both formats, so none changes.
    assert p256._tables.signatures == signed_before
    assert (webp.small or "").split("?")[1] == (jpeg.small or "").split("?")[1]
    resource = signed_policy(webp.large or "", public_key_of(key_json))["Statement"][0]["Resource"]
    assert (webp.large or "").split("?")[0].startswith(resource.removesuffix("*"))


def test_presigned_urls_name_the_photos_format() -> None:
    media = S3Media(RecordingPresigner(), owner_seconds=3600, shared_seconds=600)
    for preview_format, extension in ((WEBP, "webp"), (JPEG, "jpg")):
        urls = media.urls(OWNER, PHOTO, preview_format=preview_format, viewer=OWNER, original=False)
        assert urls.large == f"s3://previews/{OWNER}/{PHOTO}/large.{extension}?expires=3600&filename=None"
        assert urls.small == f"s3://previews/{OWNER}/{PHOTO}/small.{extension}?expires=3600&filename=None"


# --- settings -----------------------------------------------------------------------------------------------------

BASE_ENV = {
    "TABLE_NAME": "t",
    "BUCKET_NAME": "b",
    "AWS_REGION": "us-east-1",
    "PHOTOSKY_CURSOR_SECRET": "0123456789abcdef0123",
}


def test_media_settings_are_read_and_checked() -> None:
    settings = Settings.from_env(
        {**BASE_ENV, "PHOTOSKY_MEDIA_URL": "https://d1.cloudfront.net/", "PHOTOSKY_MEDIA_KEY_SECRET_ARN": "arn:x"}
    )
    assert settings.media_url == "https://d1.cloudfront.net"
    assert settings.media_url_window_seconds == HOUR
    assert Settings.from_env(BASE_ENV).media_url is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"PHOTOSKY_MEDIA_URL": "https://d1.cloudfront.net"}, "needs PHOTOSKY_MEDIA_KEY"),
        ({"PHOTOSKY_MEDIA_URL": "ftp://x", "PHOTOSKY_MEDIA_KEY": "{}"}, r"http\(s\) base URL"),
        ({"PHOTOSKY_MEDIA_URL": "https://x/?a=b", "PHOTOSKY_MEDIA_KEY": "{}"}, r"http\(s\) base URL"),
        ({"PHOTOSKY_MEDIA_URL_WINDOW_SECONDS": "600"}, "at least 3600"),
    ],
)
def test_bad_media_settings_are_reported(extra: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({**BASE_ENV, **extra})
