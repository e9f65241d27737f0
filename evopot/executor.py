"""Where the many independent jobs of a run execute: in this process, on a Dask
``LocalCluster`` of this machine's cores, or on an existing Dask cluster.

An :class:`Executor` maps a pure function over items with one shared object (the fit
problem: the dataset's geometry) sent to each worker once, in chunks, and returns the
results in the order of the items, whatever the workers and their timing: a search
gives the same front on 1, 2 or 256 workers. Dask reruns the tasks of a worker that
dies on the others; a lost scheduler becomes one :class:`EvopotError` line.

    with open_executor(workers="auto") as executor:
        shared = executor.share(problem)
        results = executor.map(fit, candidates, shared)

A :meth:`Executor.batch` sends items as the caller makes them and gives the results
back in order as they finish, so the caller's own work (building the next
candidates, pruning the ones already fitted) runs while the workers fit.
"""

from __future__ import annotations

import importlib
import os
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from evopot.errors import EvopotError, brief

#: seconds to wait for an existing scheduler before giving up
CONNECT_TIMEOUT = 5.0
#: environment variable that sets what ``workers: auto`` means (a whole number)
WORKERS_VARIABLE = "EVOPOT_WORKERS"


def auto_workers() -> int:
    """The number of workers ``auto`` means: ``$EVOPOT_WORKERS`` when set, else the
    cores this process may use."""
    value = os.environ.get(WORKERS_VARIABLE)
    if value:
        try:
            count = int(value)
        except ValueError:
            count = 0
        if count < 1:
            raise EvopotError(f"{WORKERS_VARIABLE}={value!r}: give a whole number of workers ≥ 1")
        return count
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Executor:
    """In-process execution: what ``workers: 1`` runs (no Dask at all), and the
    interface of :class:`DaskExecutor`.

    While it is open, BLAS runs one thread in this process, as in every Dask worker:
    a threaded BLAS sums in another order, and a fit whose last bits differ sends the
    search down another path. So a fit gives the same bits here and on any worker."""

    workers = 1
    dashboard: str | None = None
    #: called as ``progress(tasks in flight)`` while a map waits on its workers
    progress: Callable[[int], None] | None = None
    _limits = None
    #: what the user keeps, and how to go on, when the scheduler is lost
    lost_hint = "the last finished generation is saved: continue with evopot search CONFIG --resume"

    def share(self, value: Any) -> Any:
        """A handle of ``value`` for :meth:`map`; sent to each worker once."""
        return value

    def map(self, function: Callable[[Any, Any], Any], items: Sequence, shared: Any) -> list:
        """``[function(shared_value, item) for item in items]``, in that order."""
        batch = self.batch(function, shared, len(items), urgent=True)
        for item in items:
            batch.submit(item)
        return list(batch.results())

    def batch(self, function: Callable[[Any, Any], Any], shared: Any, size: int, urgent: bool = False) -> Batch:
        """A :class:`Batch` of ``function(shared_value, item)`` for about ``size`` items
        (the chunks are cut from it). ``urgent`` batches go before the queued tasks of
        others: a map made while a batch's results are being used (the pruning of a
        fitted formula) does not wait for the rest of that batch."""
        return Batch(function, shared)

    def stream(self, function: Callable[[Any, Any], Any], items: Sequence, shared: Any) -> Iterator[tuple[int, Any]]:
        """``(k, function(shared_value, items[k]))`` as each finishes, one task per item:
        for long jobs (a DFT frame) whose results are kept as they come."""
        for k, item in enumerate(items):
            yield k, function(shared, item)

    def close(self) -> None:
        pass

    def __enter__(self):
        from threadpoolctl import threadpool_limits

        self._limits = threadpool_limits(limits=1, user_api="blas")
        return self

    def __exit__(self, *exc):
        try:
            self.close()
        finally:
            if self._limits is not None:
                self._limits.restore_original_limits()


class Batch:
    """Items handed over one by one with :meth:`submit`, results in their order from
    :meth:`results`. In this process each result is computed when it is asked for;
    :class:`DaskExecutor`'s batches send the items in chunks as they come."""

    def __init__(self, function: Callable[[Any, Any], Any], shared: Any):
        self.function, self.shared, self.items = function, shared, []

    def submit(self, item: Any) -> None:
        self.items.append(item)

    def results(self) -> Iterator[Any]:
        for item in self.items:
            yield self.function(self.shared, item)


#: seconds of work a task of a batch is cut to hold, where its function's time per item is
#: known: the scheduling of a task costs a few ms; a chunk much longer leaves workers idle
#: at the end of a batch
TASK_SECONDS = 0.2


def _name(function) -> str:
    return f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', repr(function))}"


#: times a chunk is sent again after workers died under it
RETRIES = 3


class _Shared:
    """A value sent to the workers (its future) and the value itself, to send again."""

    def __init__(self, value, future):
        self.value, self.future = value, future


class _Payload:
    """A shared value as the bytes of its pickle, named by ``token``."""

    def __init__(self, token: str, blob: bytes):
        self.token, self.blob = token, blob


#: the shared values a worker has unpickled, by token (the latest few)
_LOADED: OrderedDict[str, Any] = OrderedDict()


def _run_chunk(function, payload: _Payload, chunk):
    """On a worker: ``function(shared value, item)`` for each item of ``chunk``, and the
    seconds that took; the shared value is unpickled once per worker."""
    import pickle
    import time

    value = _LOADED.get(payload.token)
    if value is None:
        value = _LOADED[payload.token] = pickle.loads(payload.blob)
        while len(_LOADED) > 4:
            _LOADED.popitem(last=False)
    start = time.perf_counter()
    results = [function(value, item) for item in chunk]
    return results, time.perf_counter() - start


def _import(module: str) -> None:
    importlib.import_module(module)


class DaskExecutor(Executor):
    """Execution on a Dask cluster: a ``LocalCluster`` of ``workers`` processes (one
    thread each), or the existing cluster at ``scheduler`` / in ``scheduler_file``."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None, scheduler_file: Path | None = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:  # pragma: no cover - a dependency of evopot
            raise EvopotError("engine.workers needs Dask: pip install 'dask[distributed]'") from None
        self.cluster = None
        self._item_seconds: dict[str, float] = {}  # a moving mean of each function's seconds per item
        self._held: list[tuple[Any, _Shared]] = []  # what share() sent, and its handle
        if scheduler or scheduler_file:
            where = f"engine.scheduler {scheduler}" if scheduler else f"engine.scheduler_file {scheduler_file}"
            if scheduler_file is not None and not Path(scheduler_file).is_file():
                raise EvopotError(
                    f"{where}: no such file; start the scheduler with dask scheduler --scheduler-file "
                    f"{scheduler_file} first"
                )
            try:
                if scheduler:
                    self.client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
                else:
                    self.client = Client(
                        scheduler_file=str(scheduler_file), timeout=CONNECT_TIMEOUT, set_as_default=False
                    )
            except (OSError, TimeoutError, ValueError) as exc:
                detail = brief(exc)
                raise EvopotError(
                    f"{where}: cannot reach the Dask scheduler ({detail}); start it with dask scheduler and "
                    f"dask worker, or use engine.workers on this machine"
                ) from None
        else:
            import logging

            import dask

            logging.getLogger("distributed").setLevel(logging.ERROR)
            # Dask's workers start with MALLOC_TRIM_THRESHOLD_ set, which turns off glibc's
            # adaptive mmap threshold: every large temporary array is then mapped and
            # unmapped afresh, and the fits ran 2.6 times slower than in this process
            with (
                dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}),
                warnings.catch_warnings(),
            ):
                # the scheduler's HTTP server takes another port when 8787 is taken (two runs at once): no news
                warnings.filterwarnings("ignore", message="Port .* is already in use")
                self.cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
                )
            self.client = Client(self.cluster, set_as_default=False)

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {})) or 1

    @property
    def dashboard(self) -> str | None:
        return None if self.cluster is not None else self.client.dashboard_link

    def share(self, value):
        import cloudpickle

        # the same object again (the search's fit problem, for the refit of its front) is
        # not pickled and sent again: the workers have it
        for held, shared in self._held:
            if held is value:
                return shared
        # pickled here, now: Dask would pickle it later in its own thread, while this one
        # fills the caches inside it (a geometry's angle tables), and fail at random
        payload = _Payload(uuid.uuid4().hex, cloudpickle.dumps(value))
        shared = _Shared(payload, self._guard(lambda: self._scatter(payload)))
        self._held = [*self._held[-3:], (value, shared)]  # the latest few: a learning loop shares one a round
        return shared

    def _scatter(self, value):
        # to one worker; the others fetch it from there once, on first use. A worker that
        # dies with it loses it: map sends it again (see RETRIES)
        return self.client.scatter(value, hash=False)

    def batch(self, function, shared, size, urgent=False):
        # a few chunks per worker at the most (balanced), each of TASK_SECONDS at the least
        # (little overhead) once the function's time per item is known
        workers = self.workers
        chunk = max(1, size // (4 * workers))
        seconds = self._item_seconds.get(_name(function))
        if seconds:
            chunk = max(1, min(chunk, round(TASK_SECONDS / seconds)))
        return _DaskBatch(self, function, shared, chunk, 1 if urgent else 0, (size, workers))

    def _timed(self, function, items: int, seconds: float) -> None:
        """A chunk of ``items`` of ``function`` took ``seconds`` on a worker."""
        if items:
            name = _name(function)
            old = self._item_seconds.get(name)
            now = seconds / items
            self._item_seconds[name] = now if old is None else 0.7 * old + 0.3 * now

    def stream(self, function, items, shared):
        from distributed import as_completed

        if not items:
            return
        futures = {
            self.client.submit(_run_chunk, function, shared.future, [item], pure=False): k
            for k, item in enumerate(items)
        }
        completed = self._guard(lambda: as_completed(list(futures), loop=self.client.loop))
        try:
            while True:
                # Dask reruns the task of a worker that dies on another worker
                future = self._guard(lambda: next(completed, None))
                if future is None:
                    return
                yield futures[future], self._guard(future.result)[0][0]
        finally:
            self.client.cancel(list(futures))

    def preload(self, modules: tuple[str, ...]) -> None:
        """Each worker imports ``modules`` now, in the background (the tasks that use them
        then start at once)."""
        from distributed import fire_and_forget

        for worker in self.client.scheduler_info().get("workers", {}):
            for module in modules:
                fire_and_forget(self.client.submit(_import, module, workers=[worker], pure=False, priority=2))

    def _guard(self, call):
        from distributed.comm.core import CommClosedError

        try:
            return call()
        except (CommClosedError, OSError, TimeoutError) as exc:
            detail = brief(exc) or type(exc).__name__
            raise EvopotError(f"lost the Dask scheduler ({detail}); {self.lost_hint}") from None

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class _DaskBatch(Batch):
    """A batch on a Dask cluster: each chunk of ``chunk`` items is submitted as soon as
    it is full; a chunk lost with a dying worker is sent again (the shared value too)."""

    def __init__(
        self,
        executor: DaskExecutor,
        function,
        shared: _Shared,
        chunk: int,
        priority: int,
        spread: tuple[int, int] | None = None,
    ):
        super().__init__(function, shared)
        self.executor, self.chunk, self.priority = executor, chunk, priority
        self.spread = spread  # (about how many items, over how many workers)
        self.chunks: list[list] = []
        self.futures: list = []
        self._sent = 0  # items sent so far

    def submit(self, item):
        self.items.append(item)
        if len(self.items) >= self._next_chunk():
            self._send()

    def _next_chunk(self) -> int:
        """Items of the next chunk: :attr:`chunk`, smaller towards the batch's end (a
        chunk of the items left over twice the workers at the most), so the workers
        finish together and none waits on the others' last long chunk (the first batch
        of a function, before its time per item is known, comes in large chunks)."""
        if self.spread is None:
            return self.chunk
        size, workers = self.spread
        left = size - self._sent
        if left <= 0:  # more items than the batch was told of: how many more is unknown
            return self.chunk
        return max(1, min(self.chunk, -(-left // (2 * workers))))

    def _send(self) -> None:
        if self.items:
            self.chunks.append(self.items)
            self.futures.append(self._submit(self.items))
            self._sent += len(self.items)
            self.items = []

    def _submit(self, chunk):
        client = self.executor.client
        return self.executor._guard(
            lambda: client.submit(
                _run_chunk, self.function, self.shared.future, chunk, pure=False, priority=self.priority
            )
        )

    def results(self):
        from distributed import KilledWorker
        from distributed.client import FutureCancelledError

        self._send()
        progress = self.executor.progress
        retries = 0
        try:
            for k in range(len(self.futures)):
                if progress is not None:
                    progress(sum(not f.done() for f in self.futures[k:]))
                while True:
                    try:
                        part, seconds = self.executor._guard(self.futures[k].result)
                        self.executor._timed(self.function, len(part), seconds)
                        break
                    except (KilledWorker, FutureCancelledError):
                        # a worker died with the shared data or the tasks: send both again
                        if retries == RETRIES:
                            raise
                        retries += 1
                        self.executor.client.cancel(self.futures[k:])
                        self.executor._guard(lambda: self.executor.client.wait_for_workers(1, timeout=60))
                        self.shared.future = self.executor._scatter(self.shared.value)
                        self.futures[k:] = [self._submit(c) for c in self.chunks[k:]]
                yield from part
            if progress is not None:
                progress(0)
        finally:
            self.executor.client.cancel(self.futures)


def open_executor(
    workers: int | str = "auto",
    scheduler: str | None = None,
    scheduler_file: str | Path | None = None,
    preload: tuple[str, ...] = (),
) -> Executor:
    """The executor a config asks for: an existing cluster when ``scheduler`` or
    ``scheduler_file`` is given, else ``workers`` processes here (``auto``: every core;
    1: this process alone, no Dask). The workers start importing the modules named in
    ``preload`` at once (seconds each), while the caller prepares their first tasks."""
    if scheduler or scheduler_file:
        executor = DaskExecutor(scheduler=scheduler, scheduler_file=Path(scheduler_file) if scheduler_file else None)
    else:
        count = auto_workers() if workers == "auto" else int(workers)
        if count == 1:
            return Executor()
        executor = DaskExecutor(workers=count)
    executor.preload(preload)
    return executor
