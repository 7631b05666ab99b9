"""Names the engine turns into paths are checked when they are read: rule outputs, target names."""

from __future__ import annotations

import os

import pytest

from tests.conftest import write


def _echo_rule_with_output(root, output: str) -> None:
    write(root / "rules/echo.yaml", f"""
        name: echo
        version: 1
        inputs: [task.examples]
        outputs: [{output}]
        shell: cp "$KOLM_IN_TASK_EXAMPLES" "$KOLM_OUT/echo.txt"
    """)


def test_an_output_outside_the_out_folder_is_refused_and_the_file_stays(shell_project) -> None:
    """outputs: ["../../../../README.md"] used to make the store *move* the project's README."""
    root = shell_project.root
    readme = root / "README.md"
    readme.write_text("the project's readme\n")
    # the stage's out folder is cache/tmp/<work>/out: four levels below the project root
    _echo_rule_with_output(root, '"../../../../README.md"')
    r = shell_project.kolmbuild()
    assert r.returncode == 2, r.stderr
    assert "rules/echo.yaml" in r.stderr and "outputs.0" in r.stderr and "not a plain file name" in r.stderr
    assert "Traceback" not in r.stderr
    assert readme.read_text() == "the project's readme\n"
    assert not (root / "cache" / "objects").exists() or not any((root / "cache" / "objects").rglob("b*"))


@pytest.mark.parametrize("output", ['"/etc/hostname"', "sub/echo.txt", '".."', '"-rf"', '"echo.txt?/x"'])
def test_absolute_nested_and_dot_outputs_are_refused(shell_project, output: str) -> None:
    _echo_rule_with_output(shell_project.root, output)
    r = shell_project.invoke("status")
    assert r.exit_code == 2
    assert "echo.yaml" in r.output and "outputs.0" in r.output and "not a plain file name" in r.output


def test_a_duplicate_output_and_an_install_that_is_not_an_output_are_refused(shell_project) -> None:
    _echo_rule_with_output(shell_project.root, "[echo.txt, echo.txt]".strip("[]"))
    r = shell_project.invoke("status")
    assert r.exit_code == 2 and "declared twice" in r.output
    write(shell_project.root / "rules/echo.yaml", """
        name: echo
        version: 1
        outputs: [echo.txt]
        install: ../escape.kolm
        shell: "true"
    """)
    r = shell_project.invoke("status")
    assert r.exit_code == 2 and "install: '../escape.kolm' is not one of the rule's outputs" in r.output


@pytest.mark.parametrize("name", ["-n", "../../x", "a/b", ".hidden", "", "two words", "x" * 129])
def test_unsafe_target_names_are_refused_naming_the_kolmfile_and_key(shell_project, name: str) -> None:
    kf = shell_project.root / "kolmfile.yaml"
    kf.write_text(kf.read_text().replace("  demo:\n", f"  {name!r}:\n"))
    r = shell_project.kolmbuild()
    assert r.returncode == 2, r.stderr
    assert "kolmfile.yaml:" in r.stderr and f"targets.{name}" in r.stderr and "not a valid target name" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (shell_project.root / "cache").exists() or not any((shell_project.root / "cache").rglob("*.kolm"))
    assert not any(p.name == "x" for p in shell_project.root.parent.parent.iterdir())


def test_a_symlink_output_is_refused_and_its_target_keeps_its_mode(shell_project, tmp_path) -> None:
    """A link stored as the "object" would follow its target, and chmod 0444 would go through it."""
    victim = tmp_path / "victim.txt"
    victim.write_text("anyone's file\n")
    os.chmod(victim, 0o644)
    write(shell_project.root / "rules/echo.yaml", f"""
        name: echo
        version: 1
        outputs: [echo.txt]
        shell: ln -s {victim} "$KOLM_OUT/echo.txt"
    """)
    r = shell_project.kolmbuild()
    assert r.returncode == 1, r.stderr
    assert "'echo.txt' is a symbolic link" in r.stderr
    assert (victim.stat().st_mode & 0o777) == 0o644
    assert victim.read_text() == "anyone's file\n"
    assert not any(p.is_symlink() for p in (shell_project.root / "cache/objects").rglob("*"))


def test_a_hard_linked_output_is_copied_into_the_store_not_moved_or_chmodded(shell_project, tmp_path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("a file with another name\n")
    os.chmod(victim, 0o644)
    write(shell_project.root / "rules/echo.yaml", f"""
        name: echo
        version: 1
        outputs: [echo.txt]
        shell: ln {victim} "$KOLM_OUT/echo.txt"
    """)
    r = shell_project.kolmbuild()
    assert r.returncode == 0, r.stderr
    assert (victim.stat().st_mode & 0o777) == 0o644 and victim.stat().st_nlink == 1
    [obj] = [p for p in (shell_project.root / "cache/objects").rglob("b*") if p.read_bytes() == victim.read_bytes()]
    assert obj.stat().st_ino != victim.stat().st_ino
    victim.write_text("edited later\n")  # the stored object does not change with it
    assert obj.read_text() == "a file with another name\n"
