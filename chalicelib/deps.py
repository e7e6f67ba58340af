"""Composition root: builds clients and services on first use and keeps them for the container's life.

Nothing is built at import. moto must be running, and `AWS_ENDPOINT_URL` set, before a client exists, and a
cold start should pay only for what the first request uses. Tests call `reset()` between environments.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import boto3
from botocore.config import Config

from chalicelib import clock
from chalicelib.config import Settings
from chalicelib.users.models import Quota
from chalicelib.users.repository import DynamoUserRepository
from chalicelib.users.service import UserService

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

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
_AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)


@_once
def settings() -> Settings:
    return Settings.from_env()


@_once
def dynamodb() -> DynamoDBClient:
    # A session per client: boto3's default session is not safe to create clients from concurrently.
    return boto3.session.Session().client("dynamodb", region_name=settings().region, config=_AWS_CONFIG)


@_once
def user_service() -> UserService:
    s = settings()
    return UserService(
        DynamoUserRepository(dynamodb(), s.table_name),
        clock=clock.utc_now,
        quota=Quota(photos=s.quota_photos, bytes=s.quota_bytes),
    )


def reset() -> None:
    """Forget every client and service (tests switch environments between cases)."""
    with _lock:
        for cached in _cached:
            cached.cache_clear()
