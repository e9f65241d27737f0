"""Potentials round-trip through JSON, and formula strings are parsed safely."""

import json

import numpy as np
import pytest
import sympy
from conftest import PAIR_FORMULAS, pair_potential, periodic_cell, unlabelled

from evopot.data.geometry import build_geometry
from evopot.errors import EvopotError
from evopot.model.evaluate import evaluate
from evopot.model.formula import parse_formula
from evopot.model.potential import Potential


def test_potential_round_trips_through_json_with_identical_predictions(tmp_path):
    potential = pair_potential(*PAIR_FORMULAS[2], species=("Ge", "Si"))
    path = tmp_path / "p.json"
    potential.save(path)
    loaded = Potential.load(path)
    geometry = build_geometry(unlabelled([periodic_cell(1, ("Si", "Ge"))]), 5.0, ("Ge", "Si"))
    a, b = evaluate(potential, geometry), evaluate(loaded, geometry)
    np.testing.assert_array_equal(a.energies, b.energies)
    np.testing.assert_array_equal(a.forces, b.forces)
    assert loaded.terms[0].constants == potential.terms[0].constants
    assert json.loads(path.read_text())["units"]["energy"] == "eV"


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('echo pwned')",
        "r.__class__.__bases__",
        "(lambda: 1)()",
        "A[0]",
        "open('x')",
        "r; import os",
        "exec('1')",
        "0x1f*r",
        "r if A else 1",
        "eval",
    ],
)
def test_formula_with_python_code_is_refused(text):
    with pytest.raises(EvopotError, match="not allowed|unknown name|not a plain"):
        parse_formula(text, ["r", "A"], where="test")


def test_formula_parses_plain_arithmetic():
    expr = parse_formula("A*exp(-b*r) - 4.5/r**6 + sqrt(r)", ["r", "A", "b"])
    r, A, b = sympy.symbols("r A b")
    assert sympy.simplify(expr - (A * sympy.exp(-b * r) - 4.5 / r**6 + sympy.sqrt(r))) == 0


@pytest.mark.parametrize("text", ["9**9**9**9", "r*10**10**8", "r**(10**10**8)", "2**2000*r", "(-3)**(7**9)"])
def test_powers_of_numbers_beyond_floating_point_are_refused_without_computing_them(text):
    # sympy would compute 9**9**9**9 exactly, for hours (issue 33's fuzzer found 110 such hangs)
    with pytest.raises(EvopotError, match="test: .* is a number beyond floating point"):
        parse_formula(text, ["r"], where="test")


def test_powers_of_numbers_within_floating_point_still_parse():
    r = sympy.Symbol("r")
    assert (
        parse_formula("2**10*r + 10**-300 + (-8)**3 + r**(2**3)", ["r"])
        == 1024 * r + sympy.Rational(1, 10**300) - 512 + r**8
    )


def test_loading_a_potential_with_code_in_its_formula_fails_cleanly(tmp_path):
    potential = pair_potential(*PAIR_FORMULAS[0])
    data = potential.to_dict()
    data["terms"][0]["expression"] = "__import__('os').getcwd()"
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(data))
    with pytest.raises(EvopotError, match=r"evil.json: terms\[0\].expression"):
        Potential.load(path)


@pytest.mark.parametrize(
    "content,message",
    [("{not json", "not a valid JSON"), ('{"format": "other"}', "not an evopot potential"), ("", "not a valid JSON")],
)
def test_corrupt_potential_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(EvopotError, match=message):
        Potential.load(path)


def test_eulers_number_as_sympy_prints_it_reads_back():
    """A constant rounded to infinity can leave sympy's E in a formula; checkpoints and
    potential files write it as ``E`` and must read it back."""
    import sympy

    from evopot.model.formula import formula_string, parse_formula

    expression = sympy.E / (sympy.exp(2 * sympy.Symbol("r")) + sympy.exp(sympy.Symbol("r")) / sympy.Symbol("r"))
    assert parse_formula(formula_string(expression), ["r"]) == expression
