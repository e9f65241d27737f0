"""A search killed with SIGKILL at any moment (before its first checkpoint, while it
writes one, between generations, while it writes its results) and then continued with
``--resume`` ends with the same front, the same history and the same count of fitted
candidates as a search that was never interrupted."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest

from evopot.testing.rediscovery import PROBLEMS, write_problem

ENGINE = {"population": 16, "generations": 5}


def evopot(*args: str, kill_after: float | None = None, cwd=None) -> int:
    """``evopot ARGS`` in a new process; with ``kill_after``, SIGKILL it after that
    many seconds if it still runs. Its exit status (−9 when killed)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "evopot.cli", *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        process.wait(timeout=kill_after if kill_after is not None else 300)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return process.returncode


def outcome(run_directory) -> tuple[str, str, int]:
    summary = json.loads((run_directory / "summary.json").read_text())
    evaluations = int((run_directory / "history.csv").read_text().splitlines()[-1].split(",")[3])
    assert summary["generations"] == ENGINE["generations"]
    return (run_directory / "front.csv").read_text(), (run_directory / "history.csv").read_text(), evaluations


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kill")
    config = write_problem(PROBLEMS["lennard-jones"](), folder, seed=4, engine=ENGINE)
    start = time.perf_counter()
    assert evopot("search", str(config), "--quiet") == 0
    seconds = time.perf_counter() - start
    return config, folder / "run_seed4", seconds


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_result(uninterrupted):
    config, run_directory, seconds = uninterrupted
    expected = outcome(run_directory)
    moments, killed = random.Random(0), 0
    # from before the first checkpoint (the imports alone take a second) to the results
    for kill_after in [0.5, *sorted(moments.uniform(1.0, seconds) for _ in range(4))]:
        code = evopot("search", str(config), "--quiet", "--overwrite", kill_after=kill_after)
        assert code in (-9, 0)
        killed += code == -9
        kills = 0
        while True:  # kill the resumed run too, once, at another moment
            code = evopot("search", str(config), "--quiet", "--resume", kill_after=None if kills else seconds / 3)
            if code == 0:
                break
            assert code == -9, f"resume after a kill at {kill_after:.2f} s exited {code}"
            kills += 1
        assert outcome(run_directory) == expected, f"killed at {kill_after:.2f} s"
    assert killed >= 3  # the moments fell inside the runs, not after them
