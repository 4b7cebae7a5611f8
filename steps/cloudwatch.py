"""CloudWatch custom metrics from inside a SageMaker job, without ever slowing it down.

`MetricEmitter.put` only appends to an in-memory queue. A daemon thread sends
the queue with `put_metric_data` in batches of up to 1000 datums, retrying
throttling and outages with exponential backoff. `close` flushes what is left
within a deadline. Nothing here raises into the caller: a dead endpoint costs
at most the close deadline, and metrics that cannot be sent are counted and
dropped.

Emission is off when no AWS region or endpoint is configured, so the scripts
run anywhere.
"""

from __future__ import annotations

import math
import os
import queue
import sys
import threading
import time
from datetime import UTC, datetime

MAX_DATUMS_PER_CALL = 1000  # the PutMetricData limit
MAX_QUEUED = 100_000


def emission_configured() -> bool:
    keys = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH")
    return any(os.environ.get(k) for k in keys) and os.environ.get("REGULA_METRICS", "on") != "off"


class MetricEmitter:
    def __init__(
        self,
        namespace: str,
        dimensions: dict[str, str],
        detail_dimensions: dict[str, str] | None = None,
        enabled: bool | None = None,
        flush_interval: float = 5.0,
        max_attempts: int = 5,
        client=None,
    ):
        """`dimensions` are on every datum (one alarm can cover all runs of a pipeline);
        each metric is sent a second time with `detail_dimensions` added (per-job detail)."""
        self.namespace = namespace
        self.dimensions = [{"Name": k, "Value": str(v)} for k, v in dimensions.items() if v]
        detail = {**dimensions, **(detail_dimensions or {})}
        self.detail_dimensions = [{"Name": k, "Value": str(v)} for k, v in detail.items() if v]
        self.enabled = emission_configured() if enabled is None else enabled
        self.flush_interval = flush_interval
        self.max_attempts = max_attempts
        self.sent = 0
        self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=MAX_QUEUED)
        self._in_flight = 0
        self._client = client
        self._stop = threading.Event()
        self._thread = None
        self._non_finite: set[str] = set()
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="regula-metrics", daemon=True)
            self._thread.start()

    def put(self, name: str, value: float, unit: str = "None") -> None:
        if not self.enabled:
            return
        if not math.isfinite(value):  # PutMetricData refuses NaN and infinities: the whole request would fail
            if name not in self._non_finite:
                print(f"[regula] CloudWatch: not sending {name}={value} (not a finite number)", file=sys.stderr)
            self._non_finite.add(name)
            self.dropped += 1
            return
        now = datetime.now(UTC)
        for dims in (self.dimensions, self.detail_dimensions):
            datum = {"MetricName": name, "Dimensions": dims, "Value": float(value), "Unit": unit, "Timestamp": now}
            try:
                self._queue.put_nowait(datum)
            except queue.Full:
                self.dropped += 1

    def put_many(self, values: dict[str, float], unit: str = "None") -> None:
        for name, value in values.items():
            self.put(name, value, unit)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued, giving up after `timeout` seconds."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout)
        stuck = self._thread.is_alive()
        self.dropped += self._queue.qsize() + (self._in_flight if stuck else 0)
        if self.dropped:
            why = f" (no answer within {timeout:g}s)" if stuck else ""
            print(f"[regula] CloudWatch: {self.sent} metric datums sent, {self.dropped} dropped{why}", file=sys.stderr)
        self._thread = None

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.flush_interval)
            while True:
                batch = self._take(MAX_DATUMS_PER_CALL)
                if not batch:
                    break
                self._send(batch)
            if stopping:
                return

    def _take(self, n: int) -> list[dict]:
        batch = []
        while len(batch) < n:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _send(self, batch: list[dict]) -> None:
        self._in_flight = len(batch)
        delay = 0.2
        for attempt in range(1, self.max_attempts + 1):
            try:
                self._cloudwatch().put_metric_data(Namespace=self.namespace, MetricData=batch)
                self.sent += len(batch)
                self._in_flight = 0
                return
            except Exception as error:  # throttling, outage, bad credentials: never reach the caller
                if attempt == self.max_attempts:
                    print(f"[regula] CloudWatch: dropping {len(batch)} datums: {error}", file=sys.stderr)
                    self.dropped += len(batch)
                    self._in_flight = 0
                    return
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _cloudwatch(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1})
            self._client = boto3.client("cloudwatch", config=config)
        return self._client
