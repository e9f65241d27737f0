"""Compiled functions shared between the processes of a search through a folder: what
one process compiled another reads back and computes the same numbers with, without
compiling; a damaged file is compiled again; a folder a process cannot see changes
nothing; the folder goes when its block ends. (A search's own use of it, on 2 and 4
workers: tests/test_parallel.py.)"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sympy

from evopot.model import compiled
from evopot.model.terms.base import compile_function, compile_with_slopes

EXPRESSION = sympy.sympify("a*exp(b/(r - 3.8))*r**2 + sqrt(r)*log(r)")
VARIABLES, CONSTANTS = ("r",), ("a", "b")
R = np.linspace(1.5, 3.5, 7)

#: a process that must not compile (sympy.diff raises); it prints the function's values
READER = f"""
import sys, numpy as np, sympy
from evopot.model import compiled
from evopot.model.terms.base import compile_with_slopes
def refuse(*args, **kwargs):
    raise AssertionError("compiled again")
sympy.diff = refuse
compiled.use_folder(sys.argv[1])
function = compile_with_slopes(sympy.sympify({str(EXPRESSION)!r}), {VARIABLES!r}, {CONSTANTS!r})
value, slope = function(np.linspace(1.5, 3.5, 7), 2.0, 0.5)
print(repr(np.concatenate([value, slope]).tolist()))
"""


@pytest.fixture
def folder(tmp_path):
    compile_with_slopes.cache_clear()
    compile_function.cache_clear()
    with compiled.shared_folder(tmp_path / "shared") as path:
        yield path
    compile_with_slopes.cache_clear()
    compile_function.cache_clear()


def test_another_process_reads_back_what_one_compiled_and_computes_the_same(folder):
    value, slope = compile_with_slopes(EXPRESSION, VARIABLES, CONSTANTS)(R, 2.0, 0.5)
    assert len(list(folder.glob("*.py"))) == 1
    out = subprocess.run([sys.executable, "-c", READER, str(folder)], capture_output=True, text=True, check=True)
    assert np.array(eval(out.stdout)) == pytest.approx(np.concatenate([value, slope]), rel=0, abs=0)
    # and the slope is the derivative
    h = 1e-6
    f = compile_function(EXPRESSION, VARIABLES, CONSTANTS)
    assert slope == pytest.approx((f(R + h, 2.0, 0.5) - f(R - h, 2.0, 0.5)) / (2 * h), rel=1e-7)
    assert len(list(folder.glob("*.py"))) == 2  # the value-only function is another file


def test_a_damaged_file_is_compiled_again_and_replaced(folder):
    expected = compile_with_slopes(EXPRESSION, VARIABLES, CONSTANTS)(R, 2.0, 0.5)
    (path,) = folder.glob("*.py")
    path.write_text("def _lambdifygenerated(r, a, b:\n")  # cut short
    compile_with_slopes.cache_clear()
    again = compile_with_slopes(EXPRESSION, VARIABLES, CONSTANTS)(R, 2.0, 0.5)
    assert np.array(again) == pytest.approx(np.array(expected), rel=0, abs=0)
    assert "def _lambdifygenerated(r, a, b):" in path.read_text()


def test_a_folder_this_process_cannot_see_changes_nothing(tmp_path):
    compile_with_slopes.cache_clear()
    compiled.use_folder(tmp_path / "elsewhere")  # not there: a worker on another machine
    try:
        value, _ = compile_with_slopes(EXPRESSION, VARIABLES, CONSTANTS)(R, 2.0, 0.5)
    finally:
        compiled.use_folder(None)
        compile_with_slopes.cache_clear()
    assert not (tmp_path / "elsewhere").exists()
    assert np.all(np.isfinite(value))


def test_the_folder_goes_when_its_block_ends_even_on_an_error(tmp_path):
    with pytest.raises(RuntimeError):
        with compiled.shared_folder(tmp_path / "shared"):
            compile_with_slopes(EXPRESSION, VARIABLES, CONSTANTS)
            raise RuntimeError("the search failed")
    assert not (tmp_path / "shared").exists()
    assert compiled._folder is None
