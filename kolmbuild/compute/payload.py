"""The job a rented machine runs by default: a trainer dry run with no weights.

This file is shipped as-is to the machine (it needs only Python 3.8+ and the standard library): it
reads ``job.json`` and, when present, ``data.jsonl``; checks every row parses and has ``input`` and
``output``; plans the LoRA run (steps per epoch, tokens) exactly as the trainer would; and writes
``out/receipt.json`` with the plan, the data's sha256 and the host it ran on. No model is loaded.
Exit codes: 0 ok, 3 bad data.
"""

import hashlib
import json
import math
import os
import platform
import sys


def main(argv: "list[str]") -> int:
    job_path, out_dir = argv[1], argv[2]
    with open(job_path, encoding="utf-8") as fh:
        job = json.load(fh)
    rows = 0
    chars = 0
    digest = hashlib.sha256()
    data_path = os.path.join(os.path.dirname(os.path.abspath(job_path)), "data.jsonl")
    if os.path.exists(data_path):
        with open(data_path, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                digest.update(raw)
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except ValueError as exc:
                    sys.stderr.write(f"data.jsonl:{lineno}: not JSON: {exc}\n")
                    return 3
                if not isinstance(row, dict) or "input" not in row or "output" not in row:
                    sys.stderr.write(f"data.jsonl:{lineno}: a row needs 'input' and 'output'\n")
                    return 3
                rows += 1
                chars += len(raw)
    batch = int(job.get("batch_size", 4))
    epochs = float(job.get("epochs", 1.0))
    steps = int(math.ceil(rows / batch) * epochs) if rows else 0
    receipt = {
        "kind": "kolm-dry-run",
        "job": job.get("name"),
        "run_id": job.get("run_id"),
        "rows": rows,
        "tokens": int(math.ceil(chars / 4.0)),
        "steps": steps,
        "epochs": epochs,
        "data_sha256": digest.hexdigest(),
        "host": platform.node(),
        "python": platform.python_version(),
        "weights_loaded": False,
    }
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, ".receipt.json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(receipt, fh, sort_keys=True)
    os.replace(tmp, os.path.join(out_dir, "receipt.json"))
    sys.stdout.write(f"dry run: {rows} rows, {steps} steps planned, no weights loaded\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
