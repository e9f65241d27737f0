"""PySR for the distillation step (``distill_with: pysr``), optional.

PySR runs on Julia and installs Julia packages from Julia's package servers on first
use. This module is the only place evopot imports it; when PySR or Julia is missing it
says how to get them. PySR's equations come back as sympy and are turned into trees of
the slot's primitive set (DEAP prefix notation) to seed the search; an equation that
uses an operator the search space does not allow is skipped.
"""

from __future__ import annotations

import shutil

import numpy as np
import sympy

from evopot.errors import EvopotError

INSTALL = (
    'PySR needs the Julia language and the PySR package: `pip install pysr`, then run `python -c "import '
    'pysr"` once on a machine that '
    "can reach Julia's package servers (it downloads Julia and SymbolicRegression.jl; see "
    "https://github.com/MilesCranmer/PySR). "
    "Or set distill_with: deap (the default), which needs nothing else."
)

#: evopot operator → PySR operator name.
_PYSR_OPERATORS = {
    "add": "+",
    "sub": "-",
    "mul": "*",
    "div": "/",
    "pow": "^",
    "exp": "exp",
    "neg": "neg",
    "inv": "inv",
    "square": "square",
    "cube": "cube",
    "sqrt": "sqrt",
    "log": "log",
    "tanh": "tanh",
    "cos": "cos",
    "sin": "sin",
}


def available() -> None:
    """Raise :class:`EvopotError` with install instructions unless PySR and Julia work."""
    try:
        import pysr  # noqa: F401  (import triggers Julia's set-up)
    except Exception as exc:  # ImportError, or juliacall failing to find or install Julia
        raise EvopotError(
            f"distill_with: pysr — PySR cannot start here ({type(exc).__name__}: {exc}). {INSTALL}"
        ) from None
    if shutil.which("julia") is None:
        import os

        if not os.environ.get("PYTHON_JULIAPKG_EXE"):
            raise EvopotError(f"distill_with: pysr — no `julia` executable found. {INSTALL}")


def fit_curve(x: np.ndarray, y: np.ndarray, operators: list[str], iterations: int = 40, seed: int = 0):
    """Run PySR on one sampled curve; returns the fitted ``PySRRegressor``."""
    available()
    from pysr import PySRRegressor

    binary = [_PYSR_OPERATORS[o] for o in operators if o in ("add", "sub", "mul", "div", "pow")]
    unary = [
        _PYSR_OPERATORS[o] for o in operators if o in _PYSR_OPERATORS and o not in ("add", "sub", "mul", "div", "pow")
    ]
    model = PySRRegressor(
        niterations=iterations,
        binary_operators=binary,
        unary_operators=unary,
        random_state=seed,
        deterministic=True,
        parallelism="serial",
        progress=False,
    )
    model.fit(np.asarray(x).reshape(-1, 1), np.asarray(y))
    return model


def equations_to_trees(model, variable: str, operators: list[str], keep: int = 3) -> list[tuple[str, float]]:
    """The ``keep`` lowest-loss equations of a fitted PySR model (anything with an
    ``equations_`` table of ``sympy_format`` and ``loss``) as (tree string, loss) in
    ``variable``, skipping those that need operators outside ``operators``."""
    table = model.equations_
    rows = table.to_dict("records") if hasattr(table, "to_dict") else list(table)
    out = []
    for row in sorted(rows, key=lambda r: float(r["loss"])):
        expr = row["sympy_format"]
        expr = sympy.sympify(expr) if isinstance(expr, str) else expr
        expr = expr.subs({s: sympy.Symbol(variable) for s in expr.free_symbols})
        tree = sympy_to_tree(expr, set(operators))
        if tree is not None:
            out.append((tree, float(row["loss"])))
        if len(out) == keep:
            break
    return out


def sympy_to_tree(expr: sympy.Expr, operators: set[str]) -> str | None:
    """``expr`` in DEAP prefix notation with evopot's operator names, or None when it
    needs an operator outside ``operators``."""

    def build(e) -> str:
        if e.is_Symbol:
            return e.name
        if e.is_Number:
            return repr(float(e))
        if e.func is sympy.exp:
            return need("exp", build(e.args[0]))
        if e.func in (sympy.log, sympy.tanh, sympy.cos, sympy.sin):
            return need(e.func.__name__, build(e.args[0]))
        if e.is_Add or e.is_Mul:
            name = "add" if e.is_Add else "mul"
            args = [build(a) for a in e.args]
            out = args[0]
            for a in args[1:]:
                out = need(name, out, a)
            return out
        if e.is_Pow:
            base, power = e.args
            if power == 2 and "square" in operators:
                return f"square({build(base)})"
            if power == 3 and "cube" in operators:
                return f"cube({build(base)})"
            if power == -1 and "inv" in operators:
                return f"inv({build(base)})"
            return need("pow", build(base), build(power))
        raise KeyError(str(e.func))

    def need(name, *args) -> str:
        if name not in operators:
            raise KeyError(name)
        return f"{name}({', '.join(args)})"

    try:
        return build(expr)
    except KeyError:
        return None
