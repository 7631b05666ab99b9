"""A user-supplied verifier: a Python file defining ``verify(input, output, reference) -> bool``.

Its source is embedded in ``verifier.json`` so the artifact is self-contained; the artifact is
signed and its signature is checked before the runtime loads it, so the code that runs is the
code the builder shipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kolmbuild.errors import ConfigError

VerifyFn = Callable[[Any, Any, Any], Any]


@dataclass(frozen=True)
class UserVerifier:
    path: str  # as the task names it, relative to the project (for messages)
    source: str
    fn: VerifyFn = field(compare=False, repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    def __call__(self, input: Any, output: Any, reference: Any) -> bool:
        """The user's verdict; an exception counts as a failed check (a model's garbage output
        often crashes a hand-written verifier)."""
        try:
            return bool(self.fn(input, output, reference))
        except Exception:
            return False

    def strict(self, input: Any, output: Any, reference: Any) -> bool:
        """Like calling it, but exceptions propagate (used to vet the file on the examples)."""
        return bool(self.fn(input, output, reference))

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "source": self.source}


def compile_verifier(source: str, path: str) -> UserVerifier:
    """Execute ``source`` as a module and take its ``verify``; errors name the file and line."""
    namespace: dict[str, Any] = {"__name__": "kolm_user_verifier", "__file__": path}
    try:
        code = compile(source, path, "exec")
    except SyntaxError as exc:
        raise ConfigError(f"task.verifier.path: {path}:{exc.lineno}: syntax error: {exc.msg}") from None
    try:
        exec(code, namespace)  # noqa: S102 - the user's own verifier, shipped signed
    except Exception as exc:
        raise ConfigError(f"task.verifier.path: {path}: fails on import: {type(exc).__name__}: {exc}") from None
    fn = namespace.get("verify")
    if not callable(fn):
        raise ConfigError(f"task.verifier.path: {path}: defines no function verify(input, output, reference)")
    return UserVerifier(path, source, fn)


def load_verifier_file(path: str, base_dir: Path) -> UserVerifier:
    file = Path(path) if Path(path).is_absolute() else Path(base_dir) / path
    try:
        source = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"task.verifier.path: {path}: no such file") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise ConfigError(f"task.verifier.path: {path}: not a readable Python file ({exc})") from None
    return compile_verifier(source, path)


def from_json(doc: dict[str, Any]) -> UserVerifier:
    source, path = doc.get("source"), doc.get("path", "verifier.py")
    if not isinstance(source, str):
        raise ConfigError("verifier.json: python verifier has no embedded source")
    loaded = compile_verifier(source, str(path))
    if doc.get("sha256") not in (None, loaded.sha256):
        raise ConfigError(f"verifier.json: embedded source of {path} does not match its sha256")
    return loaded
