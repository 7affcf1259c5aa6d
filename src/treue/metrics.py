"""Prometheus metrics of this process: HTTP requests and latencies by route, domain events committed (earns,
redemptions, refunds...), job runs, and - read from the database when scraped - the outbox's backlog and lag.

Each process keeps its own counters (scrape every API and worker process, or run one process per container);
`GET /metrics` serves them in the Prometheus text format.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("treue_http_requests", "HTTP requests answered", ["method", "route", "status"],
                   registry=REGISTRY)  # fmt: skip
LATENCY = Histogram("treue_http_request_seconds", "Time to answer an HTTP request", ["method", "route"],
                    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)  # fmt: skip
EVENTS = Counter("treue_domain_events", "Domain events committed (points.earned, reward.redeemed, ...)", ["event"],
                 registry=REGISTRY)  # fmt: skip
JOB_RUNS = Counter("treue_job_runs", "Background job runs", ["job", "outcome"], registry=REGISTRY)
JOB_SECONDS = Histogram("treue_job_seconds", "Time a background job run took", ["job"], registry=REGISTRY)


def count_events(names: Iterable[str]) -> None:
    for name in names:
        EVENTS.labels(name).inc()


class timed_job:
    """`with timed_job("expire"): ...` counts the run (ok or failed) and its duration."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> timed_job:
        self.started = time.perf_counter()
        return self

    def __exit__(self, kind: Any, *_: object) -> None:
        JOB_SECONDS.labels(self.name).observe(time.perf_counter() - self.started)
        JOB_RUNS.labels(self.name, "ok" if kind is None else "failed").inc()


class OutboxCollector(Collector):
    """The undelivered outbox messages and the age of the oldest, read at scrape time."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy import func, select

        from treue.store import tables as t

        o = t.outbox
        query = select(func.count(), func.min(o.c.created_at)).where(o.c.dispatched_at.is_(None))
        with self.engine.connect() as conn:
            pending, oldest = conn.execute(query).one()
        if isinstance(oldest, str):  # SQLite returns the text it stored
            oldest = datetime.fromisoformat(oldest)
        lag = 0.0
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            lag = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        yield GaugeMetricFamily("treue_outbox_pending", "Outbox messages not yet dispatched", value=int(pending))
        yield GaugeMetricFamily("treue_outbox_lag_seconds", "Age of the oldest undispatched outbox message", value=lag)
