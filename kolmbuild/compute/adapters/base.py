"""The adapter contract: ``detect() / quote(job) / run(job, on_progress) / teardown(handle)``.

``ProvisionedAdapter`` is the lifecycle shared by machines rented by the hour (vast, lambda, runpod
pods): provision → wait until it is reachable → upload → run the trainer → release, release in
``finally``. What SkyPilot's and dstack's bug reports taught: the instance id goes to the ledger the
moment the provider returns it, before waiting for boot; each rental is labelled with the build's run
id so orphans can be found by listing the provider; "not found" on terminate is success; a rental is
marked released only when the provider confirms; terminate is retried with backoff. Signals that
arrive during release are deferred (see :mod:`kolmbuild.compute.signals`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kolmbuild.compute import signals
from kolmbuild.compute.detect import Detection, detect
from kolmbuild.compute.job import Job
from kolmbuild.compute.ledger import Bill, Ledger, Rental
from kolmbuild.compute.quote import Quote, quote
from kolmbuild.compute.secrets import is_secret_name
from kolmbuild.compute.settings import BackendSettings, settings_for
from kolmbuild.config.models import BackendSpec
from kolmbuild.errors import ComputeError, UserInputError

OnProgress = Callable[[str], None]


class ProviderError(ComputeError):
    """The provider answered with an error."""

    def __init__(self, message: str, status: int | None = None, not_found: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.not_found = not_found


class MissingToken(UserInputError):
    """A backend's credentials are not in the environment (exit 2, nothing was called)."""


@dataclass(frozen=True)
class RunHandle:
    run_id: str
    backend: str
    instance_id: str | None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    backend: str
    run_id: str
    exit_code: int
    instance_id: str | None
    duration_s: float
    estimate_usd: float
    actual_usd: float | None
    outputs: tuple[Path, ...] = ()
    log_tail: tuple[str, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend, "run_id": self.run_id, "exit_code": self.exit_code,
            "instance_id": self.instance_id, "duration_s": round(self.duration_s, 2),
            "estimate_usd": round(self.estimate_usd, 4),
            "actual_usd": None if self.actual_usd is None else round(self.actual_usd, 4),
            "outputs": [str(p) for p in self.outputs], "log_tail": list(self.log_tail), "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class RemoteInstance:
    """An instance as the provider lists it (for orphan detection)."""

    instance_id: str
    label: str
    status: str


@dataclass(frozen=True)
class AdapterSettings:
    """Timing knobs (tests shorten them; conf fields ``poll_seconds``, ``ready_timeout_seconds`` …)."""

    poll_s: float = 5.0
    ready_timeout_s: float = 900.0
    max_poll_failures: int = 3
    terminate_backoff_s: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
    http_timeout_s: float = 30.0

    @classmethod
    def from_conf(cls, conf: BackendSettings) -> AdapterSettings:
        return cls(poll_s=conf.poll_seconds, ready_timeout_s=conf.ready_timeout_seconds,
                   max_poll_failures=conf.max_poll_failures,
                   terminate_backoff_s=tuple(conf.terminate_backoff_seconds) or cls.terminate_backoff_s,
                   http_timeout_s=conf.http_timeout_seconds)


class Adapter:
    """One backend. Subclasses implement ``_execute`` (and, for rented machines, the provider calls)."""

    provisioned = False  # True: rented by the hour; release must be confirmed

    def __init__(self, spec: BackendSpec, *, ledger: Ledger | None = None,
                 environ: Mapping[str, str] | None = None, workdir: Path | None = None) -> None:
        self.spec = spec
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.ledger = ledger or Ledger()
        self.conf: Any = settings_for(spec)  # the adapter's own settings model (kolmbuild.compute.settings)
        self.settings = AdapterSettings.from_conf(self.conf)
        self.workdir = workdir
        self._tls: Any = None

    # ---------------------------------------------------------------- contract
    def detect(self) -> Detection:
        return detect(self.spec, self.environ)

    def quote(self, job: Job, setup_s: float | None = None) -> Quote:
        return quote(self.spec, job, setup_s=setup_s)

    def run(self, job: Job, on_progress: OnProgress, *, run_id: str | None = None,
            estimate_usd: float | None = None) -> RunResult:
        """Run ``job`` to the end and release whatever it used, whatever happens."""
        raise NotImplementedError

    def preflight(self) -> None:
        """What must be configured before a rental (checked after the budget and token gates, before
        any provider call); a ConfigError (exit 2) names the missing setting."""

    def terminate_instance(self, instance_id: str) -> None:
        """Ask the provider to stop/terminate; raise ProviderError(not_found=True) when it is unknown."""
        raise NotImplementedError

    def is_gone(self, instance_id: str) -> bool:
        """True once the provider confirms the instance (or job) no longer runs or bills."""
        raise NotImplementedError

    def teardown(self, handle: RunHandle) -> None:
        """Terminate with retries and backoff; mark released only once the provider confirms."""
        if handle.instance_id is None:
            return
        iid = handle.instance_id

        def note(signum: int) -> None:
            os.write(2, f"kolmbuild: releasing {handle.backend} instance {iid}; please wait\n".encode())

        with signals.shield(note):
            self.ledger.update(handle.run_id, state="releasing")
            last: BaseException | None = None
            for delay in (0.0, *self.settings.terminate_backoff_s):
                if delay:
                    time.sleep(delay)
                try:
                    try:
                        self.terminate_instance(iid)
                    except ProviderError as exc:
                        if not exc.not_found:
                            raise
                    if self._confirm_gone(iid):
                        self.ledger.update(handle.run_id, state="released", released_at=time.time())
                        return
                    last = ComputeError("the provider still lists it")
                except (ComputeError, OSError) as exc:
                    last = exc
            self.ledger.update(handle.run_id, state="release-failed", note=f"{type(last).__name__}: {last}")
        raise ComputeError(
            f"{handle.backend}: could not confirm that instance {iid} was released ({last})",
            hint=f"it is in the ledger as release-failed; run `kolmbuild compute status` or terminate {iid} "
                 "in the provider's console",
        )

    def _confirm_gone(self, instance_id: str) -> bool:
        for _ in range(10):
            try:
                if self.is_gone(instance_id):
                    return True
            except ProviderError as exc:
                if exc.not_found:
                    return True
                raise
            time.sleep(min(self.settings.poll_s, 1.0))
        return False


    def list_instances(self) -> list[RemoteInstance]:
        """Instances the provider lists for this account that carry a kolmbuild label."""
        return []

    # ---------------------------------------------------------------- helpers
    def token(self, name: str | None = None) -> str:
        var = name or (self.spec.auth[0] if self.spec.auth else "")
        value = self.environ.get(var, "") if var else ""
        if not value:
            raise MissingToken(f"backend {self.spec.name!r}: no token: set {var} to enable it")
        return value

    def secrets(self) -> list[str]:
        """Every credential configured here: this backend's auth variables and any variable whose
        name says it is a secret (an error shown to the user is redacted of all of them)."""
        names = set(self.spec.auth) | {k for k in self.environ if is_secret_name(k)}
        return [self.environ[n] for n in sorted(names) if self.environ.get(n) and n != "KOLM_REMOTE_HOST"]

    def base_url(self) -> str:
        env_name = getattr(self.conf, "base_url_env", None)
        if env_name and self.environ.get(str(env_name)):
            return str(self.environ[str(env_name)]).rstrip("/")
        url = getattr(self.conf, "base_url", "")
        if not url:
            raise ComputeError(f"backend {self.spec.name!r}: no base_url in its conf")
        return str(url).rstrip("/")

    def tls(self) -> Any:
        """The TLS context of this adapter's HTTP calls, made once: loading the CA bundle costs about
        0.1 s of CPU, which a fresh client per call paid again for every poll (and, with several sweep
        points renting at once, under one GIL)."""
        if self._tls is None:
            import httpx

            self._tls = httpx.create_ssl_context()
        return self._tls

    def hourly_rate(self) -> float:
        return self.spec.pricing.rate_usd if self.spec.pricing.basis == "per-hour" else 0.0

    def output_dir(self, run_id: str) -> Path:
        base = self.workdir or Path.cwd() / "kolm-runs"
        return base / run_id


class ProvisionedAdapter(Adapter):
    """Rent a machine, reach it over SSH (or ``transport: local``), run, release in ``finally``."""

    provisioned = True

    # provider calls, implemented per provider -------------------------------------------------
    def find_offer(self, job: Job) -> dict[str, Any]:
        """Look for capacity (no side effect at the provider: a failure here created nothing)."""
        return {}

    def create_instance(self, job: Job, run_id: str, label: str, offer: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """Ask the provider for a machine; return its id (and details such as the price) at once."""
        raise NotImplementedError

    def instance_status(self, instance_id: str) -> tuple[str, dict[str, Any]]:
        """``(status, info)`` where status is one of: pending, running, gone (terminated / not found)."""
        raise NotImplementedError

    def is_gone(self, instance_id: str) -> bool:
        return self.instance_status(instance_id)[0] == "gone"

    def find_by_label(self, label: str) -> str | None:
        for inst in self.list_instances():
            if inst.label == label and inst.status != "gone":
                return inst.instance_id
        return None

    # lifecycle -------------------------------------------------------------------------------
    def run(self, job: Job, on_progress: OnProgress, *, run_id: str | None = None,
            estimate_usd: float | None = None) -> RunResult:
        from kolmbuild.compute.ledger import new_run_id

        rid = run_id or new_run_id()
        label = rid
        est = self.quote(job).cost_usd if estimate_usd is None else estimate_usd
        self.token()
        signals.check_stop(signals.current_stop())  # a sweep stopped meanwhile: rent nothing
        self.ledger.put(Rental(run_id=rid, backend=self.spec.name, state="provisioning", label=label,
                               estimate_usd=est))
        holder: dict[str, Any] = {}
        started = time.monotonic()
        try:
            on_progress(f"{self.spec.name}: provisioning ({label})")
            try:
                offer = self.find_offer(job)
            except (ComputeError, OSError):
                holder["refused"] = "nothing was created (no offer or capacity found)"
                raise
            try:
                instance_id, info = self.create_instance(job, rid, label, offer)
            except ProviderError as exc:
                if exc.status is not None and 400 <= exc.status < 500:
                    holder["refused"] = str(exc)  # the provider said no: nothing was created
                raise
            holder["id"] = instance_id
            # the id goes to the ledger before anything waits for the machine; the meter runs from here
            self.ledger.update(rid, instance_id=instance_id, detail=_public(info), billed_from=time.time())
            on_progress(f"{self.spec.name}: instance {instance_id} created; waiting until it is reachable")
            ready = self.wait_ready(instance_id, on_progress)
            self.ledger.update(rid, state="running", detail=_public({**info, **ready}))
            code, outputs, tail = self.execute(job, rid, instance_id, ready, on_progress)
            result = RunResult(self.spec.name, rid, code, instance_id, time.monotonic() - started, est, None,
                               tuple(outputs), tuple(tail), {"label": label})
        finally:
            with signals.shield():  # no signal may skip the release below
                if "refused" in holder:
                    note = holder["refused"] if holder["refused"].startswith("nothing") else \
                        "the provider refused the request"
                    self.ledger.update(rid, state="released", note=note)
                    holder["id"] = None
                elif "id" not in holder:
                    holder["id"] = self._reconcile(rid, label)
                if holder["id"] is not None:
                    self.teardown(RunHandle(rid, self.spec.name, holder["id"]))
                    holder["bill"] = self._bill(rid)  # failed runs are billed too
        # released: the bill is the ledger's metered time (create → confirmed gone) at the quoted rate
        bill: Bill | None = holder.get("bill")
        return replace(result, actual_usd=bill.cost_usd if bill else None,
                       detail={**result.detail, **({"billed": bill.to_json()} if bill else {})})

    def _bill(self, run_id: str) -> Bill | None:
        """Write the rental's cost by the ledger (see :meth:`Rental.billed`) as its ``actual_usd``."""
        rental = self.ledger.get(run_id)
        bill = rental.billed(self.hourly_rate()) if rental is not None else None
        if bill is not None and rental is not None and rental.actual_usd != round(bill.cost_usd, 6):
            self.ledger.update(run_id, actual_usd=round(bill.cost_usd, 6))
        return bill

    def _reconcile(self, run_id: str, label: str) -> str | None:
        """Creation failed or was interrupted: did the provider create it anyway? (list by label)"""
        try:
            found = self.find_by_label(label)
        except (ComputeError, OSError) as exc:
            self.ledger.update(run_id, state="release-failed",
                               note=f"create outcome unknown ({type(exc).__name__}); check `compute status`")
            return None
        if found is None:
            self.ledger.update(run_id, state="released", note="the provider created no instance")
            return None
        self.ledger.update(run_id, instance_id=found)
        return found

    def wait_ready(self, instance_id: str, on_progress: OnProgress) -> dict[str, Any]:
        deadline = time.monotonic() + self.settings.ready_timeout_s
        failures = 0
        stop = signals.current_stop()  # a rental on a worker thread (a sweep point): stop when asked
        while True:
            signals.check_stop(stop)
            try:
                status, info = self.instance_status(instance_id)
                failures = 0
            except (ComputeError, OSError) as exc:
                if isinstance(exc, ProviderError) and exc.status is not None and exc.status < 500 \
                        and not exc.not_found:
                    raise
                failures += 1
                if failures >= self.settings.max_poll_failures:
                    raise ComputeError(f"{self.spec.name}: lost contact while waiting for {instance_id}: {exc}") \
                        from exc
                status, info = "pending", {}
            if status == "running":
                return info
            if status == "gone":
                raise ComputeError(f"{self.spec.name}: instance {instance_id} went away while booting")
            if time.monotonic() > deadline:
                raise ComputeError(f"{self.spec.name}: instance {instance_id} not ready after "
                                   f"{self.settings.ready_timeout_s:g} s")
            time.sleep(self.settings.poll_s)

    def transport_for(self, ready: Mapping[str, Any]) -> Any:
        from kolmbuild.compute import transport as tr

        if self.conf.transport == "local":
            return tr.LocalTransport()
        host = ready.get("ssh_host")
        if not host:
            raise ComputeError(f"{self.spec.name}: the provider reported no SSH address")
        target = tr.SSHTarget(
            user=str(ready.get("ssh_user") or self.conf.ssh_user), host=str(host),
            port=int(ready.get("ssh_port") or 22),
            key_file=self.environ.get("KOLM_SSH_KEY") or self.conf.ssh_key_file,
            known_hosts=self.environ.get("KOLM_REMOTE_KNOWN_HOSTS") or self.conf.known_hosts,
            accept_new_host_key=not self.conf.strict_host_keys,
        )
        deadline = time.monotonic() + self.settings.ready_timeout_s
        while True:  # "running" often comes before sshd accepts connections
            try:
                return tr.SSHTransport(target)
            except tr.SSHUnreachable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(max(self.settings.poll_s, 1.0))

    def execute(self, job: Job, run_id: str, instance_id: str, ready: Mapping[str, Any],
                on_progress: OnProgress) -> tuple[int, list[Path], list[str]]:
        """Run the job over the transport while a monitor thread watches the instance via the API."""
        transport = self.transport_for(ready)
        stop = threading.Event()
        failure: list[str] = []
        asked = signals.current_stop()  # on a worker thread: Ctrl+C in the main thread, or the wall-clock limit
        stopped: list[BaseException] = []

        def monitor() -> None:
            fails = 0
            while not stop.wait(self.settings.poll_s):
                if asked is not None and (err := asked.error()) is not None:
                    stopped.append(err)
                    transport.abort()
                    return
                try:
                    status, _ = self.instance_status(instance_id)
                    fails = 0
                    if status == "gone":
                        failure.append(f"instance {instance_id} disappeared mid-run")
                        transport.abort()
                        return
                except (ComputeError, OSError) as exc:
                    fails += 1
                    if fails >= self.settings.max_poll_failures:
                        failure.append(f"lost contact with the {self.spec.name} API mid-run ({type(exc).__name__})")
                        transport.abort()
                        return

        watcher = threading.Thread(target=monitor, name=f"kolm-monitor-{instance_id}", daemon=True)
        try:
            transport.upload(job.files)
            watcher.start()
            tail: list[str] = []
            try:
                code = transport.run(job.command, line_relay(job, transport, tail, on_progress))
            except ComputeError:
                if stopped:
                    raise stopped[0] from None
                if failure:  # the monitor cut the connection: say why
                    raise ComputeError(f"{self.spec.name}: {failure[0]}") from None
                raise
            stop.set()
            if stopped:
                raise stopped[0]
            if failure:
                raise ComputeError(f"{self.spec.name}: {failure[0]}")
            outputs = transport.download(job.outputs, self.output_dir(run_id))
            return code, outputs, tail
        finally:
            stop.set()
            transport.close()

def line_relay(job: Job, transport: Any, tail: list[str], on_progress: OnProgress) -> Callable[[str], None]:
    """The handler of each output line of a job: a checkpoint the far side announced is copied into the
    job's checkpoint sink (over the same transport, while the job runs); other lines are kept (the
    last 20) and passed on."""
    from kolmbuild.compute import checkpoints

    def line(text: str) -> None:
        rel = checkpoints.parse(text) if job.checkpoints is not None else None
        if rel is None:
            tail.append(text)
            del tail[:-20]
            on_progress(text)
            return
        try:
            job.checkpoints.receive(rel, lambda dest: transport.fetch(f"{checkpoints.FAR_CACHE}/{rel}", dest))
        except OSError as exc:  # the next checkpoint may still make it; the run goes on
            on_progress(f"checkpoint {rel} could not be copied back: {exc}")

    return line


_PUBLIC_KEYS = ("price_per_hour", "ssh_host", "ssh_port", "ssh_user", "offer_id", "image", "region",
                "instance_type", "gpu", "status")


def _public(info: Mapping[str, Any]) -> dict[str, Any]:
    """What of a provider's answer goes into the ledger: ids, prices, endpoints; never credentials."""
    return {k: info[k] for k in _PUBLIC_KEYS if k in info}


def http_client(adapter: Adapter, headers: Mapping[str, str]) -> Any:
    import httpx

    return httpx.Client(base_url=adapter.base_url(), headers=dict(headers),
                        timeout=adapter.settings.http_timeout_s, verify=adapter.tls())


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (and its URL-encoded form) replaced by ``***``: a provider or a proxy
    may echo request headers, tokens included, into an error body."""
    from urllib.parse import quote as urlquote

    for secret in sorted({x for x in secrets if x and len(x) >= 4}, key=len, reverse=True):
        for form in {secret, urlquote(secret, safe="")}:
            text = text.replace(form, "***")
    return text


def check_response(resp: Any, what: str, *, backend: str, secrets: Sequence[str] = ()) -> Any:
    """JSON of ``resp`` or a ProviderError naming the call (its body, redacted of every ``secrets``)."""
    if resp.status_code == 404:
        raise ProviderError(f"{backend}: {what}: not found", status=404, not_found=True)
    if resp.status_code >= 400:
        body = redact(resp.text[:2000], secrets)[:300].replace("\n", " ")
        raise ProviderError(f"{backend}: {what}: HTTP {resp.status_code}: {body}", status=resp.status_code)
    try:
        return resp.json()
    except ValueError as exc:
        raise ProviderError(f"{backend}: {what}: the answer is not JSON", status=resp.status_code) from exc


def poll_until(fn: Callable[[], str], done: Sequence[str], poll_s: float, timeout_s: float, what: str) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        state = fn()
        if state in done:
            return state
        if time.monotonic() > deadline:
            raise ComputeError(f"{what}: still {state!r} after {timeout_s:g} s")
        time.sleep(poll_s)


def provider_call(adapter: Adapter, headers: Mapping[str, str], method: str, path: str, what: str,
                  **kw: Any) -> Any:
    """One REST call: JSON back, or a ProviderError; a dropped network becomes a ComputeError too."""
    import httpx

    try:
        with http_client(adapter, headers) as c:
            resp = c.request(method, path, **kw)
    except httpx.TransportError as exc:
        raise ProviderError(f"{adapter.spec.name}: {what}: network error ({type(exc).__name__})") from None
    return check_response(resp, what, backend=adapter.spec.name, secrets=adapter.secrets())
