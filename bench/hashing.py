"""What the store's integrity checks cost: storing, re-hashing on read, verified install, status.

Usage: python bench/hashing.py [--mb 256] [--objects 300] [--reps 5] [--out docs/bench/hashing.json]

All in this one run (medians, warm page cache), each against the baseline that does the same job
without the check:

  * ``Store.put`` of an MB-sized output (hash, fchmod, fsync, rename, fsync of the folder, stat-cache
    row) vs hash + rename (what put did before) — and ``put`` of bytes already stored, which now
    re-hashes the stored object before trusting it;
  * ``Store.verify`` (what every stage does to each upstream object before it reads it) vs
    ``sha256sum`` of the same file;
  * the verified install ``Store.copy_to`` (copy and hash in one read, then fsync and rename) vs
    ``shutil.copyfile`` + rename (the old install);
  * the status check per recorded output: ``Store.intact`` (lstat + size + a stat-cache lookup)
    vs ``Path.is_file`` (the old check), over --objects objects.

The no-op fast path is unchanged by these checks (it reads no object); bench/noop.py measures it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from _record import emit, median_time  # noqa: E402  (bench/ is sys.path[0])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--objects", type=int, default=300)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()

    from kolmbuild.engine.store import Store
    from kolmbuild.hashing.cid import CID
    from kolmbuild.hashing.files import StatCache, hash_file

    rec: dict[str, object] = {"bench": "hashing", "mb": a.mb, "objects": a.objects, "reps": a.reps,
                              "machine": platform.machine(), "cpus": os.cpu_count(),
                              "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        payload = tmp / "payload.bin"
        with open(payload, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(a.mb):
                f.write(block)
        stats = StatCache(tmp / "cache/stat.db")
        store = Store(tmp / "cache", stats=stats)
        work = tmp / "cache/tmp"
        n = [0]

        def fresh_output() -> Path:
            n[0] += 1
            p = work / f"out{n[0]}.bin"
            os.link(payload, p)  # a new name for the same bytes: no copy in the timed part…
            return p

        def unlinked_output() -> Path:  # …but put copies hard-linked files, so time a lone file
            p = work / f"lone{n[0]}.bin"
            shutil.copyfile(payload, p)
            return p

        def put_new() -> None:
            src = unlinked_output()
            obj = store.put(src)
            store.drop(obj.cid)

        def put_old() -> None:  # the old put: hash, then rename
            src = unlinked_output()
            cid = str(CID("raw", hash_file(src)))
            dest = tmp / "old" / cid
            dest.parent.mkdir(exist_ok=True)
            os.replace(src, dest)
            dest.unlink()

        def copy_only() -> None:  # what both put variants pay to make their input: subtracted
            unlinked_output().unlink()

        subprocess.run(["sha256sum", str(payload)], capture_output=True, check=True)  # warm the page cache
        t_copy = median_time(copy_only, a.reps)
        t_put_new = median_time(put_new, a.reps) - t_copy
        t_put_old = median_time(put_old, a.reps) - t_copy
        stored = store.put(unlinked_output())
        t_put_again = median_time(lambda: store.put(fresh_output()), a.reps)

        t_verify = median_time(lambda: store.verify(stored.cid), a.reps)
        t_sha256sum = median_time(
            lambda: subprocess.run(["sha256sum", str(store.path_of(stored.cid))], capture_output=True, check=True),
            a.reps)

        def install_new() -> None:
            from kolmbuild.atomic import atomic_writer

            with atomic_writer(tmp / "installed.kolm", mode=0o644) as f:
                store.copy_to(stored.cid, f)

        def install_old() -> None:
            t = tmp / ".installed.tmp"
            shutil.copyfile(store.path_of(stored.cid), t)
            os.chmod(t, 0o644)
            os.replace(t, tmp / "installed-old.kolm")

        t_install_new = median_time(install_new, a.reps)
        t_install_old = median_time(install_old, a.reps)

        small = []
        for i in range(a.objects):
            p = work / f"small{i}.txt"
            p.write_text(f"output {i}\n")
            small.append(store.put(p))
        t_intact = median_time(lambda: [store.intact(o.cid, o.size) for o in small], a.reps * 3)
        t_is_file = median_time(lambda: [store.path_of(o.cid).is_file() for o in small], a.reps * 3)
        stats.close()

    mb = a.mb
    rec["put"] = {"new_s": round(t_put_new, 4), "old_hash_and_rename_s": round(t_put_old, 4),
                  "ratio": round(t_put_new / t_put_old, 3), "already_stored_s": round(t_put_again, 4)}
    rec["verify_on_read"] = {"verify_s": round(t_verify, 4), "sha256sum_s": round(t_sha256sum, 4),
                             "verify_MBps": round(mb / t_verify, 1), "ratio_to_sha256sum": round(t_verify / t_sha256sum, 3)}
    rec["install"] = {"verified_copy_s": round(t_install_new, 4), "copyfile_s": round(t_install_old, 4),
                      "ratio": round(t_install_new / t_install_old, 3)}
    rec["status_per_output"] = {"intact_us": round(t_intact / a.objects * 1e6, 2),
                                "is_file_us": round(t_is_file / a.objects * 1e6, 2),
                                "ratio": round(t_intact / t_is_file, 2)}
    rec["targets"] = {
        "verify_at_least_as_fast_as_sha256sum": t_verify <= t_sha256sum * 1.25,
        "verified_install_within_2x_of_copyfile": t_install_new <= 2 * t_install_old,
        "status_check_under_100us_per_output": t_intact / a.objects < 100e-6,
    }
    emit(rec, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
