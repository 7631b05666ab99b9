"""remote-ssh for real: paramiko against an OpenSSH server on a loopback port with a throwaway key."""

from __future__ import annotations

import json

import pytest

from tests.compute.conftest import point_at
from tests.compute.fakes import FakeVast
from tests.compute.sshd import SSHD, start_sshd

pytestmark = pytest.mark.skipif(SSHD is None, reason="OpenSSH server (sshd) is not installed: apt-get install "
                                                     "openssh-server")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.proc.terminate()
    server.proc.wait(timeout=10)


def test_rent_on_remote_ssh_runs_the_job_there_and_pulls_the_result(project, monkeypatch, sshd):
    for k, v in sshd.env().items():
        monkeypatch.setenv(k, v)
    r = project.invoke("compute", "rent", "redact", "--backend", "remote-ssh", "--json")  # $0: no confirm needed
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output[r.output.index("{"):])
    receipt = json.loads((project.root / "kolm-runs" / doc["run_id"] / "out" / "receipt.json").read_text())
    assert receipt["rows"] == 40 and receipt["steps"] == 10 and receipt["run_id"] == doc["run_id"]
    assert any("dry run: 40 rows" in line for line in doc["log_tail"])


def test_compute_test_remote_ssh_passes_four_steps(project, monkeypatch, sshd):
    for k, v in sshd.env().items():
        monkeypatch.setenv(k, v)
    r = project.invoke("compute", "test", "remote-ssh", "--json")
    doc = json.loads(r.output)
    assert r.exit_code == 0 and doc["passed"], r.output
    assert [s["step"] for s in doc["steps"]] == ["auth check", "container provision", "trainer dry run",
                                                  "receipt round-trip"]


def test_unknown_host_key_is_refused(project, monkeypatch, sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/known_hosts either
    for k, v in {**sshd.env(), "KOLM_REMOTE_KNOWN_HOSTS": str(empty)}.items():
        monkeypatch.setenv(k, v)
    r = project.invoke("compute", "rent", "--backend", "remote-ssh")
    assert r.exit_code == 1 and "not found in known_hosts" in r.output


def test_bad_remote_host_is_a_user_error(project, monkeypatch):
    monkeypatch.setenv("KOLM_REMOTE_HOST", "me@host:notaport")
    r = project.invoke("compute", "rent", "--backend", "remote-ssh")
    assert r.exit_code == 2 and "port 'notaport' is not a number" in r.output


def test_vast_rental_over_real_ssh(project, monkeypatch, sshd):
    """The whole provisioned path: the fake vast hands out an instance whose SSH is the loopback sshd."""
    with FakeVast() as fake:
        fake.ssh_port = sshd.port
        point_at(project, "vast", fake.url, transport="ssh", ssh_user=sshd.user)
        monkeypatch.setenv("KOLM_VAST_TOKEN", fake.token)
        for k, v in sshd.env().items():
            monkeypatch.setenv(k, v)
        r = project.invoke("compute", "rent", "redact", "--backend", "vast", "--confirm", "--json")
        assert r.exit_code == 0, r.output
        doc = json.loads(r.output[r.output.index("{"):])
        assert (project.root / "kolm-runs" / doc["run_id"] / "out" / "receipt.json").is_file()
        assert fake.live() == 0


def test_rented_machine_host_key_is_trusted_for_the_session_only(project, monkeypatch, sshd, tmp_path):
    """A freshly rented instance's key is unknown by definition: accepted, but never written to known_hosts."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))
    with FakeVast() as fake:
        fake.ssh_port = sshd.port
        point_at(project, "vast", fake.url, transport="ssh", ssh_user=sshd.user)
        monkeypatch.setenv("KOLM_VAST_TOKEN", fake.token)
        monkeypatch.setenv("KOLM_SSH_KEY", str(sshd.key))
        monkeypatch.setenv("KOLM_REMOTE_KNOWN_HOSTS", str(empty))
        r = project.invoke("compute", "rent", "--backend", "vast", "--confirm")
        assert r.exit_code == 0, r.output
        assert empty.read_text() == "" and fake.live() == 0
        # with strict_host_keys the same unknown key is refused, and the instance is still released
        point_at(project, "vast", fake.url, transport="ssh", ssh_user=sshd.user, strict_host_keys=True)
        r = project.invoke("compute", "rent", "--backend", "vast", "--confirm")
        assert r.exit_code == 1 and "not found in known_hosts" in r.output and fake.live() == 0


def test_ssh_not_yet_up_is_retried_until_it_answers(project, monkeypatch, sshd):
    """The provider says 'running' before sshd listens: connect is retried, then the job runs."""
    import threading

    from tests.compute.sshd import _free_port

    with FakeVast() as fake:
        port = _free_port()
        fake.ssh_port = port
        point_at(project, "vast", fake.url, transport="ssh", ssh_user=sshd.user, ready_timeout_seconds=30)
        monkeypatch.setenv("KOLM_VAST_TOKEN", fake.token)
        monkeypatch.setenv("KOLM_SSH_KEY", str(sshd.key))
        monkeypatch.setenv("KOLM_REMOTE_KNOWN_HOSTS", str(sshd.known_hosts))

        def forward_later() -> None:  # after 2 s, a forwarder on `port` starts answering with the real sshd
            import socket
            import time

            time.sleep(2)
            srv = socket.create_server(("127.0.0.1", port))
            conn, _ = srv.accept()
            up = socket.create_connection(("127.0.0.1", sshd.port))

            def pump(a, b):
                try:
                    while data := a.recv(65536):
                        b.sendall(data)
                except OSError:
                    pass
                finally:
                    b.close()

            threading.Thread(target=pump, args=(conn, up), daemon=True).start()
            pump(up, conn)
            srv.close()

        threading.Thread(target=forward_later, daemon=True).start()
        r = project.invoke("compute", "rent", "--backend", "vast", "--confirm")
        assert r.exit_code == 0, r.output
        assert fake.live() == 0
