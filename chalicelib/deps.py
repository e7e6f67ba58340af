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
from botocore.exceptions import ClientError

from chalicelib import clock, errors
from chalicelib.aws import dependency_errors, error_code
from chalicelib.config import Settings
from chalicelib.cursors import CursorCodec
from chalicelib.media import CloudFrontMedia, MediaLinks, S3Media
from chalicelib.photos.repository import DynamoPhotoRepository
from chalicelib.photos.service import PhotoService
from chalicelib.ratelimit import DynamoRateCounter, WriteRateLimiter
from chalicelib.storage import S3Storage
from chalicelib.users.models import Quota
from chalicelib.users.repository import DynamoUserRepository
from chalicelib.users.service import UserService

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from chalicelib.albums.repository import DynamoAlbumRepository
    from chalicelib.albums.service import AlbumService, UserDirectory
    from chalicelib.photos.ingest import UploadProcessor
    from chalicelib.realtime.connections import DynamoConnections
    from chalicelib.realtime.notifier import ManagementClient, SilentNotifier, WebSocketNotifier
    from chalicelib.realtime.tokens import IdTokenVerifier
    from chalicelib.users.deletion import AccountDeletion

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
AWS_CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=5)


def _pool() -> Config:
    """Connections a client keeps: one per thread of the scheduled jobs (chalicelib.sweep), which share it, where
    botocore's default of 10 would open and drop the others on every call."""
    return Config(max_pool_connections=max(10, settings().sweep_threads))


@_once
def settings() -> Settings:
    return Settings.from_env()


@_once
def _session() -> boto3.session.Session:
    # One session for every client, as `boto3.client` does. Each new session registers botocore's handlers again
    # and reads and parses its data again (endpoints.json, 1.2 MB; the list of services; the default
    # configuration): with a session per client the S3 client took 4x the instructions it takes on a shared one,
    # and the cold start 1.3x a plain Chalice app's (bench/coldstart.py). A session is not safe to create clients
    # from concurrently, so clients are made from it only inside `_once` factories, under `_lock`.
    return boto3.session.Session()


@_once
def dynamodb() -> DynamoDBClient:
    return _session().client("dynamodb", region_name=settings().region, config=AWS_CLIENT_CONFIG.merge(_pool()))


@_once
def s3() -> S3Client:
    # SigV4 with an explicit region: SigV2 presigning is deprecated and fails in newer regions.
    return _session().client(
        "s3",
        region_name=settings().region,
        config=AWS_CLIENT_CONFIG.merge(Config(signature_version="s3v4")).merge(_pool()),
    )


@_once
def secrets_manager() -> SecretsManagerClient:
    return _session().client("secretsmanager", region_name=settings().region, config=AWS_CLIENT_CONFIG)


@_once
def cognito() -> CognitoIdentityProviderClient:
    return _session().client("cognito-idp", region_name=settings().region, config=AWS_CLIENT_CONFIG)


# The WebSocket management API, called after a write has succeeded: a push is best effort, so it gets one retry and
# timeouts short enough that a stuck endpoint costs the write's caller about two seconds (chalicelib/realtime).
_PUSH_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=1, read_timeout=1)


@_once
def management_api() -> ManagementClient:
    """The @connections endpoint (PHOTOSKY_WS_MANAGEMENT_URL): built on the first push that finds someone connected."""
    endpoint = settings().ws_management_url
    if endpoint is None:
        raise RuntimeError("realtime is off (PHOTOSKY_WS_MANAGEMENT_URL is not set)")
    client: ManagementClient = _session().client(
        "apigatewaymanagementapi", region_name=settings().region, endpoint_url=endpoint, config=_PUSH_CONFIG
    )
    return client


@_once
def connections() -> DynamoConnections:
    from chalicelib.realtime.connections import DynamoConnections

    s = settings()
    return DynamoConnections(dynamodb(), s.table_name, max_per_user=s.ws_max_connections)


@_once
def notifier() -> WebSocketNotifier | SilentNotifier:
    """Who hears about a change: every connection of the users it concerns, or nobody when realtime is off."""
    from chalicelib.realtime.notifier import SilentNotifier, WebSocketNotifier

    if settings().ws_management_url is None:
        return SilentNotifier()
    return WebSocketNotifier(connections(), management_api, albums=album_repository)


@_once
def id_token_verifier() -> IdTokenVerifier:
    """The connect handler's token check, built once per container (it caches the pool's keys). Imported here, on
    first use: only the connect function ever loads the RS256 code."""
    from chalicelib.realtime.tokens import IdTokenVerifier

    s = settings()
    if s.token_issuer is None or s.user_pool_client_id is None or s.jwks_url is None:
        raise errors.Unavailable(
            "realtime needs COGNITO_USER_POOL_ARN and PHOTOSKY_USER_POOL_CLIENT_ID to check tokens"
        )
    return IdTokenVerifier(issuer=s.token_issuer, audience=s.user_pool_client_id, jwks_url=s.jwks_url)


def _quota() -> Quota:
    s = settings()
    return Quota(photos=s.quota_photos, bytes=s.quota_bytes, pending=s.max_pending_uploads)


@_once
def user_service() -> UserService:
    return UserService(DynamoUserRepository(dynamodb(), settings().table_name), clock=clock.utc_now, quota=_quota())


@_once
def storage() -> S3Storage:
    return S3Storage(s3, settings().bucket_name)


@_once
def photo_repository() -> DynamoPhotoRepository:
    return DynamoPhotoRepository(dynamodb(), settings().table_name)


@_once
def write_limiter() -> WriteRateLimiter:
    s = settings()
    return WriteRateLimiter(
        DynamoRateCounter(dynamodb(), s.table_name),
        limit=s.write_rate_limit,
        window_seconds=s.write_rate_window_seconds,
    )


def _cursor_secret() -> bytes:
    s = settings()
    if s.cursor_secret is not None:
        return s.cursor_secret
    with dependency_errors("Secrets Manager"):
        return secrets_manager().get_secret_value(SecretId=s.cursor_secret_arn or "")["SecretString"].encode()


def _media_key() -> str:
    s = settings()
    if s.media_key is not None:
        return s.media_key
    try:
        with dependency_errors("Secrets Manager"):
            return secrets_manager().get_secret_value(SecretId=s.media_key_secret_arn or "")["SecretString"]
    except ClientError as e:
        # A missing secret or a denied read is the stage's misconfiguration: a 503 that says so, never a 500.
        raise errors.Unavailable(f"the media signing key cannot be read ({error_code(e)})") from e


@_once
def media() -> MediaLinks:
    s = settings()
    if s.media_url is None:
        return S3Media(storage(), owner_seconds=s.download_url_seconds, shared_seconds=s.shared_url_seconds)
    return CloudFrontMedia(s.media_url, _media_key, window_seconds=s.media_url_window_seconds)


@_once
def _cursor_codec() -> CursorCodec:
    return CursorCodec(_cursor_secret)


@_once
def user_directory() -> UserDirectory:
    from chalicelib.albums.directory import CognitoDirectory  # (the album code is imported on first use)

    pool = settings().user_pool_id
    if pool is None:
        raise RuntimeError("no user pool configured (COGNITO_USER_POOL_ARN)")
    return CognitoDirectory(cognito, pool)


@_once
def album_repository() -> DynamoAlbumRepository:
    from chalicelib.albums.repository import DynamoAlbumRepository
    from chalicelib.albums.shown_photos import ShownPhotos

    return DynamoAlbumRepository(dynamodb(), settings().table_name, shown_photos=ShownPhotos())


@_once
def album_service() -> AlbumService:
    # Imported here, not at the top: a cold start that serves only photos never pays for the album code.
    from chalicelib.albums.access import AlbumAccess
    from chalicelib.albums.links import AccessTokens
    from chalicelib.albums.service import AlbumService

    tokens = AccessTokens(_cursor_codec().secret)
    return AlbumService(
        album_repository(),
        AlbumAccess(album_repository(), tokens, clock.now),
        directory=user_directory,
        display_names=DynamoUserRepository(dynamodb(), settings().table_name).display_names,
        media=media(),
        access_tokens=tokens,
        cursors=_cursor_codec(),
        clock=clock.now,
        events=notifier(),
    )


@_once
def account_deletion() -> AccountDeletion:
    # Rarely used: imported on first use, like the album code it drives.
    from chalicelib.users.deletion import AccountDeletion, DynamoAccountRepository

    return AccountDeletion(
        DynamoAccountRepository(dynamodb(), settings().table_name),
        photo_repository(),
        album_service(),
        storage(),
        clock=clock.now,
        # Its last step closes the user's open sockets (nothing would reach them once their items are gone).
        sockets=notifier(),
    )


@_once
def photo_service() -> PhotoService:
    s = settings()
    return PhotoService(
        photo_repository(),
        storage(),
        clock=clock.now,
        cursors=_cursor_codec(),
        quota=_quota(),
        media=media(),
        upload_url_seconds=s.upload_url_seconds,
        trash_days=s.trash_days,
        events=notifier(),
        sweep_threads=s.sweep_threads,
    )


@_once
def upload_processor() -> UploadProcessor:
    # Imported here, not at the top: the image libraries must stay off the API Lambda's cold path.
    from chalicelib import imaging
    from chalicelib.photos.ingest import UploadProcessor

    def process_image(data: bytes, declared_type: str) -> imaging.ProcessedImage:
        # Decoded in a forked child the kernel stops past 10 s of CPU or 1 GiB (imaging.process_guarded): a file
        # that would exhaust either is REJECTED, rather than timing the worker out, delivery after delivery, into
        # the dead-letter queue. What each decode cost goes to the log.
        from chalicelib import decode_guard, logs

        def log_decode(outcome: imaging.DecodeOutcome, usage: decode_guard.Usage) -> None:
            logs.emit(
                "decode",
                content_type=declared_type,  # validated against the accepted types when the upload began
                outcome=outcome,
                cpu_ms=round(usage.cpu_seconds * 1000, 1),
                peak_mb=round(usage.added_bytes / 2**20, 1),
                latency_ms=round(usage.wall_seconds * 1000, 1),
            )

        return imaging.process_guarded(data, declared_type=declared_type, on_decode=log_decode)

    return UploadProcessor(
        photo_repository(),
        storage(),
        process_image=process_image,
        clock=clock.now,
        upload_grace=timedelta(seconds=settings().upload_grace_seconds),
        reconcile_budget=timedelta(seconds=settings().reconcile_budget_seconds),
        events=notifier(),
        sweep_threads=settings().sweep_threads,
    )


def prime() -> None:
    """Build what requests use, without calling AWS: Lambda runs this before it takes a SnapStart snapshot, so a
    restored environment starts with its clients and services made. No secret is read (the media key and the
    cursor secret stay out of the snapshot, and are read after the restore, on first use)."""
    for client in (dynamodb, s3, secrets_manager, cognito):
        client()
    user_service()
    photo_service()
    write_limiter()
    album_service()
    media()
    # The pushers, but not the management API's client (built on the first push that finds someone connected) nor
    # the token check (the connect function's alone: the API never loads it).
    notifier()


def reset() -> None:
    """Forget every client and service (tests switch environments between cases)."""
    with _lock:
        for cached in _cached:
            cached.cache_clear()
