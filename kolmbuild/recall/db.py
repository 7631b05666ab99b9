"""A SQLite connection with the sqlite-vec extension loaded, on whichever binding can load it.

Many Pythons (pyenv builds, some macOS ones) compile the standard ``sqlite3`` module without
``enable_load_extension``. :func:`connect` uses the standard module when it can load extensions
and falls back to apsw otherwise; both are wrapped in :class:`VecConnection`, which has the few
DB-API methods the index needs (``execute`` returning a cursor with ``fetchone``/``fetchall``,
``executemany``, ``commit``, ``close``) and explicit transactions on both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from kolmbuild.errors import ConfigError, DataError

Driver = Literal["auto", "sqlite3", "apsw"]


def sqlite3_module() -> ModuleType:
    """The DB-API module used for the ``sqlite3`` path (the standard library's)."""
    import sqlite3

    return sqlite3


def can_load_extensions(module: ModuleType) -> bool:
    return hasattr(module.Connection, "enable_load_extension")


def _vec_path() -> str:
    try:
        import sqlite_vec  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ConfigError("recall index: the sqlite-vec package is not installed", hint="pip install sqlite-vec") from exc
    return str(sqlite_vec.loadable_path())


class VecConnection:
    """A connection with sqlite-vec loaded; ``driver`` says which binding is underneath."""

    def __init__(self, raw: Any, driver: str, path: Path) -> None:
        self.raw = raw
        self.driver = driver
        self.path = path

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.raw.executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[VecConnection]:
        self.raw.execute("BEGIN")
        try:
            yield self
        except BaseException:
            self.raw.execute("ROLLBACK")
            raise
        self.raw.execute("COMMIT")

    def commit(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("COMMIT")

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> VecConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_dbapi(module: ModuleType, path: Path, readonly: bool) -> Any:
    if readonly:
        raw = module.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    else:
        raw = module.connect(str(path), isolation_level=None, check_same_thread=False)
    raw.enable_load_extension(True)
    raw.load_extension(_vec_path())
    raw.enable_load_extension(False)
    return raw


def _open_apsw(path: Path, readonly: bool) -> Any:
    try:
        import apsw
    except ImportError as exc:
        raise ConfigError(
            "recall index: this Python's sqlite3 cannot load extensions and apsw is not installed",
            hint="pip install apsw",
        ) from exc
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    raw = apsw.Connection(str(path), flags=flags)
    raw.enable_load_extension(True)
    raw.load_extension(_vec_path())
    raw.enable_load_extension(False)
    return raw


def pick_driver(driver: Driver = "auto") -> str:
    if driver != "auto":
        return driver
    return "sqlite3" if can_load_extensions(sqlite3_module()) else "apsw"


def connect(db_path: Path | str, *, driver: Driver = "auto", readonly: bool = False) -> VecConnection:
    """Open ``db_path`` with sqlite-vec loaded: stdlib sqlite3 when it can load extensions, else apsw."""
    path = Path(db_path)
    if readonly and not path.is_file():
        raise DataError(f"{path}: no such recall index")
    chosen = pick_driver(driver)
    if chosen == "sqlite3":
        module = sqlite3_module()
        if not can_load_extensions(module):
            raise ConfigError(f"recall index: {module.__name__} in this Python cannot load extensions; use apsw")
        return VecConnection(_open_dbapi(module, path, readonly), "sqlite3", path)
    if chosen == "apsw":
        return VecConnection(_open_apsw(path, readonly), "apsw", path)
    raise ConfigError(f"recall index: unknown SQLite driver {driver!r} (auto, sqlite3, apsw)")
