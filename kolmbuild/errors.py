"""Error types with messages meant for users.

Every error a user can cause carries an exit code and a message that names the file, line or
key at fault. The CLI prints ``message`` (and ``hint`` when set) and exits with ``exit_code``;
tracebacks appear only with ``--debug``.
"""

from __future__ import annotations


class KolmError(Exception):
    """Base class: an error kolmbuild reports to the user without a traceback."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UserInputError(KolmError):
    """Bad input: a malformed kolmfile, JSONL, override, config or artifact. Exit 2."""

    exit_code = 2


class ConfigError(UserInputError):
    """The kolmfile or a config group could not be composed or validated."""


class DataError(UserInputError):
    """An examples/eval/corpus file is malformed."""


class BudgetExceeded(UserInputError):
    """An estimate or a running cost would exceed the configured budget (exit 2, before spending)."""


class ArtifactError(UserInputError):
    """A .kolm file is malformed, unsafe or fails verification."""


class BuildFailed(KolmError):
    """A stage's action failed (exit 1)."""


class GateFailed(KolmError):
    """The evaluated artifact fell below its gate: nothing ships (exit 1)."""


class ComputeError(KolmError):
    """A compute backend failed to provision, run or release."""


class LockTimeout(KolmError):
    """Another kolmbuild holds the cache lock for too long."""


class CorruptObject(KolmError):
    """A cache object's bytes no longer match its CID (edited, truncated, bit rot). The engine drops
    it and rebuilds what made it; raised to the user only when that repair fails too."""

    def __init__(self, message: str, *, cid: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.cid = cid


class StateCorrupt(UserInputError):
    """``cache/state.db`` (the record of finished runs) cannot be read: exit 2, naming the file."""


class RemoteUnavailable(UserInputError):
    """The remote cache is down or refuses the credentials, and ``--remote-required`` was given (exit 2).
    Without it the build warns once and goes on locally."""
