"""Pick + quote across all 14 backends, in-process: target < 50 ms.

Usage: python bench/quote.py [--reps 21] [--out docs/bench/quote.json]

Measures, in this one run (medians):
  * ``pick_quote_s``: load the registry (14 YAML files, pydantic-validated), detect every backend,
    pick with the formula, and quote all 14 for a task's job — what `kolmbuild compute pick` and
    `compute quote` do after start-up;
  * ``hydra_compose_14_s`` (the baseline): compose each of the 14 backend options through Hydra's
    Compose API, the way a target's config is composed, without picking or quoting anything.
Also recorded, for context: ``cli_compute_quote_s``, the whole ``kolmbuild compute quote --spec``
process (Python start-up and imports included). Prints one JSON record (and writes it to --out) with the ratio of the two and the target check.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from _record import emit, median_time  # noqa: E402  (bench/ is sys.path[0])

TARGET_S = 0.050


def pick_and_quote(job_file: Path) -> tuple[str, int]:
    from kolmbuild.compute.job import load_job_spec
    from kolmbuild.compute.picker import PickRequest, detect_all, pick
    from kolmbuild.compute.quote import quote
    from kolmbuild.compute.registry import builtin_conf_dirs, load_registry

    registry = load_registry(builtin_conf_dirs())
    job = load_job_spec(job_file)
    res = pick(registry, detect_all(registry), PickRequest(budget_usd=5.0, job=job))
    quotes = [quote(s, job) for s in registry]
    assert len(quotes) == 14, len(quotes)
    return res.picked.backend if res.picked else "-", len(quotes)


def hydra_compose_all() -> int:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from kolmbuild.resources import builtin_dir

    conf = builtin_dir("conf").resolve()
    names = sorted(p.stem for p in (conf / "backend").glob("*.yaml"))
    GlobalHydra.instance().clear()
    n = 0
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        for name in names:
            cfg = compose(config_name=None, overrides=[f"+backend={name}"])
            n += 1 if cfg.backend.name == name else 0
    return n




def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        job_file = Path(tmp) / "job.yaml"
        job_file.write_text("name: bench\nmodel: smollm2\ntrain_tokens: 250000\nepochs: 2\neval_cases: 200\n")
        picked, n = pick_and_quote(job_file)  # warm imports (pydantic, yaml, hashing) once
        assert hydra_compose_all() == 14
        pq = median_time(lambda: pick_and_quote(job_file), args.reps)
        hy = median_time(hydra_compose_all, max(3, args.reps // 3))
        cli = [sys.executable, "-m", "kolmbuild", "-C", tmp, "compute", "quote", "--spec", "job.yaml", "--json"]
        cli_s = median_time(lambda: subprocess.run(cli, check=True, stdout=subprocess.DEVNULL), 5)
    record = {
        "bench": "quote",
        "backends": n,
        "picked": picked,
        "reps": args.reps,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pick_quote_s": round(pq, 5),
        "hydra_compose_14_s": round(hy, 4),
        "ratio_pick_quote_to_hydra_compose": round(pq / hy, 4),
        "cli_compute_quote_s": round(cli_s, 3),
        "target_s": TARGET_S,
        "meets_target": pq < TARGET_S,
    }
    emit(record, args.out)
    if not record["meets_target"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
