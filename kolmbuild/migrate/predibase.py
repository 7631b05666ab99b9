"""``kolmbuild import predibase``: a Predibase/Ludwig export → train.jsonl, eval.jsonl and a task config.

The dataset folder holds what Predibase exports: either one table with an optional ``split`` column
(``train`` / ``evaluation``; Ludwig's ``0``/``1``/``2`` work too) or one file per split
(``train.csv``, ``validation.parquet``, …). The adapter folder holds ``adapter_config.json`` (PEFT:
base model and rank) and usually the Ludwig ``config.yaml`` it was trained from. Without a Ludwig
config the Predibase SFT columns ``prompt`` → ``completion`` are used.

Nothing is written until every row was read and the task config validated against
:class:`~kolmbuild.config.models.TaskSpec`; then the three files are renamed into place together.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kolmbuild.config.models import TaskSpec
from kolmbuild.errors import ConfigError, DataError, UserInputError
from kolmbuild.migrate.atomic import AtomicBatch, jsonl_bytes
from kolmbuild.migrate.ludwig import (
    Feature,
    LudwigPlan,
    load_adapter_config,
    load_config_file,
    merge_adapter_config,
    plan_from_ludwig,
)
from kolmbuild.migrate.tabular import (
    TABLE_SUFFIXES,
    Row,
    Skipped,
    Table,
    is_missing,
    pick,
    read_table,
    require_columns,
)

CONFIG_NAMES = ("config.yaml", "config.yml", "ludwig_config.yaml", "model_hyperparameters.json")
SPLIT_VALUES = {
    "train": "train", "training": "train", "0": "train",
    "evaluation": "eval", "eval": "eval", "validation": "eval", "valid": "eval", "val": "eval", "dev": "eval",
    "1": "eval",
    "test": "test", "2": "test",
}  # fmt: skip
_FILE_SPLITS = (
    ("train", ("train",)),
    ("eval", ("validation", "valid", "val", "evaluation", "eval", "dev")),
    ("test", ("test",)),
)


@dataclass
class ImportResult:
    name: str
    task_path: Path
    train_path: Path
    eval_path: Path | None
    written: dict[str, int]
    skipped: list[Skipped]
    task: dict[str, Any]
    sources: list[Path]
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(_reason_kind(s.reason) for s in self.skipped))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": str(self.task_path),
            "train": str(self.train_path),
            "eval": str(self.eval_path) if self.eval_path else None,
            "written": self.written,
            "skipped": len(self.skipped),
            "skipped_by_reason": self.skipped_by_reason(),
            "skipped_rows": [{"file": str(s.path), "line": s.line, "reason": s.reason} for s in self.skipped],
            "ignored": self.ignored,
            "notes": self.notes,
            "sources": [str(p) for p in self.sources],
        }


def _reason_kind(reason: str) -> str:
    return re.sub(r"'[^']*'", "'…'", reason) if reason.startswith("split ") else reason


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-.")
    return s or "imported"


def _find_config(dirs: list[Path]) -> Path | None:
    for d in dirs:
        for name in CONFIG_NAMES:
            if (d / name).is_file():
                return d / name
    return None


def _table_files(dataset: Path) -> list[Path]:
    if dataset.is_file():
        return [dataset]
    if not dataset.is_dir():
        raise UserInputError(f"{dataset}: no such dataset folder")
    files = sorted(p for p in dataset.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
    if not files:  # an export unpacked one level down (dataset/<name>/train.csv)
        files = sorted(p for p in dataset.glob("*/*") if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
    if not files:
        raise UserInputError(
            f"{dataset}: no CSV or Parquet files", hint="export the dataset from Predibase first"
        )
    return files


def _split_of_file(path: Path) -> str | None:
    words = set(re.split(r"[^a-z]+", path.stem.lower()))
    for split, names in _FILE_SPLITS:
        if words & set(names):
            return split
    return None


@dataclass
class _Split:
    rows: list[tuple[Table, Row]] = field(default_factory=list)


def _split_rows(files: list[Path], skipped: list[Skipped]) -> tuple[dict[str, _Split], list[Table]]:
    splits = {"train": _Split(), "eval": _Split(), "test": _Split()}
    tables: list[Table] = []
    for path in files:
        table = read_table(path)
        tables.append(table)
        by_name = _split_of_file(path)
        if by_name is not None:
            splits[by_name].rows.extend((table, r) for r in table.rows)
            continue
        if "split" not in table.columns:
            splits["train"].rows.extend((table, r) for r in table.rows)
            continue
        for r in table.rows:
            raw = r.values.get("split")
            key = "" if raw is None else str(raw).strip().lower()
            if isinstance(raw, float) and raw.is_integer():
                key = str(int(raw))
            target = SPLIT_VALUES.get(key)
            if target is None:
                skipped.append(Skipped(path, r.line, f"split {str(raw)!r} is not train/evaluation/test"))
            else:
                splits[target].rows.append((table, r))
    return splits, tables


def _default_plan(source: str) -> LudwigPlan:
    plan = LudwigPlan(source=source)
    plan.inputs = [Feature("prompt", "text", "prompt")]
    plan.outputs = [Feature("completion", "text", "completion")]
    plan.notes.append("no Ludwig config found: using Predibase's SFT columns prompt -> completion")
    return plan


def _coerce(value: Any, ftype: str) -> Any:
    if ftype == "number" and isinstance(value, str):
        try:
            f = float(value)
        except ValueError:
            return value
        return int(f) if f.is_integer() and "." not in value else f
    if ftype in ("category", "binary"):
        return (
            value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
        )
    return value


def _example(
    row: Row, plan: LudwigPlan, in_cols: list[str], out_cols: list[str]
) -> tuple[dict | None, str | None]:
    types = {f.column: f.type for f in [*plan.inputs, *plan.outputs]}
    inp, why = pick(row, in_cols)
    if why:
        return None, why
    outp, why = pick(row, out_cols)
    if why:
        return None, why
    for cols, val, role in ((in_cols, inp, "input"), (out_cols, outp, "output")):
        values = [val] if len(cols) == 1 else list(val.values())
        if any(isinstance(v, dict | list) for v in values):
            return None, f"nested value in the {role} column(s) {', '.join(repr(c) for c in cols)}"
    if len(in_cols) == 1:
        inp = _coerce(inp, types.get(in_cols[0], "text"))
        if not isinstance(inp, str):
            inp = str(inp)
    else:
        inp = {c: _coerce(v, types.get(c, "text")) for c, v in inp.items()}
    if len(out_cols) == 1:
        outp = _coerce(outp, types.get(out_cols[0], "text"))
        if not isinstance(outp, str):
            outp = str(outp)
    else:
        outp = {c: _coerce(v, types.get(c, "text")) for c, v in outp.items()}
    return {"input": inp, "output": outp}, None


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def import_predibase(
    dataset: Path,
    adapter: Path | None = None,
    *,
    root: Path,
    out: Path | None = None,
    name: str | None = None,
    data_dir: Path | None = None,
    config: Path | None = None,
    force: bool = False,
) -> ImportResult:
    """Import a Predibase export into the project at ``root``; see the module doc."""
    root = Path(root)
    dataset = Path(dataset)
    sources: list[Path] = []
    search_dirs = [d for d in (adapter, dataset if dataset.is_dir() else dataset.parent) if d is not None]
    if adapter is not None and not Path(adapter).is_dir():
        raise UserInputError(f"{adapter}: no such adapter folder")
    cfg_path = Path(config) if config is not None else _find_config([Path(d) for d in search_dirs])
    if cfg_path is not None:
        if not cfg_path.is_file():
            raise UserInputError(f"{cfg_path}: no such Ludwig config")
        sources.append(cfg_path)
        plan = plan_from_ludwig(load_config_file(cfg_path), source=cfg_path.name)
    else:
        plan = _default_plan("predibase defaults")
    if adapter is not None:
        ac = Path(adapter) / "adapter_config.json"
        if ac.is_file():
            sources.append(ac)
            merge_adapter_config(plan, load_adapter_config(ac), source=ac.name)
        else:
            plan.notes.append(f"{adapter}: no adapter_config.json (base and rank come from the config alone)")
    if not plan.outputs:
        raise UserInputError(f"{plan.source}: no output_features: which column is the output?")
    in_cols, out_cols = plan.input_columns(), plan.output_columns()
    if not in_cols:
        raise UserInputError(
            f"{plan.source}: no input_features and no prompt template: which column is the input?"
        )

    skipped: list[Skipped] = []
    files = _table_files(dataset)
    splits, tables = _split_rows(files, skipped)
    sources.extend(t.path for t in tables)
    for t in tables:
        require_columns(t, in_cols, role="input")
        require_columns(t, out_cols, role="output")

    eval_rows = splits["eval"].rows
    if not eval_rows and splits["test"].rows:
        eval_rows = splits["test"].rows
        plan.notes.append("no evaluation split: the test split is the eval set")
    else:
        for table, r in splits["test"].rows:
            skipped.append(
                Skipped(
                    table.path, r.line, "split 'test' not imported (the evaluation split is the eval set)"
                )
            )

    records: dict[str, list[dict[str, Any]]] = {"train": [], "eval": []}
    for key, rows in (("train", splits["train"].rows), ("eval", eval_rows)):
        for table, r in rows:
            ex, why = _example(r, plan, in_cols, out_cols)
            if ex is None:
                skipped.append(Skipped(table.path, r.line, why or "unusable row"))
            else:
                records[key].append(ex)
    if not records["train"]:
        raise DataError(
            f"{dataset}: no usable training rows ({len(skipped)} skipped)",
            hint="; ".join(str(s) for s in skipped[:3]) or None,
        )

    shape: dict[str, Any] = {"input": "text" if len(in_cols) == 1 else "json"}
    if len(out_cols) > 1:
        shape["output"] = "json"
    elif plan.outputs[0].type in ("category", "binary"):
        shape["output"] = "label"
        shape["labels"] = sorted({ex["output"] for part in records.values() for ex in part})
    else:
        shape["output"] = "text"
    if plan.max_output_tokens:
        shape["max_output_tokens"] = plan.max_output_tokens

    task_name = name or (Path(out).stem if out else slug(Path(adapter).name if adapter else dataset.stem))
    task_name = slug(task_name) if name is None else task_name
    task_path = Path(out) if out is not None else root / "conf" / "task" / f"{task_name}.yaml"
    if not task_path.is_absolute():
        task_path = root / task_path
    ddir = Path(data_dir) if data_dir is not None else Path("data") / task_name
    if not ddir.is_absolute():
        ddir = root / ddir
    train_path = ddir / "train.jsonl"
    eval_path = ddir / "eval.jsonl" if records["eval"] else None

    desc = f"Imported from a Predibase export ({', '.join(p.name for p in sources)})"
    if plan.template:
        desc += f"; Ludwig prompt template: {plan.template!r}"
    task: dict[str, Any] = {
        "name": task_name,
        "version": "0.1.0",
        "description": desc,
        "shape": shape,
        "examples": _rel(train_path, root),
    }
    if eval_path is not None:
        task["eval"] = _rel(eval_path, root)
    base: dict[str, Any] = {}
    if plan.base:
        base["name"] = plan.base
    if plan.quantize:
        base["quantize"] = plan.quantize
    if base:
        task["base"] = base
    if plan.train:
        task["train"] = dict(plan.train)
    try:
        TaskSpec.model_validate(task)
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{task_path}: the imported task config is not valid: {errs}") from exc
    if plan.base and ("/" in plan.base and not Path(plan.base).exists()):
        plan.notes.append(
            f"base {plan.base!r} is a hub id: builds never download it; fetch it once and set base.name "
            "to the local folder or GGUF file"
        )

    existing = [p for p in (task_path, train_path, eval_path) if p is not None and p.exists()]
    if existing and not force:
        raise UserInputError(
            f"{existing[0]}: already exists",
            hint="pass --force to replace it, or --name/--out for another task",
        )
    header = f"# kolmbuild task imported from a Predibase export: {', '.join(str(p) for p in sources)}\n"
    with AtomicBatch() as batch:
        batch.add(train_path, jsonl_bytes(records["train"]))
        if eval_path is not None:
            batch.add(eval_path, jsonl_bytes(records["eval"]))
        batch.add(
            task_path, (header + yaml.safe_dump(task, sort_keys=False, allow_unicode=True)).encode("utf-8")
        )
    skipped.sort(key=lambda sk: (str(sk.path), sk.line))
    return ImportResult(
        name=task_name,
        task_path=task_path,
        train_path=train_path,
        eval_path=eval_path,
        written={"train": len(records["train"]), "eval": len(records["eval"])},
        skipped=skipped,
        task=task,
        sources=sources,
        ignored=list(dict.fromkeys(plan.ignored)),
        notes=plan.notes,
    )


__all__ = ["ImportResult", "import_predibase", "is_missing", "slug"]
