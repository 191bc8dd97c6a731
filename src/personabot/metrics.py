"""Prometheus metrics: what the app is doing, without opening the database.

Counters and histograms live in this process (the web server and its worker slots); the queue depth
is read from the database at scrape time, so it is right however many worker processes share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REGISTRY = CollectorRegistry(auto_describe=True)

DELIVERIES = Counter(
    "personabot_deliveries",
    "Webhook deliveries by event and outcome (accepted, duplicate, ignored, rejected, bad_request, too_large).",
    ["event", "outcome"],
    registry=REGISTRY,
)
RUNS = Counter(
    "personabot_runs",
    "Runs finished by this process, by persona and final status.",
    ["persona", "status"],
    registry=REGISTRY,
)
RUN_SECONDS = Histogram(
    "personabot_run_duration_seconds",
    "Wall time of a run from claim to outcome.",
    ["persona"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
    registry=REGISTRY,
)
AGENT_SECONDS = Histogram(
    "personabot_agent_duration_seconds",
    "Wall time of the agent process, by persona and result (ok, failed, timeout).",
    ["persona", "status"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
    registry=REGISTRY,
)
GITHUB_REQUESTS = Counter(
    "personabot_github_requests",
    "GitHub API responses by operation and HTTP status code.",
    ["operation", "status"],
    registry=REGISTRY,
)


def github_response(operation: str, status: int) -> None:
    """The GitHub client's response hook."""
    GITHUB_REQUESTS.labels(operation, str(status)).inc()


class _QueueDepth(Collector):
    """Runs per status as the store reports them when collected."""

    def __init__(self, read: Callable[[], Mapping[str, int]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "personabot_queue_depth", "Runs in the store by status (all workers).", labels=["status"]
        )
        for status, count in sorted(self.read().items()):
            family.add_metric([status], count)
        yield family


class _Ours(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def serve(port: int, host: str, store: Any) -> None:
    """Serve this process's metrics and the queue depth on `host:port` from a daemon thread.

    `personabot worker` processes run the agents, so their run and agent durations live there,
    not in the web process.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Ours())
    registry.register(_QueueDepth(store.queue_depth))
    start_http_server(port, addr=host, registry=registry)


def render(queue_depth: Mapping[str, int] | None) -> bytes:
    """The exposition text: this process's metrics, then the queue depth when known."""
    text = generate_latest(REGISTRY)
    if queue_depth is not None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_QueueDepth(lambda: queue_depth))
        text += generate_latest(registry)
    return text
