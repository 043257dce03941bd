"""A circuit breaker for an optional backend (the shared cache, the shared rate limiter).

When such a backend fails, every request would otherwise pay its timeout. The breaker remembers the
failure and tells callers to skip the backend for `retry_after_seconds`; then it lets one call through
as a probe. A success closes it; a failure opens it for another window. It also keeps the log quiet:
one warning per `warn_every_seconds`, however many requests fail meanwhile.

Event-loop only: it holds no lock, like everything else on the async serving path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class CircuitBreaker:
    def __init__(
        self,
        component: str,
        backend: str,
        *,
        retry_after_seconds: float = 5.0,
        warn_every_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`component` names the log events (`cache` -> `cache.unavailable`, `cache.recovered`)."""
        self.component = component
        self.backend = backend
        self.retry_after_seconds = retry_after_seconds
        self.warn_every_seconds = warn_every_seconds
        self._clock = clock
        self._open_until: float | None = None
        self._last_warning: float | None = None

    @property
    def is_open(self) -> bool:
        """True from a failure until the next success (probes included)."""
        return self._open_until is not None

    def allows(self) -> bool:
        """Whether the caller should use the backend now.

        Once the window has passed, the first caller gets through as a probe and the window restarts at
        once, so that the others keep skipping the backend while the probe is in flight (and a probe
        that is cancelled before it reports cannot leave the backend skipped for good).
        """
        if self._open_until is None:
            return True
        now = self._clock()
        if now < self._open_until:
            return False
        self._open_until = now + self.retry_after_seconds
        return True

    def record_success(self) -> None:
        if self._open_until is not None:
            log.info("%s.recovered backend=%s", self.component, self.backend)
        self._open_until = None

    def record_failure(self, operation: str, error: BaseException) -> None:
        now = self._clock()
        self._open_until = now + self.retry_after_seconds
        if self._last_warning is None or now - self._last_warning >= self.warn_every_seconds:
            self._last_warning = now
            log.warning(
                "%s.unavailable backend=%s operation=%s error=%s skipped_for=%gs",
                self.component,
                self.backend,
                operation,
                error,
                self.retry_after_seconds,
            )
