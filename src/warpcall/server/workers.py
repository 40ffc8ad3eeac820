"""The thread pool sync implementations run in, as FastAPI runs ``def`` endpoints.

``loop.run_in_executor`` makes a ``concurrent.futures.Future`` (with its own
condition variable), wraps it in an asyncio future and chains the two; anyio's
``to_thread`` adds a capacity limiter and a worker handshake on top. Here a job is
one tuple on a ``SimpleQueue`` and its result one ``call_soon_threadsafe`` back to
the loop, which makes the hop cheaper (``benchmarks/test_bench_hop.py`` measures it
beside both).

The pool is also the server's bulkhead for sync work (see :class:`~warpcall.server.limits.ServerLimits`):
each job names a *lane* (its method), and a lane runs at most ``lane_workers`` jobs at once, its
surplus waiting in the lane itself, so one slow method cannot hold every worker; jobs accepted and
not yet running are bounded by ``max_queued`` (beyond it :meth:`WorkerPool.submit` raises
:class:`~warpcall.exceptions.OverloadedException`); and a job whose caller's deadline (the
:mod:`warpcall.resilience.deadline` context variable in the job's context) has passed by the time a
worker takes it is dropped, never started (its outcome is :class:`NotStarted`).
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections import deque
from time import monotonic
from typing import Any, Callable

from warpcall.exceptions import DeadlineExceeded, OverloadedException
from warpcall.resilience.deadline import _current as _deadline

#: how long close() waits for each worker to finish the call it is running
JOIN_TIMEOUT = 30.0


class NotStarted(DeadlineExceeded):
    """A queued job was dropped: its caller's deadline passed before a worker took it (it never ran)."""


class Refused(OverloadedException):
    """A queued job refused by :meth:`WorkerPool.refuse_queued` (the server is stopping): it never ran."""


class _Lane:
    """One method's jobs: how many are admitted to the pool (queued there or running), and those waiting."""

    __slots__ = ("admitted", "waiting")

    def __init__(self) -> None:
        self.admitted = 0
        self.waiting: deque[tuple[Any, ...]] = deque()


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

    ``lane_workers`` bounds the jobs of one lane (the ``lane`` given to :meth:`submit`) admitted at once
    (default: no bound); ``max_queued`` bounds the jobs accepted and not running yet (default: none).
    """

    def __init__(
        self, max_workers: int = 32, prefix: str = "warpcall-sync", lane_workers: int | None = None,
        max_queued: int | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self.prefix = prefix
        self.lane_workers = max_workers if lane_workers is None else max(1, lane_workers)
        self.max_queued = max_queued
        self._lanes: dict[Any, _Lane] = {}
        self._jobs: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # workers waiting for a job and not yet promised one
        #: jobs submitted and not finished yet (read without the lock: a hint, exact under it)
        self.running = 0
        self._started = 0
        self._generation = 0  # close() starts a new one: old workers finish on the old queue
        self._refusal: str | None = None  # set by refuse_queued: what every job not started yet fails with

    def run(self, fn: Callable[..., Any], *args: Any, lane: Any = None) -> asyncio.Future[Any]:
        """Run ``fn(*args)`` in a worker; must be called on the running loop that awaits the result.

        Raises :class:`~warpcall.exceptions.OverloadedException` when the queue is full.
        """
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.submit(loop, fn, args, _resolve, future, lane)
        return future

    @property
    def queued(self) -> int:
        """Jobs accepted and not yet taken by a worker (a hint when read without the lock)."""
        return max(0, self.running - len(self._threads) + self._idle)

    def submit(
        self,
        loop: asyncio.AbstractEventLoop,
        fn: Callable[..., Any],
        args: tuple[Any, ...] | list[Any],
        done: Callable[[Any, Any, bool], None],
        token: Any,
        lane: Any = None,
    ) -> None:
        """Run ``fn(*args)`` in a worker, then ``done(token, outcome, failed)`` on ``loop``.

        ``outcome`` is the result, or the exception when ``failed``. This is :meth:`run` without
        the future, for callers on the loop that have no coroutine to resume. ``lane`` (any hashable,
        a method) shares ``lane_workers`` among its jobs. Raises
        :class:`~warpcall.exceptions.OverloadedException` (nothing is run) when ``max_queued`` jobs wait.
        """
        job = (loop, done, token, fn, args, contextvars.copy_context(), lane)
        with self._lock:
            busy = len(self._threads) - self._idle  # workers running a job or promised one
            if self.max_queued is not None and self.running - busy >= self.max_queued:
                raise OverloadedException(
                    f"the server's queue of sync calls is full ({self.max_queued} waiting for a worker)"
                )
            self.running += 1
            if lane is not None:
                state = self._lanes.get(lane)
                if state is None:
                    state = self._lanes[lane] = _Lane()
                if state.admitted >= self.lane_workers:
                    # the lane holds its share of the workers: the job waits for one of the lane's own to end
                    state.waiting.append(job)
                    return
                state.admitted += 1
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self.max_workers:
                self._spawn()
            # else every worker is busy: the job waits in the queue for the first one free
        self._jobs.put(job)

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
            loop, done, token, fn, args, context, lane = job
            del job
            if self._refusal is not None:  # taken after refuse_queued: refused as the queued ones were
                fn, args = _refuse, (self._refusal,)
            at = context.get(_deadline)
            value: Any
            if at is not None and monotonic() >= at:
                # the caller has given up: work it no longer waits for is never started
                value, failed = NotStarted("the call's deadline passed while it waited for a worker"), True
            else:
                try:
                    value, failed = context.run(fn, *args), False
                except BaseException as exc:  # delivered to the awaiting request, like run_in_executor does
                    value, failed = exc, True
            del fn, args, context
            # count this worker idle first: once told, the loop wants the GIL back at once, and this
            # thread gives it up by waiting for the next job right after telling it
            with self._lock:
                self.running -= 1
                admit = None
                if lane is not None:
                    state = self._lanes[lane]
                    if state.waiting:  # the lane's next job takes its place, and this worker takes a job
                        admit = state.waiting.popleft()
                    else:
                        state.admitted -= 1
                        if not state.admitted:
                            del self._lanes[lane]
                if admit is not None and self._generation == generation:
                    jobs.put(admit)
                elif self._generation == generation:
                    self._idle += 1
            try:
                loop.call_soon_threadsafe(done, token, value, failed)
            except RuntimeError:  # the loop closed while the call ran: there is no one left to tell
                pass
            if admit is not None and self._generation != generation:
                self._resubmit(admit)
            del loop, done, token, value, admit

    def _resubmit(self, job: tuple[Any, ...]) -> None:
        """A lane's waiting job freed by a worker of a closed generation: the current pool runs it."""
        with self._lock:
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self.max_workers:
                self._spawn()
        self._jobs.put(job)

    def refuse_queued(self, message: str) -> int:
        """Refuse every job accepted and not started, now and from now on: its outcome is :class:`Refused`
        with ``message``, delivered on its loop, and it never runs (a stopping server's last step).

        Returns how many jobs were waiting. Calls under way are left to finish.
        """
        refused: list[tuple[Any, ...]] = []
        with self._lock:
            self._refusal = message
            for state in self._lanes.values():
                refused.extend(state.waiting)
                state.waiting.clear()
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:  # a stop signal of close(): it stays for its worker
                    self._jobs.put(job)
                    break
                refused.append(job)
                lane = job[6]
                if lane is not None:
                    state = self._lanes[lane]
                    state.admitted -= 1
                    if not state.admitted and not state.waiting:
                        del self._lanes[lane]
            self.running -= len(refused)
        for loop, done, token, *_ in refused:
            try:
                loop.call_soon_threadsafe(done, token, Refused(message), True)
            except RuntimeError:  # that loop has ended: no one waits for the outcome
                pass
        return len(refused)

    def close(self, timeout: float = JOIN_TIMEOUT) -> None:
        """Let the calls under way finish (those waiting in the queue too), then stop every worker (bounded wait)."""
        with self._lock:
            threads, jobs = self._threads, self._jobs
            self._threads, self._jobs, self._idle = [], queue.SimpleQueue(), 0
            self._generation += 1
            # jobs waiting in their lanes run on the old workers, before the stop signals, as queued ones do
            for state in self._lanes.values():
                while state.waiting:
                    state.admitted += 1
                    jobs.put(state.waiting.popleft())
        for _ in threads:
            jobs.put(None)
        deadline = monotonic() + timeout  # for all of them: a call that outlived a drain must not hold it up
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - monotonic()))


def _refuse(message: str) -> Any:
    raise Refused(message)
