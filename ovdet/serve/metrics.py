"""``GET /metrics`` in Prometheus' text format, through ``prometheus_client`` (the format's reference library:
escaping, histogram buckets and content type are its job, not ours).

Each server has its own registry, so two apps in one process (tests) never mix their counts.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class ServerMetrics:
    """Requests by route and status, request latency, images per forward pass, and the requests waiting.

    Example:
        >>> metrics = ServerMetrics(waiting=lambda: 0)
        >>> metrics.batch(3)
        >>> b"ovdet_batch_size_count 1.0" in metrics.render()
        True
    """

    def __init__(self, waiting: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ovdet_requests", "HTTP requests answered", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "ovdet_request_seconds", "Time to answer a request", ["route"], buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.batch_size = Histogram(
            "ovdet_batch_size", "Images per forward pass", buckets=_BATCH_BUCKETS, registry=self.registry
        )
        waiting_gauge = Gauge("ovdet_queue_waiting", "Requests waiting for the model", registry=self.registry)
        waiting_gauge.set_function(waiting)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def batch(self, images: int) -> None:
        self.batch_size.observe(images)

    def render(self) -> bytes:
        return generate_latest(self.registry)
