"""An exclusive lock on a cache folder so concurrent kolmbuild runs take turns, not corrupt it.

The engine owns it: every library call that reads or changes the cache (build, status, clean,
gc, cache verify) takes it through :func:`locked`, as DVC's ``Repo.reproduce`` carries its lock,
so a Python caller is protected exactly like the CLI. The lock is re-entrant within one holder
(a sweep holds it across its builds; each build takes it again for free).
"""

from __future__ import annotations

import fcntl
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from kolmbuild.errors import LockTimeout

_P = ParamSpec("_P")
_R = TypeVar("_R")


class CacheLock:
    def __init__(self, cache_dir: Path, timeout_s: float = 3600.0, on_wait: Callable[[], object] | None = None) -> None:
        self.path = cache_dir / "lock"
        self.timeout_s = timeout_s
        self.on_wait = on_wait
        self._fd: int | None = None
        self._depth = 0
        self._guard = threading.Lock()  # the holder's threads (a sweep's points) enter and leave at once

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> CacheLock:
        with self._guard:
            if self._fd is not None:
                self._depth += 1
                return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and self.on_wait is not None:
                    self.on_wait()
                    told = True
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise LockTimeout(f"{self.path}: another kolmbuild held the cache for {self.timeout_s:.0f} s") from None
                time.sleep(0.05)
        with self._guard:
            self._fd = fd
            self._depth = 1
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        with self._guard:
            if self._fd is None:
                return
            self._depth -= 1
            if self._depth == 0:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None


class KeyLocks:
    """One lock per stage key: two builds of one engine running at once (a sweep's points on threads)
    that both need the same stale stage run it once; the second waits and takes the first one's run."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class HasLock(Protocol):
    lock: CacheLock


_S = TypeVar("_S", bound=HasLock)


def locked(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
    """Run the method holding ``self.lock`` (re-entrant)."""

    @functools.wraps(method)
    def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.lock:
            return method(self, *args, **kwargs)

    return wrapper
