"""Training progress: the stage's bar gets every step with its loss; without a terminal, a line
every few steps says step, loss, elapsed and ETA; and a real build's stderr, piped, holds those
lines and no raw tqdm bars from transformers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kolmbuild.train.progress import StepProgress, wants_lines

from .conftest import COLOURS, RecordingProgress, write_colours_project

REPO = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_every_few_steps_with_loss_elapsed_and_eta() -> None:
    rec, clock = RecordingProgress(), Clock()
    steps = StepProgress(rec, 45, lines=True, clock=clock)
    assert steps.every == 3  # at most 20 lines a run
    steps.start("train")
    for done in range(1, 46):
        clock.now += 2.0  # two seconds a step
        steps.step(done, 1.0 / done)
    lines = [e[1] for e in rec.events if e[0] == "log"]
    assert len(lines) == 15 and lines[0] == "step 3/45 loss 0.3333 elapsed 0:00:06 eta 0:01:24"
    assert lines[-1] == "step 45/45 loss 0.0222 elapsed 0:01:30 eta 0:00:00"
    assert [e for e in rec.events if e[0] != "log"] == [("start", 45)] + [("advance", 1, 1.0 / d) for d in range(1, 46)]


def test_no_lines_on_a_terminal_and_a_resumed_run_estimates_from_its_own_steps() -> None:
    rec, clock = RecordingProgress(), Clock()
    steps = StepProgress(rec, 10, lines=False, clock=clock)
    steps.start("train")
    steps.step(1, 0.5)
    assert [e[0] for e in rec.events] == ["start", "advance"]

    rec, clock = RecordingProgress(), Clock()
    steps = StepProgress(rec, 10, lines=True, clock=clock)
    steps.start("train", done=6, loss=0.7)  # resumed at step 6: the bar jumps there at once
    assert rec.events[:3] == [("start", 10), ("log", "resuming from the checkpoint at step 6"), ("advance", 6, 0.7)]
    clock.now += 10.0
    steps.step(7, 0.6)
    assert rec.events[-1] == ("log", "step 7/10 loss 0.6000 elapsed 0:00:10 eta 0:00:30")


def test_lines_follow_whether_stderr_is_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert wants_lines() is False
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert wants_lines() is True


@pytest.mark.slow
def test_a_piped_build_logs_training_steps_and_no_tqdm_bars(tmp_path: Path) -> None:
    """A real build (the real stages, SmolLM2 loaded from its GGUF) with stderr a pipe."""
    write_colours_project(tmp_path, "{enabled: always, max_steps: 4, batch_size: 1}",
                          [(f"{i} {n}", o) for n in range(3) for i, o in COLOURS])
    env = {**os.environ, "PYTHONPATH": str(REPO), "KOLM_CONFIG_DIR": str(tmp_path / "config")}
    run = subprocess.run([sys.executable, "-m", "kolmbuild", "-C", str(tmp_path), "build"], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    err = run.stderr
    steps = re.findall(r"step (\d)/4 loss \d+\.\d{4} elapsed \d:\d\d:\d\d eta \d:\d\d:\d\d", err)
    assert steps == ["1", "2", "3", "4"], err[-3000:]
    assert "\r" not in err and not re.search(r"\d+%\|", err) and "it/s]" not in err, err[-3000:]
    assert "Warning:" not in err, err[-3000:]  # peft's vocabulary warning (checkpoints, adapter) says nothing to a user
