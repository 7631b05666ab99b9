"""--out installs the target's artifact where the user says; the rebuild does not run again for it."""

from __future__ import annotations

from tests.engine.conftest import add_pack_rule


def test_out_names_the_installed_file(shell_project, tmp_path) -> None:
    proj = add_pack_rule(shell_project)
    r = proj.kolmbuild()
    assert r.returncode == 0, r.stderr
    default = proj.root / "artifacts/demo-0.1.0.kolm"
    assert default.is_file()
    proj.reset_runs()
    dest = tmp_path / "elsewhere" / "my demo's.kolm"
    r = proj.kolmbuild("--out", str(dest))
    assert r.returncode == 0, r.stderr
    assert dest.read_bytes() == default.read_bytes()
    assert proj.runs() == []  # the same artifact, installed at another path: nothing rebuilt


def test_out_with_several_targets_is_refused(shell_project) -> None:
    kf = shell_project.root / "kolmfile.yaml"
    kf.write_text(kf.read_text() + "  other:\n    task: demo\n")
    r = shell_project.kolmbuild("--out", "x.kolm")
    assert r.returncode == 2
    assert "--out names one file" in r.stderr and "Traceback" not in r.stderr
