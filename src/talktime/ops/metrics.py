"""Prometheus metrics: HTTP requests, charges and refusals counted as they happen, and the job
queue and webhook health read from the database at scrape time (so every worker's work shows).

Each app owns its registry. With several `talktime serve` processes each process exposes its own
request counters; the database-derived figures are the same everywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from talktime.ops import jobs, webhooks
from talktime.service import groupcommit

#: Routes whose success moves money (a charge, a settled call, a number's first rental, a purchase).
CHARGING_ROUTE = re.compile(r"^/v1/(messages(/inbound)?|calls/\{[^}]+\}/complete|numbers|credits)$")


class StoreCollector(Collector):
    """Job counts and lag, webhook failures and disabled endpoints, read at each scrape."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            per_state, lag_us = jobs.counts(self.engine)
            failures = webhooks.failure_counts(self.engine)
        except sa.exc.SQLAlchemyError:
            yield GaugeMetricFamily(
                "talktime_store_up", "1 when the database answered the scrape", value=0
            )
            return
        yield GaugeMetricFamily(
            "talktime_store_up", "1 when the database answered the scrape", value=1
        )
        jobs_gauge = GaugeMetricFamily(
            "talktime_jobs", "Jobs in the queue by state", labels=["state"]
        )
        for state, n in per_state.items():
            jobs_gauge.add_metric([state], n)
        yield jobs_gauge
        yield GaugeMetricFamily(
            "talktime_job_lag_seconds",
            "How long the oldest due pending job has waited",
            value=lag_us / 1_000_000,
        )
        attempts = GaugeMetricFamily(
            "talktime_webhook_failed_attempts",
            "Failed webhook delivery attempts in the delivery log, by outcome",
            labels=["outcome"],
        )
        for outcome in ("http_error", "timeout", "network_error", "blocked"):
            attempts.add_metric([outcome], failures.get(outcome, 0))
        yield attempts
        yield GaugeMetricFamily(
            "talktime_webhook_deliveries_failed",
            "Webhook deliveries that gave up after 24 hours of retries",
            value=failures["deliveries_failed"],
        )
        yield GaugeMetricFamily(
            "talktime_webhook_deliveries_skipped",
            "Webhook deliveries of events that came while their endpoint was disabled, not yet "
            "redelivered",
            value=failures["deliveries_skipped"],
        )
        yield GaugeMetricFamily(
            "talktime_webhook_endpoints_disabled",
            "Webhook endpoints disabled after persistent failure or by their account",
            value=failures["endpoints_disabled"],
        )


class WriterCollector(Collector):
    """This process's group-commit writer (`service.groupcommit`), read at each scrape.

    Every series has a ``pid`` label: each `talktime serve` worker has its own writer, and a
    scrape reaches one of them. On SQLite the workers' writers share one write lock, so the
    sum over the workers of ``rate(talktime_group_commit_batch_seconds_total)`` is the share
    of time the lock is held: near 1, the writes are the bottleneck."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        stats = groupcommit.stats_for(self.engine)
        pid = [str(os.getpid())]
        for name, text, value in (
            ("batches", "Transactions the group-commit writer committed", stats.batches),
            ("units", "Requests' units of work in those transactions", stats.units),
            (
                "batch_seconds",
                "Seconds from taking the writer's turn (SQLite's write lock) to the commit",
                stats.batch_seconds,
            ),
            (
                "commit_seconds",
                "Seconds spent in COMMIT (the fsync on SQLite)",
                stats.commit_seconds,
            ),
            ("together", "Batches whose units ran in one pass", stats.together),
            (
                "fallbacks",
                "Batches whose pass raised, so their units ran one by one",
                stats.fallbacks,
            ),
        ):
            family = CounterMetricFamily(f"talktime_group_commit_{name}", text, labels=["pid"])
            family.add_metric(pid, value)
            yield family
        queued = GaugeMetricFamily(
            "talktime_group_commit_waiting", "Units queued for the writer now", labels=["pid"]
        )
        queued.add_metric(pid, stats.waiting)
        yield queued


class Metrics:
    """The metrics of one app: a registry with HTTP counters and the store collector."""

    def __init__(self, engine: sa.Engine | None = None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "talktime_http_requests",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "talktime_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.charges = Counter(
            "talktime_charges",
            "Successful requests that moved money, by route",
            ["route"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "talktime_refusals",
            "Refusals (problem documents) by stable code",
            ["code", "status"],
            registry=self.registry,
        )
        if engine is not None:
            self.registry.register(StoreCollector(engine))
            self.registry.register(WriterCollector(engine))

    def observe(
        self,
        method: str,
        route: str,
        status: int,
        seconds: float,
        code: str | None,
        *,
        moved_money: bool = True,
    ) -> None:
        """Count one finished request. A success on a charging route counts as a charge unless
        `moved_money` is False: an idempotent replay of an earlier answer, or a free one (an
        inbound message that cost nothing)."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if code is not None:
            self.refusals.labels(code, str(status)).inc()
        elif (
            moved_money and 200 <= status < 300 and method == "POST" and CHARGING_ROUTE.match(route)
        ):
            self.charges.labels(route).inc()
