"""Parallel and distributed search on Dask: the same seed gives the same front
whatever the number of workers, on a LocalCluster of this machine or on a real Dask
scheduler with its workers; a worker killed mid-run changes nothing; a scheduler that
is not there is one clear line before anything is written."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import yaml

import evopot
from evopot.cli import main
from evopot.model import compiled
from evopot.testing.rediscovery import PROBLEMS, write_problem

ENGINE = {"population": 24, "generations": 3}


def with_engine(config, **engine):
    data = yaml.safe_load(config.read_text())
    data["engine"].update(engine)
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


@pytest.fixture(scope="module")
def problem_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("parallel")


@pytest.fixture(scope="module")
def one_worker(problem_folder):
    config = with_engine(write_problem(PROBLEMS["lennard-jones"](), problem_folder, seed=3, engine=ENGINE), workers=1)
    result = evopot.search(config, overwrite=True, progress=False)
    return config, outcome(result.run_directory)


def outcome(run_directory):
    history = [line.rsplit(",", 1)[0] for line in (run_directory / "history.csv").read_text().splitlines()]
    return (run_directory / "front.csv").read_text(), history


@pytest.mark.parametrize("workers", [2, 4])
def test_the_front_does_not_depend_on_the_number_of_workers(one_worker, workers, monkeypatch):
    config, expected = one_worker
    with_engine(config, workers=workers)
    shared = []  # the compiled functions the processes shared, counted as the search ends
    using = compiled.shared_folder

    @contextlib.contextmanager
    def counting(folder):
        with using(folder) as path:
            try:
                yield path
            finally:
                shared.append(len(list(path.glob("*.py"))))

    monkeypatch.setattr(compiled, "shared_folder", counting)
    result = evopot.search(config, overwrite=True, progress=False)
    assert outcome(result.run_directory) == expected
    assert f"fitting on {workers} Dask workers" in (result.run_directory / "log.txt").read_text()
    assert shared and shared[0] > 0 and not (result.run_directory / ".compiled").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dask(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli." + args[0], *args[1:]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )


def test_a_real_scheduler_and_workers_give_the_same_front_even_when_a_worker_dies(one_worker, tmp_path):
    config, expected = one_worker
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = dask("dask_scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
    workers = [dask("dask_worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard") for _ in range(2)]
    try:
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        with_engine(config, workers=1, scheduler=address)
        killed = threading.Event()

        def kill():
            workers[0].send_signal(signal.SIGKILL)
            killed.set()

        killer = threading.Timer(2.0, kill)
        killer.start()
        result = evopot.search(config, overwrite=True, progress=False)
        killer.cancel()
        assert killed.is_set(), "the search ended before the worker was killed"
        assert outcome(result.run_directory) == expected
    finally:
        for process in [*workers, scheduler]:
            process.kill()
            process.wait()
        with_engine(config, scheduler=None)


def test_an_unreachable_scheduler_is_one_line_within_seconds_and_writes_nothing(problem_folder, capsys):
    config = write_problem(PROBLEMS["lennard-jones"](), problem_folder, seed=5, engine=ENGINE)
    with_engine(config, scheduler=f"tcp://127.0.0.1:{free_port()}")
    start = time.perf_counter()
    assert main(["search", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert time.perf_counter() - start < 20
    assert err.startswith("evopot: error: engine.scheduler tcp://127.0.0.1:") and err.count("\n") == 1, err
    assert "cannot reach the Dask scheduler" in err
    assert not (problem_folder / "run_seed5").exists()


@pytest.mark.parametrize(
    "engine, message",
    [
        ({"workers": 0}, "engine.workers"),
        ({"workers": "many"}, "engine.workers"),
        ({"scheduler": "127.0.0.1:8786"}, "engine.scheduler"),
        ({"scheduler_file": "missing.json"}, "engine.scheduler_file"),
        ({"scheduler": "tcp://a:1", "scheduler_file": "s.json"}, "not both"),
        ({"islands": 0}, "engine.islands"),
        ({"islands": 2, "migration": {"count": 24}}, "migration.count (24) must be smaller than population (24)"),
        ({"migration": {"every": 0}}, "engine.migration.every"),
    ],
)
def test_bad_cluster_settings(problem_folder, capsys, engine, message):
    config = with_engine(write_problem(PROBLEMS["lennard-jones"](), problem_folder, seed=6, engine=ENGINE), **engine)
    assert main(["search", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (problem_folder / "run_seed6").exists()


def test_resume_may_change_the_workers(one_worker, tmp_path):
    config, expected = one_worker
    data = yaml.safe_load(config.read_text())
    data["engine"]["generations"] = 1
    data["output"] = str(tmp_path / "resumed")
    data["data"]["train"] = str(config.parent / data["data"]["train"])
    short = tmp_path / "short.yaml"
    short.write_text(yaml.safe_dump(data))
    evopot.search(short, progress=False)
    data["engine"].update(generations=ENGINE["generations"], workers=2)
    short.write_text(yaml.safe_dump(data))
    result = evopot.search(short, resume=True, progress=False)
    assert outcome(result.run_directory)[1] == expected[1]
    assert json.loads((result.run_directory / "summary.json").read_text())["generations"] == ENGINE["generations"]


def test_islands_give_the_same_front_on_any_number_of_workers_and_the_bar_shows_the_tasks(problem_folder, capsys):
    engine = {**ENGINE, "population": 12, "islands": 3, "migration": {"every": 1, "count": 2}}
    config = write_problem(PROBLEMS["lennard-jones"](), problem_folder, seed=4, engine=engine)
    fronts = []
    for workers in (1, 2):
        with_engine(config, workers=workers)
        result = evopot.search(config, overwrite=True, progress=workers == 2)
        fronts.append(outcome(result.run_directory))
        checkpoint = json.loads((result.run_directory / "checkpoint.json").read_text())
        assert [len(island["population"]) for island in checkpoint["islands"]] == [12, 12, 12]
    assert fronts[0] == fronts[1]
    bar = capsys.readouterr().err
    assert "workers=2" in bar and "tasks=" in bar, bar


def _slow_square(delay, item):
    time.sleep(delay * (3 - item % 3))  # later items often finish first
    return item * item


def _square(_shared, item):
    return item * item


def test_a_batch_ends_in_ever_smaller_chunks_and_a_value_shared_twice_is_sent_once():
    """The first batch of a function (its time per item unknown) comes in large chunks;
    its end is cut finer, so one worker does not run a long last chunk while the other
    waits: 100 items on 2 workers go as 5 chunks of 12, then 10, 8, 6, 4, 3, 3, 2 and
    single items."""
    from evopot.executor import DaskExecutor

    with DaskExecutor(workers=2) as executor:
        value = [1, 2, 3]
        shared = executor.share(value)
        assert executor.share(value) is shared  # the search's problem, again for the refit: not sent twice
        assert executor.share([1, 2, 3]) is not shared  # an equal but other object is
        batch = executor.batch(_square, shared, 100)
        for item in range(100):
            batch.submit(item)
        assert list(batch.results()) == [k * k for k in range(100)]
        assert [len(chunk) for chunk in batch.chunks] == [12] * 5 + [10, 8, 6, 4, 3, 3, 2, 1, 1, 1, 1]
        # told of fewer items than come: past the estimate, chunks of the full size again
        short = executor.batch(_square, shared, 40)
        assert short.chunk == 5  # 40 items, 4 chunks a worker (its time is known now, and tiny)
        for item in range(100):
            short.submit(item)
        assert list(short.results()) == [k * k for k in range(100)]
        assert [len(chunk) for chunk in short.chunks[-12:]] == [5] * 12  # the 60 past the 40


def test_a_batch_gives_results_in_order_while_items_still_arrive_and_cuts_chunks_by_measured_time():
    from evopot.executor import DaskExecutor

    with DaskExecutor(workers=2) as executor:
        shared = executor.share(0.01)
        batch = executor.batch(_slow_square, shared, 12)
        for item in range(12):
            batch.submit(item)  # chunks leave as they fill: the first is running before the last is made
        assert batch.futures, "no chunk was sent before results() was asked for"
        assert list(batch.results()) == [k * k for k in range(12)]
        # 10-30 ms per item against TASK_SECONDS = 0.2: later batches hold about ten items a chunk
        assert 4 <= executor.batch(_slow_square, shared, 1000).chunk <= 20
        urgent = executor.map(_slow_square, list(range(5)), shared)
        assert urgent == [k * k for k in range(5)]
