"""Where a client fetches a photo's bytes: CloudFront signed URLs that stay the same for a whole window.

An S3 presigned URL changes on every request (and dies with the Lambda's session credentials), so a browser can
never cache a thumbnail. These URLs are CloudFront signed URLs with a custom policy whose resource is a
wildcard, signed once per resource and window and memoised, so that:

- a URL is byte-identical for every request in its window (`window_seconds`, at least an hour) and valid for at
  least one more window after it is handed out: browsers and CloudFront's edge cache the bytes;
- a URL costs a dictionary lookup and a string join (the signature is shared), where botocore's presign costs
  about 350 µs (../shared/FINDINGS.md);
- what a URL opens is what its holder may see: the owner's signature covers their own prefixes
  (`previews/<sub>/*`, `originals/<sub>/*`); an album member or share-link visitor gets one per photo
  (`previews/<owner>/<photo_id>/*`, and the original exactly, only where downloads are allowed). Access taken
  away ends, for URLs already handed out, when they expire: at most two windows later.

Signing is ECDSA P-256 with SHA-256 (`Hash-Algorithm=SHA256`), in pure Python (chalicelib/p256.py). The key,
`{"key_pair_id", "private_key"}`, comes from Secrets Manager on first use and again once per window, so a
rotation reaches every container within a window (docs/MEDIA.md).

Without a CDN (the `chalice deploy` path) the same interface hands out S3 presigned URLs (`S3Media`).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from chalicelib import errors, keys, p256
from chalicelib.config import MIN_MEDIA_URL_WINDOW_SECONDS
from chalicelib.photos.models import DownloadUrls, PreviewFormat

_log = logging.getLogger(__name__)

# CloudFront's URL-safe base64: '+', '=' and '/' become '-', '_' and '~'.
_CLOUDFRONT_SAFE = str.maketrans("+=/", "-_~")
# Memoised signatures kept per window; a container that somehow signs more starts over (never unbounded).
_MEMO_MAX = 50_000
# After a failed key refresh, a container keeps signing with the key it has and tries again this much later.
_REFRESH_RETRY_SECONDS = 60.0
MIN_WINDOW_SECONDS = MIN_MEDIA_URL_WINDOW_SECONDS


class MediaLinks(Protocol):
    def urls(
        self,
        owner_id: str,
        photo_id: str,
        *,
        preview_format: PreviewFormat,
        viewer: str | None,
        original: bool,
        filename: str | None = None,
    ) -> DownloadUrls:
        """A READY photo's URLs for `viewer` (None: a share-link visitor), its previews in `preview_format` (the
        one the photo records). The owner gets every URL, the original named `filename` when downloaded; anyone
        else gets the previews, and the original only if `original`."""
        ...


@dataclass(frozen=True)
class MediaKey:
    key_pair_id: str
    secret: int  # the P-256 private scalar


def parse_media_key(text: str) -> MediaKey:
    """`{"key_pair_id": "K...", "private_key": "<PEM>"}`, as Secrets Manager holds it (ops/media_keys.py)."""
    try:
        document = json.loads(text)
    except ValueError:
        raise ValueError("the media key is not JSON") from None
    if not isinstance(document, dict):
        raise ValueError("the media key is not a JSON object")
    key_pair_id, pem = document.get("key_pair_id"), document.get("private_key")
    if not isinstance(key_pair_id, str) or not key_pair_id.isalnum():
        raise ValueError("the media key has no key_pair_id (the CloudFront public key's id)")
    if not isinstance(pem, str):
        raise ValueError("the media key has no private_key (PEM)")
    return MediaKey(key_pair_id, p256.private_key_from_pem(pem))


def _cloudfront_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").translate(_CLOUDFRONT_SAFE)


def policy_query(key: MediaKey, resource: str, expires_at: int) -> str:
    """The signing parameters for a custom policy granting `resource` until `expires_at` (epoch seconds)."""
    policy = json.dumps(
        {"Statement": [{"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": expires_at}}}]},
        separators=(",", ":"),
    ).encode()
    signature = p256.sign(key.secret, policy)
    return (
        f"Policy={_cloudfront_base64(policy)}&Signature={_cloudfront_base64(signature)}"
        f"&Key-Pair-Id={key.key_pair_id}&Hash-Algorithm=SHA256"
    )


def content_disposition(filename: str) -> str:
    # The browser saves the original under the name it was uploaded with (RFC 6266 / 5987).
    return f"inline; filename*=UTF-8''{quote(filename, safe='')}"


class CloudFrontMedia:
    def __init__(
        self,
        base_url: str,
        load_key: Callable[[], str],
        *,
        window_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`load_key` returns the key's JSON (a Secrets Manager read); it is called on first use, then once a
        window."""
        if window_seconds < MIN_WINDOW_SECONDS:
            raise ValueError(f"the URL window must be at least {MIN_WINDOW_SECONDS} s")
        self._base = base_url.rstrip("/")
        self._load_key = load_key
        self._window = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._key: MediaKey | None = None
        self._key_window = -1
        self._retry_at = 0.0
        self._memo: dict[str, str] = {}
        self._memo_window = -1

    def urls(
        self,
        owner_id: str,
        photo_id: str,
        *,
        preview_format: PreviewFormat,
        viewer: str | None,
        original: bool,
        filename: str | None = None,
    ) -> DownloadUrls:
        now = self._clock()
        window = int(now // self._window)
        base = self._base
        # The signatures cover prefixes (the owner's previews, or this photo's), not names: one per window whatever
        # the format, so a JPEG and a WebP photo share them.
        small_key = keys.preview_object(owner_id, photo_id, "small", preview_format)
        large_key = keys.preview_object(owner_id, photo_id, "large", preview_format)
        original_key = keys.original_object(owner_id, photo_id)
        if viewer == owner_id:
            previews = self._query(f"{base}/{keys.previews_prefix(owner_id)}*", window, now)
            originals = self._query(f"{base}/{keys.originals_prefix(owner_id)}*", window, now)
            disposition = (
                f"response-content-disposition={quote(content_disposition(filename), safe='')}&" if filename else ""
            )
            return DownloadUrls(
                original=f"{base}/{original_key}?{disposition}{originals}",
                large=f"{base}/{large_key}?{previews}",
                small=f"{base}/{small_key}?{previews}",
            )
        previews = self._query(f"{base}/{keys.photo_previews_prefix(owner_id, photo_id)}*", window, now)
        return DownloadUrls(
            original=f"{base}/{original_key}?{self._query(f'{base}/{original_key}', window, now)}"
            if original
            else None,
            large=f"{base}/{large_key}?{previews}",
            small=f"{base}/{small_key}?{previews}",
        )

    def _query(self, resource: str, window: int, now: float) -> str:
        if window != self._memo_window or len(self._memo) >= _MEMO_MAX:
            with self._lock:
                if window != self._memo_window or len(self._memo) >= _MEMO_MAX:
                    self._memo = {}
                    self._memo_window = window
        query = self._memo.get(resource)
        if query is None:
            # Valid to the end of the next window: at least one whole window after it is handed out.
            query = policy_query(self._current_key(window, now), resource, (window + 2) * self._window)
            self._memo[resource] = query
        return query

    def _current_key(self, window: int, now: float) -> MediaKey:
        with self._lock:
            if self._key is not None and (self._key_window == window or now < self._retry_at):
                return self._key
            try:
                key = parse_media_key(self._load_key())
            except errors.Unavailable:
                if self._key is None:
                    raise
                # Keep signing with the key we have (it is in the key group until a rotation's last step, which
                # waits for every container): a Secrets Manager outage must not take the photos down.
                _log.warning("media key refresh failed; keeping the current key")
                self._retry_at = now + _REFRESH_RETRY_SECONDS
                return self._key
            except ValueError as e:
                if self._key is None:
                    raise errors.Unavailable(f"the media signing key is unusable: {e}") from None
                _log.error("media key refresh found an unusable key (%s); keeping the current key", e)
                self._retry_at = now + _REFRESH_RETRY_SECONDS
                return self._key
            self._key, self._key_window = key, window
            return key


class PresignedUrls(Protocol):
    def download_url(self, key: str, *, expires_in: int, filename: str | None = None) -> str: ...


class S3Media:
    """No CDN (the `chalice deploy` path): S3 presigned URLs, new on every request, so never cached."""

    def __init__(self, storage: PresignedUrls, *, owner_seconds: int, shared_seconds: int) -> None:
        self._storage = storage
        self._owner_seconds = owner_seconds
        self._shared_seconds = shared_seconds

    def urls(
        self,
        owner_id: str,
        photo_id: str,
        *,
        preview_format: PreviewFormat,
        viewer: str | None,
        original: bool,
        filename: str | None = None,
    ) -> DownloadUrls:
        owned = viewer == owner_id
        seconds = self._owner_seconds if owned else self._shared_seconds
        url = self._storage.download_url
        return DownloadUrls(
            original=url(
                keys.original_object(owner_id, photo_id), expires_in=seconds, filename=filename if owned else None
            )
            if owned or original
            else None,
            large=url(keys.preview_object(owner_id, photo_id, "large", preview_format), expires_in=seconds),
            small=url(keys.preview_object(owner_id, photo_id, "small", preview_format), expires_in=seconds),
        )
