"""The error types of salescast; the CLI and the API map them to exit codes and statuses in one place each."""

from __future__ import annotations


class SalescastError(Exception):
    """Base of every error salescast raises on purpose; its message is meant for the user."""

    exit_code = 1
    http_status = 500


class ConfigurationError(SalescastError):
    """A setting or an option is invalid."""

    exit_code = 2
    http_status = 400


class DataValidationError(SalescastError):
    """Input data cannot be used as given."""

    exit_code = 3
    http_status = 422


class FileRefusedError(DataValidationError):
    """A whole file was refused (too many bad rows, unreadable, missing columns); nothing was loaded."""


class StorageError(SalescastError):
    """The database could not be reached or a write failed; nothing was committed."""

    exit_code = 4
    http_status = 503


class NotFoundError(SalescastError):
    """A named thing (product, category, model, …) does not exist."""

    exit_code = 5
    http_status = 404


class ArtifactIntegrityError(SalescastError):
    """An artifact is not what was registered (checksum mismatch) or is not a safe archive; nothing was unpacked.

    A request that needs it (an alias move onto it) conflicts with the state of the store: 409, the
    detail naming the version only (the path and checksums go to the log)."""

    exit_code = 6
    http_status = 409

    def __init__(self, message: str, *, public: bool = False) -> None:
        super().__init__(message)
        # True when the message names versions only (no location, no checksums) and may reach a caller.
        self.public = public


class ModelUnavailableError(SalescastError):
    """A model version cannot serve: its artifact is missing or fails its check. The message names the
    version only; the artifact's location and checksums go to the log and the alert."""

    exit_code = 6
    http_status = 503


class ArtifactNotFoundError(NotFoundError):
    """No artifact is stored under a key (or version)."""


class AlertDeliveryError(SalescastError):
    """An alert could not be delivered to its sink."""

    exit_code = 7
    http_status = 502


class AuthenticationError(SalescastError):
    """No API key, or one that is unknown or revoked."""

    exit_code = 8
    http_status = 401


class PermissionDeniedError(SalescastError):
    """The API key lacks the scope a route needs."""

    exit_code = 8
    http_status = 403


class RateLimitedError(SalescastError):
    """A key made more requests than its rate allows; `retry_after` says when to try again (seconds)."""

    exit_code = 9
    http_status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConflictError(SalescastError):
    """The request conflicts with the current state (e.g. a rollout is already running)."""

    exit_code = 10
    http_status = 409
