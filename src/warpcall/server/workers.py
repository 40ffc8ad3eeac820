"""The thread pool sync implementations run in, as FastAPI runs ``def`` endpoints.

``loop.run_in_executor`` makes a ``concurrent.futures.Future`` (with its own
condition variable), wraps it in an asyncio future and chains the two; anyio's
``to_thread`` adds a capacity limiter and a worker handshake on top. Here a job is
one tuple on a ``SimpleQueue`` and its result one ``call_soon_threadsafe`` back to
the loop, which makes the hop cheaper (``benchmarks/test_bench_hop.py`` measures it
beside both).
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from typing import Any, Callable

#: how long close() waits for each worker to finish the call it is running
JOIN_TIMEOUT = 30.0


def _resolve(future: asyncio.Future[Any], value: Any, failed: bool) -> None:
    if future.cancelled():  # the request went away meanwhile; nobody waits for the outcome
        return
    if failed:
        future.set_exception(value)
    else:
        future.set_result(value)


class WorkerPool:
    """Up to ``max_workers`` daemon threads named ``<prefix>_<n>``, started as calls need them.

    :meth:`run` returns an asyncio future of ``fn(*args)`` run in a worker, in a copy
    of the caller's context (so context variables set by the request reach it, as
    with FastAPI's thread pool). :meth:`close` lets running calls finish and stops
    the workers; a later :meth:`run` starts new ones.
    """

    def __init__(self, max_workers: int = 32, prefix: str = "warpcall-sync") -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self.prefix = prefix
        self._jobs: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # workers waiting for a job and not yet promised one
        #: jobs submitted and not finished yet (read without the lock: a hint, exact under it)
        self.running = 0
        self._started = 0
        self._generation = 0  # close() starts a new one: old workers finish on the old queue

    def run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run ``fn(*args)`` in a worker; must be called on the running loop that awaits the result."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.submit(loop, fn, args, _resolve, future)
        return future

    def submit(
        self,
        loop: asyncio.AbstractEventLoop,
        fn: Callable[..., Any],
        args: tuple[Any, ...] | list[Any],
        done: Callable[[Any, Any, bool], None],
        token: Any,
    ) -> None:
        """Run ``fn(*args)`` in a worker, then ``done(token, outcome, failed)`` on ``loop``.

        ``outcome`` is the result, or the exception when ``failed``. This is :meth:`run` without
        the future, for callers on the loop that have no coroutine to resume.
        """
        with self._lock:
            self.running += 1
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self.max_workers:
                self._spawn()
            # else every worker is busy: the job waits in the queue for the first one free
        self._jobs.put((loop, done, token, fn, args, contextvars.copy_context()))

    def _spawn(self) -> None:
        self._started += 1
        thread = threading.Thread(
            target=self._work, args=(self._jobs, self._generation), name=f"{self.prefix}_{self._started}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _work(self, jobs: queue.SimpleQueue[tuple[Any, ...] | None], generation: int) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            loop, done, token, fn, args, context = job
            del job
            try:
                value, failed = context.run(fn, *args), False
            except BaseException as exc:  # delivered to the awaiting request, like run_in_executor does
                value, failed = exc, True
            del fn, args, context
            # count this worker idle first: once told, the loop wants the GIL back at once, and this
            # thread gives it up by waiting for the next job right after telling it
            with self._lock:
                self.running -= 1
                if self._generation == generation:
                    self._idle += 1
            try:
                loop.call_soon_threadsafe(done, token, value, failed)
            except RuntimeError:  # the loop closed while the call ran: there is no one left to tell
                pass
            del loop, done, token, value

    def close(self) -> None:
        """Let the calls under way finish, then stop every worker (bounded wait)."""
        with self._lock:
            threads, jobs = self._threads, self._jobs
            self._threads, self._jobs, self._idle = [], queue.SimpleQueue(), 0
            self._generation += 1
        for _ in threads:
            jobs.put(None)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(JOIN_TIMEOUT)
