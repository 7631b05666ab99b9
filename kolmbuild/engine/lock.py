"""An exclusive lock on a cache folder so concurrent kolmbuild runs take turns, not corrupt it."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from kolmbuild.errors import LockTimeout


class CacheLock:
    def __init__(self, cache_dir: Path, timeout_s: float = 3600.0, on_wait: object = None) -> None:
        self.path = cache_dir / "lock"
        self.timeout_s = timeout_s
        self.on_wait = on_wait
        self._fd: int | None = None

    def __enter__(self) -> CacheLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and callable(self.on_wait):
                    self.on_wait()
                    told = True
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise LockTimeout(f"{self.path}: another kolmbuild held the cache for {self.timeout_s:.0f} s") from None
                time.sleep(0.05)
        self._fd = fd
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
