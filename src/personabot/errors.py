"""Errors that cross module borders and tell the worker what to do with a run.

The worker decides between retrying, deferring and failing by the type of the error, so every edge
(GitHub client, workspace, agent) raises one of these instead of its library's own exceptions.
"""

from __future__ import annotations

from datetime import datetime


class PersonabotError(Exception):
    """Base class; the message is written for the person who reads the run's error."""


class PermanentError(PersonabotError):
    """Retrying cannot help (bad config, a 404, a refused change): the run fails with this message."""


class TransientError(PersonabotError):
    """Network trouble, a 5xx, a secondary rate limit: retry with backoff.

    `retry_after` (seconds) is honoured when GitHub gave one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(TransientError):
    """The primary rate limit is exhausted: defer the run until `reset_at` instead of sleeping."""

    def __init__(self, message: str, *, reset_at: datetime) -> None:
        super().__init__(message)
        self.reset_at = reset_at
