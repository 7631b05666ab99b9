"""The remote stage cache against S3 (moto's server mode on a loopback port), in one run:

  * a cold build of examples/support-router that pushes (CI on main) vs a fresh checkout, with its
    own cache and its own config folder (its own keys, trusting the first's), building it from the
    warm remote (target: >= 20x faster, zero stages run). The example sets ``train.enabled:
    always``, so the cold build trains a real LoRA on SmolLM2 (the record says whether it did);
  * the bytes that fresh checkout pulled vs the bytes in the remote (only what is needed);
  * the no-op with a remote configured vs without (target: <= 1.1x), and the connections it made to
    the remote, counted on the wire by a proxy in front of moto (target: none). Both the console
    entry point's fast path and the full engine (no stamp) are measured.

Every build is a real `kolmbuild` process, as a user or a CI runner starts it.

Usage: python bench/remote_cache.py [--reps 7] [--out docs/bench/remote_cache.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))
from _record import emit  # noqa: E402

from tests.remote.proxy import CountingProxy  # noqa: E402  (the tests' loopback proxy)

EXAMPLE = REPO / "examples" / "support-router"
# the fast path answers in ~30 ms: many samples, so that the 2-core machine's other work averages out
FAST_REPS = 6


def kolmbuild(root: Path, config: Path, env: dict[str, str], *args: str) -> tuple[float, str, str]:
    full = {**os.environ, **env, "KOLM_CONFIG_DIR": str(config), "PYTHONPATH": str(REPO)}
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", "import sys; from kolmbuild.cli.entry import main; sys.exit(main())",
                        *args], cwd=root, env=full, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"kolmbuild {' '.join(args)} failed in {root}: {r.stderr[-3000:]}")
    return elapsed, r.stdout, r.stderr


def interleaved(reps: int, first, second) -> tuple[float, float, float, float]:
    """Medians, then minimums, of ``reps`` runs of each, taken turn about (a busy machine's drift hits
    both alike; the minimum is the run another process disturbed least)."""
    a, b = [], []
    for _ in range(reps):
        a.append(first())
        b.append(second())
    return statistics.median(a), statistics.median(b), min(a), min(b)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    proxy = CountingProxy(port)
    aws = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{proxy.port}"}
    import boto3

    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench")
    s3.create_bucket(Bucket="bench")
    tmp = Path(tempfile.mkdtemp(prefix="kolm-remote-bench-"))
    try:
        case, b, cfg_b = scenario(tmp / "support-router", "s3://bench/main", s3, proxy, aws)

        # the no-op, with a remote configured and without (b is up to date now)
        url = "s3://bench/main"

        def noop(remote: bool, stamp: bool) -> float:
            if not stamp:
                shutil.rmtree(b / "cache" / "noop", ignore_errors=True)
            extra = ("--remote", url) if remote else ()
            return kolmbuild(b, cfg_b, aws, *extra)[0]

        kolmbuild(b, cfg_b, aws)  # leave the stamps the fast path reads
        kolmbuild(b, cfg_b, aws, "--remote", url)
        before = proxy.connections
        fast_with, fast_without, fast_with_min, fast_without_min = interleaved(FAST_REPS * args.reps, lambda: noop(True, True), lambda: noop(False, True))
        full_with, full_without, full_with_min, full_without_min = interleaved(args.reps, lambda: noop(True, False), lambda: noop(False, False))
        noop_connections = proxy.connections - before
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    record = {
        "bench": "remote_cache",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "remote": "S3: moto server mode on loopback, through s3fs",
        "example": "examples/support-router",
        **case,
        "reps": args.reps,
        "noop_reps": {"fast_path": FAST_REPS * args.reps, "full_engine": args.reps},
        "noop_fast_path_with_remote_s": round(fast_with, 4),
        "noop_fast_path_without_s": round(fast_without, 4),
        "noop_fast_path_ratio": round(fast_with / fast_without, 3),
        "noop_fast_path_min_ratio": round(fast_with_min / fast_without_min, 3),
        "noop_full_engine_with_remote_s": round(full_with, 4),
        "noop_full_engine_without_s": round(full_without, 4),
        "noop_full_engine_ratio": round(full_with / full_without, 3),
        "noop_full_engine_min_ratio": round(full_with_min / full_without_min, 3),
        "noop_connections_to_remote": noop_connections,
        "targets": {"speedup_warm_vs_cold": ">= 20", "warm_ran": "[]", "noop_ratio": "<= 1.1",
                    "noop_connections_to_remote": 0},
    }
    emit(record, args.out)


def scenario(tmp: Path, url: str, s3, proxy: CountingProxy,
             aws: dict[str, str]) -> tuple[dict, Path, Path]:
    """CI builds cold and pushes; a fresh checkout with its own cache and keys builds from the remote."""
    a, b = tmp / "ci" / "support-router", tmp / "laptop" / "support-router"
    for root in (a, b):
        shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("cache", "artifacts"))
    cfg_a, cfg_b = tmp / "config-ci", tmp / "config-laptop"
    prefix = url.removeprefix("s3://bench/") + "/"

    cold_s, out, _ = kolmbuild(a, cfg_a, aws, "--json", "--remote", url, "--push")
    cold = json.loads(out)[0]
    trained = _trained(a)
    (b / "keys").mkdir()
    shutil.copy(cfg_a / "keys" / "kolm-signing.pub", b / "keys" / "ci.pub")
    kf = b / "kolmfile.yaml"
    kf.write_text(kf.read_text() + "cache:\n  trust: [keys/ci.pub]\n")

    listing = s3.list_objects_v2(Bucket="bench", Prefix=prefix)["Contents"]
    remote_bytes = sum(o["Size"] for o in listing)
    before = proxy.connections
    warm_s, out, _ = kolmbuild(b, cfg_b, aws, "--json", "--remote", url)
    warm = json.loads(out)[0]
    connections = proxy.connections - before
    same = (a / cold["artifact"]).read_bytes() == (b / warm["artifact"]).read_bytes()
    pulled_objects = [p for p in (b / "cache" / "objects").rglob("*") if p.is_file()]
    runs = sum(o["Size"] for o in listing if "/runs/" in o["Key"])
    pulled_bytes = sum(p.stat().st_size for p in pulled_objects) + runs  # every record, the needed objects
    case = {
        "cold_train": "a LoRA trained on SmolLM2" if trained else "no LoRA trained (the train stage skipped it)",
        "cold_build_s": round(cold_s, 3),
        "cold_ran": cold["ran"],
        "cold_pushed": cold["pushed"],
        "warm_checkout_build_s": round(warm_s, 3),
        "warm_ran": warm["ran"],
        "warm_pulled": warm["pulled"],
        "warm_connections": connections,
        "artifact_byte_identical": same,
        "speedup_warm_vs_cold": round(cold_s / warm_s, 2),
        "bytes_in_remote": remote_bytes,
        "bytes_pulled": pulled_bytes,
        "objects_pulled": len(pulled_objects),
        "objects_in_remote": sum(1 for o in listing if "/objects/" in o["Key"]),
        "pulled_share": round(pulled_bytes / remote_bytes, 4),
    }
    return case, b, cfg_b


def _trained(root: Path) -> bool:
    """Whether the cold build's train stage trained a LoRA (train: auto may decide not to)."""
    import zipfile

    art = next((root / "artifacts").glob("*.kolm"))
    with zipfile.ZipFile(art) as z:
        manifest = json.loads(z.read("manifest.json"))
    train = next(r for r in manifest["receipts"] if r["stage"] == "train")
    return bool(train["metrics"].get("trained"))


if __name__ == "__main__":
    main()
