"""Settings: the only module that reads the environment.

Everything is read once into a frozen `Settings`; a missing or malformed variable is reported with every
other problem at once, so a misconfigured stage fails with one clear message instead of a KeyError later.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

GIB = 1024**3
MIB = 1024**2
# A media URL is byte-identical for a window and valid one more; an hour at least, so a page stays cacheable.
MIN_MEDIA_URL_WINDOW_SECONDS = 3600


class ConfigError(RuntimeError):
    """The environment does not describe a usable stage."""


@dataclass(frozen=True)
class Settings:
    table_name: str
    bucket_name: str
    region: str
    # The pagination cursors' HMAC key: given directly (dev stack, tests), or as a Secrets Manager ARN fetched on
    # first use so the key never sits in the Lambda's configuration (AWS).
    cursor_secret: bytes | None = None
    cursor_secret_arn: str | None = None
    quota_photos: int = 10_000
    quota_bytes: int = 10 * GIB
    max_upload_bytes: int = 25 * MIB
    # Uploads a user may have started and not finished at once (each reserves its declared size).
    max_pending_uploads: int = 100
    # Writes (POST, PATCH, DELETE) one user may make per rate-limit window, counted in the table.
    write_rate_limit: int = 300
    write_rate_window_seconds: int = 60
    # The reconciler stops taking new items after this long, leaving the rest to its next run (its Lambda has
    # 300 s; one item takes at most the worker's decode budget plus a few S3 and DynamoDB calls).
    reconcile_budget_seconds: int = 180
    # Items the scheduled jobs (stale uploads, the trash purge) work on at once: their time goes on AWS round trips,
    # so threads multiply what one run gets through (chalicelib/sweep.py; docs/SCALE.md has the figures).
    sweep_threads: int = 16
    # A presigned POST must be used within this time; the reconciler gives up on uploads a grace period later.
    upload_url_seconds: int = 900
    upload_grace_seconds: int = 900
    download_url_seconds: int = 3600
    # Photo URLs handed to album members and share-link visitors: short, because a presigned URL cannot be revoked
    # and access ends when membership or the link does (at most this much later for URLs already handed out).
    shared_url_seconds: int = 600
    # How long a deleted photo stays in the trash, restorable (and counting against the quota), before its purge.
    trash_days: int = 30
    # Media through the CDN (chalicelib/media.py): the distribution's base URL, and its signing key given directly
    # (dev stack, tests) or, in AWS, as a Secrets Manager ARN read on first use and once per window. No media URL:
    # S3 presigned URLs (the `chalice deploy` path, which has no CDN).
    media_url: str | None = None
    media_key: str | None = None
    media_key_secret_arn: str | None = None
    # Media URLs stay byte-identical for this long and are valid at least this long after they are handed out.
    media_url_window_seconds: int = MIN_MEDIA_URL_WINDOW_SECONDS
    # The Cognito user pool whose users can be found by user name (to share an album with them).
    user_pool_id: str | None = None
    # Browser origins (scheme://host[:port]) whose requests get CORS headers: the SPA's, nothing else.
    allowed_origins: tuple[str, ...] = ()
    # Live status over the WebSocket API (chalicelib/realtime): the @connections management endpoint's base URL
    # (`https://<api-id>.execute-api.<region>.amazonaws.com/<stage>` in AWS, the dev stack's `http://127.0.0.1:<port>`).
    # Unset: realtime is off, so no connection is accepted and nothing is pushed.
    ws_management_url: str | None = None
    # The Cognito app client whose ID tokens open a connection (the token's `aud`), and where the pool's signing
    # keys are published (derived from the pool; the dev stack points it at its emulated pool).
    user_pool_client_id: str | None = None
    jwks_url: str | None = None
    # Connections one user may hold at once; connecting beyond closes the oldest.
    ws_max_connections: int = 10

    @property
    def token_issuer(self) -> str | None:
        """The `iss` of the pool's ID tokens, or None without a pool."""
        if self.user_pool_id is None:
            return None
        return f"https://cognito-idp.{_pool_region(self.user_pool_id, self.region)}.amazonaws.com/{self.user_pool_id}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        # `env` is the process environment bound at import, on purpose: chalice.test.Client swaps os.environ for a
        # copy overlaid with .chalice/config.json's stage values while a request runs, and a test's own settings
        # (set on the real environment) must win over the file's. In Lambda both are the same object.
        problems: list[str] = []

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is not set")
            return value

        def positive_int(name: str, default: int) -> int:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError:
                problems.append(f"{name} must be a whole number, got {raw!r}")
                return default
            if value <= 0:
                problems.append(f"{name} must be positive, got {value}")
            return value

        table_name = required("TABLE_NAME")
        bucket_name = required("BUCKET_NAME")
        # Lambda sets AWS_REGION; the CLI tools and our dev stack set AWS_DEFAULT_REGION.
        region = env.get("AWS_REGION", "").strip() or env.get("AWS_DEFAULT_REGION", "").strip()
        if not region:
            problems.append("AWS_REGION (or AWS_DEFAULT_REGION) is not set")
        cursor_secret = env.get("PHOTOSKY_CURSOR_SECRET", "").strip()
        cursor_secret_arn = env.get("PHOTOSKY_CURSOR_SECRET_ARN", "").strip()
        if not cursor_secret and not cursor_secret_arn:
            problems.append("PHOTOSKY_CURSOR_SECRET or PHOTOSKY_CURSOR_SECRET_ARN must be set")
        if cursor_secret and len(cursor_secret) < 16:
            problems.append("PHOTOSKY_CURSOR_SECRET must be at least 16 characters")
        allowed_origins = _origins(env.get("PHOTOSKY_ALLOWED_ORIGINS", ""), problems)
        media_url = env.get("PHOTOSKY_MEDIA_URL", "").strip().rstrip("/")
        media_key = env.get("PHOTOSKY_MEDIA_KEY", "").strip()
        media_key_secret_arn = env.get("PHOTOSKY_MEDIA_KEY_SECRET_ARN", "").strip()
        if media_url and not _BASE_URL.match(media_url):
            problems.append(f"PHOTOSKY_MEDIA_URL must be an http(s) base URL without a query, got {media_url!r}")
        if media_url and not media_key and not media_key_secret_arn:
            problems.append("PHOTOSKY_MEDIA_URL needs PHOTOSKY_MEDIA_KEY or PHOTOSKY_MEDIA_KEY_SECRET_ARN")
        media_window = positive_int("PHOTOSKY_MEDIA_URL_WINDOW_SECONDS", cls.media_url_window_seconds)
        if media_window < MIN_MEDIA_URL_WINDOW_SECONDS:
            problems.append(
                f"PHOTOSKY_MEDIA_URL_WINDOW_SECONDS must be at least {MIN_MEDIA_URL_WINDOW_SECONDS}, got {media_window}"
            )
        ws_management_url = env.get("PHOTOSKY_WS_MANAGEMENT_URL", "").strip().rstrip("/")
        if ws_management_url and not _BASE_URL.match(ws_management_url):
            problems.append(
                f"PHOTOSKY_WS_MANAGEMENT_URL must be an http(s) base URL without a query, got {ws_management_url!r}"
            )
        user_pool_id = _user_pool_id(env)
        user_pool_client_id = env.get("PHOTOSKY_USER_POOL_CLIENT_ID", "").strip()
        jwks_url = env.get("PHOTOSKY_JWKS_URL", "").strip() or _default_jwks_url(user_pool_id, region)
        if jwks_url and not _BASE_URL.match(jwks_url):
            problems.append(f"PHOTOSKY_JWKS_URL must be an http(s) URL without a query, got {jwks_url!r}")
        settings = cls(
            table_name=table_name,
            bucket_name=bucket_name,
            region=region,
            cursor_secret=cursor_secret.encode() if cursor_secret else None,
            cursor_secret_arn=cursor_secret_arn or None,
            quota_photos=positive_int("PHOTOSKY_QUOTA_PHOTOS", cls.quota_photos),
            quota_bytes=positive_int("PHOTOSKY_QUOTA_BYTES", cls.quota_bytes),
            max_upload_bytes=positive_int("PHOTOSKY_MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            max_pending_uploads=positive_int("PHOTOSKY_MAX_PENDING_UPLOADS", cls.max_pending_uploads),
            write_rate_limit=positive_int("PHOTOSKY_WRITE_RATE_LIMIT", cls.write_rate_limit),
            write_rate_window_seconds=positive_int("PHOTOSKY_WRITE_RATE_WINDOW_SECONDS", cls.write_rate_window_seconds),
            reconcile_budget_seconds=positive_int("PHOTOSKY_RECONCILE_BUDGET_SECONDS", cls.reconcile_budget_seconds),
            sweep_threads=positive_int("PHOTOSKY_SWEEP_THREADS", cls.sweep_threads),
            upload_url_seconds=positive_int("PHOTOSKY_UPLOAD_URL_SECONDS", cls.upload_url_seconds),
            upload_grace_seconds=positive_int("PHOTOSKY_UPLOAD_GRACE_SECONDS", cls.upload_grace_seconds),
            download_url_seconds=positive_int("PHOTOSKY_DOWNLOAD_URL_SECONDS", cls.download_url_seconds),
            shared_url_seconds=positive_int("PHOTOSKY_SHARED_URL_SECONDS", cls.shared_url_seconds),
            trash_days=positive_int("PHOTOSKY_TRASH_DAYS", cls.trash_days),
            user_pool_id=user_pool_id,
            allowed_origins=allowed_origins,
            media_url=media_url or None,
            media_key=media_key or None,
            media_key_secret_arn=media_key_secret_arn or None,
            media_url_window_seconds=media_window,
            ws_management_url=ws_management_url or None,
            user_pool_client_id=user_pool_client_id or None,
            jwks_url=jwks_url or None,
            ws_max_connections=positive_int("PHOTOSKY_WS_MAX_CONNECTIONS", cls.ws_max_connections),
        )
        if problems:
            raise ConfigError("invalid PhotoSky configuration: " + "; ".join(problems))
        return settings


_BASE_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?\Z")
_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?\Z")


def _origins(raw: str, problems: list[str]) -> tuple[str, ...]:
    """PHOTOSKY_ALLOWED_ORIGINS: comma-separated exact origins. No wildcard: the API answers only the SPA."""
    origins = []
    for item in raw.split(","):
        origin = item.strip().rstrip("/").lower()  # browsers send origins lower-case, without a trailing slash
        if not origin:
            continue
        if not _ORIGIN.match(origin):
            problems.append(
                f"PHOTOSKY_ALLOWED_ORIGINS has a value that is not an origin (scheme://host[:port]): {item.strip()!r}"
            )
            continue
        origins.append(origin)
    return tuple(dict.fromkeys(origins))


def _user_pool_id(env: Mapping[str, str]) -> str | None:
    """The first trusted pool's id (`arn:...:userpool/<id>`): the pool whose users an owner can share with."""
    arns = [arn.strip() for arn in env.get("COGNITO_USER_POOL_ARN", "").split(",") if ":userpool/" in arn]
    return arns[0].rsplit(":userpool/", 1)[1] if arns else None


def _pool_region(pool_id: str, default: str) -> str:
    """A pool id is `<region>_<suffix>`: its tokens are issued in that region, whatever the Lambda's."""
    region, sep, _ = pool_id.partition("_")
    return region if sep and region else default


def _default_jwks_url(pool_id: str | None, region: str) -> str:
    """Where Cognito publishes the pool's signing keys; empty without a pool."""
    if not pool_id:
        return ""
    return f"https://cognito-idp.{_pool_region(pool_id, region)}.amazonaws.com/{pool_id}/.well-known/jwks.json"


def user_pool_arns(env: Mapping[str, str] = os.environ) -> list[str]:
    """The Cognito user pool ARNs the API's authorizer trusts.

    Read at import time by `app.py` because Chalice needs them when it builds the authorizer;
    `chalice deploy`/`package` set the stage's variables before importing the app.
    """
    raw = env.get("COGNITO_USER_POOL_ARN", "")
    arns = [arn.strip() for arn in raw.split(",") if arn.strip()]
    if not arns:
        raise ConfigError("COGNITO_USER_POOL_ARN is not set (comma-separated ARNs of the Cognito user pools)")
    for arn in arns:
        if not arn.startswith("arn:") or ":userpool/" not in arn:
            raise ConfigError(f"COGNITO_USER_POOL_ARN has a value that is not a user pool ARN: {arn!r}")
    return arns


def uploads_queue_name(env: Mapping[str, str] = os.environ) -> str:
    """The SQS queue the upload worker consumes; read at import because Chalice needs it in the decorator."""
    name = env.get("UPLOADS_QUEUE_NAME", "").strip()
    if not name:
        raise ConfigError("UPLOADS_QUEUE_NAME is not set (the SQS queue that receives the bucket's upload events)")
    return name
