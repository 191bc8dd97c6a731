"""Prometheus metrics: what the app is doing, without opening the database.

Counters and histograms live in this process (the web server and its worker slots); the queue depth
is read from the database at scrape time, so it is right however many worker processes share it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
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
    def __init__(self, depth: Mapping[str, int]) -> None:
        self.depth = depth

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "personabot_queue_depth", "Runs in the store by status (all workers).", labels=["status"]
        )
        for status, count in sorted(self.depth.items()):
            family.add_metric([status], count)
        yield family


def render(queue_depth: Mapping[str, int] | None) -> bytes:
    """The exposition text: this process's metrics, then the queue depth when known."""
    text = generate_latest(REGISTRY)
    if queue_depth is not None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_QueueDepth(queue_depth))
        text += generate_latest(registry)
    return text
