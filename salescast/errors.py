"""The error types of salescast; the CLI and the API map them to exit codes and statuses in one place each."""

from __future__ import annotations


class SalescastError(Exception):
    """Base of every error salescast raises on purpose; its message is meant for the user."""

    exit_code = 1


class ConfigurationError(SalescastError):
    """A setting or an option is invalid."""

    exit_code = 2


class DataValidationError(SalescastError):
    """Input data cannot be used as given."""

    exit_code = 3


class FileRefusedError(DataValidationError):
    """A whole file was refused (too many bad rows, unreadable, missing columns); nothing was loaded."""


class StorageError(SalescastError):
    """The database could not be reached or a write failed; nothing was committed."""

    exit_code = 4


class NotFoundError(SalescastError):
    """A named thing (product, category, model, …) does not exist."""

    exit_code = 5


class ArtifactIntegrityError(SalescastError):
    """An artifact is not what was registered (checksum mismatch) or is not a safe archive; nothing was unpacked."""

    exit_code = 6


class ArtifactNotFoundError(NotFoundError):
    """No artifact is stored under a key (or version)."""


class AlertDeliveryError(SalescastError):
    """An alert could not be delivered to its sink."""

    exit_code = 7
