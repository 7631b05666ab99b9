"""LocalSink: a checkpoint copied back from a remote stage lands whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from kolmbuild.compute.checkpoints import LocalSink


def test_received_checkpoints_are_whole_and_a_dropped_copy_keeps_the_last_good_one(tmp_path: Path) -> None:
    saved: list[str] = []
    sink = LocalSink.for_stage(tmp_path / "cache", "train", "k" * 64, on_saved=saved.append)
    sink.receive("run/checkpoint.pt", lambda dest: dest.write_bytes(b"step 10"))
    assert saved == ["run/checkpoint.pt"] and sink.received == ["run/checkpoint.pt"]
    assert {rel: p.read_bytes() for rel, p in sink.restore().items()} == {"run/checkpoint.pt": b"step 10"}

    def dropped(dest: Path) -> None:  # the connection goes away half-way through the copy
        dest.write_bytes(b"step 2")
        raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        sink.receive("run/checkpoint.pt", dropped)
    assert {rel: p.read_bytes() for rel, p in sink.restore().items()} == {"run/checkpoint.pt": b"step 10"}
    assert sorted(p.name for p in (sink.folder / "run").iterdir()) == ["checkpoint.pt"]  # no temp left
    assert saved == ["run/checkpoint.pt"]


def test_restore_skips_temp_files_a_killed_copy_left(tmp_path: Path) -> None:
    sink = LocalSink.for_stage(tmp_path / "cache", "train", "k" * 64)
    (sink.folder / "run").mkdir(parents=True)
    (sink.folder / "run" / ".checkpoint.pt.abc123.tmp").write_bytes(b"half")  # a kill mid-copy
    (sink.folder / "run" / "checkpoint.pt").write_bytes(b"whole")
    assert list(sink.restore()) == ["run/checkpoint.pt"]
    sink.done()
    assert sink.restore() == {}
