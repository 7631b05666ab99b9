"""Error types with messages meant for users.

Every error a user can cause carries an exit code and a message that names the file, line or
key at fault. The CLI prints ``message`` (and ``hint`` when set) and exits with ``exit_code``;
tracebacks appear only with ``--debug``.
"""

from __future__ import annotations

import unicodedata

# Characters a terminal acts on or hides rather than shows: C0/C1 controls (ESC starts a sequence
# that can clear the screen or retitle the window, CR overwrites the line), bidi overrides and
# other invisible formatting, surrogates, private use, line/paragraph separators.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def printable(text: str, keep: str = "\n\t") -> str:
    """``text`` safe to print: each character a terminal would act on (except those in ``keep``)
    written as a Python-style escape, e.g. ``\\x1b``, ``\\u202e``."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in keep or unicodedata.category(ch) not in _ESCAPED_CATEGORIES:
            out.append(ch)
        else:
            n = ord(ch)
            out.append(f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}")
    return "".join(out)


class KolmError(Exception):
    """Base class: an error kolmbuild reports to the user without a traceback."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        # messages quote files, keys and values from untrusted input: never let them drive the terminal
        text = self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"
        return printable(text)


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
