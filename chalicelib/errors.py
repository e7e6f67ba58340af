"""Domain errors: what can go wrong, in the domain's words.

Services and adapters raise these; `chalicelib.web` maps each one to an HTTP status in one table.
This module imports nothing of ours so every layer can use it.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a client can cause or should be told about."""

    # Seconds after which the same request may succeed; sent as Retry-After when set.
    retry_after: int | None = None

    @property
    def details(self) -> dict[str, str]:
        """Fields the error body carries besides Code and Message."""
        return {}


class Invalid(DomainError):
    """A request field is missing or malformed. The message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


class NotFound(DomainError):
    """The resource does not exist, or it is not the caller's (we never say which)."""


class Forbidden(DomainError):
    """The caller may see the resource but not do this to it (a viewer editing an album)."""


class PasswordRequired(DomainError):
    """A password-protected share link was opened without a valid access token."""


class WrongPassword(DomainError):
    """The password sent to unlock a share link is not the link's."""


class Conflict(DomainError):
    """The write clashes with the current state: a duplicate create or a stale version."""


class DuplicatePhoto(Conflict):
    """The caller's library already holds a photo with these bytes (`photo_id`)."""

    def __init__(self, photo_id: str, message: str | None = None) -> None:
        super().__init__(message or f"a copy of this photo is already in your library (photo {photo_id})")
        self.photo_id = photo_id

    @property
    def details(self) -> dict[str, str]:
        return {"photo_id": self.photo_id}


class AccountDeleting(Conflict):
    """The caller's account is being deleted: nothing new is stored for it."""


class TooLarge(DomainError):
    """A declared size is over the limit."""


class UnsupportedType(DomainError):
    """A declared content type is not allowed."""


class QuotaExceeded(DomainError):
    """The caller is over a quota or rate limit."""


class TooManyPending(QuotaExceeded):
    """The caller has as many uploads outstanding as allowed; one must settle before another starts."""

    # Uploads settle within seconds of arriving, so a client waiting this long usually finds room.
    retry_after = 5


class RateLimited(QuotaExceeded):
    """The caller made more writes in this window than allowed; `retry_after` says when the next is."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unauthenticated(DomainError):
    """The request carries no verified identity."""


class Unavailable(DomainError):
    """A dependency is throttled or unreachable; the client may retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
