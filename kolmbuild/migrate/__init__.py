"""Bring work from elsewhere into a kolmbuild project: Predibase/Ludwig exports and tables."""

from __future__ import annotations

from kolmbuild.migrate.predibase import ImportResult, import_predibase
from kolmbuild.migrate.tabular import Conversion, Skipped, Table, convert_table, read_table, rows_to_examples

__all__ = [
    "Conversion",
    "ImportResult",
    "Skipped",
    "Table",
    "convert_table",
    "import_predibase",
    "read_table",
    "rows_to_examples",
]
