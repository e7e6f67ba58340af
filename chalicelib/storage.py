"""S3 adapter: presigned POSTs for uploads, presigned GETs for downloads, and the worker's object operations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib import errors
from chalicelib.aws import dependency_errors, error_code
from chalicelib.clock import iso_utc
from chalicelib.media import content_disposition
from chalicelib.photos.models import PresignedUpload, StoredObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def upload_policy(*, key: str, content_type: str, size_bytes: int) -> tuple[dict[str, str], list[Any]]:
    """The fields and conditions of an upload's POST policy: exactly this key, this type and this size.

    Kept separate (and unit-tested) because emulators do not enforce POST policies; S3 does.
    """
    fields = {"Content-Type": content_type}
    conditions: list[Any] = [
        {"Content-Type": content_type},
        ["content-length-range", size_bytes, size_bytes],
    ]
    return fields, conditions


OBJECT_CACHE_CONTROL = "private, max-age=31536000, immutable"
# DeleteObjects takes at most this many keys.
_DELETE_MAX = 1000


class S3Storage:
    def __init__(self, client: S3Client | Callable[[], S3Client], bucket: str) -> None:
        """`client` may be a factory, called on first use: serving a photo list through the CDN needs no S3
        client, and making one costs about 40 ms of a cold start (bench/coldstart.py)."""
        self._factory: Callable[[], S3Client] | None = client if callable(client) else None
        self._s3: S3Client | None = None if callable(client) else client
        self._bucket = bucket

    @property
    def _client(self) -> S3Client:
        if self._s3 is None:
            self._s3 = self._factory() if self._factory is not None else None
        if self._s3 is None:
            raise RuntimeError("S3Storage has no client")
        return self._s3

    def presigned_upload(
        self, *, key: str, content_type: str, size_bytes: int, expires_in: int, now: datetime
    ) -> PresignedUpload:
        fields, conditions = upload_policy(key=key, content_type=content_type, size_bytes=size_bytes)
        post = self._client.generate_presigned_post(
            Bucket=self._bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
        )
        return PresignedUpload(
            url=post["url"], fields=dict(post["fields"]), expires_at=iso_utc(now + timedelta(seconds=expires_in))
        )

    def download_url(self, key: str, *, expires_in: int, filename: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if filename is not None:
            params["ResponseContentDisposition"] = content_disposition(filename)
        return self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)

    def head(self, key: str) -> StoredObject | None:
        try:
            with dependency_errors("S3"):
                response = self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as e:
            if error_code(e) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return StoredObject(size=response["ContentLength"], content_type=response.get("ContentType"))

    def read(self, key: str, *, max_bytes: int) -> bytes | None:
        """The object's bytes, or None if it is gone. Refuses to read more than `max_bytes` into memory."""
        try:
            with dependency_errors("S3"):
                response = self._client.get_object(Bucket=self._bucket, Key=key)
                if response["ContentLength"] > max_bytes:
                    response["Body"].close()
                    raise errors.TooLarge(f"object is {response['ContentLength']} bytes, over {max_bytes}")
                return response["Body"].read()
        except ClientError as e:
            if error_code(e) in ("NoSuchKey", "404"):
                return None
            raise

    def write(self, key: str, data: bytes, *, content_type: str) -> None:
        with dependency_errors("S3"):
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                # A photo's objects never change (an edit changes the item, not the bytes), and their URLs hold still
                # for a window (chalicelib/media.py): let the browser keep them without revalidating.
                CacheControl=OBJECT_CACHE_CONTROL,
            )

    def delete(self, *object_keys: str) -> None:
        """Delete the objects; absent ones are fine (S3 deletes are idempotent). 1,000 per call, S3's most."""
        for start in range(0, len(object_keys), _DELETE_MAX):
            chunk = object_keys[start : start + _DELETE_MAX]
            with dependency_errors("S3"):
                response = self._client.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True}
                )
            failed = response.get("Errors", [])
            if failed:
                raise errors.Unavailable(f"S3 did not delete {len(failed)} object(s); retry")

    def keys_under(self, prefix: str, *, limit: int = 1000) -> list[str]:
        """Up to `limit` keys of objects under `prefix` (one ListObjectsV2 call for the default)."""
        with dependency_errors("S3"):
            response = self._client.list_objects_v2(Bucket=self._bucket, Prefix=prefix, MaxKeys=limit)
        return [item["Key"] for item in response.get("Contents", [])]
