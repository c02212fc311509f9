"""Where sources run: one worker in this process, or a pool of Ray actors on a cluster.

Both yield one :class:`SourceResult` per source as sources finish. The Ray pool keeps each actor busy with one
source at a time (tracking needs a source's frames in order, on one detector); a source whose actor dies is run
again on a fresh actor, up to :data:`MAX_ATTEMPTS` times.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from ..core.errors import ClusterError, OvdetError, missing_dependency
from .plan import SourceTask
from .worker import SourceResult, SourceWorker, WorkerSpec

__all__ = ["CONNECT_TIMEOUT_S", "MAX_ATTEMPTS", "LocalPool", "RayPool", "check_reachable", "connect"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
MAX_ATTEMPTS = 3
GCS_PORT, CLIENT_PORT = 6379, 10001  # Ray's defaults: a head node's GCS, and its Ray Client server (ray://)
LOCAL_OBJECT_STORE_BYTES = 200 << 20  # sources' results are small; frames never travel between processes
_WAIT_S = 0.2  # how often the driver looks for a stop request while sources run


class LocalPool:
    """One worker in this process, using the driver's detector (no second model load)."""

    def __init__(self, spec: WorkerSpec, stop: threading.Event, detector) -> None:
        self.worker = SourceWorker(spec, stop, detector)
        self.stop = stop
        self.workers = [self.worker.describe()]

    def results(self, tasks: Sequence[SourceTask]) -> Iterator[tuple[SourceResult, int]]:
        """``(result, attempts)`` per source, in order; none after a stop request."""
        for task in tasks:
            if self.stop.is_set():
                return
            yield self.worker.process(task), 1

    def close(self) -> None:
        """Nothing to release: the detector belongs to the caller."""


class RayPool:
    """``workers`` Ray actors, each holding one detector with ``cpus`` CPUs and ``gpus`` GPUs (fractions allowed).

    Args:
        address: ``"local"`` starts a private cluster on this machine (loopback only); ``"auto"`` joins the
            cluster started here with ``ray start``; ``HOST:PORT`` or ``ray://HOST:PORT`` joins that head node.
    """

    def __init__(
        self, spec: WorkerSpec, stop: threading.Event, address: str, workers: int, cpus: float, gpus: float
    ) -> None:
        self.ray, self._owns_connection = connect(address, max(1, round(workers * cpus)))
        self.stop = stop
        self._spec = spec
        self._actors: list = []
        _check_resources(self.ray, address, cpus, gpus)
        # max_concurrency=2: a second thread receives stop() while process() runs; a dead actor is replaced here
        self._actor_class = self.ray.remote(SourceWorker).options(
            num_cpus=cpus, num_gpus=gpus, max_concurrency=2, max_restarts=0
        )
        try:
            self._actors = [self._actor_class.remote(spec) for _ in range(workers)]
            self.workers = self.ray.get([actor.describe.remote() for actor in self._actors])
        except self.ray.exceptions.RayError as exc:
            self.close()
            raise ClusterError(f"the Ray workers could not start: {_reason(exc)}") from None

    def results(self, tasks: Sequence[SourceTask]) -> Iterator[tuple[SourceResult, int]]:
        """``(result, attempts)`` per source as each finishes; after a stop request, the sources in flight end."""
        ray = self.ray
        waiting = deque((task, 1) for task in tasks)
        idle, running = list(self._actors), {}
        stopping = False
        while running or (waiting and not self.stop.is_set()):
            while idle and waiting and not self.stop.is_set():
                actor, (task, attempt) = idle.pop(), waiting.popleft()
                running[actor.process.remote(task)] = (actor, task, attempt)
            if self.stop.is_set() and not stopping:
                stopping = True
                for actor, _, _ in running.values():
                    actor.stop.remote()
            finished, _ = ray.wait(list(running), num_returns=1, timeout=_WAIT_S)
            for reference in finished:
                actor, task, attempt = running.pop(reference)
                try:
                    result = ray.get(reference)
                except ray.exceptions.RayActorError as exc:  # its process died: killed, out of memory, node lost
                    idle.append(self._replace(actor))
                    if attempt < MAX_ATTEMPTS and not self.stop.is_set():
                        log.warning("the worker running %s died (%s); running it again elsewhere", task.source,
                                    _reason(exc))  # fmt: skip
                        waiting.append((task, attempt + 1))
                        continue
                    died = f"its worker died {attempt} time(s) ({_reason(exc)})"
                    result = SourceResult(task.source, "failed", "", error=died, outputs=task.files)
                except ray.exceptions.RayError as exc:  # the task itself broke off (e.g. a Ctrl-C reached the worker)
                    idle.append(actor)
                    status = "stopped" if self.stop.is_set() else "failed"
                    broken = f"its worker stopped ({_reason(exc)})"
                    result = SourceResult(task.source, status, "", error=broken, outputs=task.files)
                else:
                    idle.append(actor)
                yield result, attempt

    def _replace(self, dead) -> object:
        actor = self._actor_class.remote(self._spec)
        self._actors[self._actors.index(dead)] = actor
        return actor

    def close(self) -> None:
        """Release the actors; disconnect, and stop a cluster this pool started."""
        for actor in self._actors:
            self.ray.kill(actor)
        if self._owns_connection:
            self.ray.shutdown()


def _check_resources(ray, address: str, cpus: float, gpus: float) -> None:
    """A worker bigger than the whole cluster is an error on this machine; elsewhere an autoscaler may add nodes."""
    total = ray.cluster_resources()
    has_cpus, has_gpus = total.get("CPU", 0), total.get("GPU", 0)
    if cpus <= has_cpus and gpus <= has_gpus:
        return
    asked = (
        f"each worker asks for {cpus:g} CPU(s) and {gpus:g} GPU(s), but the Ray cluster has {has_cpus:g} CPU(s) and "
    )
    asked += f"{has_gpus:g} GPU(s)"
    if address == "local":
        raise ClusterError(f"{asked}: lower --cpus-per-worker or --gpus-per-worker, or run on a cluster that has them")
    log.warning("%s; waiting for the cluster to add nodes", asked)


def connect(address: str, cpus: int):
    """Ray, connected: ``(ray, owned)``, ``owned`` when this call connected (so the caller disconnects).

    A process that has already called ``ray.init`` keeps its connection. An address that does not answer within
    :data:`CONNECT_TIMEOUT_S` is one :class:`ClusterError` naming it (Ray itself would retry for minutes).
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address == "local":
        # Ray's own switch for a one-machine cluster: every process binds and announces 127.0.0.1 only.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError as exc:
        raise missing_dependency("ray", "ray", "--ray") from exc
    if ray.is_initialized():
        return ray, False
    options = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address == "local":
        options.update(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                       object_store_memory=LOCAL_OBJECT_STORE_BYTES)  # fmt: skip
    else:
        check_reachable(address)
        options["address"] = address
    handler = signal.getsignal(signal.SIGTERM)
    ray.init(**options)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)  # ray.init takes SIGTERM over; the run's own stop comes first
    return ray, True


def check_reachable(address: str) -> None:
    """Fail in :data:`CONNECT_TIMEOUT_S` at most, in one line, when no Ray head node answers at ``address``.

    ``"local"`` (a cluster this run starts) always passes.
    """
    if address == "local":
        return
    target = _head_address(address)
    host, port = _host_port(target)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise ClusterError(
            f"no Ray cluster answers at --ray {address} ({host}:{port}: {reason} within {CONNECT_TIMEOUT_S:.0f} s): "
            f"start one with ray start --head, or check the address"
        ) from None


def _head_address(address: str) -> str:
    """``auto``: the address in ``$RAY_ADDRESS``, else the one ``ray start`` left on this machine."""
    if address != "auto":
        return address
    found = os.environ.get("RAY_ADDRESS")
    if not found:
        try:
            found = Path("/tmp/ray/ray_current_cluster").read_text().strip()
        except OSError:
            found = None
    if not found:
        raise ClusterError("--ray auto found no Ray cluster on this machine: start one with ray start --head, "
                           "or pass its address, e.g. --ray 10.0.0.5:6379")  # fmt: skip
    return found


def _host_port(address: str) -> tuple[str, int]:
    client = address.startswith("ray://")
    parts = urlsplit(address if "://" in address else f"gcs://{address}")
    try:
        port = parts.port or (CLIENT_PORT if client else GCS_PORT)
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ClusterError(f"--ray {address} is not an address: pass HOST:PORT, ray://HOST:PORT, auto or local")
    return parts.hostname, port


def _reason(exc: BaseException) -> str:
    """The first line of what went wrong in a worker, an ovdet error's own message where there is one."""
    cause = getattr(getattr(exc, "creation_task_error", None), "cause", None) or getattr(exc, "cause", None)
    if isinstance(cause, OvdetError):
        return str(cause)
    lines = [line for line in str(cause or exc).splitlines() if line.strip()]
    return lines[-1].strip().split(". ")[0] if lines else type(exc).__name__
