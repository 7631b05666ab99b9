"""The fakes follow the providers' published API descriptions (tests/compute/specs/), not the adapters:
a wrong payload is refused as the real service would refuse it, the adapters' own payloads pass,
terminating takes several polls, and a network that times out (not just resets) is survived."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from kolmbuild.compute.adapters import adapter_for
from kolmbuild.compute.ledger import Ledger
from kolmbuild.compute.registry import builtin_conf_dirs, load_registry
from kolmbuild.compute.rent import RentRequest, rent
from kolmbuild.compute.selftest import TINY_JOB
from tests.compute.conftest import point_at
from tests.compute.fakes import FakeLambda, FakeRunPod, FakeTogether, FakeVast

AUTH = {"Authorization": "Bearer sekret-token-123"}


def test_lambda_fake_refuses_a_launch_the_api_would_refuse():
    with FakeLambda() as fake:
        ok = {"region_name": "us-east-1", "instance_type_name": "gpu_1x_a100_sxm4_80gb", "ssh_key_names": ["k"]}
        bad = [{k: v for k, v in ok.items() if k != "instance_type_name"},  # required field missing
               {**ok, "instance_type": "gpu_1x_a100_sxm4_80gb"},  # a name the API does not know
               {**ok, "ssh_key_names": "k"},  # wrong type
               {**ok, "instance_type_name": "gpu_9x_nothing"}]  # no such type
        for body in bad:
            r = httpx.post(f"{fake.url}/instance-operations/launch", json=body, headers=AUTH)
            assert r.status_code == 400, body
        assert len(fake.rejected) == 4 and fake.instances == {}
        assert httpx.post(f"{fake.url}/instance-operations/launch", json=ok, headers=AUTH).status_code == 200


def test_runpod_fake_executes_graphql_against_the_published_schema():
    with FakeRunPod() as fake:
        def gql(query: str, variables: dict | None = None) -> httpx.Response:
            return httpx.post(f"{fake.url}/graphql", json={"query": query, "variables": variables or {}}, headers=AUTH)

        # imageName is required; an unknown input field and an unknown operation are refused
        missing = gql("mutation($i: PodFindAndDeployOnDemandInput) { podFindAndDeployOnDemand(input: $i) { id } }",
                      {"i": {"gpuCount": 1, "name": "x"}})
        assert missing.status_code == 400 and "imageName" in missing.text
        unknown = gql("mutation { podFindAndDeployOnDemand(input: {imageName: \"i\", gpuTypes: \"A\"}) { id } }")
        assert unknown.status_code == 400 and "gpuTypes" in unknown.text
        assert gql("mutation { podDeploy { id } }").status_code == 400
        assert fake.instances == {} and len(fake.rejected) == 3
        # a query that merely mentions a mutation's name in a comment is not that mutation
        assert gql("# podFindAndDeployOnDemand\n query { myself { pods { id } } }").json()["data"]["myself"]["pods"] == []


def test_together_fake_refuses_a_training_file_in_the_wrong_format():
    with FakeTogether() as fake:
        def upload(lines: list[dict]) -> httpx.Response:
            data = "".join(json.dumps(x) + "\n" for x in lines).encode()
            return httpx.post(f"{fake.url}/files/upload", headers=AUTH, data={"purpose": "fine-tune"},
                              files={"file": ("d.jsonl", data, "application/jsonl")})

        assert upload([{"input": "a", "output": "b"}]).status_code == 400  # kolmbuild's own rows: not a format
        assert upload([{"prompt": "a", "completion": "b", "text": "c"}]).status_code == 400  # two formats at once
        assert upload([{"messages": [{"role": "assistant", "content": "b"}]}]).status_code == 400  # must open user
        assert upload([{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}]
                      ).status_code == 200
        r = httpx.post(f"{fake.url}/fine-tunes", json={"training_file": "file-1"}, headers=AUTH)
        assert r.status_code == 400 and "model" in r.text


def test_vast_fake_refuses_an_ask_without_an_image():
    with FakeVast() as fake:
        r = httpx.put(f"{fake.url}/api/v0/asks/5551/", json={"client_id": "me", "disk": 40}, headers=AUTH)
        assert r.status_code == 400 and "image" in r.text and fake.instances == {}


@pytest.mark.parametrize("cls,name,token", [(FakeLambda, "lambda", "KOLM_LAMBDA_TOKEN"),
                                            (FakeVast, "vast", "KOLM_VAST_TOKEN"),
                                            (FakeRunPod, "runpod", "KOLM_RUNPOD_TOKEN")])
def test_adapters_payloads_pass_and_release_waits_for_gone(project, monkeypatch, cls, name, token):
    """The adapters' real requests pass the published formats; ending an instance takes several polls
    (it is "terminating" meanwhile) and the ledger says released only once the provider says gone."""
    with cls() as fake:
        fake.terminate_polls = 3
        point_at(project, name, fake.url, gpu_type_id="NVIDIA A100 80GB PCIe") if name == "runpod" else \
            point_at(project, name, fake.url)
        monkeypatch.setenv(token, fake.token)
        r = project.invoke("compute", "rent", "--backend", name, "--confirm", "--json")
        assert r.exit_code == 0, r.output
        assert fake.rejected == [] and fake.live() == 0
        inst = next(iter(fake.instances.values()))
        assert inst["_end_polls"] > fake.terminate_polls  # it was polled until really gone
        run_id = json.loads(r.output[r.output.index("{"):])["run_id"]
        assert Ledger().get(run_id).state == "released"


def test_a_network_that_times_out_is_survived_and_the_machine_released(project, monkeypatch):
    """Status polls time out (no reset, no answer) for longer than max_poll_failures allows: the rental
    fails, and once the network is back the instance is still released."""
    import threading

    with FakeVast() as fake:
        fake.boot_polls = 50  # it stays "loading": the adapter keeps polling
        point_at(project, "vast", fake.url, http_timeout_seconds=0.5)
        monkeypatch.setenv("KOLM_VAST_TOKEN", fake.token)

        def outage() -> None:
            while not fake.instances:
                time.sleep(0.02)
            fake.blackhole(True)
            time.sleep(2.5)  # 3 polls x 0.5 s timeouts: contact is lost, release starts and retries
            fake.blackhole(False)

        threading.Thread(target=outage, daemon=True).start()
        started = time.monotonic()
        r = project.invoke("compute", "rent", "--backend", "vast", "--confirm")
        assert r.exit_code == 1 and "lost contact" in r.output, r.output
        assert fake.live() == 0 and time.monotonic() - started < 30
        assert [x.state for x in Ledger().all()] == ["released"]


def test_library_rent_gates_in_order_with_no_provider_call_before_the_budget(project, monkeypatch):
    """compute.rent owns budget -> token -> confirm, for any caller (no click here)."""
    from kolmbuild.compute.adapters.base import MissingToken
    from kolmbuild.compute.rent import NotConfirmed
    from kolmbuild.errors import BudgetExceeded

    with FakeVast() as fake:
        point_at(project, "vast", fake.url)
        spec = load_registry(builtin_conf_dirs(project.root)).get("vast")
        adapter = adapter_for(spec, workdir=project.root / "runs")
        asked: list[str] = []

        def ask(q: str) -> bool:
            asked.append(q)
            return False

        with pytest.raises(BudgetExceeded):  # no token either: the budget answers first
            rent(adapter, RentRequest(job=TINY_JOB, budget_usd=0.0), run_id="kolm-a", on_progress=print, ask=ask)
        with pytest.raises(MissingToken):
            rent(adapter, RentRequest(job=TINY_JOB, budget_usd=5.0), run_id="kolm-b", on_progress=print, ask=ask)
        assert asked == []
        monkeypatch.setenv("KOLM_VAST_TOKEN", fake.token)
        adapter = adapter_for(spec, workdir=project.root / "runs")
        with pytest.raises(NotConfirmed, match="not confirmed"):
            rent(adapter, RentRequest(job=TINY_JOB, budget_usd=5.0), run_id="kolm-c", on_progress=print, ask=ask)
        assert len(asked) == 1 and "rent vast" in asked[0]
        with pytest.raises(NotConfirmed, match="no TTY"):
            rent(adapter, RentRequest(job=TINY_JOB, budget_usd=5.0), run_id="kolm-d", on_progress=print, ask=None)
        assert fake.requests == [] and Ledger().all() == []
        done = rent(adapter, RentRequest(job=TINY_JOB, budget_usd=5.0), run_id="kolm-e", on_progress=print,
                    ask=lambda q: True)
        assert done.result.exit_code == 0 and fake.live() == 0
