"""Retries with exponential backoff and jitter, honouring the server's Retry-After."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from kolmbuild.teacher.errors import TeacherError, Transient

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    base_s: float = 1.0
    cap_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after is not None:
            return float(min(max(retry_after, 0.0), self.cap_s))
        backoff = min(self.cap_s, math.ldexp(self.base_s, attempt))  # base * 2**attempt
        return backoff * (0.5 + rng.random() / 2)  # "equal jitter": spread clients, keep a floor


def with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None],
    on_retry: Callable[[Transient], None] | None = None,
    what: str = "teacher call",
    rng: random.Random | None = None,
) -> T:
    """``call()``, retried on :class:`Transient` up to ``policy.max_retries`` times."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            return call()
        except Transient as exc:
            if attempt >= policy.max_retries:
                raise TeacherError(f"{what}: gave up after {attempt + 1} attempts: {exc.reason}") from None
            if on_retry is not None:
                on_retry(exc)
            sleep(policy.delay(attempt, exc.retry_after, rng))
            attempt += 1
