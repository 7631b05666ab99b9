"""The teacher's USD budget, charged from the token usage each reply reports.

Before a call, its worst case (a generous prompt estimate plus ``max_tokens`` of output) is
reserved; a call whose reservation would take spent + reserved past the limit is not made and
:class:`BudgetExceeded` stops the build. After the call the reservation is replaced by the
reported cost. Reservations make the check safe with concurrent calls.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from kolmbuild.errors import BudgetExceeded
from kolmbuild.teacher.request import ChatRequest


@dataclass(frozen=True)
class Prices:
    in_per_mtok: float
    out_per_mtok: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.in_per_mtok + output_tokens * self.out_per_mtok) / 1_000_000

    def worst_case(self, request: ChatRequest) -> float:
        return self.cost(request.max_input_tokens(), request.max_tokens)


class Budget:
    def __init__(self, limit_usd: float, key: str = "task.teacher.budget_usd") -> None:
        self.limit = limit_usd
        self.key = key
        self._lock = threading.Lock()
        self._spent = 0.0
        self._reserved = 0.0

    @property
    def spent(self) -> float:
        with self._lock:
            return self._spent

    def reserve(self, amount: float) -> float:
        """Hold ``amount`` for a call about to be made; BudgetExceeded if it would not fit."""
        with self._lock:
            if self._spent + self._reserved + amount > self.limit + 1e-12:
                raise BudgetExceeded(
                    f"{self.key}: the teacher budget is ${self.limit:.4f}; spent ${self._spent:.4f}, "
                    f"in flight ${self._reserved:.4f}, and the next call could cost ${amount:.4f}",
                    hint="answered requests are cached: raise the budget and rebuild to resume without paying for them again",
                )
            self._reserved += amount
            return amount

    def settle(self, reserved: float, actual: float) -> None:
        with self._lock:
            self._reserved = max(0.0, self._reserved - reserved)
            self._spent += actual

    def release(self, reserved: float) -> None:
        self.settle(reserved, 0.0)
