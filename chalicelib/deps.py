"""Composition root: builds clients and services on first use and keeps them for the container's life.

Nothing is built at import. moto must be running, and `AWS_ENDPOINT_URL` set, before a client exists, and a
cold start should pay only for what the first request uses. Tests call `reset()` between environments.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

import boto3
from botocore.config import Config

from chalicelib import clock
from chalicelib.aws import dependency_errors
from chalicelib.config import Settings
from chalicelib.cursors import CursorCodec
from chalicelib.photos.repository import DynamoPhotoRepository
from chalicelib.photos.service import PhotoService
from chalicelib.storage import S3Storage
from chalicelib.users.models import Quota
from chalicelib.users.repository import DynamoUserRepository
from chalicelib.users.service import UserService

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

    from chalicelib.photos.ingest import UploadProcessor

T = TypeVar("T")

_lock = threading.RLock()
_cached: list[functools._lru_cache_wrapper[object]] = []


def _once(factory: Callable[[], T]) -> Callable[[], T]:
    """Cache a zero-argument factory; the lock matters in the threaded dev server, not in Lambda."""
    cached = functools.cache(factory)

    @functools.wraps(factory)
    def get() -> T:
        with _lock:
            return cached()

    _cached.append(cached)
    return get


# Standard retry mode backs off on throttling; short timeouts keep a stuck dependency from eating the
# Lambda's whole budget (the caller gets a 503 and retries instead).
# Three attempts in all (botocore's `max_attempts` counts retries only, which made it four): one stuck call's
# worst case, 3 x 7 s plus back-off, now fits inside API Gateway's 29 s.
_AWS_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=5)


@_once
def settings() -> Settings:
    return Settings.from_env()


@_once
def dynamodb() -> DynamoDBClient:
    # A session per client: boto3's default session is not safe to create clients from concurrently.
    return boto3.session.Session().client("dynamodb", region_name=settings().region, config=_AWS_CONFIG)


@_once
def s3() -> S3Client:
    # SigV4 with an explicit region: SigV2 presigning is deprecated and fails in newer regions.
    return boto3.session.Session().client(
        "s3", region_name=settings().region, config=_AWS_CONFIG.merge(Config(signature_version="s3v4"))
    )


def _quota() -> Quota:
    return Quota(photos=settings().quota_photos, bytes=settings().quota_bytes)


@_once
def user_service() -> UserService:
    return UserService(DynamoUserRepository(dynamodb(), settings().table_name), clock=clock.utc_now, quota=_quota())


@_once
def storage() -> S3Storage:
    return S3Storage(s3(), settings().bucket_name)


@_once
def photo_repository() -> DynamoPhotoRepository:
    return DynamoPhotoRepository(dynamodb(), settings().table_name)


def _cursor_secret() -> bytes:
    s = settings()
    if s.cursor_secret is not None:
        return s.cursor_secret
    client = boto3.session.Session().client("secretsmanager", region_name=s.region, config=_AWS_CONFIG)
    with dependency_errors("Secrets Manager"):
        return client.get_secret_value(SecretId=s.cursor_secret_arn or "")["SecretString"].encode()


@_once
def photo_service() -> PhotoService:
    s = settings()
    return PhotoService(
        photo_repository(),
        storage(),
        clock=clock.now,
        cursors=CursorCodec(_cursor_secret),
        quota=_quota(),
        upload_url_seconds=s.upload_url_seconds,
        download_url_seconds=s.download_url_seconds,
    )


@_once
def upload_processor() -> UploadProcessor:
    # Imported here, not at the top: the image libraries must stay off the API Lambda's cold path.
    from chalicelib import imaging
    from chalicelib.photos.ingest import UploadProcessor

    def process_image(data: bytes, declared_type: str) -> imaging.ProcessedImage:
        return imaging.process(data, declared_type=declared_type)

    return UploadProcessor(
        photo_repository(),
        storage(),
        process_image=process_image,
        clock=clock.now,
        upload_grace=timedelta(seconds=settings().upload_grace_seconds),
    )


def reset() -> None:
    """Forget every client and service (tests switch environments between cases)."""
    with _lock:
        for cached in _cached:
            cached.cache_clear()
