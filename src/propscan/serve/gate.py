"""The gate: a bounded queue in front of the model threads (busy answers instead of a growing backlog)."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from propscan.serve.problems import Problem


class Cancelled(Exception):
    pass


class Gate:
    """Admits at most ``slots + queue`` jobs at once and runs them on ``slots`` threads, in order."""

    def __init__(self, slots: int, queue: int):
        self.slots, self.queue = slots, queue
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="propscan-model")
        self._lock = threading.Lock()
        self._admitted = 0  # jobs waiting or running, including jobs whose request is gone
        self._seconds = 1.0  # moving average of a job's run time, for Retry-After

    @property
    def admitted(self) -> int:
        return self._admitted

    def retry_after(self) -> int:
        with self._lock:
            waiting = max(self._admitted - self.slots + 1, 1)
            return max(1, min(120, math.ceil(waiting * self._seconds / self.slots)))

    def _release(self, _fut: Any) -> None:
        with self._lock:
            self._admitted -= 1

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args, cancel)`` on a model thread; ``cancel`` is set when the request is abandoned."""
        with self._lock:
            full = self._admitted >= self.slots + self.queue
            if not full:
                self._admitted += 1
        if full:
            raise Problem(
                503,
                f"the server is busy: {self.slots} analysis running and {self.queue} waiting, the most it takes; "
                "retry after the number of seconds in Retry-After",
                title="Server busy",
                kind="busy",
                headers={"Retry-After": str(self.retry_after())},
            )
        cancel = threading.Event()

        def job() -> Any:
            if cancel.is_set():
                raise Cancelled
            t0 = time.perf_counter()
            try:
                return fn(*args, cancel)
            finally:
                with self._lock:
                    self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - t0)

        try:
            fut = self._pool.submit(job)
        except BaseException:
            self._release(None)
            raise
        fut.add_done_callback(self._release)
        try:
            return await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            cancel.set()  # the request timed out or went away: stop between documents,
            fut.cancel()  # or before starting at all if the job is still queued
            raise
