"""Property-based fuzzing of what users write: a formula string and a config file end
in a formula or in one EvopotError line, quickly, whatever they hold. A few hundred
examples run in the fast suite; the slow profile runs 10,000 of each."""

from __future__ import annotations

import math

import pytest
import sympy
import yaml
from conftest import within
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evopot.config.schema import SearchConfig, load_config
from evopot.errors import EvopotError
from evopot.model.formula import parse_formula

#: seconds one example may take before it counts as a hang
LIMIT = 5

#: pieces of formulas, of valid ones and of the attacks an audit tried
TOKENS = [
    "r", "rij", "rik", "costheta", "rho", "A", "b", "x", "_", "__class__", "__import__('os')", "lambda", "os",
    "0", "1", "2", "3", "9", "10", "0.5", "1e300", "1e-300", "1e400", "1j", "0x1f", "1_000", ".", "e", "E", "pi",
    "+", "-", "*", "/", "**", "%", "//", "^", "(", ")", "[", "]", "{", "}", ",", ":", ";", " ", "'", '"', "\\",
    "\n", "\x00", "é", "exp", "log", "sqrt", "sin", "cos", "tanh", "abs", "Abs", "zoo", "oo", "nan", "I",
    "9**9**9", "10**10**8", "(r-r)", "Integer", "Symbol", "eval", "=", "==", "<", "@", "!", "#", "$",
]  # fmt: skip

formulas = st.one_of(
    st.lists(st.sampled_from(TOKENS), max_size=40).map("".join),
    st.text(max_size=60),
    st.recursive(
        st.sampled_from(["r", "A", "2", "0.5", "9", "10", "1e300", "-1"]),
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
            st.tuples(st.sampled_from(["exp", "log", "sqrt", "tanh", "abs"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
        ),
        max_leaves=30,
    ),
)


def parses_or_refuses(text: str) -> None:
    with within(LIMIT, f"parse_formula({text!r})"):
        try:
            expr = parse_formula(text, ["r", "A", "b"], where="fuzz.yaml: expression")
        except EvopotError as exc:
            message = str(exc)
            assert message.startswith("fuzz.yaml: expression") and "Traceback" not in message
            return
    assert isinstance(expr, sympy.Expr)
    assert expr.free_symbols <= {sympy.Symbol("r"), sympy.Symbol("A"), sympy.Symbol("b")}
    assert not expr.has(sympy.zoo, sympy.nan, sympy.oo, sympy.I)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(formulas)
def test_any_formula_string_parses_or_is_one_clear_error(text):
    parses_or_refuses(text)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(formulas)
def test_any_formula_string_parses_or_is_one_clear_error_long(text):
    parses_or_refuses(text)


# --- configs ------------------------------------------------------------------------

GOOD = {
    "seed": 1,
    "output": "run",
    "species": ["Si"],
    "data": {"train": "data.extxyz", "split": {"by": "fraction", "validation": 0.1}},
    "cutoff": {"radius": 5.0, "onset": 4.0, "function": "quintic"},
    "search_space": "pair",
    "engine": {"name": "gp", "population": 100, "generations": 20, "guided": {"epochs": 10}},
    "fitness": {"forces": 1.0, "energies": 0.1, "frames": 40},
    "correction": {"ensemble": 2, "hidden": [8, 8]},
}

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(-3, 3), max_size=2),
)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))


PATHS = [p for p in paths(GOOD) if p]


@st.composite
def configs(draw):
    """The good config with a few fields replaced, removed or added, as YAML text,
    sometimes with bytes of it changed."""
    import copy

    config = copy.deepcopy(GOOD)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        node = config
        for key in path[:-1]:
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            if isinstance(node, dict):
                action = draw(st.sampled_from(["replace", "remove", "add"]))
                if action == "remove":
                    node.pop(path[-1], None)
                elif action == "add":
                    node[draw(st.text(min_size=1, max_size=8))] = draw(values)
                else:
                    node[path[-1]] = draw(values)
    text = yaml.safe_dump(config)
    if draw(st.booleans()):
        data = bytearray(text.encode())
        for _ in range(draw(st.integers(1, 3))):
            position = draw(st.integers(0, max(len(data) - 1, 0)))
            data[position : position + 1] = draw(st.binary(min_size=0, max_size=3))
        return bytes(data)
    return text.encode()


def loads_or_refuses(folder, content: bytes) -> None:
    path = folder / "fuzz.yaml"
    path.write_bytes(content)
    with within(LIMIT, "load_config"):
        try:
            config = load_config(path)
        except EvopotError as exc:
            message = str(exc)
            assert message.startswith(str(path)) and "Traceback" not in message
            return
    assert isinstance(config, SearchConfig)
    assert math.isfinite(config.cutoff.radius) and 0 < config.cutoff.radius <= 30
    assert 0 <= config.seed < 2**32


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True
)
@given(content=configs())
def test_any_config_file_loads_or_is_one_clear_error(tmp_path, content):
    loads_or_refuses(tmp_path, content)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=configs())
def test_any_config_file_loads_or_is_one_clear_error_long(tmp_path, content):
    loads_or_refuses(tmp_path, content)
