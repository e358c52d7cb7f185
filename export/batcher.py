"""Dynamic batching for `mengzi serve`: records of concurrent requests share `predictor.predict` calls.

Request threads validate their records, then queue them; one worker thread takes up to max_batch
records, waiting at most max_wait_ms after the oldest queued record arrived, calls `predictor.predict` once and
routes each result back to its request. A request larger than max_batch spans several batches. The queue holds at
most max_queue records; past that, requests are refused (503) instead of piling up threads and latency.
`predictor.validate` is called from many request threads at once; `predict` only from the worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

log = logging.getLogger("mengzi.export.server")

SUMMARY_EVERY = 60.0  # seconds between INFO summaries (only when there was traffic)


class QueueFull(RuntimeError):
    """The batcher's queue has no room for this request (HTTP 503)."""


class BatcherClosed(RuntimeError):
    """The server is shutting down (HTTP 503)."""


class PredictError(RuntimeError):
    """`predictor.predict` raised or returned the wrong number of results (HTTP 500)."""


class _Job:
    """One request's records on their way through the queue; the worker fills `results` and sets `done`."""

    def __init__(self, records: list[dict]):
        self.records, self.results = records, [None] * len(records)
        self.pending, self.error = len(records), None
        self.done, self.t0 = threading.Event(), time.monotonic()


class Batcher:
    """Collects records from concurrent requests into batches for one worker thread (see the module doc)."""

    def __init__(self, predictor, max_batch: int = 32, max_wait_ms: float = 5.0, max_queue: int = 4096):
        self.predictor, self.max_batch, self.max_queue = predictor, max_batch, max_queue
        self.max_wait = max_wait_ms / 1000
        self._queue: deque[tuple[_Job, int]] = deque()  # (job, record index): a request's records stay together
        self._cond = threading.Condition()
        self._closed = False
        self._current: list[tuple[_Job, int]] = []  # the batch being predicted
        self._stats = {"requests": 0, "records": 0, "batches": 0, "rejected": 0, "failed_batches": 0, "closed": 0}
        self._summarised, self._last_summary = 0, time.monotonic()
        self._thread = threading.Thread(target=self._run, name="mengzi-batcher", daemon=True)

    def start(self) -> Batcher:
        self._thread.start()
        return self

    def submit(self, records: list[dict]) -> list:
        """Queue `records`, block until all are predicted, return their results in order."""
        if not records:
            return []
        job = _Job(records)
        with self._cond:
            if self._closed:
                raise BatcherClosed("server is shutting down")
            # all or nothing: a half-queued request would hold queue room while its answer is already a 503
            if len(self._queue) + len(records) > self.max_queue:
                self._stats["rejected"] += 1
                raise QueueFull(f"server busy: {len(self._queue)} records queued, {len(records)} more would exceed "
                                f"max_queue={self.max_queue}; retry later")
            self._queue.extend((job, i) for i in range(len(records)))
            self._stats["requests"] += 1
            self._cond.notify()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.results

    def stats(self) -> dict:
        with self._cond:
            s = dict(self._stats, queued=len(self._queue))
        s["mean_batch"] = round(s["records"] / s["batches"], 2) if s["batches"] else 0.0
        return s

    def close(self, timeout: float | None = None) -> None:
        """Stop the worker after its current batch; requests still queued get 503. With a `timeout`, requests of a
        batch still being predicted after that many seconds get 503 too (the worker's late results are dropped)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._cond:
            left, self._queue = [*self._current, *self._queue], deque()
        for job in {id(job): job for job, _ in left}.values():
            if job.error is None and not job.done.is_set():
                job.error = BatcherClosed("server is shutting down")
                job.done.set()
                with self._cond:
                    self._stats["closed"] += 1

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait(SUMMARY_EVERY)
                    self._maybe_summarise()
                if self._closed:
                    return
                batch = self._collect()
            if batch:
                self._predict(batch)
            with self._cond:
                self._current = []
            self._maybe_summarise()

    def _collect(self) -> list[tuple[_Job, int]]:
        """Up to max_batch queued records (lock held). The wait is measured from when the oldest one arrived, so
        records that already waited behind a busy model go straight in."""
        deadline = self._queue[0][0].t0 + self.max_wait
        batch = self._current = []  # visible to close() while it fills
        while len(batch) < self.max_batch:
            if self._queue:
                job, i = self._queue.popleft()
                if job.error is None:  # skip the rest of a request whose earlier batch failed
                    batch.append((job, i))
                continue
            left = deadline - time.monotonic()
            if left <= 0 or self._closed:
                break
            self._cond.wait(left)
        return batch

    def _predict(self, batch: list[tuple[_Job, int]]) -> None:
        records = [job.records[i] for job, i in batch]
        try:
            results = self.predictor.predict(records)
            if len(results) != len(records):
                raise RuntimeError(f"predictor returned {len(results)} results for {len(records)} records")
        except Exception as e:
            log.exception("prediction failed on a batch of %d records", len(records))
            with self._cond:
                self._stats["failed_batches"] += 1
            for job in {id(job): job for job, _ in batch}.values():
                job.error = PredictError(f"prediction failed: {type(e).__name__}: {e}")
                job.done.set()
            return
        for (job, i), result in zip(batch, results):
            job.results[i] = result
            job.pending -= 1
            if job.pending == 0:
                job.done.set()
        with self._cond:
            self._stats["records"] += len(records)
            self._stats["batches"] += 1

    def _maybe_summarise(self) -> None:
        if time.monotonic() - self._last_summary < SUMMARY_EVERY or self._stats["requests"] == self._summarised:
            return
        s = self.stats()
        log.info("served %d requests, %d records in %d batches (mean batch %.1f), %d refused as busy, %d batches "
                 "failed", s["requests"], s["records"], s["batches"], s["mean_batch"], s["rejected"],
                 s["failed_batches"])
        self._summarised, self._last_summary = s["requests"], time.monotonic()
