"""Opening a .kolm file with full verification vs the least any verifier must do.

Usage: python bench/artifact_open.py [--reps 5] [--out docs/bench/artifact_open.json]

Builds an artifact that ships the bundled SmolLM2-135M GGUF (about 98 MB, stored) plus small JSON
components, then measures, in this one run (medians, warm page cache):

  * ``open_artifact(path, verify=True)``: strict zip parse, manifest, every CID, both ECDSA
    signatures (the member digests and the zip-level signature over every byte);
  * the baseline: one ``hashlib.sha256`` pass over the file, the least work that can notice a
    changed byte;
  * ``zipfile`` opening and reading every member (CRC only, no signatures), for reference;
  * extracting the base GGUF from an opened artifact (what the runtime does next).

Prints one JSON record with the ratio of verified open to the baseline, and writes it to --out.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from _record import emit, median_time  # noqa: E402  (bench/ is sys.path[0])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["KOLM_CONFIG_DIR"] = str(tmp / "config")  # a throwaway signing key
        from kolmbuild.artifact import open_artifact, write_artifact
        from kolmbuild.models.resolve import bundled_smollm2

        gguf_path = bundled_smollm2()
        path = tmp / "bench.kolm"
        t = time.perf_counter()
        write_artifact(
            path, target="bench", version="0", task={"name": "bench"},
            components={"base_gguf": gguf_path, "recipes": b'{"recipes":[]}', "heldout": b'{"id":0}\n' * 500},
        )  # fmt: skip
        write_s = time.perf_counter() - t
        size = path.stat().st_size

        def sha256_pass() -> str:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
            return h.hexdigest()

        def zipfile_read() -> None:
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    with z.open(info) as m:
                        while m.read(1 << 20):
                            pass

        def verified_open() -> None:
            with open_artifact(path) as art:
                assert art.has("base_gguf")

        def open_and_extract() -> None:
            with open_artifact(path) as art:
                art.extract("base_gguf", tmp / "x")

        sha256_pass()  # warm the page cache
        baseline = median_time(sha256_pass, args.reps)
        zf = median_time(zipfile_read, args.reps)
        opened = median_time(verified_open, args.reps)
        extracted = median_time(open_and_extract, args.reps)

    record = {
        "bench": "artifact_open",
        "artifact_bytes": size,
        "reps": args.reps,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "write_s": round(write_s, 4),
        "sha256_pass_s": round(baseline, 4),
        "zipfile_read_all_s": round(zf, 4),
        "open_verified_s": round(opened, 4),
        "open_verified_and_extract_base_s": round(extracted, 4),
        "ratio_open_to_sha256_pass": round(opened / baseline, 2),
        "ratio_open_to_zipfile_read": round(opened / zf, 2),
    }
    emit(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
