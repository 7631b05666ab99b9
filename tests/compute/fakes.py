"""Fake provider servers on 127.0.0.1 that speak each documented protocol and count live instances.

Each fake records every request (method, path, whether it carried the expected credential) and keeps
its instances in a dict; ``live()`` counts those not terminated. Request bodies are checked against
the provider's published request format (``tests/compute/specs/``): a body the real service would
refuse gets its 400 (and lands in ``rejected``). Terminating takes several polls, as it does at the
providers. ``partition(True)`` drops every connection without an answer (a reset); ``blackhole(True)``
accepts and never answers (a network that times out), until lifted.

Billing: a rented machine is metered per second from the moment it is created until it is gone, at
``price_per_hour`` (the hourly price each provider's answers quote: vast's ``dph_total``, Lambda's
``price_cents_per_hour``, RunPod's ``costPerHr``); ``billed_usd()`` is what the provider would charge.
Providers whose API reports a job's cost report it in their documented field: Together's
``total_price`` (nanodollars, for the tokens trained) and Replicate's ``metrics.predict_time``
(seconds, billed at the hardware's per-second price).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import jsonschema

SPECS = Path(__file__).parent / "specs"  # request formats written from each provider's published API


@cache
def spec(name: str) -> dict[str, Any]:
    return json.loads((SPECS / f"{name}.json").read_text())


def check(schema: dict[str, Any], doc: Any) -> str | None:
    """The first way ``doc`` breaks ``schema`` (a published request format), or None."""
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    return None if err is None else f"{'/'.join(str(p) for p in err.absolute_path) or '(body)'}: {err.message}"

Route = Callable[["FakeProvider", "Request"], tuple[int, Any]]


class Request:
    def __init__(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes):
        self.method, self.path, self.query, self.headers, self.body = method, path, query, headers, body

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class FakeProvider:
    token = "sekret-token-123"
    auth_header = "Bearer"
    price_per_hour = 0.0  # USD an instance costs per hour while it exists, metered per second

    def __init__(self) -> None:
        self.instances: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.ids = itertools.count(1000)
        self._partitioned = threading.Event()
        self._blackholed = threading.Event()
        self._lifted = threading.Event()
        self.rejected: list[tuple[str, str, str]] = []  # (method, path, why) of bodies refused by the spec
        self.terminate_polls = 2  # status polls an instance stays "terminating" after it was ended
        self.boot_polls = 1  # status polls before an instance is ready
        self.ssh_port = 22  # what a ready instance reports (tests point it at a loopback sshd)
        self.routes: list[tuple[str, re.Pattern[str], Route]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # lifecycle
    def __enter__(self) -> FakeProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def partition(self, on: bool) -> None:
        (self._partitioned.set if on else self._partitioned.clear)()

    def blackhole(self, on: bool) -> None:
        if on:
            self._lifted.clear()
            self._blackholed.set()
        else:
            self._blackholed.clear()
            self._lifted.set()

    def reject(self, req: Request, why: str) -> tuple[int, Any]:
        with self.lock:
            self.rejected.append((req.method, req.path, why))
        return 400, {"error": {"code": "global/invalid-parameters", "message": why}}

    def ending(self, inst: dict[str, Any]) -> bool:
        """An ended instance is still listed for ``terminate_polls`` polls; True once it is really gone."""
        if not inst.get("_ending"):
            return False
        inst["_end_polls"] = inst.get("_end_polls", 0) + 1
        if inst["_end_polls"] > self.terminate_polls:
            self.kill(inst)
        return True

    def add(self, iid: str, inst: dict[str, Any]) -> dict[str, Any]:
        """A new instance (or job): its meter starts now."""
        with self.lock:
            self.instances[iid] = {**inst, "_born": time.monotonic()}
        return self.instances[iid]

    def kill(self, inst: dict[str, Any], **changes: Any) -> None:
        """The instance is gone (its meter stops now)."""
        inst.update(changes, _dead=True)
        inst.setdefault("_died", time.monotonic())

    def billed_seconds(self) -> dict[str, float]:
        """Seconds each instance has existed (until now for one still alive)."""
        now = time.monotonic()
        with self.lock:
            return {iid: inst.get("_died", now) - inst.get("_born", now) for iid, inst in self.instances.items()}

    def billed_usd(self) -> float:
        """What the provider charges for its instances: metered seconds × ``price_per_hour``."""
        return sum(self.billed_seconds().values()) * self.price_per_hour / 3600.0

    def route(self, method: str, pattern: str) -> Callable[[Route], Route]:
        def deco(fn: Route) -> Route:
            self.routes.append((method, re.compile(f"^{pattern}$"), fn))
            return fn
        return deco

    def live(self) -> int:
        """Instances not yet gone (one being terminated still counts until the provider says gone)."""
        with self.lock:
            return sum(1 for i in self.instances.values() if not i.get("_dead"))

    def new_id(self) -> str:
        return str(next(self.ids))

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization", "") == f"{self.auth_header} {self.token}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                if fake._partitioned.is_set():
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fake._blackholed.is_set():  # accept, read nothing, answer nothing: the client times out
                    fake._lifted.wait(30)
                    self.close_connection = True
                    return
                parsed = urlparse(self.path)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                req = Request(method, parsed.path, parse_qs(parsed.query), headers, body)
                ok = fake.authorized(headers)
                with fake.lock:
                    fake.requests.append((method, parsed.path, ok))
                if not ok:
                    return self._send(401, {"error": "unauthorized"})
                for m, pat, fn in fake.routes:
                    if m == method and pat.match(parsed.path):
                        status, doc = fn(fake, req)
                        return self._send(status, doc)
                self._send(404, {"error": f"no route {method} {parsed.path}"})

            def _send(self, status: int, doc: Any) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        return Handler


def _ready(fake: FakeProvider, inst: dict[str, Any]) -> bool:
    inst["_polls"] = inst.get("_polls", 0) + 1
    return inst["_polls"] > fake.boot_polls


# ----------------------------------------------------------------------------------- Lambda
class FakeLambda(FakeProvider):
    price_per_hour = 1.79

    def __init__(self) -> None:
        super().__init__()

        @self.route("GET", "/instance-types")
        def types(f: FakeProvider, r: Request) -> tuple[int, Any]:
            return 200, {"data": {"gpu_1x_a100_sxm4_80gb": {
                "instance_type": {"name": "gpu_1x_a100_sxm4_80gb",
                                  "price_cents_per_hour": round(f.price_per_hour * 100),
                                  "specs": {"vcpus": 30, "memory_gib": 200, "storage_gib": 512, "gpus": 1}},
                "regions_with_capacity_available": [{"name": "us-east-1", "description": "Virginia"}]}}}

        @self.route("POST", "/instance-operations/launch")
        def launch(f: FakeProvider, r: Request) -> tuple[int, Any]:
            body = r.json()
            if (why := check(spec("lambda")["launch"], body)) is not None:
                return f.reject(r, why)
            if body["instance_type_name"] not in ("gpu_1x_a100_sxm4_80gb",):
                return f.reject(r, f"instance_type_name: unknown instance type {body['instance_type_name']!r}")
            iid = "i-" + f.new_id()
            f.add(iid, {"id": iid, "name": body.get("name"), "status": "booting", "region": {"name": body["region_name"]}})
            return 200, {"data": {"instance_ids": [iid]}}

        @self.route("GET", "/instances/(?P<id>[^/]+)")
        def get(f: FakeProvider, r: Request) -> tuple[int, Any]:
            iid = r.path.rsplit("/", 1)[1]
            inst = f.instances.get(iid)
            if inst is None:
                return 404, {"error": {"code": "global/object-does-not-exist", "message": "Instance not found"}}
            if inst["status"] == "booting" and _ready(f, inst):
                inst.update(status="active", ip="127.0.0.1")
            if f.ending(inst) and inst.get("_dead"):
                inst["status"] = "terminated"
            return 200, {"data": {k: v for k, v in inst.items() if not k.startswith("_")}}

        @self.route("GET", "/instances")
        def list_(f: FakeProvider, r: Request) -> tuple[int, Any]:
            return 200, {"data": [{k: v for k, v in i.items() if not k.startswith("_")}
                                  for i in f.instances.values() if not i.get("_dead")]}

        @self.route("POST", "/instance-operations/terminate")
        def terminate(f: FakeProvider, r: Request) -> tuple[int, Any]:
            if (why := check(spec("lambda")["terminate"], r.json())) is not None:
                return f.reject(r, why)
            done = []
            for iid in r.json()["instance_ids"]:
                inst = f.instances.get(iid)
                if inst is None or inst.get("_dead"):
                    return 404, {"error": {"code": "global/object-does-not-exist", "message": "not found"}}
                inst.update(status="terminating", _ending=True)
                done.append({"id": iid, "status": "terminating"})
            return 200, {"data": {"terminated_instances": done}}


# ------------------------------------------------------------------------------------- vast
class FakeVast(FakeProvider):
    price_per_hour = 0.42

    def __init__(self) -> None:
        super().__init__()

        @self.route("POST", "/api/v0/bundles/")
        def bundles(f: FakeProvider, r: Request) -> tuple[int, Any]:
            if (why := check(spec("vast")["bundles"], r.json())) is not None:
                return f.reject(r, why)
            return 200, {"offers": [{"id": 5551, "dph_total": f.price_per_hour, "gpu_name": "A100_SXM4", "gpu_ram": 81920,
                                     "num_gpus": 1}]}

        @self.route("PUT", "/api/v0/asks/(?P<id>\\d+)/")
        def ask(f: FakeProvider, r: Request) -> tuple[int, Any]:
            body = r.json()
            if (why := check(spec("vast")["asks"], body)) is not None:
                return f.reject(r, why)
            iid = f.new_id()
            f.add(iid, {"id": int(iid), "label": body["label"], "actual_status": "loading",
                        "dph_total": f.price_per_hour, "image": body["image"]})
            return 200, {"success": True, "new_contract": int(iid)}

        @self.route("GET", "/api/v0/instances/(?P<id>\\d+)/")
        def get(f: FakeProvider, r: Request) -> tuple[int, Any]:
            iid = r.path.strip("/").rsplit("/", 1)[1]
            inst = f.instances.get(iid)
            if inst is None or inst.get("_dead") or (f.ending(inst) and inst.get("_dead")):
                return 200, {"instances": None}
            if inst["actual_status"] == "loading" and _ready(f, inst):
                inst.update(actual_status="running", ssh_host="127.0.0.1", ssh_port=f.ssh_port)
            return 200, {"instances": {k: v for k, v in inst.items() if not k.startswith("_")}}

        @self.route("GET", "/api/v0/instances/")
        def list_(f: FakeProvider, r: Request) -> tuple[int, Any]:
            return 200, {"instances": [{k: v for k, v in i.items() if not k.startswith("_")}
                                       for i in f.instances.values() if not i.get("_dead")]}

        @self.route("DELETE", "/api/v0/instances/(?P<id>\\d+)/")
        def delete(f: FakeProvider, r: Request) -> tuple[int, Any]:
            iid = r.path.strip("/").rsplit("/", 1)[1]
            inst = f.instances.get(iid)
            if inst is None or inst.get("_dead"):
                return 404, {"success": False, "error": "no_such_instance"}
            inst.update(_ending=True, intended_status="stopped")  # destroyed after a few polls
            return 200, {"success": True}


# ----------------------------------------------------------------------------------- runpod
class FakeRunPod(FakeProvider):
    """Answers GraphQL by executing the document against RunPod's published schema (specs/runpod.graphql)
    with graphql-core: a query the real API would refuse (unknown field, missing required input, wrong
    type) gets its errors, and each operation is dispatched by the field it selects, not by substring."""

    price_per_hour = 1.19

    def __init__(self) -> None:
        super().__init__()
        import graphql

        schema = graphql.build_schema((SPECS / "runpod.graphql").read_text())
        fake = self

        def view(inst: dict[str, Any]) -> dict[str, Any]:
            return {"id": inst["id"], "name": inst["name"], "desiredStatus": inst["desiredStatus"],
                    "costPerHr": fake.price_per_hour, "imageName": inst["imageName"], "machineId": "m1",
                    "runtime": inst.get("runtime")}

        class Root:
            def podFindAndDeployOnDemand(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: N802, A002
                pid = "pod" + fake.new_id()
                return view(fake.add(pid, {"id": pid, "name": input.get("name") or "", "desiredStatus": "RUNNING",
                                           "imageName": input["imageName"]}))

            def podTerminate(self, info: Any, input: dict[str, Any]) -> None:  # noqa: N802, A002
                inst = fake.instances.get(input["podId"])
                if inst is None or inst.get("_dead"):
                    raise graphql.GraphQLError("pod not found")
                inst["_ending"] = True  # listed (still running) for a few polls, then gone
                return None

            def pod(self, info: Any, input: dict[str, Any]) -> dict[str, Any] | None:  # noqa: A002
                inst = fake.instances.get(input["podId"])
                if inst is None or inst.get("_dead") or (fake.ending(inst) and inst.get("_dead")):
                    return None
                if not inst.get("_ending") and _ready(fake, inst):
                    inst["runtime"] = {"uptimeInSeconds": 3, "ports": [
                        {"ip": "127.0.0.1", "isIpPublic": True, "privatePort": 22, "publicPort": 22, "type": "tcp"}]}
                return view(inst)

            def myself(self, info: Any) -> dict[str, Any]:
                return {"id": "me", "pods": [view(i) for i in fake.instances.values() if not i.get("_dead")]}

        @self.route("POST", "/graphql")
        def gql(f: FakeProvider, r: Request) -> tuple[int, Any]:
            body = r.json()
            result = graphql.graphql_sync(schema, body.get("query") or "", root_value=Root(),
                                          variable_values=body.get("variables"))
            doc: dict[str, Any] = {"data": result.data}
            if result.errors:
                doc["errors"] = [{"message": e.message} for e in result.errors]
                if result.data is None:  # the document itself is invalid: RunPod answers 400
                    return f.reject(r, "; ".join(e.message for e in result.errors))
            return 200, doc


def _alternates(messages: list[dict[str, Any]]) -> bool:
    roles = [m["role"] for m in messages]
    if roles and roles[0] == "system":
        roles = roles[1:]
    return bool(roles) and all(role == ("user" if i % 2 == 0 else "assistant") for i, role in enumerate(roles))


# --------------------------------------------------------------------------------- together
class FakeTogether(FakeProvider):
    price_per_million_tokens = 0.48  # USD per 1M tokens trained (tokens x epochs), as Together bills

    def __init__(self) -> None:
        super().__init__()
        self.run_polls = 2  # polls in "running" before completing
        self.file_tokens: dict[str, int] = {}  # uploaded file id -> its tokens (chars / 4, as a stand-in)

        @self.route("POST", "/files/upload")
        def upload(f: FakeProvider, r: Request) -> tuple[int, Any]:
            import email.parser

            msg = email.parser.BytesParser().parsebytes(
                b"content-type: " + r.headers["content-type"].encode() + b"\r\n\r\n" + r.body)
            parts = {p.get_param("name", header="content-disposition"): p for p in msg.get_payload()}
            if "file" not in parts or parts.get("purpose") is None or \
                    parts["purpose"].get_payload(decode=True) != b"fine-tune":
                return f.reject(r, "multipart upload needs `file` and purpose=fine-tune")
            formats = spec("together")["line_formats"]
            for n, line in enumerate(parts["file"].get_payload(decode=True).decode().splitlines(), 1):
                row = json.loads(line)
                matches = [name for name, schema in formats.items() if check(schema, row) is None]
                if len(matches) != 1:
                    return f.reject(r, f"line {n}: not in one of the formats {sorted(formats)} (keys {sorted(row)})")
                if matches == ["conversational"] and not _alternates(row["messages"]):
                    return f.reject(r, f"line {n}: messages must start with system or user, then alternate")
            fid = "file-" + f.new_id()
            self.file_tokens[fid] = len(parts["file"].get_payload(decode=True)) // 4
            return 200, {"id": fid, "object": "file", "purpose": "fine-tune"}

        @self.route("POST", "/fine-tunes")
        def create(f: FakeProvider, r: Request) -> tuple[int, Any]:
            body = r.json()
            if (why := check(spec("together")["fine_tunes"], body)) is not None:
                return f.reject(r, why)
            fid = "ft-" + f.new_id()
            inst = f.add(fid, {"id": fid, "status": "pending", "suffix": body["suffix"], "model": body["model"],
                               "training_file": body["training_file"], "n_epochs": body.get("n_epochs", 1),
                               "events": []})
            return 200, {k: v for k, v in inst.items() if not k.startswith("_")}

        @self.route("GET", "/fine-tunes/(?P<id>[^/]+)")
        def get(f: FakeProvider, r: Request) -> tuple[int, Any]:
            inst = f.instances.get(r.path.rsplit("/", 1)[1])
            if inst is None:
                return 404, {"error": {"message": "not found"}}
            polls = inst["_polls"] = inst.get("_polls", 0) + 1
            if inst["status"] in ("pending", "running"):
                inst["status"] = "running" if polls <= self.run_polls else "completed"
                if inst["status"] == "completed":
                    tokens = self.file_tokens.get(inst["training_file"], 0) * int(inst["n_epochs"])
                    # Together reports the job's price in nanodollars once it knows the token count
                    f.kill(inst, output_name=f"user/{inst['model']}-{inst['suffix']}", token_count=tokens,
                           total_price=round(tokens * self.price_per_million_tokens * 1000))
            return 200, {k: v for k, v in inst.items() if not k.startswith("_")}

        @self.route("GET", "/fine-tunes")
        def list_(f: FakeProvider, r: Request) -> tuple[int, Any]:
            return 200, {"data": [{k: v for k, v in i.items() if not k.startswith("_")} for i in f.instances.values()]}

        @self.route("POST", "/fine-tunes/(?P<id>[^/]+)/cancel")
        def cancel(f: FakeProvider, r: Request) -> tuple[int, Any]:
            inst = f.instances.get(r.path.split("/")[2])
            if inst is None:
                return 404, {"error": {"message": "not found"}}
            if not inst.get("_dead"):
                f.kill(inst, status="cancelled")
            return 200, {k: v for k, v in inst.items() if not k.startswith("_")}


# -------------------------------------------------------------------------------- replicate
class FakeReplicate(FakeProvider):
    auth_header = "Bearer"

    def __init__(self) -> None:
        super().__init__()
        self.run_polls = 2
        self.files: dict[str, bytes] = {}

        def view(inst: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in inst.items() if not k.startswith("_")}

        @self.route("POST", "/v1/files")
        def files(f: FakeProvider, r: Request) -> tuple[int, Any]:
            fid = "file" + f.new_id()
            self.files[fid] = r.body
            return 201, {"id": fid, "name": "data.jsonl", "content_type": "application/octet-stream",
                         "size": len(r.body), "etag": "x", "checksums": {}, "metadata": {},
                         "created_at": "2026-11-24T00:00:00Z", "expires_at": None,
                         "urls": {"get": f"{self.url}/v1/files/{fid}/download"}}

        @self.route("POST", "/v1/models/(?P<o>[^/]+)/(?P<n>[^/]+)/versions/(?P<v>[^/]+)/trainings")
        def create(f: FakeProvider, r: Request) -> tuple[int, Any]:
            body = r.json()
            parts = r.path.split("/")
            tid = "t" + f.new_id()
            inst = f.add(tid, {"id": tid, "model": f"{parts[3]}/{parts[4]}", "version": parts[6],
                               "destination": body["destination"], "status": "starting", "input": body["input"],
                               "output": None, "logs": "", "error": None, "created_at": "2026-11-24T00:00:00Z",
                               "started_at": None, "completed_at": None, "metrics": {},
                               "urls": {"get": f"{self.url}/v1/trainings/{tid}",
                                        "cancel": f"{self.url}/v1/trainings/{tid}/cancel"}})
            return 201, view(inst)

        @self.route("GET", "/v1/trainings/(?P<id>[^/]+)")
        def get(f: FakeProvider, r: Request) -> tuple[int, Any]:
            inst = f.instances.get(r.path.rsplit("/", 1)[1])
            if inst is None:
                return 404, {"detail": "Not found.", "status": 404}
            polls = inst["_polls"] = inst.get("_polls", 0) + 1
            if inst["status"] in ("starting", "processing"):
                inst["status"] = "processing" if polls <= self.run_polls else "succeeded"
                inst["logs"] += f"step {polls}\n"
                if inst["status"] == "succeeded":  # Replicate reports the seconds it billed as predict_time
                    f.kill(inst, output={"version": "me/redactor:abc123", "weights": "https://x/w.tar"})
                    inst["metrics"] = {"predict_time": round(inst["_died"] - inst["_born"], 3)}
            return 200, view(inst)

        @self.route("GET", "/v1/trainings")
        def list_(f: FakeProvider, r: Request) -> tuple[int, Any]:
            return 200, {"results": [view(i) for i in f.instances.values()], "next": None, "previous": None}

        @self.route("POST", "/v1/trainings/(?P<id>[^/]+)/cancel")
        def cancel(f: FakeProvider, r: Request) -> tuple[int, Any]:
            inst = f.instances.get(r.path.split("/")[3])
            if inst is None:
                return 404, {"detail": "Not found.", "status": 404}
            if not inst.get("_dead"):
                f.kill(inst, status="canceled")
            return 200, view(inst)


# -------------------------------------------------------------------------------------- fal
class FakeFal(FakeProvider):
    auth_header = "Key"

    def __init__(self) -> None:
        super().__init__()
        self.run_polls = 1

        @self.route("POST", "/(?P<app>[^/]+/[^/]+)")
        def submit(f: FakeProvider, r: Request) -> tuple[int, Any]:
            rid = "req-" + f.new_id()
            app = r.path.strip("/")
            base = f"{self.url}/{app}/requests/{rid}"
            with f.lock:
                f.instances[rid] = {"status": "IN_QUEUE", "input": r.json()}
            return 200, {"request_id": rid, "response_url": base, "status_url": base + "/status",
                         "cancel_url": base + "/cancel"}

        @self.route("GET", "/[^/]+/[^/]+/requests/(?P<id>[^/]+)/status")
        def status(f: FakeProvider, r: Request) -> tuple[int, Any]:
            inst = f.instances.get(r.path.split("/")[4])
            if inst is None:
                return 404, {"detail": "Request not found"}
            polls = inst["_polls"] = inst.get("_polls", 0) + 1
            if inst["status"] == "IN_QUEUE":
                inst["status"] = "IN_PROGRESS"
                return 202, {"status": "IN_QUEUE", "queue_position": 0}
            if inst["status"] == "IN_PROGRESS" and polls > self.run_polls + 1:
                inst.update(status="COMPLETED", _dead=True)
            if inst["status"] == "COMPLETED":
                return 200, {"status": "COMPLETED", "logs": [], "metrics": {"inference_time": 0.1}}
            return 202, {"status": "IN_PROGRESS", "logs": []}

        @self.route("GET", "/[^/]+/[^/]+/requests/(?P<id>[^/]+)")
        def result(f: FakeProvider, r: Request) -> tuple[int, Any]:
            inst = f.instances.get(r.path.split("/")[4])
            if inst is None or inst["status"] != "COMPLETED":
                return 400, {"detail": "Request is still in progress"}
            return 200, {"output": str(inst["input"].get("prompt", "")).upper()}

        @self.route("PUT", "/[^/]+/[^/]+/requests/(?P<id>[^/]+)/cancel")
        def cancel(f: FakeProvider, r: Request) -> tuple[int, Any]:
            inst = f.instances.get(r.path.split("/")[4])
            if inst is None:
                return 404, {"detail": "Request not found"}
            if inst["status"] == "COMPLETED":
                return 400, {"status": "ALREADY_COMPLETED"}
            inst.update(status="COMPLETED", _dead=True, cancelled=True)
            return 202, {"status": "CANCELLATION_REQUESTED"}


class FakeModalClient:
    """Modal faked at the adapter's client boundary (Modal speaks gRPC): spawn / poll / cancel."""

    def __init__(self, polls: int = 2, fail: bool = False) -> None:
        self.calls: dict[str, dict[str, Any]] = {}
        self.polls, self.fail = polls, fail
        self.ids = itertools.count(1)

    def spawn(self, app: str, function: str, payload: dict[str, Any]) -> str:
        cid = f"fc-{next(self.ids)}"
        self.calls[cid] = {"app": app, "function": function, "payload": payload, "state": "running", "polls": 0}
        return cid

    def poll(self, call_id: str) -> tuple[str, Any]:
        c = self.calls[call_id]
        c["polls"] += 1
        if c["state"] == "running" and c["polls"] > self.polls:
            c["state"] = "failed" if self.fail else "succeeded"
        if c["state"] == "succeeded":
            return "succeeded", {"rows": len(c["payload"]["files"]), "run_id": c["payload"]["run_id"]}
        return c["state"], ("trainer raised" if c["state"] == "failed" else None)

    def cancel(self, call_id: str) -> None:
        self.calls[call_id]["state"] = "cancelled"

    def live(self) -> int:
        return sum(1 for c in self.calls.values() if c["state"] == "running")
