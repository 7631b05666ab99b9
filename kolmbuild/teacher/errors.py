"""Teacher failures that are not the user's input: an endpoint that keeps failing."""

from __future__ import annotations

from kolmbuild.errors import BuildFailed


class TeacherError(BuildFailed):
    """The teacher endpoint refused or kept failing after every retry (exit 1)."""


class Transient(Exception):
    """A failure worth retrying: 408/409/429/5xx, a timeout, a dropped connection, a garbled body."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
