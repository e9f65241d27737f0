"""The operator catalogue: every operator a search space may name, as data.

Each operator has an arity and a sympy builder; the GP primitive set and the
tree→formula conversion both read this table, so adding an operator is one line.
Operators are exact mathematical functions, so the reported formula is the real one.
Protection is done at evaluation: a candidate that produces a non-finite number
anywhere on the data (division by zero, overflow, log of a negative) is given the
worst fitness instead of crashing the search. ``plog`` and ``psqrt`` are the
protected variants, log|x| and √|x|, for search spaces that want them.

``rc`` (arity 0) is a terminal, not an operator: the cutoff radius of the term, a
fixed number (never fitted). It lets a tree say ``exp(c/(r − rc))``, the smooth
vanishing that Stillinger–Weber builds into its functions, without having to fit a
pole position from inside the data (a fit cannot move a pole across the data).
``vanish(a)`` is that factor as one operator, exp(a²/(r − rc)): for slots of one
distance r (V, h, f), it lets the search try the vanishing with a fitted stiffness as
one building block instead of assembling six nodes by chance (Stillinger–Weber's pair
and three-body radial functions are both of this form). The square makes every tree
vanish at rc, whatever the sign of its constant: exp(a/(r − rc)) with a < 0 overflows
there, and no fit can start from it; the fitted stiffness (a² as one constant) is free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy


@dataclass(frozen=True)
class Operator:
    name: str
    arity: int
    build: Callable[..., sympy.Expr] | None
    doc: str
    needs_radius: bool = False  # build takes the term's cutoff radius after its arguments


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in [
        Operator("add", 2, lambda a, b: a + b, "a + b"),
        Operator("sub", 2, lambda a, b: a - b, "a − b"),
        Operator("mul", 2, lambda a, b: a * b, "a · b"),
        Operator("div", 2, lambda a, b: a / b, "a / b"),
        Operator("pow", 2, lambda a, b: a**b, "aᵇ (a constant b becomes a fitted exponent)"),
        Operator("neg", 1, lambda a: -a, "−a"),
        Operator("inv", 1, lambda a: 1 / a, "1/a"),
        Operator("square", 1, lambda a: a**2, "a²"),
        Operator("cube", 1, lambda a: a**3, "a³"),
        Operator("exp", 1, sympy.exp, "eᵃ"),
        Operator("nexp", 1, lambda a: sympy.exp(-a), "e⁻ᵃ"),
        Operator("sqrt", 1, sympy.sqrt, "√a"),
        Operator("psqrt", 1, lambda a: sympy.sqrt(sympy.Abs(a)), "√|a| (protected)"),
        Operator("log", 1, sympy.log, "ln a"),
        Operator("plog", 1, lambda a: sympy.log(sympy.Abs(a)), "ln|a| (protected)"),
        Operator("tanh", 1, sympy.tanh, "tanh a"),
        Operator("cos", 1, sympy.cos, "cos a"),
        Operator("sin", 1, sympy.sin, "sin a"),
        Operator("rc", 0, None, "the term's cutoff radius (a fixed number)"),
        Operator(
            "vanish",
            1,
            lambda a, rc: sympy.exp(a**2 / (sympy.Symbol("r") - rc)),
            "e^(a²/(r − rc)), vanishing smoothly at the cutoff (slots of r only)",
            needs_radius=True,
        ),
    ]
}
